--[[ set_limit.lua: write an unsharded event's daily limit, unless a newer one is already there.

Postgres numbers each limit change (events.limit_revision). Copies of the limit reach Redis from
limit changes and from publishes, on any instance, each read from Postgres a moment before, and
a raise only after its fence (src/issuing/publish.rs): they can arrive in any order. Comparing
revisions and writing in one step keeps the newest, so an older copy never brings back a limit
that an admin has since changed.

KEYS[1]: the event's settings, hash   <prefix>:{<event_id>}:event
ARGV[1]: the daily limit
ARGV[2]: its revision (events.limit_revision)
ARGV[3]: valid_until_ms when publishing (the settings are created if missing), or "" to only
         change published settings (missing settings are left missing)
ARGV[4]: "1" to end a fence this call closes (HINCRBY fenced -1), whether or not it writes

Returns the limit in force after the call, or -1 when there are no settings to change.
]]

local current = redis.call('HMGET', KEYS[1], 'daily_limit', 'limit_revision')
if ARGV[4] == '1' then
  redis.call('HINCRBY', KEYS[1], 'fenced', -1)
end
-- Settings written before revisions existed have none: any revision is newer.
local revision = tonumber(current[2]) or -1
if current[1] and tonumber(ARGV[2]) < revision then
  return tonumber(current[1])
end
if ARGV[3] ~= '' then
  -- daily_limit is written with valid_until_ms in one step: the issue script reads an event as
  -- published once daily_limit exists, and it must never lack valid_until_ms then.
  redis.call('HSET', KEYS[1], 'daily_limit', ARGV[1], 'limit_revision', ARGV[2], 'valid_until_ms', ARGV[3])
elseif current[1] then
  redis.call('HSET', KEYS[1], 'daily_limit', ARGV[1], 'limit_revision', ARGV[2])
else
  return -1
end
return tonumber(ARGV[1])
