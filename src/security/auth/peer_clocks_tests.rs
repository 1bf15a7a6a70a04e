//! The peers' clocks (review-authq33 H1): offsets measured on a round trip
//! and one way, the majority decision (either way: review-clock34 H1), on
//! every current member's last offset, however old (review-clock34b M1).

use proptest::prelude::*;

use super::*;

const TWO_HOURS_MS: i64 = 2 * 3600 * 1000;
/// When the offsets are measured, and when a change is decided, by this
/// node's wall clock.
const AT: u64 = 1_764_000_000_000;
const NOW: u64 = AT + 41_000;

fn clocks(offsets: &[(&str, i64)]) -> PeerClocks {
    let mut c = PeerClocks::default();
    for (peer, o) in offsets {
        c.record(peer, *o, AT);
    }
    c
}

fn ids(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_node_two_hours_ahead_of_two_peers_refuses() {
    let c = clocks(&[("n2", -TWO_HOURS_MS), ("n3", -TWO_HOURS_MS + 5)]);
    let refused = c.refusal(None, NOW).expect("refused");
    let text = refused.to_string();
    assert!(text.starts_with("clock_skew: "), "{text}");
    assert!(
        text.contains("n2 -7200.000 s (this node ahead) measured 41 s ago; ")
            && text.contains("n3 -7199.995 s (this node ahead) measured 41 s ago)"),
        "{text}"
    );
    assert!(
        text.contains("NTP") && text.contains("nothing was stamped"),
        "{text}"
    );
}

/// review-clock34 H1: a node 2 h behind its peers would stamp a revoke
/// older than the grant they hold, which their merge keeps: it would
/// never take effect (answered 409 `superseded` since review-clock34b M2;
/// refused before it is stamped here).
#[test]
fn a_node_two_hours_behind_two_peers_refuses() {
    let c = clocks(&[("n2", TWO_HOURS_MS), ("n3", TWO_HOURS_MS - 5)]);
    let text = c.refusal(None, NOW).expect("refused").to_string();
    assert!(text.starts_with("clock_skew: "), "{text}");
    assert!(
        text.contains("n2 +7200.000 s (this node behind)")
            && text.contains("n3 +7199.995 s (this node behind)"),
        "{text}"
    );
    // Behind one, ahead of the other: no quorum of 3 within the bound.
    let split = clocks(&[("n2", TWO_HOURS_MS), ("n3", -TWO_HOURS_MS)]);
    assert!(split.refusal(None, NOW).is_some());
}

/// A minority of wrong clocks, either way, never makes a node of a
/// healthy majority refuse.
#[test]
fn far_clocks_in_a_minority_do_not_block_a_healthy_node() {
    let three = clocks(&[("n2", TWO_HOURS_MS), ("n3", 25)]);
    assert_eq!(three.refusal(None, NOW), None);
    let five = [("n2", TWO_HOURS_MS), ("n3", -TWO_HOURS_MS)];
    let five = clocks(&[five[0], five[1], ("n4", -30), ("n5", 0)]);
    assert_eq!(five.refusal(None, NOW), None);
}

#[test]
fn a_node_within_the_bound_accepts() {
    let bound = MAX_OFFSET_MS as i64;
    assert_eq!(
        clocks(&[("n2", -bound), ("n3", bound * 100)]).refusal(None, NOW),
        None
    );
    assert_eq!(clocks(&[("n2", -40), ("n3", 30)]).refusal(None, NOW), None);
    // Ahead of one peer of two, within the bound of the other: with
    // itself, a quorum of 3 is within it.
    assert_eq!(
        clocks(&[("n2", -TWO_HOURS_MS), ("n3", 0)]).refusal(None, NOW),
        None
    );
    assert!(clocks(&[("n2", -bound - 1), ("n3", -bound - 1)])
        .refusal(None, NOW)
        .is_some());
    assert_eq!(
        clocks(&[("n2", bound), ("n3", bound)]).refusal(None, NOW),
        None
    );
    assert!(clocks(&[("n2", bound + 1), ("n3", bound + 1)])
        .refusal(None, NOW)
        .is_some());
}

/// review-clock34b M1a: n2 (within) is down, so only its old offset is
/// known; n3 is 2 h ahead and heard now. n2's last offset counts: 1 far
/// against this node and n2, so a healthy node of a healthy majority is
/// not blocked by one peer down and one clock wrong. Fails before: only
/// the offsets heard in the last 20 s counted, {n3}, and it refused.
#[test]
fn a_member_down_counts_at_its_last_offset_so_a_far_minority_does_not_block() {
    let mut c = clocks(&[("n2", 40)]);
    c.record("n3", TWO_HOURS_MS, AT);
    let members = ids(&["n2", "n3"]);
    assert_eq!(c.refusal(Some(&members[..]), NOW), None);
    assert_eq!(c.counted(Some(&members[..])).len(), 2);
}

/// review-clock34b M1b: A and B (DC2) are 2 h ahead and partitioned from
/// C, D and E (DC1), measured 2 h behind before the cut. A hears B fresh
/// and within; C, D and E count at their last offsets: 3 far against A and
/// B, so A refuses instead of stamping 2 h ahead. Fails before: only B was
/// fresh, and A accepted.
#[test]
fn a_wrong_minority_cut_off_from_the_majority_refuses() {
    let mut c = clocks(&[("C", -TWO_HOURS_MS), ("D", -TWO_HOURS_MS)]);
    c.record("E", -TWO_HOURS_MS, AT);
    c.record("B", 25, AT);
    let members = ids(&["B", "C", "D", "E"]);
    let refused = c.refusal(Some(&members[..]), NOW).expect("refused");
    assert_eq!(refused.offsets.len(), 4);
    assert!(refused
        .to_string()
        .contains("C -7200.000 s (this node ahead)"));
}

/// A peer removed from the layout (or never in it) no longer counts
/// (review-clock34 L2): two far peers, one of them removed, leave 1 far
/// against 1 within; a sole remaining member is never refused on a
/// removed peer's clock (review-clock34b L3). Without a members list every
/// peer heard counts. Fails before: every peer heard counted.
#[test]
fn a_removed_member_stops_counting() {
    let c = clocks(&[("n2", -TWO_HOURS_MS), ("n3", -TWO_HOURS_MS), ("n4", 0)]);
    assert!(c.refusal(None, NOW).is_some(), "all three count");
    assert!(c
        .refusal(Some(&ids(&["n2", "n3", "n4"])[..]), NOW)
        .is_some());
    let without_n2 = ids(&["n3", "n4"]);
    assert_eq!(c.refusal(Some(&without_n2[..]), NOW), None);
    assert_eq!(
        c.counted(Some(&without_n2[..])),
        vec![("n3".into(), -TWO_HOURS_MS), ("n4".into(), 0)]
    );
    assert_eq!(c.refusal(Some(&[][..]), NOW), None, "alone: nothing counts");
    // A member never measured counts for neither side.
    assert_eq!(c.counted(Some(&ids(&["n9"])[..])), vec![]);
}

/// The offset gauge of a removed peer is left out of `/metrics`
/// (review-clock34 L3); every other line stays.
#[test]
fn the_gauge_of_a_removed_peer_is_not_shown() {
    let text = "# TYPE geokv_auth_peer_clock_offset_seconds gauge\n\
                geokv_auth_peer_clock_offset_seconds{peer=\"n2\"} 0.01\n\
                geokv_auth_peer_clock_offset_seconds{peer=\"n3\"} -7200\n\
                geokv_auth_peer_clock_offset_seconds{dc=\"a\",peer=\"n2\"} 1\n\
                geokv_auth_version 5\n";
    let shown = members_only(text, &ids(&["n1", "n3"]));
    assert_eq!(
        shown,
        "# TYPE geokv_auth_peer_clock_offset_seconds gauge\n\
         geokv_auth_peer_clock_offset_seconds{peer=\"n3\"} -7200\n\
         geokv_auth_version 5\n"
    );
    assert_eq!(members_only(text, &ids(&["n2", "n3"])), text);
}

#[test]
fn a_newer_measurement_replaces_the_older_one() {
    let mut c = clocks(&[("n2", -TWO_HOURS_MS), ("n3", -TWO_HOURS_MS)]);
    assert!(c.refusal(None, NOW).is_some());
    c.record("n3", 10, AT);
    c.record("n2", 10, AT);
    assert_eq!(c.refusal(None, NOW), None);
    assert_eq!(c.counted(None), vec![("n2".into(), 10), ("n3".into(), 10)]);
}

/// review-clock35 M1: after a restart nothing is measured; a node of a
/// wrong-clock minority cut off from the rest (A, B 2 h ahead of C, D, E)
/// would measure only B (within) and stamp. It now waits until a quorum of
/// the members, itself counted, was heard since it started, then decides
/// on the offsets. Fails before, by reading: there was no such wait, and
/// the offsets alone ({B within}) accept.
#[test]
fn a_restarted_node_waits_until_a_quorum_is_heard_since_start() {
    let members = ids(&["b", "c", "d", "e"]);
    let mut c = PeerClocks::default();
    c.record("b", 0, AT);
    assert_eq!(
        c.refusal(Some(&members[..]), NOW),
        None,
        "the offsets alone"
    );
    let wait = c.not_yet_heard(Some(&members[..])).expect("2 of 5 heard");
    assert_eq!((wait.heard, wait.members, wait.quorum), (2, 5, 3));
    let text = wait.to_string();
    assert!(
        text.starts_with("clock not yet measured: 2 of 5 members heard since this node started"),
        "{text}"
    );
    assert!(
        text.contains("not heard yet, or far: c, d, e") && text.contains("nothing was stamped"),
        "{text}"
    );
    c.record("c", -TWO_HOURS_MS, AT);
    c.record("d", -TWO_HOURS_MS, AT);
    assert_eq!(c.not_yet_heard(Some(&members[..])), None, "3 of 5");
    let far = c
        .refusal(Some(&members[..]), NOW)
        .expect("decided on the offsets");
    assert!(far.to_string().starts_with("clock_skew: "), "{far}");
    // An older build (no clock) counts as heard: an upgrade is not blocked.
    let mut old = PeerClocks::default();
    old.record_no_clock("b");
    old.record_no_clock("c");
    assert_eq!(old.not_yet_heard(Some(&members[..])), None);
    assert_eq!(old.refusal(Some(&members[..]), NOW), None);
    // Alone, or the members unknown (a tool, a test): nothing to wait for.
    let fresh = PeerClocks::default();
    assert_eq!(fresh.not_yet_heard(Some(&[][..])), None);
    assert_eq!(fresh.not_yet_heard(None), None);
    // Three members: one other heard is a quorum.
    let three = ids(&["b", "c"]);
    assert!(fresh.not_yet_heard(Some(&three[..])).is_some());
    assert_eq!(c.not_yet_heard(Some(&three[..])), None);
}

/// review-clock35 L2: a member that answers without a clock (a rollback to
/// an older build once its clock was fixed) drops its stale offset, which
/// then counts neither way. Fails before, by reading: `heard_clock`
/// returned early on `None` and the far offset stayed.
#[test]
fn a_member_heard_without_a_clock_drops_its_last_offset() {
    let mut c = clocks(&[("n2", -TWO_HOURS_MS), ("n3", 0)]);
    c.record("n4", -TWO_HOURS_MS, AT);
    assert!(c.refusal(None, NOW).is_some());
    c.record_no_clock("n2");
    assert_eq!(
        c.counted(None),
        vec![("n3".into(), 0), ("n4".into(), -TWO_HOURS_MS)]
    );
    assert_eq!(c.refusal(None, NOW), None);
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
        let mut c = PeerClocks::default();
        for (i, o) in offsets.iter().enumerate() {
            c.record(&format!("n{i}"), *o, AT);
        }
        let members = offsets.len() + 1;
        let within = 1 + offsets.iter().filter(|o| o.unsigned_abs() <= MAX_OFFSET_MS).count();
        prop_assert_eq!(c.refusal(None, NOW).is_some(), within < members / 2 + 1);
    }

    /// Only the members' offsets count, and every member's: peers heard
    /// that are not members are left out (an independent count).
    #[test]
    fn only_the_members_count(member in proptest::collection::vec(any::<bool>(), 0..9),
                              far in proptest::collection::vec(-1i64..=1, 9)) {
        let mut c = PeerClocks::default();
        let (mut members, mut counted) = (vec![], vec![]);
        for (i, m) in member.iter().enumerate() {
            let o = far[i] * TWO_HOURS_MS;
            c.record(&format!("n{i}"), o, AT);
            if *m {
                members.push(format!("n{i}"));
                counted.push((format!("n{i}"), o));
            }
        }
        prop_assert_eq!(c.counted(Some(&members[..])), counted.clone());
        let off = counted.iter().filter(|(_, o)| *o != 0).count();
        prop_assert_eq!(c.refusal(Some(&members[..]), NOW).is_some(), off * 2 > counted.len());
    }

    /// A change waits exactly while fewer than a quorum of the members,
    /// this node counted, were heard since start (an independent count).
    #[test]
    fn it_waits_iff_fewer_than_a_quorum_were_heard(heard in proptest::collection::vec(any::<bool>(), 0..9)) {
        let mut c = PeerClocks::default();
        let members: Vec<String> = (0..heard.len()).map(|i| format!("n{i}")).collect();
        for (m, h) in members.iter().zip(&heard) {
            if *h {
                c.record_no_clock(m);
            }
        }
        let n = heard.len() + 1;
        let k = 1 + heard.iter().filter(|h| **h).count();
        prop_assert_eq!(c.not_yet_heard(Some(&members[..])).is_some(), 2 * k <= n);
    }
}

