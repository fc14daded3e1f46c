--[[ raise_count.lua: raise a day's count to a target, never lower it (optionally never past a cap).

A day's count is the last number handed out. Two callers need to set it while the service may
be issuing, where a plain SET could undo an INCR the issue script made a moment earlier and hand
the same number out twice:

- restore (src/restore.rs): after Redis lost its memory every instance may rebuild the same day
  at the same moment; the first to finish publishes the event and issuing resumes, so a slower
  rebuild must never move the counter back.
- `coupon-issuer reconcile --repair` (src/reconcile/repair.rs): a count that fell below the
  numbers already held, raised to the highest one, never past the daily limit.

In a script the read and the write are one step.

KEYS[1]: the day's count, string   <prefix>:{<event_id>}:<day>:count
ARGV[1]: the target: the highest number held by anyone that day
ARGV[2]: a cap (the daily limit), or "" for none
ARGV[3]: when the key expires, ms since the epoch, or "" to keep its expiry

Returns the count after the call, as an integer.
]]

local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local target = tonumber(ARGV[1])
if ARGV[2] ~= '' then
  target = math.min(target, tonumber(ARGV[2]))
end
if target > current then
  -- KEEPTTL: SET would otherwise drop the expiry the issue script gave the key.
  redis.call('SET', KEYS[1], string.format('%d', target), 'KEEPTTL')
  current = target
end
if ARGV[3] ~= '' then
  redis.call('PEXPIREAT', KEYS[1], ARGV[3])
end
return current
