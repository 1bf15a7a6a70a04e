//! The peers' clocks (review-authq33 H1): offsets measured on a round trip
//! and one way, the majority decision (either way: review-clock34 H1),
//! staleness and the last known offsets (review-clock34 M2).

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

const TWO_HOURS_MS: i64 = 2 * 3600 * 1000;

fn clocks(offsets: &[(&str, i64)], at: Instant) -> PeerClocks {
    let mut c = PeerClocks::default();
    for (peer, o) in offsets {
        c.record(peer, *o, at);
    }
    c
}

#[test]
fn a_node_two_hours_ahead_of_two_peers_refuses() {
    let now = Instant::now();
    let c = clocks(&[("n2", -TWO_HOURS_MS), ("n3", -TWO_HOURS_MS + 5)], now);
    let refused = c.refusal(now).expect("refused");
    let text = refused.to_string();
    assert!(text.starts_with("clock_skew: "), "{text}");
    assert!(
        text.contains("n2 -7200.000 s (this node ahead)")
            && text.contains("n3 -7199.995 s (this node ahead)"),
        "{text}"
    );
    assert!(
        text.contains("NTP") && text.contains("nothing was stamped"),
        "{text}"
    );
}

/// review-clock34 H1: a node 2 h behind its peers would stamp a revoke
/// older than the grant they hold; they would acknowledge it (their merge
/// keeps the grant) and it would never take effect.
#[test]
fn a_node_two_hours_behind_two_peers_refuses() {
    let now = Instant::now();
    let c = clocks(&[("n2", TWO_HOURS_MS), ("n3", TWO_HOURS_MS - 5)], now);
    let text = c.refusal(now).expect("refused").to_string();
    assert!(text.starts_with("clock_skew: "), "{text}");
    assert!(
        text.contains("n2 +7200.000 s (this node behind)")
            && text.contains("n3 +7199.995 s (this node behind)"),
        "{text}"
    );
    // Behind one, ahead of the other: no quorum of 3 within the bound.
    let split = clocks(&[("n2", TWO_HOURS_MS), ("n3", -TWO_HOURS_MS)], now);
    assert!(split.refusal(now).is_some());
}

/// A minority of wrong clocks, either way, never makes a node of a
/// healthy majority refuse.
#[test]
fn far_clocks_in_a_minority_do_not_block_a_healthy_node() {
    let now = Instant::now();
    let three = clocks(&[("n2", TWO_HOURS_MS), ("n3", 25)], now);
    assert_eq!(three.refusal(now), None);
    let five = [("n2", TWO_HOURS_MS), ("n3", -TWO_HOURS_MS)];
    let five = clocks(&[five[0], five[1], ("n4", -30), ("n5", 0)], now);
    assert_eq!(five.refusal(now), None);
}

#[test]
fn a_node_within_the_bound_accepts() {
    let now = Instant::now();
    let bound = MAX_OFFSET_MS as i64;
    assert_eq!(
        clocks(&[("n2", -bound), ("n3", bound * 100)], now).refusal(now),
        None
    );
    assert_eq!(clocks(&[("n2", -40), ("n3", 30)], now).refusal(now), None);
    // Ahead of one peer of two, within the bound of the other: with
    // itself, a quorum of 3 is within it.
    assert_eq!(
        clocks(&[("n2", -TWO_HOURS_MS), ("n3", 0)], now).refusal(now),
        None
    );
    assert!(clocks(&[("n2", -bound - 1), ("n3", -bound - 1)], now)
        .refusal(now)
        .is_some());
    assert_eq!(
        clocks(&[("n2", bound), ("n3", bound)], now).refusal(now),
        None
    );
    assert!(clocks(&[("n2", bound + 1), ("n3", bound + 1)], now)
        .refusal(now)
        .is_some());
}

/// review-clock34 M2: with no peer heard within FRESH, the last known
/// offsets decide (a partitioned node stays refused); any fresh one
/// replaces them all.
#[test]
fn without_recent_offsets_the_last_known_decide() {
    let now = Instant::now();
    assert_eq!(PeerClocks::default().refusal(now), None, "none ever heard");
    let mut c = clocks(&[("n2", -TWO_HOURS_MS), ("n3", -TWO_HOURS_MS)], now);
    let later = now + FRESH + Duration::from_millis(1);
    assert!(c.fresh(later).is_empty());
    let refused = c.refusal(later).expect("the last known offsets decide");
    assert_eq!(refused.offsets.len(), 2);
    assert!(c.refusal(now + FRESH).is_some(), "fresh up to FRESH");
    // One peer heard again within the bound: only it counts now.
    c.record("n3", 40, later);
    assert_eq!(c.counted(later), vec![("n3".into(), 40)]);
    assert_eq!(c.refusal(later), None);
}