/// review-clock35b H1: a quorum heard since a restart is not a quorum
/// known within. A (2 h ahead, as B) restarts and hears B and C first: 3 of
/// 5 heard, and {B within, C far} is not "far from most", so it would
/// stamp 2 h ahead. It now waits until a quorum (itself counted) is known
/// within or without a clock; a member with no clock counts (an upgrade is
/// never blocked by it). Fails before, by reading: there was no
/// `not_yet_within`, and the two checks before it pass.
#[test]
fn a_quorum_heard_is_not_a_quorum_known_within() {
    let members = ids(&["b", "c", "d", "e"]);
    let mut c = PeerClocks::default();
    c.record("b", 0, AT);
    c.record("c", -TWO_HOURS_MS, AT);
    assert_eq!(c.not_yet_heard(Some(&members[..])), None, "3 of 5 heard");
    assert_eq!(c.refusal(Some(&members[..]), NOW), None, "1 within, 1 far");
    let wait = c.not_yet_within(Some(&members[..])).expect("2 of 5 within");
    assert_eq!(
        (wait.heard, wait.quorum, &wait.missing[..]),
        (2, 3, &ids(&["c", "d", "e"])[..])
    );
    assert!(
        wait.to_string().contains("not heard yet, or far: c, d, e"),
        "{wait}"
    );
    c.record_no_clock("d");
    assert_eq!(
        c.not_yet_within(Some(&members[..])),
        None,
        "d has no clock: counts"
    );
    assert_eq!(c.not_yet_within(None), None, "members unknown: never waits");
    assert_eq!(
        PeerClocks::default().not_yet_within(Some(&[][..])),
        None,
        "alone"
    );
}
