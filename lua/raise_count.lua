--[[ raise_count.lua: raise a day's count to a target, never lower it, never past the limit.

Used by `coupon-issuer reconcile --repair` when a day's count fell below the numbers already
handed out (the count key was lost or reset while its user records survived). It runs while the
service keeps issuing: a plain SET could undo an INCR the issue script made a moment earlier and
hand the same number out twice. In a script, the read and the write are one step.

KEYS[1]: the day's count, string   <prefix>:{<event_id>}:<day>:count
ARGV[1]: the target: the highest number held by anyone that day
ARGV[2]: the event's daily limit

Returns the count after the call, as an integer.
]]

local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local target = math.min(tonumber(ARGV[1]), tonumber(ARGV[2]))
if target > current then
  -- SET drops a TTL; KEEPTTL keeps the expiry the issue script gave the key.
  redis.call('SET', KEYS[1], string.format('%d', target), 'KEEPTTL')
  return target
end
return current
