//! The one decision on a change ([`PeerClocks::hold`]) against an
//! independent oracle (review-h1-35 L3), its reason labels, and the age
//! of each offset in the `clock_skew` text (review-clock35 L3).

use proptest::prelude::*;

use super::*;

const TWO_HOURS_MS: i64 = 2 * 3600 * 1000;
const AT: u64 = 1_764_000_000_000;
const NOW: u64 = AT + 41_000;

/// What this node knows of one other member since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    /// Not heard since start.
    Unheard,
    /// Heard, its offset within the bound (`ms`, signed, up to it).
    Within(i64),
    /// Heard, its offset past the bound (`ms` past it, either way).
    Far(i64),
    /// Heard without a clock (an older build), after a far offset that
    /// it drops (review-clock35 L2).
    NoClock,
}

fn known() -> impl Strategy<Value = Known> {
    let bound = MAX_OFFSET_MS as i64;
    prop_oneof![
        Just(Known::Unheard),
        (-bound..=bound).prop_map(Known::Within),
        (prop_oneof![-TWO_HOURS_MS..-bound, bound + 1..TWO_HOURS_MS]).prop_map(Known::Far),
        Just(Known::NoClock),
    ]
}

/// A node that knows `each` of its members `n0`, `n1`, ... so.
fn node(each: &[Known]) -> (PeerClocks, Vec<String>) {
    let mut c = PeerClocks::default();
    let members: Vec<String> = (0..each.len()).map(|i| format!("n{i}")).collect();
    for (m, k) in members.iter().zip(each) {
        match *k {
            Known::Unheard => {}
            Known::Within(o) | Known::Far(o) => c.record(m, o, AT),
            Known::NoClock => {
                c.record(m, -TWO_HOURS_MS, AT);
                c.record_no_clock(m);
            }
        }
    }
    (c, members)
}

/// The rule, counted independently: with w within, f far and u without a
/// clock of n members (this node counted, and within), q = n / 2 + 1:
/// 409 iff 1 + w + f + u >= q and f > w; else a wait iff 1 + w + u < q, as
/// `NotHeard` iff 1 + w + f + u < q; the wait counts 1 + w + u and names
/// the other n - 1 - w - u.
fn oracle_holds(each: &[Known], c: &PeerClocks, members: &[String]) -> Result<(), TestCaseError> {
    let count = |f: fn(&Known) -> bool| each.iter().filter(|k| f(k)).count();
    let w = count(|k| matches!(k, Known::Within(_)));
    let f = count(|k| matches!(k, Known::Far(_)));
    let u = count(|k| matches!(k, Known::NoClock));
    let n = each.len() + 1;
    let q = n / 2 + 1;
    let refused = 1 + w + f + u >= q && f > w;
    let waits = !refused && 1 + w + u < q;
    let hold = c.hold(Some(members), NOW);
    prop_assert_eq!(matches!(hold, Some(Hold::Far(_))), refused, "{:?}", hold);
    match &hold {
        Some(Hold::NotHeard(wait) | Hold::NotWithin(wait)) => {
            prop_assert!(waits);
            let not_heard = matches!(hold, Some(Hold::NotHeard(_)));
            prop_assert_eq!(not_heard, 1 + w + f + u < q);
            prop_assert_eq!((wait.heard, wait.members, wait.quorum), (1 + w + u, n, q));
            prop_assert_eq!(wait.missing.len(), n - 1 - w - u);
        }
        Some(Hold::Far(far)) => prop_assert_eq!(far.offsets.len(), w + f),
        None => prop_assert!(!refused && !waits),
    }
    Ok(())
}

proptest! {
    /// review-h1-35 L3: each member unheard, within, far or without a
    /// clock; the decision is the oracle's.
    #[test]
    fn the_decision_on_a_change_is_the_rule(each in proptest::collection::vec(known(), 0..10)) {
        let (c, members) = node(&each);
        oracle_holds(&each, &c, &members)?;
    }

    /// With every member heard since start, the wait for a quorum known
    /// within never holds a change that the refusal lets through (so it
    /// adds no wait to a node that has heard everyone).
    #[test]
    fn with_every_member_heard_only_the_refusal_holds(each in proptest::collection::vec(known(), 0..10)) {
        let each: Vec<Known> = (each.into_iter())
            .map(|k| if k == Known::Unheard { Known::NoClock } else { k })
            .collect();
        let (c, members) = node(&each);
        oracle_holds(&each, &c, &members)?;
        let m = Some(&members[..]);
        prop_assert!(c.refusal(m, NOW).is_some() || c.not_yet_within(m).is_none());
        prop_assert!(!matches!(c.hold(m, NOW), Some(Hold::NotHeard(_) | Hold::NotWithin(_))));
    }
}

