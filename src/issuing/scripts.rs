//! Every Lua script of the service (`lua/*.lua`, not the lab's), embedded at build time and
//! hashed once per process, in one place. Each has the `KEYS`/`ARGV`/`Returns` header its call
//! here follows; redis-rs calls a script by SHA and loads it after `NOSCRIPT` (a restarted or
//! flushed server, a newly promoted replica).
//!
//! The issue script is called on the hot path by `Issuer::run_script`, which writes its
//! `EVALSHA` by hand (see there); the others are called through the functions below, so a
//! script's argument order is written down once.

use std::sync::LazyLock;

use redis::Script;
use redis::aio::ConnectionLike;

/// `lua/issue.lua`: checks the window by the Redis clock, the user and the daily limit, counts
/// the issue and appends it to the stream, in one atomic step (see `Issuer::run_script`).
pub static ISSUE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../../lua/issue.lua")));

/// How many of the issue script's arguments are `KEYS` (see the header of `lua/issue.lua`).
pub const ISSUE_KEYS: usize = 5;

static SET_LIMIT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../../lua/set_limit.lua")));
static SET_SHARE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../../lua/set_share.lua")));
static RAISE_COUNT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../../lua/raise_count.lua")));
static ANNOUNCE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("../../lua/announce.lua")));

/// `lua/set_limit.lua`: writes an event's limit unless Redis holds a newer `revision`;
/// `valid_until_ms` creates the settings when they are missing (publishing), `end_fence` closes
/// a fence. Returns the limit in force after the call, -1 when there are no settings.
pub async fn set_limit(
    conn: &mut impl ConnectionLike,
    settings_key: &str,
    limit: u32,
    revision: i64,
    valid_until_ms: Option<i64>,
    end_fence: bool,
) -> redis::RedisResult<i64> {
    SET_LIMIT
        .key(settings_key)
        .arg(limit)
        .arg(revision)
        .arg(valid_until_ms.map_or(String::new(), |ms| ms.to_string()))
        .arg(if end_fence { "1" } else { "" })
        .invoke_async(conn)
        .await
}

/// `lua/set_share.lua`: writes a bucket's share, never raising it; `valid_until_ms` creates the
/// settings when they are missing. Returns the share in force after the call, -1 when there are
/// no settings.
pub async fn set_share(
    conn: &mut impl ConnectionLike,
    settings_key: &str,
    share: u32,
    valid_until_ms: Option<i64>,
) -> redis::RedisResult<i64> {
    SET_SHARE
        .key(settings_key)
        .arg(share)
        .arg(valid_until_ms.map_or(String::new(), |ms| ms.to_string()))
        .invoke_async(conn)
        .await
}

/// `lua/raise_count.lua`: raises a day's count to `target` (at most `cap`), never lowers it;
/// `expire_at_ms` sets its expiry, `None` keeps it. Returns the count after the call.
pub async fn raise_count(
    conn: &mut impl ConnectionLike,
    count_key: &str,
    target: u64,
    cap: Option<u32>,
    expire_at_ms: Option<i64>,
) -> redis::RedisResult<u64> {
    RAISE_COUNT
        .key(count_key)
        .arg(target)
        .arg(cap.map_or(String::new(), |cap| cap.to_string()))
        .arg(expire_at_ms.map_or(String::new(), |ms| ms.to_string()))
        .invoke_async(conn)
        .await
}

/// `lua/announce.lua`: publishes `event_id` on the new-events channel through a call routed by
/// the channel's name, so that on a cluster it goes to one known primary. Returns how many
/// subscribers on that node received it.
pub async fn announce(conn: &mut impl ConnectionLike, channel: &str, event_id: &str) -> redis::RedisResult<i64> {
    ANNOUNCE.key(channel).arg(event_id).invoke_async(conn).await
}
