--[[ set_share.lua: write a sharded bucket's share of the daily limit, never raising it.

A sharded event's walk (src/issuing/walk.rs) is safe because a bucket seen sold out stays sold
out for the rest of the day. So a bucket's share may be lowered, never raised. Lowerings (PATCH)
and publishes (start-up, republish) can run on several instances at once and reach Redis in any
order; taking the smaller of the two shares in one atomic step makes the order irrelevant, and
the share in Redis always the smallest any of them wrote, which is Postgres's (only lowerings
are accepted there).

KEYS[1]: the bucket's settings, hash   <prefix>:{<tag>}:<event_id>:<b>:event (bucket 0: {<event_id>})
ARGV[1]: the share                      daily_limit / N, plus one for the first daily_limit % N
ARGV[2]: valid_until_ms when publishing (the settings are created if missing), or "" to only
         lower the share of published settings (missing settings are left missing)

Returns the share in force after the call, or -1 when there are no settings to lower.
]]

local current = tonumber(redis.call('HGET', KEYS[1], 'daily_limit'))
local share = tonumber(ARGV[1])
if current and current < share then
  share = current
end
if ARGV[2] ~= '' then
  -- daily_limit is written with valid_until_ms in one step: the script reads a bucket as
  -- published once daily_limit exists, and it must never lack valid_until_ms then.
  redis.call('HSET', KEYS[1], 'daily_limit', share, 'valid_until_ms', ARGV[2])
elseif current then
  redis.call('HSET', KEYS[1], 'daily_limit', share)
else
  return -1
end
return share
