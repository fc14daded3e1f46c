--[[ raise_count.lua: set a day's count to a rebuilt value, but never lower it.

When Redis has lost its memory, every instance of the service may rebuild an event's day state
from Postgres at the same moment. The first to finish publishes the event and issuing resumes,
counting up from the rebuilt value; a slower instance that then wrote its own (older) rebuilt
count with SET would move the counter back and hand the same numbers out twice. Raising it only,
in one atomic step, makes every rebuild safe whatever the others are doing.

KEYS[1]: the day's count      <prefix>:{<event_id>}:<day>:count
ARGV[1]: the rebuilt count (the highest seq seen in Postgres and the stream)
ARGV[2]: when the key expires, ms since the epoch (as the issue script sets it)

Returns: the count now held.
]]

local held = tonumber(redis.call('GET', KEYS[1]) or '0')
local rebuilt = tonumber(ARGV[1])
if rebuilt > held then
  redis.call('SET', KEYS[1], ARGV[1])
  held = rebuilt
end
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return held
