//! The local Redis Cluster the cluster tests stand on (`scripts/cluster`,
//! `crates/test-support/src/cluster.rs`): three primaries with a replica each, every slot served once, and
//! a killed primary replaced by its replica within seconds.

use std::ops::RangeInclusive;
use std::time::Duration;

use crate::instances::OwnCluster;

#[test]
fn a_killed_primary_is_replaced_by_its_replica() {
    let mut cluster = OwnCluster::start();
    assert!(
        cluster.url().starts_with("redis+cluster://127.0.0.1:"),
        "{}",
        cluster.url()
    );
    let nodes = cluster.nodes();
    let primaries: Vec<_> = nodes.iter().filter(|n| n.primary).collect();
    assert_eq!(primaries.len(), 3, "{nodes:?}");
    for primary in &primaries {
        let replicas = nodes.iter().filter(|n| n.replica_of == Some(primary.port)).count();
        assert_eq!(replicas, 1, "replicas of {}: {nodes:?}", primary.port);
    }
    assert_covers_every_slot_once(primaries.iter().flat_map(|n| n.slots.clone()).collect());

    let old = cluster.primary_for_key("{x}");
    let heir = nodes.iter().find(|n| n.replica_of == Some(old)).unwrap().port;
    cluster.kill_primary(old);
    let took = cluster.wait_for_failover(old, Duration::from_secs(30));
    println!("failover of 127.0.0.1:{old} took {} ms", took.as_millis());

    assert_eq!(cluster.primary_for_key("{x}"), heir, "the replica took over");
    let nodes = cluster.nodes();
    assert!(
        nodes.iter().all(|n| n.port != old),
        "the killed node is gone: {nodes:?}"
    );
    assert_covers_every_slot_once(
        nodes
            .iter()
            .filter(|n| n.primary)
            .flat_map(|n| n.slots.clone())
            .collect(),
    );
}

fn assert_covers_every_slot_once(mut ranges: Vec<RangeInclusive<u16>>) {
    ranges.sort_by_key(|r| *r.start());
    let mut next = 0u32;
    for r in &ranges {
        assert_eq!(u32::from(*r.start()), next, "slots in {ranges:?}");
        next = u32::from(*r.end()) + 1;
    }
    assert_eq!(next, 16384, "slots in {ranges:?}");
}
