//! Permission decisions, merges and the authenticator.

use super::*;
use proptest::prelude::*;

fn perm() -> impl Strategy<Value = Perm> {
    prop_oneof![Just(Perm::Read), Just(Perm::Write), Just(Perm::Admin)]
}

fn keyspace() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_string()),
        Just("a".to_string()),
        Just("b".to_string())
    ]
}

fn role() -> impl Strategy<Value = Role> {
    proptest::collection::vec((keyspace(), perm()), 0..6).prop_map(|gs| {
        let mut r = Role::default();
        for (ks, p) in gs {
            r.grants.entry(ks).or_default().insert(p);
        }
        r
    })
}

proptest! {
    /// A role may do `perm` in `ks` exactly when it holds `perm` or admin,
    /// on `ks` itself or on `*`.
    #[test]
    fn decisions_follow_the_grants(r in role(), ks in prop_oneof![Just("a"), Just("b"), Just("c")], p in perm()) {
        let held = |k: &str, q: Perm| r.grants.get(k).is_some_and(|s| s.contains(&q));
        let expected = [ks, "*"].iter().any(|k| held(k, p) || held(k, Perm::Admin));
        prop_assert_eq!(r.allows(ks, p), expected);
        if r.allows(ks, Perm::Admin) {
            prop_assert!(r.allows(ks, Perm::Read) && r.allows(ks, Perm::Write));
        }
    }

    /// Grant then revoke of a permission not held before leaves the role as it was.
    #[test]
    fn revoke_undoes_grant(r in role(), ks in keyspace(), p in perm()) {
        prop_assume!(!r.grants.get(&ks).is_some_and(|s| s.contains(&p)));
        let held: Vec<(&str, Perm)> = (r.grants.iter())
            .flat_map(|(k, ps)| ps.iter().map(move |q| (k.as_str(), *q)))
            .collect();
        let s = draft(&AuthState::default()).with_role("x", None, &held).unwrap();
        prop_assert_eq!(&s.roles()["x"], &r);
        let granted = draft(&s).with_grant("x", &ks, p).unwrap();
        let probe = if ks == "*" { "zz" } else { ks.as_str() };
        prop_assert!(granted.roles()["x"].allows(probe, p));
        let back = draft(&granted).with_revoke("x", &ks, p).unwrap();
        prop_assert_eq!(&back.roles()["x"], &r);
        prop_assert!(back.clock() > granted.clock() && granted.clock() > s.clock());
    }
}

/// A change made now on node 1 (wall clock 1 ms).
pub(super) fn draft(s: &AuthState) -> Draft<'_> {
    Draft {
        state: s,
        at: s.stamp(1, 1).unwrap(),
    }
}

#[test]
fn changes_check_names_and_roles() {
    let s = AuthState::default();
    assert_eq!(s.decide("nobody", "a", Perm::Read), Decision::UnknownRole);
    let s = draft(&s)
        .with_role("app", None, &[("a", Perm::Read)])
        .unwrap();
    assert_eq!(s.version(), 1);
    let s = &draft(&s);
    assert_eq!(s.decide("app", "a", Perm::Read), Decision::Allow);
    assert_eq!(s.decide("app", "a", Perm::Write), Decision::Deny);
    assert_eq!(s.decide("app", "b", Perm::Read), Decision::Deny);
    assert_eq!(
        s.with_role("app", None, &[]),
        Err(ChangeError::Exists("app".into()))
    );
    assert!(matches!(
        s.with_role("a b", None, &[]),
        Err(ChangeError::BadName(_))
    ));
    assert!(matches!(
        s.with_grant("ghost", "a", Perm::Read),
        Err(ChangeError::NoRole(_))
    ));
    assert!(matches!(
        s.with_grant("app", "a/b", Perm::Read),
        Err(ChangeError::BadKeyspace(_))
    ));
    assert_eq!("WRITE".parse::<Perm>(), Ok(Perm::Write));
    assert!("root".parse::<Perm>().is_err());
    let listed = s.without_role("app").unwrap();
    assert!(listed.roles().is_empty());
    let public = s.public().to_string();
    assert!(public.contains("\"read\""), "{public}");
}

pub(super) fn state_with_token(role: &str, secret: &str, grants: &[(&str, Perm)]) -> AuthState {
    let phc = secret::hash(secret).unwrap();
    draft(&AuthState::default())
        .with_role(role, Some(phc), grants)
        .unwrap()
}

