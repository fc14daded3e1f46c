// The drop: a sale from open to sold out. USERS people (default 100,000) each press the button
// again and again; the event's daily limit (10,000 in the benchmark) runs out in the first
// seconds and the rest keep retrying.
//
//   k6 run -e EVENT_ID=<uuid> [-e USERS=100000] [-e VUS=1000] [-e DURATION=30s] k6/drop.js
//
// Fails when anything but 201/409/410/503 comes back, or the server counts over its limit.

import { intEnv, issue, assertNotOversold, newRunId } from './lib.js';

const USERS = Math.max(1, intEnv('USERS', 100000));

export const options = {
  scenarios: {
    drop: { executor: 'constant-vus', vus: intEnv('VUS', 1000), duration: __ENV.DURATION || '30s' },
  },
  thresholds: { other: ['count==0'], checks: ['rate==1'] },
  summaryTrendStats: ['min', 'med', 'p(99)', 'p(99.9)', 'max'],
};

export function setup() {
  return { runId: newRunId() };
}

export default function (data) {
  const runId = data.runId;
  issue(`k6-drop-${runId}-${Math.floor(Math.random() * USERS)}`);
}

export function teardown() {
  assertNotOversold();
}