/// Each hold has its own reason label (review-h1-35 L2): `not_heard`
/// while a quorum is not heard, `clock_skew` when far from most,
/// `not_within` when heard but not known within; and the first wait's
/// text counts and names as the second's (review-h1-35 L1: a far member
/// is not within, and is listed).
#[test]
fn each_hold_has_its_reason() {
    let (c, members) = node(&[Known::Far(-TWO_HOURS_MS), Known::Unheard, Known::Unheard]);
    let hold = c.hold(Some(&members[..]), NOW).expect("2 of 4 heard");
    assert_eq!(hold.reason(), NOT_HEARD);
    let Hold::NotHeard(wait) = &hold else {
        panic!("{hold:?}")
    };
    assert_eq!((wait.heard, wait.quorum), (1, 3));
    assert!(wait.to_string().contains("far: n0, n1, n2"), "{wait}");
    let known = [
        Known::Far(-TWO_HOURS_MS),
        Known::Far(TWO_HOURS_MS),
        Known::Within(0),
    ];
    let (c, members) = node(&known);
    assert_eq!(
        c.hold(Some(&members[..]), NOW).unwrap().reason(),
        CLOCK_SKEW
    );
    let known = [
        Known::Far(-TWO_HOURS_MS),
        Known::Within(0),
        Known::Unheard,
        Known::Unheard,
    ];
    let (c, members) = node(&known);
    let hold = c
        .hold(Some(&members[..]), NOW)
        .expect("1 far, 1 within of 5");
    assert_eq!(hold.reason(), NOT_WITHIN);
    let err = super::super::AuthStateError::from(hold);
    assert!(err.to_string().starts_with(NOT_MEASURED), "{err}");
}

/// review-clock35 L3: the `clock_skew` text says how long ago each offset
/// was measured, so a member down for days (an offset that may predate a
/// clock fix) is told from a live one. Fails before, by reading: the
/// offsets carried no time.
#[test]
fn the_clock_skew_text_gives_the_age_of_each_offset() {
    let mut c = PeerClocks::default();
    c.record("dc1-n2", TWO_HOURS_MS + 100, AT - 3 * 86_400_000);
    c.record("dc1-n3", TWO_HOURS_MS, AT);
    c.record("dc2-n1", 30, NOW - 5_000);
    let far = c.refusal(None, NOW).expect("2 far of 3");
    let text = far.to_string();
    assert!(
        text.contains("dc1-n2 +7200.100 s (this node behind) measured 3 d ago; "),
        "{text}"
    );
    assert!(
        text.contains("dc1-n3 +7200.000 s (this node behind) measured 41 s ago; "),
        "{text}"
    );
    // Its true age, whatever the wall clock did since (the times are
    // monotonic: review-clock36 M1).
    assert!(
        text.contains("dc2-n1 +0.030 s (within) measured 5 s ago)"),
        "{text}"
    );
    let ages: Vec<u64> = far.offsets.iter().map(|o| o.age_ms).collect();
    assert_eq!(ages, [3 * 86_400_000 + 41_000, 41_000, 5_000]);
    let at = |s: u64| ago(s * 1000);
    assert_eq!(
        [
            at(0),
            at(119),
            at(120),
            at(7_199),
            at(7_200),
            at(172_799),
            at(172_800)
        ],
        ["0 s", "119 s", "2 min", "119 min", "2 h", "47 h", "2 d"]
    );
}

/// Fewer than a quorum heard is a wait even should the within check ever
/// not hold with it (within ⊆ heard broken, e.g. by offsets kept across a
/// restart): told as the within check's when it holds, else as the heard
/// check's; never `None`, which would stamp (review-clock36 L1). Fails
/// before, by reading: `hold` returned the within check's `None`.
#[test]
fn a_quorum_not_heard_is_a_wait_whatever_the_within_check_says() {
    let wait = |heard: usize| NotYetHeard {
        heard,
        members: 5,
        quorum: 3,
        missing: vec!["n1".into()],
    };
    assert_eq!(not_heard(wait(2), None), Hold::NotHeard(wait(2)));
    assert_eq!(not_heard(wait(2), Some(wait(1))), Hold::NotHeard(wait(1)));
}
