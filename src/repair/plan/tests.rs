//! Unit tests of `repair::plan`.

use super::*;
use crate::topology::Topology;

fn key(ks: &str, token: u64) -> Vec<u8> {
    let mut k = REPAIR_PREFIX.to_vec();
    k.push(ks.len() as u8);
    k.extend_from_slice(ks.as_bytes());
    k.extend_from_slice(&token.to_be_bytes());
    k
}

#[test]
fn records_parse() {
    let r = Recorded::parse(&key("default", 0xdead_beef), b"node:dc1-n3").unwrap();
    assert_eq!(
        (r.keyspace.as_str(), r.token, r.dest.as_str()),
        ("default", 0xdead_beef, "node:dc1-n3")
    );
    let r = Recorded::parse(&repair_key("default", 7, 99).unwrap(), b"dc:dc2").unwrap();
    assert_eq!((r.keyspace.as_str(), r.token), ("default", 7));
    assert!(Recorded::parse(b"repair/", b"").is_none());
    assert!(Recorded::parse(&key("default", 1)[..10], b"").is_none());
    assert!(Recorded::parse(b"generation", b"").is_none());
}

/// A name of 255 bytes fits a record key's length byte; one of 256 is a
/// typed error, not a key whose length wrapped to 0 (review Low of stop 24).
#[test]
fn a_keyspace_name_over_255_bytes_has_no_record_key() {
    let max = "k".repeat(255);
    let r = Recorded::parse(&repair_key(&max, 7, 1).expect("fits"), b"dc:dc2").unwrap();
    assert_eq!(r.keyspace, max);
    let long = "k".repeat(256);
    assert_eq!(repair_key(&long, 7, 1), Err(KeyspaceTooLong(256)));
}

#[test]
fn dev_ring_every_node_replicates_the_whole_ring() {
    let ring = Ring::new(&Topology::dev());
    for n in ring.nodes() {
        let plan = sweep_plan(&ring, "default", n.idx).unwrap();
        assert_eq!(plan.len(), 1, "{}", n.id);
        assert!(plan[0].range.is_full());
        assert_eq!(plan[0].replicas.len(), 6);
    }
}

#[test]
fn three_dc_plans_cover_exactly_the_replicated_tokens() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/topology/three-dc.yaml");
    let topo = Topology::load(std::path::Path::new(path)).unwrap();
    let ring = Ring::new(&topo);
    for ks in topo.keyspaces.keys() {
        check_plans_cover(&ring, ks);
    }
}

fn check_plans_cover(ring: &Ring, ks: &str) {
    let table = RangeTable::new(ring, ks).unwrap();
    for n in ring.nodes() {
        let plan = sweep_plan(ring, ks, n.idx).unwrap();
        if plan.is_empty() {
            assert!(table.iter().all(|v| !v.replicas.contains(&n.idx)));
            continue;
        }
        // Every vnode range lies in exactly one planned range iff n replicates it,
        // and then with the same replicas.
        for v in table.iter() {
            let holders: Vec<&RangePlan> = plan
                .iter()
                .filter(|p| p.range.contains(v.range.end))
                .collect();
            if v.replicas.contains(&n.idx) {
                assert_eq!(holders.len(), 1, "{} {}", n.id, v.range);
                assert!(same_nodes(&holders[0].replicas, &v.replicas));
                assert!(holders[0].range.contains(v.range.start.wrapping_add(1)));
            } else {
                assert!(holders.is_empty(), "{} {}", n.id, v.range);
            }
        }
        let found = table.find(plan[0].range.end).unwrap().1;
        assert!(found.replicas.contains(&n.idx));
    }
}

#[test]
fn range_table_wraps() {
    let ring = Ring::new(&Topology::dev());
    let t = RangeTable::new(&ring, "default").unwrap();
    let (i, first) = t.find(0).unwrap();
    assert!(first.range.contains(0));
    assert_eq!(i, t.find(u64::MAX).map(|x| x.0).unwrap().min(i));
    assert!(t.find(u64::MAX).unwrap().1.range.contains(u64::MAX));
    for p in t.iter().take(50) {
        assert_eq!(t.find(p.range.end).unwrap().1, p);
        assert_eq!(t.find(p.range.start.wrapping_add(1)).unwrap().1, p);
    }
}