pub(super) fn bearer(s: &str) -> Credential {
    Credential::Bearer(Token::parse(s).unwrap())
}

#[tokio::test]
async fn check_authenticates_then_authorizes() {
    let auth = Auth::new(
        true,
        state_with_token("app", "s3", &[("a", Perm::Read)]),
        None,
    );
    assert_eq!(
        auth.check(&Credential::None, None).await,
        Err(AuthError::Missing)
    );
    assert_eq!(
        auth.check(&Credential::Malformed, None).await,
        Err(AuthError::Malformed)
    );
    assert_eq!(
        auth.check(&bearer("app:wrong"), Some(("a", Perm::Read)))
            .await,
        Err(AuthError::BadToken("app".into()))
    );
    assert_eq!(
        auth.check(&bearer("app:s3"), Some(("a", Perm::Read))).await,
        Ok("app".into())
    );
    let denied = auth
        .check(&bearer("app:s3"), Some(("a", Perm::Write)))
        .await
        .unwrap_err();
    assert!(denied.is_denied());
    assert_eq!(
        denied.to_string(),
        "role 'app' lacks write permission on keyspace 'a'"
    );
    // Certificates name a role; it must exist.
    assert_eq!(
        auth.check(&Credential::Certificate("app".into()), None)
            .await,
        Ok("app".into())
    );
    assert_eq!(
        auth.check(&Credential::Certificate("bob".into()), None)
            .await,
        Err(AuthError::UnknownRole("bob".into()))
    );
    // A node that does not enforce lets everything through.
    let off = Auth::new(false, AuthState::default(), None);
    assert!(off
        .check(&Credential::None, Some(("a", Perm::Write)))
        .await
        .is_ok());
}

#[tokio::test]
async fn a_token_is_verified_once_per_state_version() {
    let auth = Auth::new(
        true,
        state_with_token("app", "s3", &[("a", Perm::Read)]),
        None,
    );
    assert!(auth.authenticate(&bearer("app:s3")).await.is_ok());
    assert_eq!(auth.cache.lock().len(), 1);
    // Swap the role's hash for one of another secret without a new state
    // in force (same generation): the cached verdict stands, so argon2 was
    // not run again.
    let s = auth.state();
    let mut cells = s.cells.clone();
    let app = cells.get_mut("app").unwrap().created.as_mut().unwrap();
    app.secret = Some(secret::hash("other").unwrap());
    let (generation, _) = auth.snapshot();
    auth.in_force.store(Arc::new(InForce {
        generation,
        state: Arc::new(AuthState::from_cells(s.clock(), cells, None)),
    }));
    assert!(
        auth.authenticate(&bearer("app:s3")).await.is_ok(),
        "served from the cache"
    );
    // A new state in force (the way every real change arrives) drops the cache.
    auth.change(|s| s.with_grant("app", "b", Perm::Read))
        .unwrap();
    assert_eq!(
        auth.authenticate(&bearer("app:s3")).await,
        Err(AuthError::BadToken("app".into()))
    );
    assert_eq!(
        auth.authenticate(&bearer("app:other")).await,
        Ok("app".into())
    );
}

#[tokio::test]
async fn revoke_and_drop_apply_to_cached_tokens_at_once() {
    let auth = Auth::new(
        true,
        state_with_token("app", "s3", &[("a", Perm::Write)]),
        None,
    );
    let cred = bearer("app:s3");
    assert!(auth.check(&cred, Some(("a", Perm::Write))).await.is_ok());
    auth.change(|s| s.with_revoke("app", "a", Perm::Write))
        .unwrap();
    assert!(auth
        .check(&cred, Some(("a", Perm::Write)))
        .await
        .unwrap_err()
        .is_denied());
    auth.change(|s| s.without_role("app")).unwrap();
    assert_eq!(
        auth.check(&cred, None).await,
        Err(AuthError::BadToken("app".into()))
    );
}

#[test]
fn bootstrap_creates_the_admin_role_only_on_a_first_start() {
    let auth = Auth::new(true, AuthState::default(), None);
    let token = Token::parse("admin:boot").unwrap();
    assert!(auth.bootstrap(&token).unwrap());
    assert_eq!(
        auth.state().decide("admin", "anything", Perm::Admin),
        Decision::Allow
    );
    assert!(!auth.bootstrap(&Token::parse("root:x").unwrap()).unwrap());
    assert!(!auth.state().roles().contains_key("root"));
}

