//! The membership table on its own: merge rule, restarts, verdicts.

use super::peers;
use crate::membership::{Membership, MembershipConfig, MembershipError, MergeOutcome};
use crate::proto::v1::internode::{GossipDigest, GossipEntry};

/// n00 (dc0) looking at n01 (dc1), n02 (dc0), n03 (dc1).
fn table() -> Membership {
    Membership::new(MembershipConfig::default(), peers(4, 2), "n00", 1_000, 0).unwrap()
}

fn digest(from: &str, entries: &[(&str, u64, u64)]) -> GossipDigest {
    GossipDigest {
        from: from.into(),
        entries: entries
            .iter()
            .map(|&(id, generation, heartbeat)| GossipEntry {
                features: 0,
                not_ready: false,
                node_id: id.into(),
                generation,
                heartbeat,
            })
            .collect(),
        ..GossipDigest::default()
    }
}

#[test]
fn construction_errors_are_typed() {
    let cfg = MembershipConfig::default;
    assert_eq!(
        Membership::new(cfg(), peers(2, 1), "zz", 1, 0).unwrap_err(),
        MembershipError::SelfNotInTopology("zz".into())
    );
    let mut dup = peers(2, 1);
    dup.push(dup[0].clone());
    assert_eq!(
        Membership::new(cfg(), dup, "n00", 1, 0).unwrap_err(),
        MembershipError::DuplicateNode("n00".into())
    );
    assert_eq!(
        Membership::new(cfg(), peers(2, 1), "n00", 0, 0).unwrap_err(),
        MembershipError::ZeroGeneration
    );
    let bad = MembershipConfig { fanout: 0, ..cfg() };
    assert!(matches!(
        Membership::new(bad, peers(2, 1), "n00", 1, 0),
        Err(MembershipError::Config(_))
    ));
}

#[test]
fn digest_merge_keeps_the_max() {
    let mut t = table();
    let out = t.apply_digest(&digest("n01", &[("n01", 5, 10), ("n02", 7, 3)]), 100);
    assert_eq!(out.restarted, 2);
    // Older heartbeat, older generation, and equal values change nothing.
    let out = t.apply_digest(
        &digest("n03", &[("n01", 5, 9), ("n02", 6, 99), ("n01", 5, 10)]),
        200,
    );
    assert_eq!(out, MergeOutcome::default());
    assert_eq!(t.version(1), (5, 10));
    assert_eq!(t.version(2), (7, 3));
    // A newer heartbeat advances; unknown nodes are counted and ignored.
    let out = t.apply_digest(&digest("n03", &[("n01", 5, 12), ("xx", 1, 1)]), 300);
    assert_eq!(out.advanced, 1);
    assert_eq!(out.unknown, 1);
    assert_eq!(t.version(1), (5, 12));

    // Our digest carries ourselves and everyone heard of, in topology order.
    t.tick(400);
    let d = t.digest();
    assert_eq!(d.from, "n00");
    let got: Vec<_> = d
        .entries
        .iter()
        .map(|e| (e.node_id.as_str(), e.generation, e.heartbeat))
        .collect();
    assert_eq!(got, vec![("n00", 1_000, 1), ("n01", 5, 12), ("n02", 7, 3)]);
}

#[test]
fn our_own_entry_is_never_adopted() {
    let mut t = table();
    t.tick(0);
    t.apply_digest(&digest("n01", &[("n00", 9_999, 50)]), 10);
    assert_eq!(t.version(0), (1_000, 1));
    assert!(t.is_up_id("n00", u64::MAX / 2), "we are always up");
}

#[test]
fn never_heard_nodes_are_up_until_the_grace_expires() {
    let mut t = table();
    let cfg = MembershipConfig::default();
    let (local, remote) = (cfg.unknown_grace_ms(true), cfg.unknown_grace_ms(false));
    assert!(t.is_up_id("n02", local - 1) && !t.is_up_id("n02", local + 1));
    assert!(t.is_up_id("n01", remote - 1) && !t.is_up_id("n01", remote + 1));
    let flips = t.evaluate(local + 1);
    let down: Vec<_> = flips
        .iter()
        .filter(|f| !f.up)
        .map(|f| f.node.as_str())
        .collect();
    assert_eq!(down, ["n02"]);
    let flips = t.evaluate(remote + 1);
    let down: Vec<_> = flips
        .iter()
        .filter(|f| !f.up)
        .map(|f| f.node.as_str())
        .collect();
    assert_eq!(down, ["n01", "n03"]);
}

#[test]
fn silence_convicts_and_a_heartbeat_revives() {
    let mut t = table();
    for s in 0..30u64 {
        t.tick(s * 1000);
        t.apply_digest(&digest("n02", &[("n02", 7, s + 1)]), s * 1000);
    }
    let last = 29_000;
    assert!(t.is_up_id("n02", last + 1000));
    // μ ≈ 1 s, φ_local 8 ⇒ down after ≈ 18.4 s of silence.
    assert!(t.is_up_id("n02", last + 18_000));
    assert!(!t.is_up_id("n02", last + 19_000));
    let flips = t.evaluate(last + 19_000);
    assert!(flips.iter().any(|f| f.node == "n02" && !f.up));
    t.apply_digest(&digest("n02", &[("n02", 7, 31)]), last + 20_000);
    assert!(t.is_up_id("n02", last + 20_000));
    let flips = t.evaluate(last + 20_000);
    assert!(flips.iter().any(|f| f.node == "n02" && f.up));
}

