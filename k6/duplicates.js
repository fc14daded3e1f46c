// Duplicates: the same USERS people (default 1,000) ask again and again. Each gets one coupon
// (201) and from then on 409 already_issued carrying that same coupon.
//
//   k6 run -e EVENT_ID=<uuid> [-e USERS=1000] [-e VUS=1000] [-e DURATION=30s] k6/duplicates.js
//
// Fails when a user's 409 carries a different coupon from the one they were issued (within a
// VU), or when more than USERS coupons are issued.

import { check } from 'k6';
import { Counter } from 'k6/metrics';
import { intEnv, issue, assertNotOversold, newRunId } from './lib.js';

const USERS = Math.max(1, intEnv('USERS', 1000));
const mismatch = new Counter('coupon_mismatch');
const held = {};

export const options = {
  scenarios: {
    duplicates: { executor: 'constant-vus', vus: intEnv('VUS', 1000), duration: __ENV.DURATION || '30s' },
  },
  thresholds: { issued: [`count<=${USERS}`], coupon_mismatch: ['count==0'], other: ['count==0'], checks: ['rate==1'] },
  summaryTrendStats: ['min', 'med', 'p(99)', 'p(99.9)', 'max'],
};

export function setup() {
  return { runId: newRunId() };
}

export default function (data) {
  const runId = data.runId;
  const user = `k6-dup-${runId}-${Math.floor(Math.random() * USERS)}`;
  const res = issue(user);
  let coupon;
  try {
    const body = res.json();
    coupon = res.status === 201 ? body.coupon_id : body.coupon && body.coupon.coupon_id;
  } catch (e) {
    return;
  }
  if (!coupon) return;
  if (held[user] === undefined) held[user] = coupon;
  if (!check(coupon, { 'the same coupon every time': (c) => c === held[user] })) mismatch.add(1);
}

export function teardown() {
  assertNotOversold();
}
