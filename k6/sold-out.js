// Sold-out storm: an event whose day is sold out, hammered by new users as fast as k6 can.
//
//   k6 run -e EVENT_ID=<uuid of a sold-out event> [-e VUS=1000] [-e DURATION=30s] k6/sold-out.js
//
// Every answer must be 410 sold_out (or 503 when the service sheds); nothing is issued.

import exec from 'k6/execution';
import { intEnv, issue, assertNotOversold, newRunId } from './lib.js';

export const options = {
  scenarios: {
    storm: { executor: 'constant-vus', vus: intEnv('VUS', 1000), duration: __ENV.DURATION || '30s' },
  },
  thresholds: { issued: ['count==0'], other: ['count==0'], checks: ['rate==1'] },
  summaryTrendStats: ['min', 'med', 'p(99)', 'p(99.9)', 'max'],
};

export function setup() {
  return { runId: newRunId() };
}

export default function (data) {
  const runId = data.runId;
  issue(`k6-soldout-${runId}-${exec.vu.idInTest}-${exec.vu.iterationInScenario}`);
}

export function teardown() {
  assertNotOversold();
}
