//! Authentication and permissions with real node processes (issue 12 §2):
//! a cluster started with `--auth` and an admin token refuses clients
//! without a token (UNAUTHENTICATED), tells a read-only role it lacks write
//! on the keyspace (PERMISSION_DENIED), makes a grant and then a revoke
//! made on one node hold on every node within seconds, and guards the admin
//! port's mutating routes (401 without the admin token, 403 for a role that
//! is not admin) while /health stays open and /metrics needs the admin
//! token (authentication is on by default with TLS; `--open-metrics` opens it),
//! where each node exports each peer's clock offset, measured by auth sync.

use crate::common::*;
use geokv::proto::v1::{Consistency, GetRequest, PutRequest, StatusRequest};
use std::time::{Duration, Instant};

const ADMIN: &str = "admin:bootstrap-secret-1";

fn spec(token_file: &std::path::Path) -> Spec {
    Spec {
        dcs: vec![("dc1", 3)],
        replication: vec![("dc1", 3)],
        extra_keyspaces: vec![("other", vec![("dc1", 3)])],
        gossip_interval_ms: 100,
        extra_args: vec![
            "--auth".into(),
            "--admin-token-file".into(),
            token_file.display().to_string(),
        ],
    }
}

fn with_token<T>(msg: T, token: Option<&str>) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    if let Some(t) = token {
        let v = format!("Bearer {t}").parse().unwrap();
        req.metadata_mut().insert("authorization", v);
    }
    req
}

async fn put_as(
    c: &mut Kv,
    keyspace: &str,
    key: &str,
    token: Option<&str>,
) -> Result<(), tonic::Status> {
    let msg = PutRequest {
        keyspace: keyspace.into(),
        key: key.as_bytes().to_vec(),
        value: b"v".to_vec(),
        context: vec![],
        options: opts(Consistency::One),
    };
    c.put(with_token(msg, token)).await.map(|_| ())
}

async fn get_as(c: &mut Kv, key: &str, token: Option<&str>) -> Result<(), tonic::Status> {
    let msg = GetRequest {
        keyspace: "default".into(),
        key: key.as_bytes().to_vec(),
        options: opts(Consistency::One),
    };
    c.get(with_token(msg, token)).await.map(|_| ())
}

