// Open-loop latency: RATE requests per second whatever the answers do (k6's constant-arrival-rate),
// every request a new user. Closed-loop latency at 1,000 connections only measures the queue;
// this is what a user sees at a given load. k6 costs ~118 µs of CPU per request, so on a small
// machine keep RATE well below what the service can do (scripts/bench has a cheaper generator).
//
//   k6 run -e EVENT_ID=<uuid> [-e RATE=2000] [-e DURATION=30s] k6/latency.js

import exec from 'k6/execution';
import { intEnv, issue, assertNotOversold, newRunId } from './lib.js';

const RATE = Math.max(1, intEnv('RATE', 2000));

export const options = {
  scenarios: {
    latency: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: __ENV.DURATION || '30s',
      preAllocatedVUs: Math.max(50, Math.ceil(RATE / 20)),
      maxVUs: Math.max(200, RATE),
    },
  },
  thresholds: {
    'http_req_duration{expected_response:true}': ['p(99)<10', 'p(99.9)<50'],
    other: ['count==0'],
    checks: ['rate==1'],
  },
  summaryTrendStats: ['min', 'med', 'p(99)', 'p(99.9)', 'max'],
};

export function setup() {
  return { runId: newRunId() };
}

export default function (data) {
  const runId = data.runId;
  issue(`k6-latency-${runId}-${exec.scenario.iterationInTest}`);
}

export function teardown() {
  assertNotOversold();
}
