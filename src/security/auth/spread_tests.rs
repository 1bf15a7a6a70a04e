//! The quorum decision on a change made here (audit12-32 M1): k of n,
//! this node counted, the peers that do not hold it named with why.

use super::*;
use crate::security::auth::cells::Stamp;
use crate::security::auth::{sync, Auth, Perm, MAX_OFFSET_MS};

fn peers(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn ack(peer: &str, verdict: Verdict) -> Ack {
    Ack {
        peer: peer.into(),
        verdict,
    }
}

fn clock_ahead() -> Verdict {
    Verdict::of_refusal("invalid argument: clock_ahead: refused a peer's auth state whose clock is 3600000 ms ahead")
}

#[test]
fn a_change_is_acknowledged_at_a_quorum_counting_this_node() {
    let three = peers(&["n2", "n3"]);
    let one_holds = Spread::decide(&three, vec![ack("n2", Verdict::Holds)], 5_000);
    assert_eq!((one_holds.holding, one_holds.members), (2, 3));
    assert!(one_holds.acknowledged());
    assert_eq!(one_holds.missing[0].peer, "n3");
    assert_eq!(
        one_holds.missing[0].verdict,
        Verdict::Missed("no answer within 5000 ms".into())
    );
    // Alone in its cluster, a node is its own quorum.
    assert!(Spread::decide(&[], vec![], 5_000).acknowledged());
    // Four members: a quorum is three.
    let four = peers(&["n2", "n3", "n4"]);
    let two = Spread::decide(&four, vec![ack("n3", Verdict::Holds)], 5_000);
    assert_eq!((two.holding, two.members, two.quorum()), (2, 4, 3));
    assert!(!two.acknowledged());
}

#[test]
fn peers_refusing_clock_ahead_leave_a_change_short_of_a_quorum_and_are_named() {
    let three = peers(&["n2", "n3"]);
    let acks = vec![
        ack("n2", clock_ahead()),
        ack(
            "n3",
            Verdict::Missed("n3: not sent: connection refused".into()),
        ),
    ];
    let spread = Spread::decide(&three, acks, 5_000);
    assert_eq!((spread.holding, spread.members), (1, 3));
    assert!(!spread.acknowledged());
    let text = spread.short_of_quorum(42, 1_234);
    for part in [
        "in force on 1 of 3",
        "quorum of 2",
        "not rolled back",
        "anti-entropy",
        "n2 refused it (clock_ahead)",
        "n3: n3: not sent",
        // review-authq33 H1: what the stamp ahead will do, said.
        "stamped 1234 ms",
        "overrides every change of the same role or grant",
        "even one answered 200",
    ] {
        assert!(text.contains(part), "{part:?} not in {text}");
    }
    // Without a clock_ahead refusal there is no such warning.
    let missed = vec![ack("n2", Verdict::Missed("no answer".into()))];
    let plain = Spread::decide(&three, missed, 5_000).short_of_quorum(42, 1_234);
    assert!(!plain.contains("WARNING"), "{plain}");
}

/// The whole way of a refusal: a peer (`b`) offered a state whose clock is
/// an hour ahead of its own refuses it, and the pushing node reads
/// `clock_ahead` from the status it answers.
#[test]
fn a_peer_refusing_a_state_ahead_of_its_clock_is_read_as_clock_ahead() {
    let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    let at = Stamp {
        ms: wall.unwrap().as_millis() as u64 + MAX_OFFSET_MS + 3_600_000,
        n: 0,
        node: 7,
    };
    let ahead = AuthState::default()
        .create_role(at, "x", None, &[])
        .unwrap();
    let b = Auth::new(true, AuthState::default(), None);
    let refused = sync::serve(&b, &sync::to_message(&ahead)).expect_err("refused");
    let status = tonic::Status::from(crate::error::GeokvError::from(refused));
    match Verdict::of_refusal(status.message()) {
        Verdict::Refused { reason, detail } => {
            assert_eq!(reason, CLOCK_AHEAD);
            assert!(detail.contains("ahead"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert!(b.state().is_empty(), "nothing installed");
}

#[test]
fn a_peer_holds_a_change_when_its_answer_covers_it() {
    let a = Auth::new(true, AuthState::default(), None);
    let before = a.state();
    let ours = a
        .change(|s| s.with_role("r", None, &[("*", Perm::Read)]))
        .unwrap();
    let b = Auth::new(true, AuthState::default(), None);
    let answer = sync::serve(&b, &sync::to_message(&ours)).unwrap();
    let theirs = sync::from_message(&answer).unwrap().unwrap();
    assert_eq!(Verdict::of_answer(&ours, &theirs), Verdict::Holds);
    assert!(matches!(
        Verdict::of_answer(&ours, &before),
        Verdict::Missed(_)
    ));
}

fn at(ms: u64, node: u64) -> Stamp {
    Stamp { ms, n: 0, node }
}

/// Role `app` created at 1000 ms, `default write` granted at 1500 ms.
fn base() -> AuthState {
    let s = AuthState::default().create_role(at(1_000, 1), "app", None, &[]);
    let s = s
        .unwrap()
        .set_grant(at(1_500, 1), "app", "default", Perm::Write, true);
    s.unwrap()
}

/// review-clock34b M2: a peer holds our change only if the cell it wrote
/// carries its stamp (or a later one asking the same); a later stamp that
/// undoes it is `Superseded` by it; an older one merged with ours holds
/// ours. Fails before: a newer stamp was `Holds` (the merge kept theirs).
#[test]
fn a_peer_holds_a_change_only_if_its_cell_carries_the_change() {
    let revoke = |s: &AuthState, ms| s.set_grant(at(ms, 3), "app", "default", Perm::Write, false);
    let ours = revoke(&base(), 2_000).unwrap();
    let answered = |theirs: AuthState| Verdict::of_answer(&ours, &theirs.merge(ours.clone()));
    // Equal: it installed ours. Older: ours wins the merge.
    assert_eq!(answered(base()), Verdict::Holds);
    assert_eq!(Verdict::of_answer(&ours, &ours), Verdict::Holds);
    // Newer: a grant at 3000 ms by writer 7 undoes our revoke.
    let regrant = base().set_grant(at(3_000, 7), "app", "default", Perm::Write, true);
    let superseded = Verdict::Superseded {
        stamp: at(3_000, 7),
        writer: 7,
    };
    assert_eq!(answered(regrant.unwrap()), superseded);
    // A later revoke asks the same: ours took effect as asked.
    assert_eq!(answered(revoke(&base(), 3_000).unwrap()), Verdict::Holds);
    // A later drop of the role undoes it too, naming the drop.
    let dropped = base().drop_role(at(4_000, 8), "app").unwrap();
    let by_drop = answered(dropped);
    assert!(
        matches!(by_drop, Verdict::Superseded { writer: 8, .. }),
        "{by_drop:?}"
    );
    // A state without our change (not merged): not yet.
    assert!(matches!(
        Verdict::of_answer(&ours, &base()),
        Verdict::Missed(_)
    ));
    // review-clock35 L1 (a): ours merged with a later unrelated change (a
    // grant on another keyspace of the same role, another role created)
    // holds ours.
    let other = base().set_grant(at(3_000, 7), "app", "other", Perm::Read, true);
    assert_eq!(answered(other.unwrap()), Verdict::Holds);
    let role_b = base().create_role(at(3_000, 7), "b", None, &[("*", Perm::Read)]);
    assert_eq!(answered(role_b.unwrap()), Verdict::Holds);
}

/// A drop undone by a later re-create, a create undone by a later drop:
/// both superseded.
#[test]
fn a_drop_or_a_create_is_superseded_by_a_later_create_or_drop() {
    let drop = base().drop_role(at(2_000, 3), "app").unwrap();
    let recreated = (drop.create_role(at(3_000, 7), "app", None, &[])).unwrap();
    let verdict = Verdict::of_answer(&drop, &recreated);
    assert!(
        matches!(verdict, Verdict::Superseded { writer: 7, .. }),
        "{verdict:?}"
    );
    let create = (AuthState::default().create_role(at(2_000, 3), "x", None, &[])).unwrap();
    let gone = create.drop_role(at(3_000, 7), "x").unwrap();
    let verdict = Verdict::of_answer(&create, &gone);
    assert!(
        matches!(verdict, Verdict::Superseded { writer: 7, .. }),
        "{verdict:?}"
    );
    let dropped_again = drop
        .clone()
        .merge(base().drop_role(at(3_000, 7), "app").unwrap());
    assert_eq!(Verdict::of_answer(&drop, &dropped_again), Verdict::Holds);
}

/// Superseded on any peer means the change is overridden as the later one
/// spreads, even with a quorum holding it: 409 naming the latest later
/// change and where ours is in force until then (review-clock35 M2); both
/// stamps also as RFC 3339 (review-clock35 L5; fails before, by reading:
/// the raw ms only).
#[test]
fn a_change_superseded_on_any_peer_is_answered_superseded_even_at_a_quorum() {
    let sup = |ms| Verdict::Superseded {
        stamp: at(ms, 0xab),
        writer: 0xab,
    };
    let five = peers(&["n2", "n3", "n4", "n5"]);
    let acks = vec![
        ack("n2", Verdict::Holds),
        ack("n3", Verdict::Holds),
        ack("n4", sup(3_000)),
        ack("n5", sup(2_500)),
    ];
    let spread = Spread::decide(&five, acks, 4_000);
    assert!(spread.acknowledged(), "3 of 5 hold it");
    let text = spread
        .superseded_answer(at(2_000, 1), 3_000)
        .expect("superseded");
    for part in [
        "superseded: a later change, stamped 3000 ms since the epoch \
         (1970-01-01T00:00:03.000Z) by writer 00000000000000ab and held by n4, undoes this one \
         (stamped 2000 ms, 1970-01-01T00:00:02.000Z, by this node's clock;",
        "a re-created role counts as later",
        "applied (saved here, nothing is rolled back) and is in force on the 3 of 5 members \
         that held it when they answered, only until the later change reaches them",
        "geokv auth list",
        "stamped after the later one",
    ] {
        assert!(text.contains(part), "{part:?} not in {text}");
    }
    assert!(!text.contains("(this node)"), "{text}");
    let plain = Spread::decide(&five, vec![ack("n2", Verdict::Holds)], 4_000);
    assert_eq!(plain.superseded_answer(at(2_000, 1), 3_000), None);
}

/// review-clock35 M2 (b): a later stamp 2 h ahead of this node's clock is
/// refused by every node whose clock is right, so ours stays in force and
/// a retry here is stamped below it again: the answer says so, names the
/// wrong clock, and offers no retry.
#[test]
fn a_later_change_far_ahead_is_named_as_a_wrong_clock_without_a_retry_hint() {
    let now = 1_764_000_000_000;
    let two_hours = 2 * 3600 * 1000;
    let later = Verdict::Superseded {
        stamp: at(now + two_hours, 0xab),
        writer: 0xab,
    };
    let three = peers(&["n2", "n3"]);
    let acks = vec![ack("n2", Verdict::Holds), ack("n3", later)];
    let spread = Spread::decide(&three, acks, 4_000);
    let text = spread
        .superseded_answer(at(now, 1), now)
        .expect("superseded");
    for part in [
        "in force on the 2 of 3 members that held it when they answered",
        "stamped 7200 s ahead of this node's clock (writer 00000000000000ab's clock is wrong)",
        "retrying here will not help",
        "fix that writer's clock",
    ] {
        assert!(text.contains(part), "{part:?} not in {text}");
    }
    assert!(!text.contains("make the change again"), "{text}");
    assert!(!text.contains("only until"), "{text}");
    // Within the bound it is the usual answer.
    let near = Verdict::Superseded {
        stamp: at(now + MAX_OFFSET_MS, 0xab),
        writer: 0xab,
    };
    let spread = Spread::decide(&three, vec![ack("n3", near)], 4_000);
    let text = spread
        .superseded_answer(at(now, 1), now)
        .expect("superseded");
    assert!(text.contains("make the change again"), "{text}");
}

/// review-clock35 L4: this node holding a later change undoing ours (from
/// another node's push, its maker silent) makes the answer superseded,
/// even when every peer held ours; "(this node)" when the later change is
/// this process's own (its writer is our stamp's).
#[test]
fn this_node_holding_a_later_change_makes_it_superseded() {
    let three = peers(&["n2", "n3"]);
    let holds = || vec![ack("n2", Verdict::Holds), ack("n3", Verdict::Holds)];
    let by = |node| Verdict::Superseded {
        stamp: at(3_000, node),
        writer: node,
    };
    let spread = Spread::decide(&three, holds(), 4_000).with_self(by(7));
    assert_eq!((spread.holding, spread.members), (2, 3));
    let text = spread
        .superseded_answer(at(2_000, 1), 3_000)
        .expect("superseded");
    assert!(text.contains("held by this node, undoes"), "{text}");
    assert!(!text.contains("(this node)"), "another writer: {text}");
    let own = Spread::decide(&three, holds(), 4_000).with_self(by(1));
    let text = own
        .superseded_answer(at(2_000, 1), 3_000)
        .expect("superseded");
    assert!(
        text.contains("writer 0000000000000001 (this node)"),
        "{text}"
    );
    let held = Spread::decide(&three, holds(), 4_000).with_self(Verdict::Holds);
    assert_eq!(held.holding, 3);
    assert_eq!(held.superseded_answer(at(2_000, 1), 3_000), None);
}

/// A peer holding a later change is named with that change's stamp as
/// RFC 3339 too, as in the `superseded` answer (review-clock36 L3). Fails
/// before, by reading: raw ms only.
#[test]
fn a_later_change_short_of_a_quorum_is_dated() {
    let later = Verdict::Superseded {
        stamp: Stamp {
            ms: 3_000,
            n: 0,
            node: 9,
        },
        writer: 9,
    };
    let spread = Spread::decide(&peers(&["n2", "n3"]), vec![ack("n2", later)], 5_000);
    let text = spread.short_of_quorum(42, 1_234);
    let part = "n2 holds a later change at 3000 ms (1970-01-01T00:00:03.000Z) from writer \
                0000000000000009";
    assert!(text.contains(part), "{part:?} not in {text}");
}