#[test]
fn states_round_trip_the_wire_and_merge_on_install() {
    let a = Auth::new(true, AuthState::default(), None);
    let b = Auth::new(true, AuthState::default(), None);
    a.change(|s| s.with_role("r", None, &[("*", Perm::Read)]))
        .unwrap();
    let reply = sync::serve(&b, &sync::to_message(&a.state())).unwrap();
    assert_eq!(*b.state(), *a.state());
    assert_eq!(
        sync::from_message(&reply).unwrap().as_ref(),
        Some(&*a.state())
    );
    let empty = crate::proto::v1::internode::AuthMessage::default();
    assert_eq!(sync::from_message(&empty).unwrap(), None);
    assert!(
        !b.install(AuthState::default()).unwrap(),
        "older states change nothing"
    );
}

#[tokio::test]
async fn wrong_secrets_from_one_address_are_refused_before_verifying() {
    let auth = Auth::new(
        true,
        state_with_token("app", "s3", &[("a", Perm::Read)]),
        None,
    );
    let (bad, good) = ("10.1.1.1".parse().unwrap(), "10.2.2.2".parse().unwrap());
    let need = Some(("a", Perm::Read));
    // The good client authenticates before the guesser starts.
    let ok = auth.check_from(&bearer("app:s3"), need, Some(good)).await;
    assert_eq!(ok, Ok("app".into()));
    let burst = throttle::ThrottleConfig::default().burst;
    for i in 0..burst {
        let guess = bearer(&format!("app:guess{i}"));
        let res = auth.check_from(&guess, need, Some(bad)).await;
        assert_eq!(res, Err(AuthError::BadToken("app".into())), "guess {i}");
    }
    // Even the right secret is not verified for that address now.
    let refused = auth
        .check_from(&bearer("app:guess99"), need, Some(bad))
        .await;
    assert!(
        matches!(refused, Err(AuthError::Throttled { addr, retry_after_secs }) if addr == bad && retry_after_secs >= 1),
        "{refused:?}"
    );
    assert!(!refused.unwrap_err().is_denied(), "UNAUTHENTICATED / 401");
    // A token already verified good is not held up, from any address;
    // another address is not held up either.
    assert_eq!(
        auth.check_from(&bearer("app:s3"), need, Some(bad)).await,
        Ok("app".into())
    );
    assert_eq!(
        auth.check_from(&bearer("app:nope"), need, Some(good)).await,
        Err(AuthError::BadToken("app".into()))
    );
}

/// `SyncAuth`'s verdicts (review-fix-types T2): an offer whose save failed
/// may have been written ("maybe", INTERNAL); one that does not decode
/// installed nothing ("no", INVALID_ARGUMENT). Both said "no" before.
#[test]
fn a_sync_whose_save_failed_may_have_been_applied() {
    struct FailWrites;
    impl crate::engine::testing::Hooks for FailWrites {
        fn before_write(
            &self,
            _: &crate::engine::WriteBatch,
        ) -> Result<(), crate::engine::EngineError> {
            Err(crate::engine::EngineError::SyncFailed("disk gone".into()))
        }
    }
    let a = Auth::new(true, AuthState::default(), None);
    a.change(|s| s.with_role("r", None, &[("*", Perm::Read)]))
        .unwrap();
    let failing: Arc<dyn Engine> = Arc::new(crate::engine::testing::Hooked::new(FailWrites));
    let b = Auth::new(true, AuthState::default(), Some(failing));
    let verdict = |e: sync::ServeError| {
        let status = tonic::Status::from(crate::error::GeokvError::from(e));
        let applied = status.metadata().get(crate::proto::APPLIED_METADATA);
        let applied = applied.and_then(|v| v.to_str().ok()).unwrap_or("");
        (status.code(), applied.to_string())
    };
    let offer = sync::to_message(&a.state());
    let failed = sync::serve(&b, &offer).expect_err("the save fails");
    assert_eq!(verdict(failed), (tonic::Code::Internal, "maybe".into()));
    let garbage = crate::proto::v1::internode::AuthMessage {
        version: 1,
        json: b"{".to_vec(),
        ..Default::default()
    };
    let refused = sync::serve(&b, &garbage).expect_err("does not decode");
    let no = (tonic::Code::InvalidArgument, "no".to_string());
    assert_eq!(verdict(refused), no);
}