/// `geokv <args>` trusting the cluster's CA, with `GEOKV_TOKEN=token`:
/// (success, stdout + stderr).
fn cli(cluster: &Cluster, args: &[&str], token: &str) -> (bool, String) {
    let out = (cluster.command(args))
        .env("GEOKV_TOKEN", token)
        .output()
        .expect("run geokv");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// Waits (up to 15 s) until a put as `token` on every node gives `want`
/// (`None`: success; `Some(code)`: that error); returns how long it took.
async fn until_every_node(cluster: &Cluster, token: &str, want: Option<tonic::Code>) -> Duration {
    let started = Instant::now();
    for n in &cluster.nodes {
        let mut c = cluster.anonymous_client(&n.id);
        loop {
            let got = put_as(&mut c, "default", "k", Some(token))
                .await
                .err()
                .map(|e| e.code());
            if got == want {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "{}: still {got:?}, wanted {want:?}",
                n.id
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    started.elapsed()
}

/// The peers' clock offsets `admin` exports (`geokv_auth_peer_clock_offset_seconds`):
/// peer id → seconds.
async fn clock_offsets(admin: std::net::SocketAddr) -> Vec<(String, f64)> {
    let metrics = admin_raw(admin, "GET", "/metrics", Some(ADMIN)).await;
    assert_eq!(metrics.status, 200, "{metrics:?}");
    let gauges = metrics.body.lines().filter_map(|l| {
        let labels = l.strip_prefix("geokv_auth_peer_clock_offset_seconds{")?;
        let peer = labels.split("peer=\"").nth(1)?.split('"').next()?;
        Some((peer.to_string(), l.rsplit(' ').next()?.parse().ok()?))
    });
    gauges.collect()
}

/// Waits (up to 15 s) until every node exports every other node's clock
/// offset, each near 0 on one machine (review-clock34 M1: the clocks
/// `SyncAuth` carries are recorded by the running nodes, by peer id).
async fn until_clocks_measured(cluster: &Cluster) {
    let started = Instant::now();
    for n in &cluster.nodes {
        loop {
            let offsets = clock_offsets(n.admin_address).await;
            let heard = |p: &str| offsets.iter().any(|(q, o)| q == p && o.abs() < 5.0);
            if cluster.nodes.iter().all(|p| p.id == n.id || heard(&p.id)) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "{}: peers' clocks not measured: {offsets:?}",
                n.id
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_roles_and_permissions_hold_on_every_node() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("admin-token");
    std::fs::write(&token_file, ADMIN).unwrap();
    let cluster = Cluster::start(spec(&token_file)).await;
    let n1 = cluster.node("dc1-n1").clone();

    // No token: UNAUTHENTICATED, before anything is stored.
    let mut c1 = cluster.anonymous_client("dc1-n1");
    let err = put_as(&mut c1, "default", "k", None).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");
    assert!(err.message().contains("Bearer"), "{}", err.message());
    let err = c1.status(StatusRequest {}).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let err = put_as(&mut c1, "default", "k", Some("admin:wrong"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    assert!(err.message().contains("invalid token"), "{}", err.message());
    // The bootstrap admin (created on every node, converged to one) may write.
    put_as(&mut c1, "default", "k", Some(ADMIN))
        .await
        .expect("admin writes");

    // The admin port: open health, guarded metrics and mutations.
    // (Without a credential: the harness's `admin` sends the admin token.)
    let health = admin_raw(n1.admin_address, "GET", "/health", None).await;
    assert_eq!(health.status, 200, "health stays open: {health:?}");
    let metrics = admin_raw(n1.admin_address, "GET", "/metrics", None).await;
    assert_eq!(metrics.status, 401, "metrics need the token: {metrics:?}");
    // With it: 200 on every node, which exports each peer's clock offset.
    until_clocks_measured(&cluster).await;
    let denied = admin_raw(n1.admin_address, "POST", "/repair", None).await;
    assert_eq!(denied.status, 401, "{denied:?}");
    let cut = "/faults/cut?target=dc1-n2";
    let denied = admin_raw(n1.admin_address, "POST", cut, None).await;
    assert_eq!(denied.status, 401, "{denied:?}");

    // A read-only role, made with the CLI on n1 (the token printed once).
    let endpoint = n1.admin_address.to_string();
    let (ok, text) = cli(
        &cluster,
        &["auth", "create-role", "reader", "--endpoint", &endpoint],
        ADMIN,
    );
    assert!(ok, "{text}");
    let reader = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("export GEOKV_TOKEN='"))
        .and_then(|l| l.strip_suffix('\''))
        .expect("token printed")
        .to_string();
    let (ok, text) = cli(
        &cluster,
        &[
            "auth",
            "grant",
            "reader",
            "default",
            "read",
            "--endpoint",
            &endpoint,
        ],
        ADMIN,
    );
    assert!(ok, "{text}");
    let (ok, text) = cli(
        &cluster,
        &["auth", "create-role", "x", "--endpoint", &endpoint],
        "",
    );
    assert!(!ok && text.contains("401"), "no admin token: {text}");
    // A non-admin role is refused on the admin port with 403.
    let (ok, text) = cli(
        &cluster,
        &["auth", "list", "--endpoint", &endpoint],
        &reader,
    );
    assert!(!ok && text.contains("403"), "{text}");
    let (ok, text) = cli(&cluster, &["auth", "list", "--endpoint", &endpoint], ADMIN);
    assert!(
        ok && text.contains("reader") && !text.contains("argon2"),
        "{text}"
    );

    // Every node: the reader reads, and may not write, naming what it lacks.
    until_every_node(&cluster, &reader, Some(tonic::Code::PermissionDenied)).await;
    let mut c3 = cluster.anonymous_client("dc1-n3");
    get_as(&mut c3, "k", Some(&reader))
        .await
        .expect("reader reads");
    let err = put_as(&mut c3, "default", "k", Some(&reader))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    assert_eq!(
        err.message(),
        "role 'reader' lacks write permission on keyspace 'default'"
    );
    let err = put_as(&mut c3, "other", "k", Some(&reader))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        tonic::Code::PermissionDenied,
        "grants are per keyspace"
    );

    // Grant write on n2, then revoke it on n3: each holds on every node within seconds.
    let n2 = cluster.node("dc1-n2").admin_address.to_string();
    let (ok, text) = cli(
        &cluster,
        &[
            "auth",
            "grant",
            "reader",
            "default",
            "write",
            "--endpoint",
            &n2,
        ],
        ADMIN,
    );
    assert!(ok, "{text}");
    let took = until_every_node(&cluster, &reader, None).await;
    eprintln!("grant in force on every node after {took:?}");
    // The CLI's data commands take the token from GEOKV_TOKEN too.
    let client_ep = cluster.client_url("dc1-n3");
    let (ok, text) = cli(
        &cluster,
        &["put", "k2", "v2", "--endpoint", &client_ep],
        &reader,
    );
    assert!(ok, "{text}");
    let (ok, text) = cli(&cluster, &["put", "k2", "v2", "--endpoint", &client_ep], "");
    assert!(!ok && text.contains("UNAUTHENTICATED"), "{text}");
    let n3 = cluster.node("dc1-n3").admin_address.to_string();
    let (ok, text) = cli(
        &cluster,
        &[
            "auth",
            "revoke",
            "reader",
            "default",
            "write",
            "--endpoint",
            &n3,
        ],
        ADMIN,
    );
    assert!(ok, "{text}");
    let took = until_every_node(&cluster, &reader, Some(tonic::Code::PermissionDenied)).await;
    eprintln!("revoke in force on every node after {took:?}");
    assert!(took < Duration::from_secs(10), "revoke took {took:?}");

    let refused = cluster
        .metric("dc1-n1", "geokv_auth_denied_total", "reason=\"missing\"")
        .await;
    assert!(refused >= 1.0, "refusals counted: {refused}");
}
