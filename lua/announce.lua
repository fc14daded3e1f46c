--[[ announce.lua: tell every instance that a new event exists (PUBLISH), from one known node.

Why a script for one PUBLISH: a plain PUBLISH names no key, so on a Redis Cluster the client may
send it to any node, and redis-rs 1.8.1 then keeps a connection to that node on the connection
every request shares. When that node later dies, the client reconnects to it while every request
waits (redis-rs issue 2092): measured, 84 of 110 requests for buckets on live primaries got 503
with one primary down. A script declares a key, so it runs on the primary of that key's slot,
like every other command here. A cluster forwards a PUBLISH to every node, so subscribers on
any node hear it.

KEYS[1]: the channel's name, used as the key that routes the call   <prefix>:new-events
ARGV[1]: the new event's id

Returns the number of subscribers on the node that received it.
]]

return redis.call('PUBLISH', KEYS[1], ARGV[1])
