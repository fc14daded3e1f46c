//! Issuing from a sharded event: a walk over its buckets, safe without any lock across them.
//!
//! Every key of one bucket shares one hash slot, so one bucket runs no faster than one Redis
//! core. An event created with `shards: N` splits each day's stock over N buckets, each under
//! its own hash tag (see `keys`), each holding its share of the daily limit (`Shards::share`,
//! the shares add up to the limit exactly). Each bucket is exactly an unsharded event of its
//! own: the same settings, windows, day count, day users and stream, the same script.
//!
//! A user's request tries the buckets in a fixed order: their home bucket `h` (a stable hash of
//! the user id, mod N), then `h + 1`, ..., `h + N - 1` (mod N), running the unchanged issue
//! script in each until one answers something other than sold out:
//!
//! - `issued` -> 201; `already_issued` -> 409 with the coupon the user holds (in that bucket);
//! - `sold_out` -> the next bucket; when every bucket is sold out, the day is sold out;
//! - `not_open`, `closed` -> that answer; `missing` -> that bucket's state is republished (503).
//!
//! **Why no user is issued twice and the total never passes the limit.** Within one day:
//!
//! 1. A bucket never passes its share: its script checks its count against it atomically, as
//!    an unsharded event does. The shares add up to the limit, so the total never passes it.
//! 2. A bucket seen dry stays dry: its count only rises, and its share never rises (a limit
//!    raise is refused on a sharded event; a lowered limit lowers or keeps every share).
//! 3. The script checks "does this user hold a coupon here" before "is this bucket sold out".
//! 4. Every walk of one user visits the buckets in the same order, and a walk is about one day:
//!    the first sold-out answer names the day, and later buckets are asked about that day only
//!    (the script's ARGV[5]); a bucket already on another day answers `closed` or `not_open`.
//!
//! Suppose a user were issued two coupons on one day, in bucket `j` by walk A and in bucket `k`
//! by walk B, `j` before `k` in the user's order. Walk B reached `k`, so it found `j` sold out
//! for that day, at some moment `t`. If A's issue in `j` came before `t`, the user held a coupon
//! in `j` at `t` and `j` would have answered `already_issued` (3). If it came after, `j` was dry
//! at `t` and stayed dry (2), so it could not issue. Either way, a contradiction.
//!
//! Remembered sold-out answers (`sold_out`) are kept per bucket: a bucket remembered dry, whose
//! holders do not include the user, is passed over without a Redis call, so the storm after a
//! sell-out costs N memory lookups per request and no round trip.
//!
//! **What becomes approximate.** Strict arrival order across buckets: near the end of the day's
//! stock, a user still walking through dry buckets can find the last coupon taken by someone who
//! arrived after them, in a bucket they had not reached yet. (Unsharded, the first `limit`
//! requests to reach Redis win.) `seq` numbers the coupons of one bucket, 1 to its share, so it
//! is unique per (day, bucket), not per day. Each bucket checks the window by its own node's
//! clock, so on a cluster the buckets may open and close a few milliseconds apart.
//!
//! An unsharded event is the walk with N = 1: one bucket, bucket 0, today's keys and script call.

use chrono::NaiveDate;

use super::{IssueOutcome, Issuer, RedisFailure};
use crate::domain::{Bucket, EventId, Shards, UserId};

impl Issuer {
    /// Issues `user` today's coupon of `event`, walking its buckets (see the module comment).
    /// `expected` is the caller's guess of the event day, by its own clock
    /// (`Event::current_day`): the script decides by the Redis clock, and a wrong guess costs a
    /// second call, nothing more.
    pub async fn issue(
        &self,
        event: EventId,
        shards: Shards,
        user: &UserId,
        expected: NaiveDate,
    ) -> Result<IssueOutcome, RedisFailure> {
        let mut day: Option<NaiveDate> = None;
        let mut last = None;
        for shard in shards.walk(user) {
            let outcome = self.issue_in(Bucket { event, shard }, user, day, expected).await?;
            match outcome {
                IssueOutcome::SoldOut { day: dry, .. } => {
                    day = Some(dry);
                    last = Some(outcome);
                }
                other => return Ok(other),
            }
        }
        // Every bucket was asked (N >= 1), and each said sold out.
        Ok(last.unwrap_or(IssueOutcome::Missing))
    }
}