#[test]
fn remote_peers_get_the_higher_threshold() {
    let mut t = table();
    for s in 0..30u64 {
        let beat = [("n02", 7, s + 1), ("n03", 7, s + 1)];
        t.apply_digest(&digest("n01", &beat), s * 1000);
    }
    let silent = 29_000 + 20_000; // φ ≈ 8.7
    assert!(!t.is_up_id("n02", silent), "local: 8.7 > 8");
    assert!(t.is_up_id("n03", silent), "remote: 8.7 <= 12");
    assert!(!t.is_up_id("n03", 29_000 + 28_000));
}

#[test]
fn a_restart_comes_back_up_with_a_fresh_detector() {
    let mut t = table();
    for s in 0..10u64 {
        t.apply_digest(&digest("n02", &[("n02", 7, s + 1)]), s * 1000);
    }
    let dead = 9_000 + 60_000;
    assert!(!t.is_up_id("n02", dead));
    t.evaluate(dead);
    // Back with a new generation and a low heartbeat: newer wins.
    let out = t.apply_digest(&digest("n02", &[("n02", 70_000, 1)]), dead);
    assert_eq!(out.restarted, 1);
    assert_eq!(t.version(2), (70_000, 1));
    assert!(t.is_up_id("n02", dead));
    let flips = t.evaluate(dead);
    assert_eq!(flips.len(), 1);
    assert!(flips[0].up);
    let snap = t.snapshot(dead);
    assert_eq!(
        (snap[2].generation, snap[2].heartbeat, snap[2].up),
        (70_000, 1, true)
    );
    assert_eq!(snap[2].phi, 0.0);
}

#[test]
fn our_own_pause_forgives_everyone() {
    let mut t = table();
    for s in 0..10u64 {
        t.tick(s * 1000);
        t.apply_digest(&digest("n02", &[("n02", 7, s + 1)]), s * 1000);
    }
    // We were frozen for 60 s: nobody else's fault.
    let flips = t.tick(69_000);
    assert!(flips.is_empty(), "{flips:?}");
    assert!(t.is_up_id("n02", 69_000) && t.is_up_id("n01", 69_000));
}

#[test]
fn snapshot_lists_everyone_in_topology_order() {
    let t = table();
    let snap = t.snapshot(0);
    let ids: Vec<_> = snap.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["n00", "n01", "n02", "n03"]);
    assert_eq!(snap[1].dc, "dc1");
    assert!(snap.iter().all(|s| s.up));
    assert_eq!(snap[0].generation, 1_000);
    assert_eq!(snap[1].generation, 0, "never heard");
}

/// Feature bits travel with a node's heartbeat: adopted with a newer
/// entry (an older one's bits are ignored), `None` before any is heard,
/// this build's own in its own entry.
#[test]
fn feature_bits_travel_with_the_heartbeat() {
    use crate::membership::features::THIS_BUILD;
    let mut t = table();
    assert_eq!(t.features("n00"), Some(THIS_BUILD));
    assert_eq!(t.features("n01"), None, "not heard yet");
    let entry = |heartbeat, features| GossipEntry {
        node_id: "n01".into(),
        generation: 5,
        heartbeat,
        features,
        not_ready: false,
    };
    let with = |e: GossipEntry| GossipDigest {
        from: "n03".into(),
        entries: vec![e],
        ..GossipDigest::default()
    };
    t.apply_digest(&with(entry(10, 0)), 100);
    assert_eq!(t.features("n01"), Some(0), "an older build");
    t.apply_digest(&with(entry(11, THIS_BUILD)), 200);
    assert_eq!(t.features("n01"), Some(THIS_BUILD), "upgraded");
    t.apply_digest(&with(entry(9, 0)), 300);
    assert_eq!(
        t.features("n01"),
        Some(THIS_BUILD),
        "an older entry is ignored"
    );
    let mine = t.digest();
    let me = mine.entries.iter().find(|e| e.node_id == "n00").unwrap();
    assert_eq!(me.features, THIS_BUILD, "advertised");
}

/// review-tidy34 L4: a node's not-ready bit travels with its heartbeat as
/// its feature bits do: adopted with a newer entry, dropped with a restart
/// (a new generation without it), ignored in an older entry; absent (a
/// build before the bit) is ready; our own is what `set_ready` said.
#[test]
fn the_not_ready_bit_travels_with_the_heartbeat() {
    let mut t = table();
    assert!(t.is_ready("n01"), "not heard yet: ready");
    let entry = |generation, heartbeat, not_ready| GossipEntry {
        node_id: "n01".into(),
        generation,
        heartbeat,
        features: 0,
        not_ready,
    };
    let with = |e: GossipEntry| GossipDigest {
        from: "n03".into(),
        entries: vec![e],
        ..GossipDigest::default()
    };
    t.apply_digest(&with(entry(5, 10, false)), 100);
    assert!(t.is_ready("n01"));
    t.apply_digest(&with(entry(5, 11, true)), 200);
    assert!(!t.is_ready("n01"), "latched");
    assert!(t.is_up_id("n01", 200), "still up: it serves reads");
    t.apply_digest(&with(entry(5, 9, false)), 300);
    assert!(!t.is_ready("n01"), "an older entry is ignored");
    t.apply_digest(&with(entry(6, 1, false)), 400);
    assert!(t.is_ready("n01"), "restarted");
    assert!(t.is_ready("n00") && t.is_ready("zz"));
    t.set_ready(false);
    assert!(!t.is_ready("n00"));
    let mine = t.digest();
    let me = mine.entries.iter().find(|e| e.node_id == "n00").unwrap();
    assert!(me.not_ready, "advertised");
    t.set_ready(true);
    let me = t.digest().entries.into_iter().find(|e| e.node_id == "n00");
    assert!(!me.unwrap().not_ready);
}
