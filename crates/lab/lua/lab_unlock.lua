--[[ lab_unlock.lua: release the strategy lab's `redis-lock` lock, only if it is still ours.

A plain DEL could delete another holder's lock: ours may have expired (we were slower than its
TTL) and been taken by someone else. Comparing the token and deleting in one script closes that
gap (the "safe release" of the Redis SET NX pattern).

KEYS[1]: the lock, string   <prefix>:lab:{<coupon_id>}:lock
ARGV[1]: our token (a fresh UUID per acquisition)

Returns 1 if our lock was released, 0 if it was no longer ours (expired, maybe taken).
]]

if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
