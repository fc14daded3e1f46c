//! Sharded events: a day's stock split over N buckets, each in its own Redis hash slot.
//!
//! Only the arithmetic lives here: how many buckets, which share of the limit each holds, and
//! which bucket is a user's home. Why splitting is safe is argued where the buckets are walked
//! (`issuing::walk`).

use serde::Serialize;
use xxhash_rust::xxh3::xxh3_64;

use super::ids::{EventId, UserId};

/// The most buckets an event may have: far past the cores of any cluster we would run on, and
/// few enough that a walk over every bucket stays short.
pub const MAX_SHARDS: u16 = 64;

/// How many buckets an event's daily stock is split over: from 1 (unsharded, the default) to
/// [`MAX_SHARDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Shards(u16);

impl Shards {
    /// Unsharded: one bucket, today's keys.
    pub const ONE: Shards = Shards(1);

    pub fn parse(n: i64) -> Result<Self, String> {
        match u16::try_from(n) {
            Ok(n) if (1..=MAX_SHARDS).contains(&n) => Ok(Self(n)),
            _ => Err(format!("must be from 1 to {MAX_SHARDS}")),
        }
    }

    pub fn get(self) -> u16 {
        self.0
    }

    pub fn is_sharded(self) -> bool {
        self.0 > 1
    }

    /// Every bucket of `event`, bucket 0 first.
    pub fn buckets(self, event: EventId) -> impl Iterator<Item = Bucket> {
        (0..self.0).map(move |shard| Bucket { event, shard })
    }

    /// Bucket `shard`'s share of a daily limit: `limit / N`, plus one for the first
    /// `limit % N` buckets, so the shares add up to the limit exactly.
    ///
    /// Monotone in `limit`: a lower limit never gives any bucket a larger share, which is what
    /// lets a limit be lowered on a sharded event without breaking "a dry bucket stays dry".
    pub fn share(self, limit: u32, shard: u16) -> u32 {
        let n = u32::from(self.0);
        limit / n + u32::from(u32::from(shard) < limit % n)
    }

    /// The user's home bucket: a hash of the user id that every process and every release
    /// computes alike (xxh3), modulo N.
    pub fn home(self, user: &UserId) -> u16 {
        (xxh3_64(user.as_str().as_bytes()) % u64::from(self.0)) as u16
    }

    /// The order in which a user's requests try the buckets: home, home + 1, ..., wrapping
    /// around. The same order on every request of that user.
    pub fn walk(self, user: &UserId) -> impl Iterator<Item = u16> {
        let (home, n) = (self.home(user), self.0);
        (0..n).map(move |i| (home + i) % n)
    }

    /// Whether a user served by bucket `served` had found bucket `shard` dry on the way: `shard`
    /// comes before `served` in the user's walk. A bucket seen dry stays dry for that day, so a
    /// lost bucket with such a user is rebuilt dry (see `restore`).
    pub fn walked_past(self, user: &UserId, shard: u16, served: u16) -> bool {
        let (home, n) = (self.home(user), self.0);
        let steps = |to: u16| (to + n - home) % n;
        shard < n && served < n && steps(shard) < steps(served)
    }
}

impl Default for Shards {
    fn default() -> Self {
        Self::ONE
    }
}

/// One bucket of one event: the unit the issue script, the stream and the writer work on.
/// Bucket 0 of any event is that event's unsharded keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bucket {
    pub event: EventId,
    /// 0 to N - 1.
    pub shard: u16,
}

/// An event id alone means its bucket 0: every unsharded event, and the first bucket of a
/// sharded one.
impl From<EventId> for Bucket {
    fn from(event: EventId) -> Self {
        Self { event, shard: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walked_past_means_earlier_in_the_users_walk() {
        let shards = Shards::parse(4).unwrap();
        for i in 0..50 {
            let user = UserId::parse(&format!("u{i}")).unwrap();
            let walk: Vec<u16> = shards.walk(&user).collect();
            for (a, &earlier) in walk.iter().enumerate() {
                for (b, &later) in walk.iter().enumerate() {
                    assert_eq!(shards.walked_past(&user, earlier, later), a < b, "{user:?} {walk:?}");
                }
            }
            assert!(!shards.walked_past(&user, 4, walk[3]), "no bucket 4 of 4");
        }
        let user = UserId::parse("anyone").unwrap();
        assert!(!Shards::ONE.walked_past(&user, 0, 0), "unsharded: nothing to walk past");
    }

    #[test]
    fn parses_one_to_sixty_four() {
        assert_eq!(Shards::parse(1), Ok(Shards::ONE));
        assert_eq!(Shards::parse(64).map(Shards::get), Ok(64));
        for bad in [0, -1, 65, i64::from(u16::MAX) + 1] {
            assert!(Shards::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shares_add_up_to_the_limit_and_differ_by_at_most_one() {
        for n in [1, 2, 3, 4, 7, 16, 64] {
            let shards = Shards::parse(n).unwrap();
            for limit in [64, 100, 1000, 1003, 99_999, 100_000_000] {
                let shares: Vec<u32> = (0..shards.get()).map(|b| shards.share(limit, b)).collect();
                assert_eq!(shares.iter().sum::<u32>(), limit, "n={n} limit={limit}");
                let (lo, hi) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
                assert!(hi - lo <= 1, "n={n} limit={limit}: {shares:?}");
            }
        }
        let four = Shards::parse(4).unwrap();
        assert_eq!(
            (0..4).map(|b| four.share(1003, b)).collect::<Vec<_>>(),
            [251, 251, 251, 250]
        );
    }

    #[test]
    fn a_lower_limit_never_raises_a_share() {
        for n in 1..=MAX_SHARDS {
            let shards = Shards(n);
            for limit in 1..300 {
                for b in 0..n {
                    assert!(
                        shards.share(limit - 1, b) <= shards.share(limit, b),
                        "n={n} {limit} {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_home_bucket_is_stable() {
        // Fixed values: a change here moves every user of a live sharded event to another home,
        // which is safe (the walk visits every bucket) but must never happen by accident.
        let sixteen = Shards::parse(16).unwrap();
        let homes: Vec<u16> = ["alice", "bob", "u-0", "u-1"]
            .iter()
            .map(|u| sixteen.home(&UserId::parse(u).unwrap()))
            .collect();
        assert_eq!(homes, HOMES);
        assert_eq!(Shards::ONE.home(&UserId::parse("alice").unwrap()), 0);
    }

    const HOMES: [u16; 4] = [0, 5, 0, 0];

    #[test]
    fn the_walk_visits_every_bucket_once_from_home() {
        let shards = Shards::parse(5).unwrap();
        let user = UserId::parse("carol").unwrap();
        let walk: Vec<u16> = shards.walk(&user).collect();
        assert_eq!(walk[0], shards.home(&user));
        let mut sorted = walk.clone();
        sorted.sort();
        assert_eq!(sorted, [0, 1, 2, 3, 4]);
        assert!(walk.windows(2).all(|w| w[1] == (w[0] + 1) % 5));
    }

    #[test]
    fn homes_spread_over_the_buckets() {
        let shards = Shards::parse(16).unwrap();
        let mut per_bucket = [0u32; 16];
        for i in 0..16_000 {
            per_bucket[usize::from(shards.home(&UserId::parse(&format!("u-{i}")).unwrap()))] += 1;
        }
        assert!(per_bucket.iter().all(|&n| (800..1200).contains(&n)), "{per_bucket:?}");
    }
}
