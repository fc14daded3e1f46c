-- wrk script: every request a new user asking for a coupon of one event.
--
--   EVENT_ID=<uuid> wrk -t2 -c1000 -d10s -s bench/spike.lua http://127.0.0.1:8080
--
-- Prints the answers by status, so a run shows how many were issued, refused or shed.
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  event_id = os.getenv("EVENT_ID")
  if not event_id then error("set EVENT_ID") end
  -- A tag per run, so every run's users are new (RUN=... to choose it).
  run = os.getenv("RUN") or tostring(os.time())
  n = 0
  statuses = {}
end

function request()
  n = n + 1
  local body = string.format('{"event_id":"%s","user_id":"wrk-%s-%d-%d"}', event_id, run, tid, n)
  return wrk.format("POST", "/v1/coupon/issue", { ["Content-Type"] = "application/json" }, body)
end

function response(status)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for code, count in pairs(s) do total[code] = (total[code] or 0) + count end
  end
  for code, count in pairs(total) do io.write(string.format("status %d: %d\n", code, count)) end
end
