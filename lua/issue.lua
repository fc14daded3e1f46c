--[[ issue.lua: issue one coupon of an event's current daily window, in one atomic step.

Every way a flash sale goes wrong (read the count, then write it; check the user, then record
them; promise the coupon, then lose it before it is stored) is a gap between two steps. Redis runs
a script without interleaving any other command, so here there is no gap: the window, the user,
the limit, the count, the user's record and the stream entry are decided and written together.

KEYS[1]: event settings, hash     <prefix>:{<event_id>}:event
         fields: daily_limit, valid_until_ms, and fenced (present and > 0 while the limit is
         being raised: see src/issuing/sold_out.rs)
KEYS[2]: event windows, sorted set <prefix>:{<event_id>}:windows
         score: the window's close (ms since the epoch)
         member: "<day>|<open_ms>|<close_ms>|<day_start_ms>", day_start_ms = 0 for the first day
KEYS[3]: event stream              <prefix>:{<event_id>}:stream
KEYS[4]: the count of the day the service expects   <prefix>:{<event_id>}:<day>:count
KEYS[5]: the users of the day the service expects   <prefix>:{<event_id>}:<day>:users
         Which day is current is decided here, by the Redis clock, not by the service; if it is
         another day than these keys name, the script changes nothing and answers
         {"other_day", day}, and the service calls again with that day's keys. The day keys are
         declared, not built here alone, because Redis Cluster only checks declared keys: while
         the event's slot migrates to another node, a script sent there (after ASK) with its
         declared keys already moved would read undeclared day keys not yet moved as empty, and
         count the day from zero. Declared, they make Redis answer TRYAGAIN until all have moved.
ARGV[1]: user id (validated by the service: no "|")
ARGV[2]: coupon id for the coupon, if one is issued (a fresh UUID from the service)
ARGV[3]: day key prefix            <prefix>:{<event_id>}:
         a day's keys are <ARGV[3]><day>:count (string) and <ARGV[3]><day>:users (hash);
         KEYS[4] and KEYS[5] must be those of the day decided here
ARGV[4]: how long a day's keys outlive its window, in ms
ARGV[5]: optional: the day this call must be about, "YYYY-MM-DD", or absent/"" for whichever is
         current. A sharded event's walk (src/issuing/walk.rs) passes the day the first bucket
         answered sold out for, so that no bucket issues for another day in the same walk.

For a sharded event these are the keys of one bucket, <prefix>:{<tag>}:<event_id>:<b>:... for b >= 1,
and daily_limit is that bucket's share.

The day keys carry the event's hash tag, so on Redis Cluster they share KEYS[1]'s slot.

Returns an array of strings:
  {"issued",         day, seq, coupon_id, issued_ms, valid_until_ms}
  {"already_issued", day, seq, coupon_id, issued_ms, valid_until_ms}  the coupon held today
  {"sold_out", day, now_ms, close_ms, rememberable}
                 rememberable = "1" when the service may remember until close_ms that the day is
                 sold out, "0" while a limit raise is being fenced
  {"not_open"}   before the event, or before today's window (or before ARGV[5]'s day)
  {"closed"}     after today's window, or after the event (or after ARGV[5]'s day)
  {"missing"}    no settings in Redis: an unknown event, or Redis lost its state
  {"other_day", day}  KEYS[4] and KEYS[5] are not the keys of the day decided; nothing changed
]]

-- 1. The event's settings. Without them nothing can be decided, and guessing could oversell.
local settings = redis.call('HMGET', KEYS[1], 'daily_limit', 'valid_until_ms', 'fenced')
local limit = tonumber(settings[1])
if not limit then
  return {'missing'}
end
local valid_until_ms = settings[2]

-- 2. One clock for every instance of the service: the Redis server's.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local now_ms = string.format('%d', now)

-- 3. The current or next window: the first one that closes after now.
local next_window = redis.call('ZRANGE', KEYS[2], '(' .. now_ms, '+inf', 'BYSCORE', 'LIMIT', 0, 1)[1]
if not next_window then
  return {'closed'}
end
local day, open, close, day_start = string.match(next_window, '^([^|]+)|(%d+)|(%d+)|(%d+)$')
if now < tonumber(open) then
  -- Between windows: once the local date has turned to the next window's day, today's window
  -- has simply not opened yet; before that, we are after yesterday's.
  if now >= tonumber(day_start) then
    return {'not_open'}
  end
  return {'closed'}
end
-- A walk over buckets is about one day: a bucket whose clock (or the time that passed) has put
-- it on another day says that day has not opened, or is over, rather than issue for another day.
-- Day strings are YYYY-MM-DD, so they compare as dates.
local wanted = ARGV[5]
if wanted and wanted ~= '' and day ~= wanted then
  if day < wanted then
    return {'not_open'}
  end
  return {'closed'}
end

-- The day's keys must be the declared ones (see KEYS[4] above).
local count_key = ARGV[3] .. day .. ':count'
local users_key = ARGV[3] .. day .. ':users'
if KEYS[4] ~= count_key or KEYS[5] ~= users_key then
  return {'other_day', day}
end

-- 4. One coupon per user per day: a user who holds one gets it back, whatever the count.
local held = redis.call('HGET', users_key, ARGV[1])
if held then
  local seq, coupon_id, issued_ms = string.match(held, '^(%d+)|([^|]+)|(%d+)$')
  return {'already_issued', day, seq, coupon_id, issued_ms, valid_until_ms}
end

-- 5. The day's limit.
if tonumber(redis.call('GET', count_key) or '0') >= limit then
  -- With the Redis time and the window's close, so the service can answer the storm that
  -- follows without asking again, never past the close; but not while a raise is fenced.
  local fenced = (tonumber(settings[3] or '0') or 1) > 0
  return {'sold_out', day, now_ms, close, fenced and '0' or '1'}
end

-- 6. Issue: count it, record the user with their number, and append the coupon to the stream.
--    The stream entry is written here, not by the service afterwards, so that no coupon can be
--    issued without reaching the stream, and from it Postgres.
local seq = tostring(redis.call('INCR', count_key))
redis.call('HSET', users_key, ARGV[1], seq .. '|' .. ARGV[2] .. '|' .. now_ms)
redis.call('XADD', KEYS[3], '*',
  'coupon_id', ARGV[2], 'user_id', ARGV[1], 'day', day, 'seq', seq,
  'issued_ms', now_ms, 'valid_until_ms', valid_until_ms)

-- 7. The first issue of a day sets when its keys go: some time after the window closes, when
--    nothing can read or change them any more (the writer has long stored the coupons).
if seq == '1' then
  local expire_at = string.format('%d', tonumber(close) + tonumber(ARGV[4]))
  redis.call('PEXPIREAT', count_key, expire_at)
  redis.call('PEXPIREAT', users_key, expire_at)
end

return {'issued', day, seq, ARGV[2], now_ms, valid_until_ms}
