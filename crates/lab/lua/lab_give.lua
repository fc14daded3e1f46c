--[[ lab_give.lua: the strategy lab's `redis-lua` strategy (src/redis_store.rs).

The production script's core (the service's lua/issue.lua steps 4-6: the user, the limit, the
write) reduced to the lab's rule -- a coupon with N units, at most one per user -- without
windows or a stream, so that it is compared with the other strategies on the same rule. Redis
runs a script without interleaving any other command, so the check and the write cannot be split
by a race.

KEYS[1]: units left, string         <prefix>:lab:{<coupon_id>}:quantity  (set by the lab's reset)
KEYS[2]: holders, hash               <prefix>:lab:{<coupon_id>}:users     user id -> claim number
ARGV[1]: user id (validated by the service)

Returns a string: 'issued', 'already_issued', 'sold_out', or 'not_found' (no such lab coupon:
never set up, or its keys have expired).
]]

-- 1. The coupon must exist: a missing counter is not "zero left", it is "unknown".
local left = tonumber(redis.call('GET', KEYS[1]))
if not left then
  return 'not_found'
end

-- 2. A holder gets "already issued", whatever is left.
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  return 'already_issued'
end

-- 3. The count.
if left < 1 then
  return 'sold_out'
end

-- 4. Take a unit and record the holder with their number.
redis.call('DECR', KEYS[1])
local claims = redis.call('HLEN', KEYS[2]) + 1
redis.call('HSET', KEYS[2], ARGV[1], claims)

-- 5. The holders' hash expires with the counter (the reset gave the counter its lifetime).
if claims == 1 then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then
    redis.call('PEXPIRE', KEYS[2], ttl)
  end
end

return 'issued'
