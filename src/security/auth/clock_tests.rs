//! The auth clock's bounds (review-auth29 M2): a change is never stamped at
//! or below what its node has seen, and a state whose clock is far ahead of
//! this node's wall clock is neither installed nor changed.

use proptest::prelude::*;

use super::cells::Stamp;
use super::*;

fn stamp() -> impl Strategy<Value = Stamp> {
    let edge = prop_oneof![
        Just(0u64),
        Just(1),
        Just(u64::MAX - 1),
        Just(u64::MAX),
        any::<u64>()
    ];
    (edge.clone(), edge.clone(), edge).prop_map(|(ms, n, node)| Stamp { ms, n, node })
}

proptest! {
    #[test]
    fn a_new_stamp_is_above_everything_seen(seen in stamp(), now in any::<u64>(), node in any::<u64>()) {
        match Stamp::next(seen, now, node) {
            Some(s) => prop_assert!(s > seen, "{s:?} <= {seen:?}"),
            None => prop_assert!(seen.ms == u64::MAX && seen.n == u64::MAX),
        }
    }
}

#[test]
fn no_stamp_follows_the_largest() {
    let max = Stamp {
        ms: u64::MAX,
        n: u64::MAX,
        node: 0,
    };
    assert_eq!(Stamp::next(max, 5, u64::MAX), None);
    let s = AuthState::default()
        .create_role(max, "x", None, &[])
        .unwrap();
    assert_eq!(s.stamp(5, 1), None);
    // Through a node: refused (its clock is also far ahead), not stamped low.
    let auth = Auth::new(true, s, None);
    let err = auth.change(|s| s.with_role("y", None, &[])).unwrap_err();
    assert!(matches!(err, AuthStateError::ClockAhead { .. }), "{err}");
    assert!(!auth.state().roles().contains_key("y"));
}

fn wall_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.unwrap().as_millis() as u64
}

/// A state with one role, changed at wall time + `ahead_ms`.
fn ahead(ahead_ms: u64) -> AuthState {
    let at = Stamp {
        ms: wall_ms() + ahead_ms,
        n: 0,
        node: 7,
    };
    AuthState::default()
        .create_role(at, "x", None, &[])
        .unwrap()
}

#[test]
fn a_state_whose_clock_is_far_ahead_is_refused_at_install() {
    let auth = Auth::new(true, AuthState::default(), None);
    let err = auth.install(ahead(MAX_OFFSET_MS + 3_600_000)).unwrap_err();
    assert!(matches!(err, InstallError::ClockAhead { .. }), "{err}");
    assert!(err.to_string().contains("ahead"), "{err}");
    assert!(auth.state().is_empty(), "nothing installed");
    // Within the bound it installs.
    assert!(auth.install(ahead(1_000)).unwrap());
}

/// Refused, and counted as refused before it was stamped
/// (`reason="clock_ahead"`, review-clock36 L2; fails before, by reading:
/// not counted).
#[test]
fn no_change_is_made_on_a_state_whose_clock_is_far_ahead() {
    let auth = Auth::new(true, ahead(MAX_OFFSET_MS + 3_600_000), None);
    let rec = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let err = metrics::with_local_recorder(&rec, || {
        auth.change(|s| s.with_role("y", None, &[])).unwrap_err()
    });
    assert!(matches!(err, AuthStateError::ClockAhead { .. }), "{err}");
    assert!(err.to_string().contains("clock ahead"), "{err}");
    assert!(!auth.state().roles().contains_key("y"));
    let line = "geokv_auth_changes_refused_total{reason=\"clock_ahead\"} 1\n";
    let text = rec.handle().render();
    assert!(text.contains(line), "{line:?} not in {text}");
}

/// A peer's offset is kept with when it was measured on the monotonic
/// clock, so its age in a `clock_skew` text is a true duration even after
/// this node's wall clock is stepped (review-clock36 M1). Fails before,
/// by reading: it was kept with the wall time, so 41 s on the monotonic
/// clock read as 0 s (a wall time is far past any monotonic one).
#[test]
fn an_offset_is_aged_on_the_monotonic_clock() {
    let auth = Auth::new(true, AuthState::default(), None);
    auth.heard_clock("n2", Some(-2 * 3600 * 1000));
    let later = super::changes::mono_ms() + 41_000;
    let far = auth.clocks.lock().refusal(None, later).expect("1 far of 1");
    let age = far.offsets[0].age_ms;
    assert!((41_000..50_000).contains(&age), "{age}");
    // The text gives the age measured (a stalled machine may add a second).
    let said = format!("measured {} s ago", age / 1000);
    assert!(far.to_string().contains(&said), "{far}");
}

/// A peer whose clock is far ahead offers its state every second and on
/// every change: the refusal is logged at most once a minute (each one is
/// counted), and again at once if the wall clock steps back a minute.
#[test]
fn a_refusal_for_a_clock_ahead_is_logged_at_most_once_a_minute() {
    use super::changes::warn_due;
    let last = std::sync::atomic::AtomicU64::new(0);
    let t = 1_764_000_000_000;
    assert!(warn_due(&last, t), "the first");
    for later in [t, t + 1, t + 59_999] {
        assert!(!warn_due(&last, later), "{later}");
    }
    assert!(warn_due(&last, t + 60_000), "a minute on");
    assert!(!warn_due(&last, t + 60_001));
    assert!(warn_due(&last, t - 1), "stepped back a minute");
    assert!(!warn_due(&last, t + 59_998));
}

