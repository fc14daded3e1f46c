// Spike test: thousands of users try to get a coupon in the same second.
//
//   k6 run -e EVENT_ID=<uuid> k6/spike.js
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e EVENT_ID=<uuid> \
//          -e USERS=5000 -e VUS=2000 -e LIMIT=100 k6/spike.js
//
// Environment:
//   BASE_URL  service address (default http://127.0.0.1:8080)
//   EVENT_ID  the event to hit (required; scripts/up prints one)
//   USERS     distinct users, one iteration each (default 5000)
//   VUS       virtual users running them (default 2000, at most USERS)
//   LIMIT     most coupons this run may get (default 100, the demo event's
//             daily_limit). Thresholds are fixed before the test starts, so
//             this cannot be read from the server: run against a fresh event,
//             or pass the coupons still left today as LIMIT.
//   RUN_ID    tag in the user ids (default: derived from the start time)
//
// Every user is `k6-<run-id>-<n>` and tries twice in a row (a client retry).
// What must hold, and fails the run (non-zero exit) when it does not:
//   - every answer is 201, 409, 410, 403 or 503                 (checks)
//   - this run got at most LIMIT coupons                        (issued)
//   - a user's retry that gets 409 carries the coupon that the
//     same user's 201 carried                                   (coupon_mismatch)
//   - afterwards the server's count for today shows
//     issued <= daily_limit                                     (teardown)

import http from 'k6/http';
import { check } from 'k6';
import { Counter } from 'k6/metrics';
import exec from 'k6/execution';
import { BASE_URL, EVENT_ID, intEnv, outcomes, classify, getCount, newRunId } from './lib.js';

const USERS = Math.max(1, intEnv('USERS', 5000));
const VUS = Math.max(1, Math.min(intEnv('VUS', 2000), USERS));
const LIMIT = intEnv('LIMIT', 100);

const couponMismatch = new Counter('coupon_mismatch');
const oversold = new Counter('oversold');

export const options = {
  scenarios: {
    spike: {
      // All VUs are set up before the scenario starts, then race through
      // USERS iterations (one user each) as fast as they can.
      executor: 'shared-iterations',
      vus: VUS,
      iterations: USERS,
      maxDuration: '2m',
    },
  },
  setupTimeout: '30s',
  teardownTimeout: '30s',
  thresholds: {
    checks: ['rate==1'],
    issued: [`count<=${LIMIT}`],
    coupon_mismatch: ['count==0'],
    oversold: ['count==0'],
    other: ['count==0'],
  },
  summaryTrendStats: ['min', 'med', 'p(95)', 'p(99)', 'max'],
};

const JSON_HEADERS = { headers: { 'Content-Type': 'application/json' }, timeout: '30s' };

export function setup() {
  const before = getCount();
  console.log(
    `event ${EVENT_ID} on ${before.day}: status=${before.status} issued=${before.issued} ` +
      `remaining=${before.remaining} daily_limit=${before.daily_limit}; ${USERS} users on ${VUS} VUs, LIMIT=${LIMIT}`,
  );
  if (before.remaining > LIMIT) {
    console.warn(`remaining (${before.remaining}) > LIMIT (${LIMIT}): the "issued" threshold will fail; pass -e LIMIT=${before.remaining}`);
  }
  return { runId: newRunId(), before };
}

// The coupon id in a 201 body, or in the coupon a 409 body carries.
function couponId(res) {
  let body;
  try {
    body = res.json();
  } catch (e) {
    return undefined;
  }
  if (!body || typeof body !== 'object') return undefined;
  if (body.coupon && body.coupon.coupon_id) return body.coupon.coupon_id;
  return body.coupon_id;
}

function tryIssue(userId, attempt) {
  const res = http.post(
    `${BASE_URL}/v1/coupon/issue`,
    JSON.stringify({ event_id: EVENT_ID, user_id: userId }),
    Object.assign({ tags: { attempt: String(attempt) } }, JSON_HEADERS),
  );
  const outcome = classify(res);
  outcomes[outcome].add(1);
  check(res, { 'status is 201/409/410/403/503': (r) => [201, 409, 410, 403, 503].includes(r.status) });
  if (outcome === 'other') {
    console.warn(`${userId} attempt ${attempt}: unexpected HTTP ${res.status}: ${String(res.body).slice(0, 200)}`);
  }
  return res;
}

export default function (data) {
  const userId = `k6-${data.runId}-${exec.scenario.iterationInTest}`;

  const first = tryIssue(userId, 1);
  const second = tryIssue(userId, 2); // the retry

  // One user, one coupon: after a 201, the retry must not get a second
  // coupon, and a 409 must carry the very coupon the 201 carried.
  if (first.status === 201) {
    const mine = couponId(first);
    const ok = check(second, {
      'retry after 201 is no new coupon': (r) => r.status !== 201,
      '409 carries the same coupon': (r) => r.status !== 409 || (mine !== undefined && couponId(r) === mine),
    });
    if (!ok) {
      couponMismatch.add(1);
      console.error(`${userId}: first 201 coupon ${mine}, retry HTTP ${second.status}: ${String(second.body).slice(0, 200)}`);
    }
  }
}

export function teardown(data) {
  const after = getCount();
  console.log(
    `event ${EVENT_ID} on ${after.day}: issued=${after.issued} remaining=${after.remaining} ` +
      `daily_limit=${after.daily_limit} status=${after.status} (before: issued=${data.before.issued})`,
  );
  const ok = check(after, { 'server: issued <= daily_limit': (c) => c.issued <= c.daily_limit });
  if (!ok) {
    oversold.add(1);
    throw new Error(`OVERSOLD: server reports issued=${after.issued} > daily_limit=${after.daily_limit}`);
  }
}