#[test]
fn a_newer_measurement_replaces_the_older_one() {
    let now = Instant::now();
    let mut c = clocks(&[("n2", -TWO_HOURS_MS), ("n3", -TWO_HOURS_MS)], now);
    c.record("n3", 10, now);
    c.record("n2", 10, now);
    assert_eq!(c.refusal(now), None);
    assert_eq!(c.fresh(now), vec![("n2".into(), 10), ("n3".into(), 10)]);
}

#[test]
fn an_older_build_sends_no_clock() {
    assert_eq!(on_round_trip(0, 1_000, 2_000), None);
    assert_eq!(one_way(0, 1_000), None);
    assert_eq!(
        on_round_trip(1_000 + 7_200_000 + 500, 1_000, 2_000),
        Some(7_200_000)
    );
    assert_eq!(one_way(1_000, 7_201_000), Some(-7_200_000));
}

proptest! {
    /// The true offset d is found within half the round trip, whenever in
    /// the call the peer read its clock.
    #[test]
    fn a_round_trip_measures_within_half_of_it(sent in 1u64..u64::MAX / 4, rtt in 0u64..100_000,
                                                 at in 0u64..=100_000, d in -(1i64 << 50)..(1i64 << 50)) {
        let at = at.min(rtt);
        let peer = (sent + at) as i64 + d;
        prop_assume!(peer > 0);
        let measured = on_round_trip(peer as u64, sent, sent + rtt).unwrap();
        prop_assert!((measured - d).unsigned_abs() <= rtt / 2 + 1, "{measured} vs {d}");
    }

    /// Extreme clocks saturate, never panic.
    #[test]
    fn offsets_never_overflow(peer: u64, sent: u64, received: u64) {
        let _ = on_round_trip(peer, sent, received);
        let _ = one_way(peer, received);
    }

    /// With every other member heard, a change is refused exactly when
    /// fewer than a quorum of the members (this node counted) are within
    /// the bound.
    #[test]
    fn with_every_peer_heard_it_refuses_iff_no_quorum_is_within(
        offsets in proptest::collection::vec(-3 * MAX_OFFSET_MS as i64..3 * MAX_OFFSET_MS as i64, 0..9)
    ) {
        let now = Instant::now();
        let mut c = PeerClocks::default();
        for (i, o) in offsets.iter().enumerate() {
            c.record(&format!("n{i}"), *o, now);
        }
        let members = offsets.len() + 1;
        let within = 1 + offsets.iter().filter(|o| o.unsigned_abs() <= MAX_OFFSET_MS).count();
        prop_assert_eq!(c.refusal(now).is_some(), within < members / 2 + 1);
    }

    /// Only fresh offsets count when there are any: peers heard too long
    /// ago are unknown then; with none fresh, every peer's last one counts.
    #[test]
    fn stale_peers_do_not_count(fresh in proptest::collection::vec(any::<bool>(), 0..9),
                                far in proptest::collection::vec(-1i64..=1, 9)) {
        let now = Instant::now() + FRESH * 2;
        let mut c = PeerClocks::default();
        let (mut recent, mut all) = (vec![], vec![]);
        for (i, f) in fresh.iter().enumerate() {
            let o = far[i] * TWO_HOURS_MS;
            let at = if *f { now - FRESH } else { now - FRESH - Duration::from_millis(1) };
            c.record(&format!("n{i}"), o, at);
            all.push((format!("n{i}"), o));
            if *f {
                recent.push((format!("n{i}"), o));
            }
        }
        prop_assert_eq!(c.fresh(now), recent.clone());
        let counted = if recent.is_empty() { all } else { recent };
        let off = counted.iter().filter(|(_, o)| *o != 0).count();
        prop_assert_eq!(c.refusal(now).is_some(), off * 2 > counted.len());
    }
}
