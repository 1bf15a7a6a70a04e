//! The peers' clocks (review-authq33 H1): offsets measured on a round trip
//! and one way, the majority decision, staleness.

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
    assert!(text.starts_with("clock_ahead: "), "{text}");
    assert!(
        text.contains("n2 -7200.000 s") && text.contains("n3 -7199.995 s"),
        "{text}"
    );
    assert!(
        text.contains("NTP") && text.contains("nothing was stamped"),
        "{text}"
    );
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
}

#[test]
fn a_node_without_recent_offsets_accepts() {
    let now = Instant::now();
    assert_eq!(PeerClocks::default().refusal(now), None);
    let old = clocks(&[("n2", -TWO_HOURS_MS), ("n3", -TWO_HOURS_MS)], now);
    let later = now + FRESH + Duration::from_millis(1);
    assert_eq!(old.refusal(later), None, "stale offsets do not count");
    assert!(old.refusal(now + FRESH).is_some(), "fresh up to FRESH");
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
        let within = 1 + offsets.iter().filter(|o| !is_behind(**o)).count();
        prop_assert_eq!(c.refusal(now).is_some(), within < members / 2 + 1);
    }

    /// Only fresh offsets count: peers heard too long ago are unknown.
    #[test]
    fn stale_peers_do_not_count(fresh in proptest::collection::vec(any::<bool>(), 0..9),
                                behind in proptest::collection::vec(any::<bool>(), 9)) {
        let now = Instant::now() + FRESH * 2;
        let mut c = PeerClocks::default();
        let mut counted = vec![];
        for (i, f) in fresh.iter().enumerate() {
            let o = if behind[i] { -TWO_HOURS_MS } else { 0 };
            let at = if *f { now - FRESH } else { now - FRESH - Duration::from_millis(1) };
            c.record(&format!("n{i}"), o, at);
            if *f {
                counted.push((format!("n{i}"), o));
            }
        }
        prop_assert_eq!(c.fresh(now), counted.clone());
        prop_assert_eq!(c.refusal(now).is_some(), ahead_of_most(&counted));
    }
}
