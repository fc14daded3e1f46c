//! Where a sharded event's buckets land among Redis Cluster's 16,384 hash slots.
//!
//! A bucket's slot decides which primary runs its scripts. Tags made of the event id and the
//! bucket number (`{<event>:<b>}`) fall on slots at random, and at N = 4 over three primaries
//! one primary often got none, and at N = 16 the spread was as bad as 9/3/4. So bucket `b >= 1`
//! is placed instead: at bucket 0's slot (the event's own tag, unchanged) plus a fraction of the
//! ring given by `b`'s bits reversed (the van der Corput sequence: 1/2, 1/4, 3/4, 1/8, 5/8, ...).
//! The first N buckets then sit evenly around the ring for any N that is a power of two, and
//! never more than twice as close as even for any other N. A cluster splits the slots into
//! contiguous ranges, equal ones when made by `redis-cli --cluster create`, so evenly spread
//! slots mean buckets spread evenly over the primaries: 2/1/1 at N = 4, 6/5/5 at N = 16.
//!
//! The tag that hashes to a given slot is looked up in a table of the shortest tags `s<i>` per
//! slot, built once on first use (155,594 CRC16s of short strings: a few milliseconds). The mapping depends
//! only on the event id and the bucket, so every instance and every release computes the same
//! keys; changing it would strand a sharded event's keys, as would changing `Keys`.

use std::sync::LazyLock;

use crc16::{State, XMODEM};

use crate::domain::EventId;

/// The slots of a Redis Cluster.
pub const SLOTS: u16 = 16_384;

/// The slot Redis Cluster gives a hash tag: CRC16 (XMODEM) of it, modulo [`SLOTS`].
pub fn slot_of(tag: &str) -> u16 {
    State::<XMODEM>::calculate(tag.as_bytes()) % SLOTS
}

/// The hash tag (without braces) of bucket `shard` of `event`: the event id for bucket 0, and
/// for the others a tag chosen to land on the bucket's place around the ring.
pub fn bucket_tag(event: EventId, shard: u16) -> String {
    let event = event.to_string();
    if shard == 0 {
        return event;
    }
    let slot = (u32::from(slot_of(&event)) + ring_offset(shard)) % u32::from(SLOTS);
    format!("s{}", TAG_OF_SLOT[slot as usize])
}

/// How far around the ring bucket `shard` sits from bucket 0, in slots: `shard`'s 14 low bits
/// reversed, so 1 -> 8192, 2 -> 4096, 3 -> 12288, 4 -> 2048, ...
fn ring_offset(shard: u16) -> u32 {
    u32::from(shard).reverse_bits() >> (32 - SLOTS.trailing_zeros())
}

/// For each slot, the smallest `i` such that the tag `s<i>` hashes to it.
static TAG_OF_SLOT: LazyLock<Vec<u32>> = LazyLock::new(|| {
    let mut table = vec![u32::MAX; usize::from(SLOTS)];
    let mut missing = usize::from(SLOTS);
    let mut i = 0u32;
    while missing > 0 {
        let slot = usize::from(slot_of(&format!("s{i}")));
        if table[slot] == u32::MAX {
            table[slot] = i;
            missing -= 1;
        }
        i += 1;
    }
    table
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_redis_clusters() {
        // Values from Redis's CLUSTER KEYSLOT.
        assert_eq!(slot_of("foo"), 12182);
        assert_eq!(slot_of("bar"), 5061);
        assert_eq!(slot_of("123456789"), 12739);
    }

    #[test]
    fn bucket_zero_keeps_the_event_id_as_its_tag() {
        let event = EventId::parse("0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e10").unwrap();
        assert_eq!(bucket_tag(event, 0), event.to_string());
    }

    #[test]
    fn each_tag_lands_on_its_place_around_the_ring() {
        for _ in 0..20 {
            let event = EventId::new();
            let first = u32::from(slot_of(&event.to_string()));
            for shard in 1..64 {
                let slot = u32::from(slot_of(&bucket_tag(event, shard)));
                assert_eq!(slot, (first + ring_offset(shard)) % u32::from(SLOTS), "{event} {shard}");
            }
        }
        assert_eq!([1, 2, 3, 4, 5].map(ring_offset), [8192, 4096, 12288, 2048, 10240]);
    }

    /// Three primaries with equal ranges, as `redis-cli --cluster create` makes them: the
    /// buckets of any event spread over them as evenly as N allows.
    #[test]
    fn buckets_spread_evenly_over_three_equal_primaries() {
        let primary = |slot: u16| (u32::from(slot) * 3 / u32::from(SLOTS)) as usize;
        for _ in 0..200 {
            let event = EventId::new();
            for (n, fewest, most) in [(2, 0, 1), (4, 1, 2), (8, 2, 3), (16, 5, 6), (64, 21, 22)] {
                let mut per_primary = [0; 3];
                for shard in 0..n {
                    per_primary[primary(slot_of(&bucket_tag(event, shard)))] += 1;
                }
                let (min, max) = (per_primary.iter().min(), per_primary.iter().max());
                assert!(
                    min >= Some(&fewest) && max <= Some(&most),
                    "N={n}: {per_primary:?} for {event}"
                );
            }
        }
    }
}
