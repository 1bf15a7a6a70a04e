//! Placement properties on random topologies, checked against a literal
//! transcription of Cassandra's NTS walk, plus hand-built walk cases.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::placement::{DcPlan, Walk};
use super::*;
use crate::topology::{Datacenter, KeyspaceSpec, NodeDefaults, NodeSpec, Rack};

/// A topology from `dcs[d][r] = vnodes of each node in rack r of dc d`,
/// with keyspace `ks` replicating `rfs[d]` in dc `d`. Ids are `d{d}-r{r}-n{n}`.
pub(crate) fn build_topology(dcs: &[Vec<Vec<u32>>], keyspaces: &[(&str, Vec<u32>)]) -> Topology {
    let datacenters = dcs
        .iter()
        .enumerate()
        .map(|(d, racks)| Datacenter {
            name: format!("dc{d}"),
            racks: racks
                .iter()
                .enumerate()
                .map(|(r, nodes)| Rack {
                    name: format!("r{r}"),
                    nodes: nodes
                        .iter()
                        .enumerate()
                        .map(|(n, &v)| {
                            let ip = format!("10.{d}.{r}.{n}");
                            NodeSpec {
                                id: format!("d{d}-r{r}-n{n}"),
                                client_address: format!("{ip}:7070").parse().unwrap(),
                                peer_address: format!("{ip}:7071").parse().unwrap(),
                                admin_address: None,
                                weight: None,
                                vnodes: Some(v),
                            }
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect();
    let keyspaces = keyspaces
        .iter()
        .map(|(name, rfs)| {
            let replication = rfs
                .iter()
                .enumerate()
                .map(|(d, &rf)| (format!("dc{d}"), rf))
                .collect();
            (name.to_string(), KeyspaceSpec { replication })
        })
        .collect();
    Topology {
        cluster_name: "prop".into(),
        defaults: NodeDefaults::default(),
        datacenters,
        keyspaces,
        source: "<test>".into(),
    }
}

/// Cassandra 3.0 `NetworkTopologyStrategy.calculateNaturalEndpoints`, line by
/// line, with its ordered sets (`LinkedHashSet`) as de-duplicating vectors.
fn reference(ring: &Ring, ks: &str, token: Token) -> Vec<(String, Vec<NodeIdx>)> {
    let spec = &ring.topology.keyspaces[ks];
    let dcs: Vec<&str> = ring
        .topology
        .datacenters
        .iter()
        .map(|d| d.name.as_str())
        .filter(|d| spec.replication.get(*d).copied().unwrap_or(0) > 0)
        .collect();
    let node = |i: NodeIdx| &ring.nodes[i.0 as usize];
    let all_endpoints = |dc: &str| {
        ring.owners
            .iter()
            .filter(|&&o| node(o).dc == dc)
            .collect::<BTreeSet<_>>()
            .len()
    };
    let racks = |dc: &str| {
        ring.owners
            .iter()
            .filter(|&&o| node(o).dc == dc)
            .map(|&o| &node(o).rack)
            .collect::<BTreeSet<_>>()
            .len()
    };
    let mut replicas: BTreeMap<&str, Vec<NodeIdx>> = dcs.iter().map(|&d| (d, vec![])).collect();
    let mut seen_racks: BTreeMap<&str, BTreeSet<&str>> =
        dcs.iter().map(|&d| (d, BTreeSet::new())).collect();
    let mut skipped: BTreeMap<&str, Vec<NodeIdx>> = dcs.iter().map(|&d| (d, vec![])).collect();
    let add = |v: &mut Vec<NodeIdx>, n: NodeIdx| {
        if !v.contains(&n) {
            v.push(n)
        }
    };
    let sufficient = |replicas: &BTreeMap<&str, Vec<NodeIdx>>, dc: &str| {
        replicas[dc].len() >= all_endpoints(dc).min(spec.replication[dc] as usize)
    };
    let n = ring.tokens.len();
    let start = ring.tokens.iter().position(|&t| t >= token).unwrap_or(0);
    for step in 0..n {
        if dcs.iter().all(|dc| sufficient(&replicas, dc)) {
            break;
        }
        let ep = ring.owners[(start + step) % n];
        let dc = node(ep).dc.as_str();
        if !dcs.contains(&dc) || sufficient(&replicas, dc) {
            continue;
        }
        if seen_racks[dc].len() == racks(dc) {
            add(replicas.get_mut(dc).unwrap(), ep);
        } else {
            let rack = node(ep).rack.as_str();
            if seen_racks[dc].contains(rack) {
                add(skipped.get_mut(dc).unwrap(), ep);
            } else {
                add(replicas.get_mut(dc).unwrap(), ep);
                seen_racks.get_mut(dc).unwrap().insert(rack);
                if seen_racks[dc].len() == racks(dc) {
                    for s in skipped[dc].clone() {
                        if sufficient(&replicas, dc) {
                            break;
                        }
                        add(replicas.get_mut(dc).unwrap(), s);
                    }
                }
            }
        }
    }
    dcs.iter()
        .map(|&d| (d.to_string(), replicas[d].clone()))
        .collect()
}

/// Per DC: node count 1–6 over 1–4 racks (every rack non-empty), vnodes 1–12.
fn arb_dc() -> impl Strategy<Value = Vec<Vec<u32>>> {
    (1..=4usize, 1..=6usize)
        .prop_flat_map(|(r, n)| {
            (
                Just(r.min(n)),
                prop::collection::vec((0..4usize, 1..=12u32), n),
            )
        })
        .prop_map(|(racks, nodes)| {
            let mut out = vec![Vec::new(); racks];
            for (j, (pick, vnodes)) in nodes.into_iter().enumerate() {
                out[if j < racks { j } else { pick % racks }].push(vnodes);
            }
            out
        })
}

pub(super) fn arb_case() -> impl Strategy<Value = (Vec<Vec<Vec<u32>>>, Vec<u32>, Vec<u64>)> {
    prop::collection::vec(arb_dc(), 1..=3).prop_flat_map(|dcs| {
        let n = dcs.len();
        (
            Just(dcs),
            prop::collection::vec(0..=7u32, n),
            prop::collection::vec(any::<u64>(), 16),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn placement_is_nts(case in arb_case()) {
        let (dcs, rfs, tokens) = case;
        let topo = build_topology(&dcs, &[("ks", rfs.clone())]);
        let sizes: Vec<usize> = dcs.iter().map(|r| r.iter().map(Vec::len).sum()).collect();
        if rfs.iter().zip(&sizes).all(|(&rf, &n)| rf as usize <= n) && rfs.iter().any(|&rf| rf > 0) {
            prop_assert!(topo.validate().is_ok(), "{:?}", topo.validate());
        }
        let ring = Ring::new(&topo);
        let probes = tokens.iter().copied().chain(ring.tokens.iter().flat_map(|&t| [t, t.wrapping_add(1)]));
        for t in probes {
            let set = ring.replicas_for_token("ks", t).unwrap();
            let i = ring.tokens.iter().position(|&x| x >= t).unwrap_or(0);
            prop_assert_eq!(set.token_range_end, ring.tokens[i]);
            let got: Vec<(String, Vec<NodeIdx>)> = set.per_dc.iter().map(|d| (d.dc.clone(), d.nodes.clone())).collect();
            prop_assert_eq!(&got, &reference(&ring, "ks", t), "token {:#x}", t);
            for (d, racks) in dcs.iter().enumerate() {
                let rf = rfs[d] as usize;
                let dc = format!("dc{d}");
                let nodes = set.in_dc(&dc);
                prop_assert_eq!(nodes.len(), rf.min(sizes[d]));
                prop_assert_eq!(nodes.iter().collect::<BTreeSet<_>>().len(), nodes.len());
                prop_assert!(nodes.iter().all(|&n| ring.node(n).dc == dc));
                let used: BTreeSet<&str> = nodes.iter().map(|&n| ring.node(n).rack.as_str()).collect();
                prop_assert_eq!(used.len(), rf.min(racks.len()));
            }
            prop_assert_eq!(set.len(), set.all().count());
        }
    }

    #[test]
    fn ranges_of_agrees_with_replicas(case in arb_case()) {
        let (dcs, mut rfs, tokens) = case;
        rfs[0] = rfs[0].max(1);
        let ring = Ring::new(&build_topology(&dcs, &[("ks", rfs)]));
        for node in ring.nodes() {
            let ranges = ring.ranges_of("ks", node.idx).unwrap();
            for w in ranges.windows(2) {
                prop_assert!(w[0].end < w[1].end, "unsorted {:?}", ranges);
                prop_assert_ne!(w[0].end, w[1].start, "unmerged {:?}", ranges);
            }
            let probes = tokens.iter().copied().chain(ring.tokens.iter().flat_map(|&t| [t, t.wrapping_add(1)]));
            for t in probes {
                let owns = ring.replicas_for_token("ks", t).unwrap().contains(node.idx);
                prop_assert_eq!(ranges.iter().any(|r| r.contains(t)), owns, "node {} token {:#x}", node.id, t);
            }
        }
    }
}

fn walk(owners: &[u32], racks: &[usize], plans: &[DcPlan]) -> Vec<Vec<u32>> {
    let owners: Vec<NodeIdx> = owners.iter().map(|&o| NodeIdx(o)).collect();
    let plan_of_node = vec![Some(0); racks.len()];
    let w = Walk {
        owners: &owners,
        plan_of_node: &plan_of_node,
        rack_of_node: racks,
    };
    (0..owners.len())
        .map(|s| w.place(s, plans)[0].nodes.iter().map(|n| n.0).collect())
        .collect()
}

#[test]
fn skipped_nodes_are_taken_in_skip_order_once_all_racks_have_one() {
    // Nodes 0,1,2 in rack 0; node 3 in rack 1. Ring order: 0 1 2 3.
    let plan = |rf| {
        vec![DcPlan {
            name: "dc".into(),
            rf,
            target: rf as usize,
            racks: 2,
        }]
    };
    let racks = [0, 0, 0, 1];
    let got = walk(&[0, 1, 2, 3], &racks, &plan(3));
    // From 0: 0 taken, 1 and 2 skipped, 3 completes the racks, then 1 (skipped first).
    assert_eq!(got[0], [0, 3, 1]);
    // From 3: 3, then 0 (new rack), then racks are full and 1 is next on the walk.
    assert_eq!(got[3], [3, 0, 1]);
    // rf 2 from 1: 1, skip 2, 3 -> [1, 3]; the skipped 2 is never needed.
    assert_eq!(walk(&[0, 1, 2, 3], &racks, &plan(2))[1], [1, 3]);
    // A node seen twice (two vnodes) is taken once.
    assert_eq!(walk(&[0, 0, 1, 3], &racks, &plan(3))[0], [0, 3, 1]);
}

#[test]
fn unknown_keyspace_and_empty_ring() {
    let ring = Ring::new(&build_topology(&[vec![vec![4]]], &[("ks", vec![1])]));
    assert_eq!(
        ring.replicas("nope", b"k"),
        Err(RingError::UnknownKeyspace("nope".into()))
    );
    assert_eq!(
        ring.ranges_of("ks", NodeIdx(0)).unwrap(),
        [TokenRange::new(ring.tokens[3], ring.tokens[3])]
    );
    let empty = Ring::new(&build_topology(&[vec![vec![0]]], &[("ks", vec![1])]));
    assert_eq!(empty.replicas("ks", b"k"), Err(RingError::Empty));
    assert_eq!(
        RingError::UnknownKeyspace("x".into()).to_string(),
        "unknown keyspace 'x'"
    );
}

#[test]
fn dev_ring_places_three_per_dc_on_distinct_racks() {
    let ring = Ring::new(&Topology::dev());
    assert_eq!(ring.range_count(), 6 * 256);
    for key in [&b"alpha"[..], b"beta", b"", b"\xff\xff"] {
        let set = ring.replicas("default", key).unwrap();
        assert_eq!(set.len(), 6);
        assert_eq!(
            set.per_dc.iter().map(|d| d.dc.as_str()).collect::<Vec<_>>(),
            ["dc1", "dc2"]
        );
        let only = ring.replicas("dc1_only", key).unwrap();
        assert_eq!(only.len(), 2);
        assert!(only.in_dc("dc2").is_empty());
        let racks: BTreeSet<_> = only.all().map(|n| &ring.node(n).rack).collect();
        assert_eq!(racks.len(), 2);
    }
    assert_eq!(ring.node_by_id("dc2-n3").unwrap().idx, NodeIdx(5));
    assert!(ring.node_by_id("nope").is_none());
}
