//! The limit on failed authentications (`security::auth::throttle`: 10 in
//! a row per client address, then one more every 6 s) against real node
//! processes: on the client port, ten wrong tokens are told
//! `invalid token`, the eleventh `UNAUTHENTICATED … too many failed
//! authentications … try again in N s`, and so is a *right* token never
//! verified on that node (a guesser cannot confirm a hit), while a token
//! already verified good still works; on the admin port, ten wrong tokens
//! get 401 and the eleventh 429 with `Retry-After`. Refusals are counted in
//! `geokv_auth_denied_total{reason="throttled"}`.

use crate::common::*;
use geokv::proto::v1::StatusRequest;
use std::time::{Duration, Instant};

/// The failures an address may make in a row, and the seconds per refill.
const BURST: usize = 10;
const REFILL_SECS: u64 = 6;

/// `Status` on `c` presenting `token`.
async fn status_as(c: &mut Kv, token: &str) -> Result<(), tonic::Status> {
    let mut req = tonic::Request::new(StatusRequest {});
    let v = format!("Bearer {token}").parse().expect("ASCII token");
    req.metadata_mut().insert("authorization", v);
    c.status(req).await.map(|_| ())
}

/// The `N` of "try again in N s".
fn retry_secs(message: &str) -> u64 {
    let rest = message.split("try again in ").nth(1).expect("a retry hint");
    rest.split(' ')
        .next()
        .unwrap()
        .parse()
        .expect("whole seconds")
}

/// The most attempts before the throttle may hold, given the time the
/// failures took (one failure is refilled every 6 s).
fn allowed_before_throttle(began: Instant) -> usize {
    BURST + (began.elapsed().as_secs() / REFILL_SECS) as usize
}

/// Waits (up to 15 s) until node `id` has the auth state version `want`.
async fn until_version(cluster: &Cluster, id: &str, want: f64) {
    let began = Instant::now();
    loop {
        let v = cluster.metric(id, "geokv_auth_version", "").await;
        if v == want {
            return;
        }
        assert!(began.elapsed() < Duration::from_secs(15), "{id}: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_throttled_after_ten_on_grpc_and_the_admin_port() {
    let cluster = Cluster::start(Spec::one_dc(2, 2)).await;
    let admin_token = cluster.admin_token.clone().expect("--auth by default");
    let n2 = cluster.node("dc1-n2").clone();

    // A role made on n2; n1 learns it but never verifies its token.
    let n2_admin = n2.admin_address.to_string();
    let (ok, text) = cluster.cli(&["auth", "create-role", "guesser", "--endpoint", &n2_admin]);
    assert!(ok, "{text}");
    let right = (text.lines())
        .find_map(|l| l.trim().strip_prefix("export GEOKV_TOKEN='"))
        .and_then(|l| l.strip_suffix('\''))
        .expect("token printed")
        .to_string();
    let version = cluster.metric("dc1-n2", "geokv_auth_version", "").await;
    until_version(&cluster, "dc1-n1", version).await;

    // gRPC on n1: the admin token is verified good (under this version).
    let mut c = cluster.anonymous_client("dc1-n1");
    status_as(&mut c, &admin_token).await.expect("admin token");
    let began = Instant::now();
    for i in 1..=BURST {
        let err = status_as(&mut c, "guesser:wrong").await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated, "attempt {i}");
        assert!(
            err.message().contains("invalid token"),
            "attempt {i}: {err:?}"
        );
    }
    let mut attempt = BURST;
    let throttled = loop {
        attempt += 1;
        let err = status_as(&mut c, "guesser:wrong").await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");
        if err.message().contains("too many failed authentications") {
            break err;
        }
        assert!(attempt <= allowed_before_throttle(began), "never throttled");
    };
    eprintln!(
        "gRPC throttled at attempt {attempt} after {:?}",
        began.elapsed()
    );
    let wait = retry_secs(throttled.message());
    assert!((1..=REFILL_SECS).contains(&wait), "{throttled:?}");
    // The right token of that role is not even verified now...
    let err = status_as(&mut c, &right).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");
    assert!(err.message().contains("too many failed"), "{err:?}");
    // ... while a token already verified good is never held up.
    status_as(&mut c, &admin_token)
        .await
        .expect("a known-good token");
    let counted = (cluster.metric("dc1-n1", "geokv_auth_denied_total", "throttled")).await;
    assert!(counted >= 2.0, "throttled refusals counted: {counted}");

    // The admin port of n2, which counts what it sees (n1's refusals of the
    // same address do not count here): 401 ten times, then 429. The admin
    // token is verified good first, under the state in force.
    let ok = admin_raw(n2.admin_address, "GET", "/layout", Some(&admin_token)).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    let get = |token: &'static str| admin_raw(n2.admin_address, "GET", "/layout", Some(token));
    let began = Instant::now();
    for i in 1..=BURST {
        let a = get("guesser:wrong").await;
        assert_eq!(a.status, 401, "attempt {i}: {a:?}");
    }
    let mut attempt = BURST;
    let throttled = loop {
        attempt += 1;
        let a = get("guesser:wrong").await;
        if a.status == 429 {
            break a;
        }
        assert_eq!(a.status, 401, "{a:?}");
        assert!(attempt <= allowed_before_throttle(began), "never throttled");
    };
    eprintln!(
        "admin throttled at attempt {attempt} after {:?}",
        began.elapsed()
    );
    assert!(
        throttled.body.contains("too many failed authentications"),
        "{throttled:?}"
    );
    let retry_after = throttled.headers.get("retry-after").expect("Retry-After");
    let retry_after: u64 = retry_after.parse().expect("seconds");
    assert!((1..=REFILL_SECS).contains(&retry_after), "{throttled:?}");
    let ok = admin_raw(n2.admin_address, "GET", "/layout", Some(&admin_token)).await;
    assert_eq!(ok.status, 200, "a known-good admin token: {ok:?}");
    let counted = (cluster.metric("dc1-n2", "geokv_auth_denied_total", "throttled")).await;
    assert!(counted >= 1.0, "throttled refusals counted: {counted}");
}
