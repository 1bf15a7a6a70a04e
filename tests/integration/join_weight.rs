//! `geokv node --join … --weight 2` with real node processes: the node
//! gets twice the layout's vnodes per weight and, once Normal, holds about
//! twice the keys of each of the others (one datacenter of three nodes at
//! rf 1, where twice the mean is reachable: shares 1/5, 1/5, 1/5, 2/5).
//! Keys are counted per node through the final layout's ring, and the
//! joiner is checked to hold each of its keys.

use crate::common::*;
use std::collections::BTreeMap;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_joined_with_weight_2_holds_about_twice_the_keys_of_the_others() {
    let c = Cluster::start(Spec::one_dc(3, 1)).await;
    let keys = c.preload("dc1-n1", "pre", 2000).await;
    let seed = c.node("dc1-n1").peer_address;
    let extra = ["--dc", "dc1", "--rack", "r4", "--weight", "2"];
    let mut n4 = c.spawn_new_node("dc1-n4", "dc1-n4", c.spare_ip(14), seed, &extra);
    let n1 = c.node("dc1-n1").admin_address;
    let joined = (n4.wait_normal(n1, Duration::from_secs(120), async || {})).await;

    let (_, _, me) = joined.node("dc1-n4").unwrap();
    assert_eq!(me.tokens.len(), 2 * joined.vnodes_per_weight as usize);
    let ring = geokv::ring::Ring::from_layout(&joined);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let info = (joined.member_topology().nodes().into_iter())
        .find(|n| n.id == "dc1-n4")
        .unwrap();
    let replicas = c.replica_reader();
    for k in &keys {
        for &n in ring.replicas("default", k.as_bytes()).unwrap().in_dc("dc1") {
            let id = ring.node(n).id.clone();
            if id == "dc1-n4" {
                let got = replicas.holds(&info, "default", k).await;
                assert_eq!(got, Some(vec![k.clone()]), "dc1-n4 lacks {k}");
            }
            *counts.entry(id).or_default() += 1;
        }
    }
    let heavy = counts["dc1-n4"] as f64;
    let others: Vec<f64> = (counts.iter())
        .filter(|(id, _)| *id != "dc1-n4")
        .map(|(_, n)| *n as f64)
        .collect();
    let ratio = heavy / (others.iter().sum::<f64>() / others.len() as f64);
    eprintln!("keys per node {counts:?}: weight 2 holds {ratio:.2}x the others' mean");
    assert!((1.7..=2.3).contains(&ratio), "{ratio:.2}x: {counts:?}");
}
