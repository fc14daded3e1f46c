// The strategy lab under k6: one strategy, one spike, the rule checked afterwards.
//
//   ADMIN_TOKEN=secret cargo run --release -p coupon-lab -- serve   (the lab's server, crates/lab)
//   k6 run -e ADMIN_TOKEN=secret -e STRATEGY=pg-for-update k6/lab.js
//   for s in naive pg-for-update pg-function pg-conditional-update pg-optimistic queue redis-lock redis-lua; do
//     k6 run -q -e ADMIN_TOKEN=secret -e STRATEGY=$s k6/lab.js
//   done
//
// Environment:
//   BASE_URL     the lab's address (default http://127.0.0.1:8090, `coupon-lab serve`'s)
//   ADMIN_TOKEN  the lab's admin token (required: setup resets the lab coupon)
//   STRATEGY     one of the eight (default redis-lua)
//   COUPON_ID    the lab coupon to use (default: a fresh one per run)
//   QUANTITY     N, units of the coupon (default 100)
//   USERS        distinct users, one iteration each (default 2000)
//   REPEATS      requests per user, sent together with http.batch: a double click (default 2)
//   VUS          virtual users (default 100, at most USERS)
//
// What must hold (non-zero exit otherwise), for every strategy but naive:
//   - nobody got two 201s                                  (duplicates)
//   - at most QUANTITY 201s, and the store agrees          (issued, teardown)
//   - every answer is 201, 409, 410 or 503                 (checks)
// For naive these are reported, not enforced: it is expected to break them.

import http from 'k6/http';
import { check } from 'k6';
import { Counter } from 'k6/metrics';
import exec from 'k6/execution';

const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8090').replace(/\/+$/, '');
const ADMIN_TOKEN = __ENV.ADMIN_TOKEN || '';
const STRATEGY = __ENV.STRATEGY || 'redis-lua';
const STRATEGIES = ['naive', 'pg-for-update', 'pg-function', 'pg-conditional-update', 'pg-optimistic', 'queue', 'redis-lock', 'redis-lua'];
if (!STRATEGIES.includes(STRATEGY)) throw new Error(`STRATEGY must be one of ${STRATEGIES.join(', ')}`);
if (!ADMIN_TOKEN) throw new Error('ADMIN_TOKEN is required: setup resets the lab coupon (PUT /v1/lab/coupons/{id})');

function intEnv(name, dflt) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return n;
}

const QUANTITY = intEnv('QUANTITY', 100);
const USERS = Math.max(1, intEnv('USERS', 2000));
const REPEATS = Math.max(1, intEnv('REPEATS', 2));
const VUS = Math.max(1, Math.min(intEnv('VUS', 100), USERS));
const ENFORCE = STRATEGY !== 'naive';

const issued = new Counter('issued');
const duplicates = new Counter('duplicates');
const unavailable = new Counter('unavailable');
const other = new Counter('other');

const thresholds = { other: ['count==0'] };
if (ENFORCE) {
  thresholds.issued = [`count<=${QUANTITY}`];
  thresholds.duplicates = ['count==0'];
  thresholds.checks = ['rate==1'];
}

export const options = {
  scenarios: {
    spike: { executor: 'shared-iterations', vus: VUS, iterations: USERS, maxDuration: '2m' },
  },
  thresholds,
  summaryTrendStats: ['min', 'med', 'p(95)', 'p(99)', 'max'],
};

http.setResponseCallback(http.expectedStatuses(200, 201, 409, 410));

function uuid4() {
  const hex = '0123456789abcdef';
  let s = '';
  for (let i = 0; i < 32; i++) s += hex[Math.floor(Math.random() * 16)];
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-4${s.slice(13, 16)}-8${s.slice(17, 20)}-${s.slice(20, 32)}`;
}

export function setup() {
  const coupon = __ENV.COUPON_ID || uuid4();
  const res = http.put(`${BASE_URL}/v1/lab/coupons/${coupon}`, JSON.stringify({ quantity: QUANTITY }), {
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  if (res.status !== 200) throw new Error(`reset: HTTP ${res.status}: ${res.body} (is `coupon-lab serve` running there, with this ADMIN_TOKEN?)`);
  console.log(`${STRATEGY}: coupon ${coupon}, N=${QUANTITY}, ${USERS} users x ${REPEATS} on ${VUS} VUs`);
  return { coupon, runId: Date.now().toString(36) };
}

export default function (data) {
  const user = `k6-${data.runId}-${exec.scenario.iterationInTest}`;
  const request = {
    method: 'POST',
    url: `${BASE_URL}/v1/lab/${STRATEGY}/${data.coupon}/give`,
    body: JSON.stringify({ user_id: user }),
    params: { headers: { 'Content-Type': 'application/json' }, timeout: '30s' },
  };
  const answers = http.batch(Array.from({ length: REPEATS }, () => request));
  let wins = 0;
  for (const res of answers) {
    if (res.status === 201) wins += 1;
    else if (res.status === 503) unavailable.add(1);
    else if (res.status !== 409 && res.status !== 410) other.add(1);
    check(res, { 'status is 201/409/410/503': (r) => [201, 409, 410, 503].includes(r.status) });
  }
  issued.add(wins);
  if (wins > 1) duplicates.add(1);
}

export function teardown(data) {
  const res = http.get(`${BASE_URL}/v1/lab/coupons/${data.coupon}`);
  if (res.status !== 200) throw new Error(`report: HTTP ${res.status}`);
  const report = res.json();
  const store = STRATEGY === 'redis-lua'
    ? { quantity: report.redis.quantity, claims: report.redis.claims }
    : { quantity: report.postgres.quantity, claims: report.postgres.claims };
  console.log(`${STRATEGY}: store holds ${store.claims} claims of ${QUANTITY}, ${store.quantity} left`);
  if (ENFORCE && store.claims > QUANTITY) throw new Error(`OVERSOLD: ${store.claims} claims for ${QUANTITY} units`);
}