/// Offers from two peers whose clocks are 2 h behind this node's: every
/// change here is refused before it is stamped (review-authq33 H1), and
/// this node's answers carry its clock.
#[test]
fn offers_from_peers_far_behind_make_changes_here_refused() {
    let a = Auth::new(true, AuthState::default(), None);
    let mut offer = sync::to_message(&AuthState::default());
    assert!(offer.sent_at_ms.abs_diff(wall_ms()) < 10_000);
    offer.sent_at_ms -= 2 * 3600 * 1000;
    let answer = sync::serve_from(&a, "n2", wall_ms(), &offer).unwrap();
    assert!(answer.sent_at_ms.abs_diff(wall_ms()) < 10_000);
    sync::serve_from(&a, "n3", wall_ms(), &offer).unwrap();
    let err = a.change(|s| s.with_role("y", None, &[])).unwrap_err();
    assert!(matches!(err, AuthStateError::FarFromPeers(_)), "{err}");
    assert!(err.to_string().starts_with("clock_skew: "), "{err}");
    assert!(a.state().roles().is_empty());
    // An older build's offer (no clock) drops that peer's offset
    // (review-clock35 L2): n2 alone, 2 h behind, still refuses; with n2's
    // dropped too, nothing is measured and nothing is refused on clocks.
    offer.sent_at_ms = 0;
    sync::serve_from(&a, "n3", wall_ms(), &offer).unwrap();
    assert!(a.change(|s| s.with_role("y", None, &[])).is_err());
    sync::serve_from(&a, "n2", wall_ms(), &offer).unwrap();
    assert!(a.change(|s| s.with_role("y", None, &[])).is_ok());
}

/// review-clock35 L1 (b): the members are read from the hook on every
/// change, not captured once: n2 and n3 2 h behind, n4 within, refuses;
/// n2 removed from the view, the next change is made.
#[test]
fn the_members_are_read_on_every_change() {
    let a = Auth::new(true, AuthState::default(), None);
    let view = Arc::new(std::sync::Mutex::new(vec![
        "n2".to_string(),
        "n3".to_string(),
        "n4".to_string(),
    ]));
    let read = view.clone();
    a.set_members(Arc::new(move || read.lock().unwrap().clone()));
    let offer = sync::to_message(&AuthState::default());
    let behind = offer.sent_at_ms + 2 * 3600 * 1000;
    sync::serve_from(&a, "n2", behind, &offer).unwrap();
    sync::serve_from(&a, "n3", behind, &offer).unwrap();
    sync::serve_from(&a, "n4", offer.sent_at_ms, &offer).unwrap();
    let err = a.change(|s| s.with_role("y", None, &[])).unwrap_err();
    assert!(matches!(err, AuthStateError::FarFromPeers(_)), "{err}");
    view.lock().unwrap().retain(|m| m != "n2");
    a.change(|s| s.with_role("y", None, &[]))
        .expect("1 far, 1 within");
}

/// review-clock34b L2: the serving side measures the sender against the
/// time the offer reached the handler (passed in), not when the blocking
/// pool ran it: two offers sent now but received, as read at the handler,
/// 2 h later make this node 2 h ahead of both, whatever the clock reads
/// when they are served. Fails before, by reading: `serve_from` read
/// `now_ms()` itself, inside the pool's closure.
#[test]
fn the_serving_side_measures_against_the_time_the_offer_arrived() {
    let a = Auth::new(true, AuthState::default(), None);
    let offer = sync::to_message(&AuthState::default());
    let arrived = offer.sent_at_ms + 2 * 3600 * 1000;
    sync::serve_from(&a, "n2", arrived, &offer).unwrap();
    sync::serve_from(&a, "n3", arrived, &offer).unwrap();
    let err = a.change(|s| s.with_role("y", None, &[])).unwrap_err();
    assert!(
        err.to_string().contains("n2 -7200.000 s (this node ahead)"),
        "{err}"
    );
}

/// review-clock35b H1 through a change: a quorum of the members heard
/// since start, but one of the three far and the fourth not heard, is
/// answered "clock not yet measured" (503, nothing stamped), not made;
/// once a third member is known within, the change is made.
#[test]
fn a_change_waits_until_a_quorum_is_known_within() {
    let a = Auth::new(true, AuthState::default(), None);
    let members: Vec<String> = ["n2", "n3", "n4", "n5"].map(String::from).into();
    a.set_members(Arc::new(move || members.clone()));
    let offer = sync::to_message(&AuthState::default());
    let behind = offer.sent_at_ms + 2 * 3600 * 1000;
    sync::serve_from(&a, "n2", offer.sent_at_ms, &offer).unwrap();
    sync::serve_from(&a, "n3", behind, &offer).unwrap();
    let err = a.change(|s| s.with_role("y", None, &[])).unwrap_err();
    assert!(matches!(err, AuthStateError::NotYetHeard(_)), "{err}");
    assert!(!a.state().roles().contains_key("y"), "nothing made");
    sync::serve_from(&a, "n4", offer.sent_at_ms, &offer).unwrap();
    a.change(|s| s.with_role("y", None, &[]))
        .expect("3 of 5 known within");
}
