-- wrk script for the benchmark's scenarios (run by `scripts/bench`; usable alone):
--
--   EVENT_ID=<uuid> SCENARIO=spike wrk -t2 -c1000 -d10s -s bench/scenario.lua http://127.0.0.1:8080
--
-- SCENARIO picks who asks:
--   spike       every request a new user
--   sold_out    every request a new user (the event's day is sold out)
--   drop        a user drawn from USERS (default 100000): users come back and retry
--   duplicates  a user drawn from USERS (default 1000), again and again
-- RUN tags the user ids so each run's users are new (default: the time).
--
-- At the end it prints one line, "BENCH {json}", with the figures the benchmark reads: requests,
-- duration, latency percentiles in microseconds, answers by status and socket errors.
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  event_id = os.getenv("EVENT_ID") or error("set EVENT_ID")
  scenario = os.getenv("SCENARIO") or "spike"
  users = tonumber(os.getenv("USERS") or (scenario == "drop" and "100000" or "1000"))
  run = os.getenv("RUN") or tostring(os.time())
  math.randomseed(os.time() + tid * 7919)
  n = 0
  statuses = {}
  prefix = string.format('{"event_id":"%s","user_id":"', event_id)
  headers = { ["Content-Type"] = "application/json" }
end

function request()
  local user
  if scenario == "drop" or scenario == "duplicates" then
    user = string.format("%s-%s-%d", scenario, run, math.random(users))
  else
    n = n + 1
    user = string.format("%s-%s-%d-%d", scenario, run, tid, n)
  end
  return wrk.format("POST", "/v1/coupon/issue", headers, prefix .. user .. '"}')
end

function response(status)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local by_status = {}
  for _, t in ipairs(threads) do
    for code, count in pairs(t:get("statuses")) do
      by_status[code] = (by_status[code] or 0) + count
    end
  end
  local parts = {}
  for code, count in pairs(by_status) do
    table.insert(parts, string.format('"%d":%d', code, count))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,' ..
    '"statuses":{%s},"socket_errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), latency.max, table.concat(parts, ","),
    e.connect + e.read + e.write + e.timeout))
end
