// Shared by the k6 scenario scripts: settings from the environment, the service's outcomes as
// counters, and the one request every scenario makes.

import http from 'k6/http';
import { check } from 'k6';
import { Counter } from 'k6/metrics';

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
export const EVENT_ID = __ENV.EVENT_ID || '';
if (!EVENT_ID) {
  throw new Error('EVENT_ID is required: k6 run -e EVENT_ID=<event uuid> k6/<scenario>.js (scripts/up prints one)');
}

export function intEnv(name, dflt) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return n;
}

// One counter per outcome, named after the service's outcome codes.
export const outcomes = {
  issued: new Counter('issued'), // 201
  already_issued: new Counter('already_issued'), // 409
  sold_out: new Counter('sold_out'), // 410
  not_open: new Counter('not_open'), // 403 not_open
  closed: new Counter('closed'), // 403 closed
  unavailable: new Counter('unavailable'), // 503 (shed, or Redis unavailable)
  other: new Counter('other'), // anything else: always a failure
};

// 409/410/403 are answers, not failures.
http.setResponseCallback(http.expectedStatuses(200, 201, 403, 409, 410));

const JSON_HEADERS = { headers: { 'Content-Type': 'application/json' }, timeout: '30s' };

function errorCode(res) {
  try {
    const body = res.json();
    return body && body.error && typeof body.error.code === 'string' ? body.error.code : '';
  } catch (e) {
    return '';
  }
}

export function classify(res) {
  switch (res.status) {
    case 201:
      return 'issued';
    case 409:
      return 'already_issued';
    case 410:
      return 'sold_out';
    case 403: {
      const code = errorCode(res);
      return code === 'not_open' || code === 'closed' ? code : 'other';
    }
    case 503:
      return 'unavailable';
    default:
      return 'other';
  }
}

// POST /v1/coupon/issue for one user; counts the outcome.
export function issue(userId) {
  const res = http.post(`${BASE_URL}/v1/coupon/issue`, JSON.stringify({ event_id: EVENT_ID, user_id: userId }), JSON_HEADERS);
  const outcome = classify(res);
  outcomes[outcome].add(1);
  check(res, { 'status is 201/409/410/403/503': (r) => [201, 409, 410, 403, 503].includes(r.status) });
  return res;
}

export function getCount() {
  const res = http.get(`${BASE_URL}/v1/coupon/count?event_id=${encodeURIComponent(EVENT_ID)}`, { timeout: '10s' });
  if (res.status !== 200) throw new Error(`GET /v1/coupon/count: HTTP ${res.status}: ${res.body}`);
  return res.json();
}

// Fails the run when the server counts more than its daily limit.
export function assertNotOversold() {
  const after = getCount();
  console.log(`event ${EVENT_ID} on ${after.day}: issued=${after.issued} daily_limit=${after.daily_limit} status=${after.status}`);
  if (after.issued > after.daily_limit) {
    throw new Error(`OVERSOLD: issued=${after.issued} > daily_limit=${after.daily_limit}`);
  }
}

// A tag for this run's user ids, made once in setup() and handed to every VU (init code runs in
// each VU separately, so a tag made there would differ from VU to VU).
export function newRunId() {
  return __ENV.RUN_ID || Date.now().toString(36);
}