#[test]
fn dense_records_coalesce_into_the_swept_range() {
    let ring = Ring::new(&Topology::dev());
    let me = ring.node_by_id("dc1-n1").unwrap().idx;
    let table = RangeTable::new(&ring, "default").unwrap();
    let sweep = sweep_plan(&ring, "default", me).unwrap();
    let vnodes: Vec<RangePlan> = table.iter().cloned().collect();
    let groups = |n: usize| -> Vec<(RangePlan, Vec<usize>)> {
        vnodes
            .iter()
            .take(n)
            .cloned()
            .zip((0..n).map(|i| vec![i]))
            .collect()
    };
    // One recorded range: repaired alone.
    let one = coalesce(&table, &sweep, groups(1));
    assert_eq!(one, groups(1));
    // A few: still narrow sessions.
    let few = vnodes.len() / COALESCE_FRACTION - 1;
    assert_eq!(coalesce(&table, &sweep, groups(few)).len(), few);
    // Dense: the whole swept range once, with every record.
    let dense = coalesce(&table, &sweep, groups(vnodes.len() / 2));
    assert_eq!(dense.len(), 1);
    assert!(dense[0].0.range.is_full());
    assert_eq!(dense[0].1.len(), vnodes.len() / 2);
}

#[test]
fn pairs_put_local_dc_first_and_targets_last() {
    let ring = Ring::new(&Topology::dev());
    let id = |s: &str| ring.node_by_id(s).unwrap().idx;
    let all: Vec<NodeIdx> = ring.nodes().iter().map(|n| n.idx).collect();
    let p = pairs(&ring, id("dc1-n1"), &all, &[id("dc1-n2")]);
    let order: Vec<&str> = p
        .iter()
        .map(|(a, b)| {
            assert_eq!(*a, Side::Local);
            let Side::Peer(n) = b else { panic!() };
            ring.node(*n).id.as_str()
        })
        .collect();
    assert_eq!(order, ["dc1-n3", "dc2-n1", "dc2-n2", "dc2-n3", "dc1-n2"]);
    // Not a replica: each other replica against the target, or all pairs.
    let some = [id("dc1-n2"), id("dc1-n3"), id("dc2-n1")];
    assert_eq!(
        pairs(&ring, id("dc1-n1"), &some, &[id("dc1-n3")]),
        vec![
            (Side::Peer(id("dc1-n2")), Side::Peer(id("dc1-n3"))),
            (Side::Peer(id("dc2-n1")), Side::Peer(id("dc1-n3")))
        ]
    );
    assert_eq!(pairs(&ring, id("dc1-n1"), &some, &[]).len(), 3);
}

#[test]
fn within_dc_keeps_only_sessions_between_that_datacenters_replicas() {
    let ring = Ring::new(&Topology::dev());
    let id = |s: &str| ring.node_by_id(s).unwrap().idx;
    let all: Vec<NodeIdx> = ring.nodes().iter().map(|n| n.idx).collect();
    let me = id("dc2-n1");
    let kept = within_dc(&ring, me, pairs(&ring, me, &all, &[]), "dc2");
    assert_eq!(
        kept,
        vec![
            (Side::Local, Side::Peer(id("dc2-n2"))),
            (Side::Local, Side::Peer(id("dc2-n3")))
        ]
    );
    // This node is not in dc1: nothing it runs stays within dc1.
    assert!(within_dc(&ring, me, pairs(&ring, me, &all, &[]), "dc1").is_empty());
    // Peer against peer: both sides must be in the datacenter.
    let mixed = vec![
        (Side::Peer(id("dc1-n2")), Side::Peer(id("dc1-n3"))),
        (Side::Peer(id("dc1-n2")), Side::Peer(id("dc2-n3"))),
    ];
    assert_eq!(within_dc(&ring, me, mixed.clone(), "dc1"), mixed[..1]);
}

#[test]
fn targets_from_labels() {
    let ring = Ring::new(&Topology::dev());
    let all: Vec<NodeIdx> = ring.nodes().iter().map(|n| n.idx).collect();
    let rec = |dest: &str| Recorded::parse(&key("default", 1), dest.as_bytes()).unwrap();
    assert_eq!(
        rec("node:dc2-n2").targets(&ring, &all),
        vec![ring.node_by_id("dc2-n2").unwrap().idx]
    );
    assert_eq!(rec("dc:dc2").targets(&ring, &all).len(), 3);
    assert!(rec("node:nope").targets(&ring, &all).is_empty());
    assert!(rec("garbage").targets(&ring, &all).is_empty());
}
