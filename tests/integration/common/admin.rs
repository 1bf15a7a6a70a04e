//! The admin HTTP port through `geokv::transport::admin_client` (HTTPS with
//! the cluster CA for nodes of TLS clusters), what tests read from it
//! (layouts, metrics) and do with it (fault injection), and the `geokv`
//! CLI run against the cluster with its CA. Must not: retry or interpret
//! answers beyond parsing them.

use super::Cluster;
use geokv::layout::Layout;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The cluster CA of admin ports serving HTTPS (nodes of TLS clusters), so
/// [`admin`] speaks HTTPS to them.
static ADMIN_CA: std::sync::Mutex<BTreeMap<SocketAddr, PathBuf>> =
    std::sync::Mutex::new(BTreeMap::new());

/// The admin token [`admin`] sends to an admin port (nodes of clusters
/// running `--auth`).
static ADMIN_TOKEN: std::sync::Mutex<BTreeMap<SocketAddr, String>> =
    std::sync::Mutex::new(BTreeMap::new());

/// Makes [`admin`] dial `addr` over HTTPS trusting `ca`.
pub fn admin_over_https(addr: SocketAddr, ca: &Path) {
    ADMIN_CA.lock().unwrap().insert(addr, ca.to_path_buf());
}

/// Makes [`admin`] send `token` (`ROLE:SECRET`) to `addr`, or nothing.
pub fn admin_sends_token(addr: SocketAddr, token: Option<&str>) {
    let mut tokens = ADMIN_TOKEN.lock().unwrap();
    match token {
        Some(t) => tokens.insert(addr, t.to_string()),
        None => tokens.remove(&addr),
    };
}

/// One HTTP/1.1 request to an admin port (5 s to answer), with the
/// cluster's admin token when it runs `--auth`.
pub async fn admin(addr: SocketAddr, method: &str, path: &str) -> Result<String, String> {
    admin_within(addr, method, path, Duration::from_secs(5)).await
}

/// [`admin`] with a chosen deadline for the answer (e.g. a whole repair
/// sweep). On a non-2xx answer the error holds the status line and the body.
pub async fn admin_within(
    addr: SocketAddr,
    method: &str,
    path: &str,
    limit: Duration,
) -> Result<String, String> {
    let tls = admin_tls(addr)?;
    let token = ADMIN_TOKEN.lock().unwrap().get(&addr).cloned();
    let addr = addr.to_string();
    let call = (geokv::transport::admin_client::call)(
        &addr,
        tls.as_ref(),
        method,
        path,
        token.as_deref(),
        "",
    );
    let answer = tokio::time::timeout(limit + Duration::from_secs(2), call)
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    if !answer.is_success() {
        return Err(format!("HTTP/1.1 {}\n{}", answer.status, answer.body));
    }
    Ok(answer.body)
}

/// How [`admin`] reaches `addr`, for the library's calls
/// (`geokv::local_cluster::wait_healthy`): the cluster CA and admin token
/// registered for it.
pub fn admin_access(addr: SocketAddr) -> geokv::local_cluster::AdminAccess {
    geokv::local_cluster::AdminAccess {
        ca: ADMIN_CA.lock().unwrap().get(&addr).cloned(),
        token: ADMIN_TOKEN.lock().unwrap().get(&addr).cloned(),
    }
}

/// The TLS connector [`admin`] dials `addr` with: the cluster CA's, or
/// none for a plaintext admin port.
fn admin_tls(addr: SocketAddr) -> Result<Option<tokio_rustls::TlsConnector>, String> {
    let ca = ADMIN_CA.lock().unwrap().get(&addr).cloned();
    ca.map(|ca| geokv::transport::tls::admin::operator_connector(&ca, None))
        .transpose()
        .map_err(|e| e.to_string())
}

/// One admin answer in full: status code, headers (lower-cased names), body.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// One request to an admin port read in full (headers too), sending
/// `token` as `authorization: Bearer` when given (not the cluster's);
/// HTTPS like [`admin`].
pub async fn admin_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> RawAnswer {
    let tls = admin_tls(addr).expect("the cluster CA");
    let answer = geokv::transport::admin_client::call(
        &addr.to_string(),
        tls.as_ref(),
        method,
        path,
        token,
        "",
    )
    .await
    .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    RawAnswer {
        status: answer.status,
        headers: answer.headers,
        body: answer.body,
    }
}

/// A node's layout from `GET /layout`; `None` if it did not answer.
pub async fn layout_at(admin_addr: SocketAddr) -> Option<Layout> {
    let body = admin(admin_addr, "GET", "/layout").await.ok()?;
    serde_json::from_str(&body).ok()
}

/// Waits (up to 30 s each) until every node at `admins` answers `GET
/// /layout` with a layout `ok` accepts; the last one.
pub async fn until_every_layout(admins: &[SocketAddr], ok: impl Fn(&Layout) -> bool) -> Layout {
    let mut last = None;
    for addr in admins {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let l = layout_at(*addr).await;
            if l.as_ref().is_some_and(&ok) {
                last = l;
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{addr}: {:?}",
                l.map(|l| l.version)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    last.expect("at least one node")
}

/// A metric's value on the node at `admin_addr` (sum over the label sets
/// matching `filter`; 0 if it did not answer).
pub async fn metric_at(admin_addr: SocketAddr, name: &str, filter: &str) -> f64 {
    let body = admin(admin_addr, "GET", "/metrics")
        .await
        .unwrap_or_default();
    metric_in(&body, name, filter)
}

/// The sum of the series named exactly `name` in Prometheus text `body`
/// (parsed by `geokv::admin::exposition`) that `filter` picks: "" every
/// series of that name, else each comma-separated part is a label `k="v"`
/// the series has or, without `=`, a piece of one of its label values.
fn metric_in(body: &str, name: &str, filter: &str) -> f64 {
    let picked = |s: &geokv::admin::exposition::Series| {
        (filter.split(',').map(str::trim).filter(|p| !p.is_empty())).all(|part| {
            match part.split_once('=') {
                Some((k, v)) => s.labels.get(k).map(String::as_str) == Some(v.trim_matches('"')),
                None => s.labels.values().any(|v| v.contains(part)),
            }
        })
    };
    geokv::admin::exposition::parse(body)
        .iter()
        .filter(|s| s.name == name && picked(s))
        .map(|s| s.value)
        .sum()
}

#[test]
fn metric_in_sums_only_the_series_of_that_exact_name() {
    let body = "# TYPE foo counter\nfoo{op=\"put\"} 1\nfoo{op=\"get\"} 2\n\
        foo_total{op=\"put\"} 40\nfoobar 100\n";
    assert_eq!(metric_in(body, "foo", ""), 3.0);
    assert_eq!(metric_in(body, "foo", "op=\"put\""), 1.0);
    assert_eq!(metric_in(body, "foo", "put"), 1.0);
    let two = "bar{from_dc=\"dc1\",lane=\"urgent\"} 5\nbar{from_dc=\"dc1\",lane=\"backlog\"} 7\n";
    assert_eq!(
        metric_in(two, "bar", "from_dc=\"dc1\",lane=\"urgent\""),
        5.0
    );
    assert_eq!(metric_in(two, "bar", "from_dc=\"dc1\""), 12.0);
    assert_eq!(metric_in(body, "foo_total", ""), 40.0);
    assert_eq!(metric_in(body, "fo", ""), 0.0);
}

/// `geokv <args>` with nothing from the caller's environment about TLS or
/// tokens: (success, stdout + stderr).
pub fn geokv_cli(args: &[&str]) -> (bool, String) {
    run_cli(
        Command::new(env!("CARGO_BIN_EXE_geokv"))
            .args(args)
            .env_remove("GEOKV_CA")
            .env_remove("GEOKV_TOKEN"),
    )
}

/// Runs a `geokv` command: (success, stdout + stderr).
fn run_cli(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("run geokv");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

impl Cluster {
    /// A `geokv <args>` command trusting this cluster's CA (`GEOKV_CA`)
    /// and sending its admin token (`GEOKV_TOKEN`), if any.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_geokv"));
        cmd.args(args)
            .env_remove("GEOKV_CA")
            .env_remove("GEOKV_TOKEN");
        if let Some(ca) = &self.tls_ca {
            cmd.env("GEOKV_CA", ca);
        }
        if let Some(t) = &self.admin_token {
            cmd.env("GEOKV_TOKEN", t);
        }
        cmd
    }

    /// [`Cluster::cli`] without `GEOKV_CA` (the admin token still sent): for
    /// tests of what `--ca` does.
    pub fn cli_without_ca(&self, args: &[&str]) -> (bool, String) {
        run_cli(self.command(args).env_remove("GEOKV_CA"))
    }

    /// [`Cluster::cli`] without `GEOKV_CA`, trusting `roots` as the system's
    /// roots (`SSL_CERT_FILE`, which the system-roots loader reads instead
    /// of the OS store): for tests of the fallback when `--ca` is absent.
    pub fn cli_with_system_roots(&self, roots: &Path, args: &[&str]) -> (bool, String) {
        run_cli(
            self.command(args)
                .env_remove("GEOKV_CA")
                .env_remove("SSL_CERT_DIR")
                .env("SSL_CERT_FILE", roots),
        )
    }

    /// A CA of another cluster (in this cluster's directory): its `ca.pem`.
    pub fn foreign_ca(&self) -> PathBuf {
        let dir = self.dir.path().join("foreign-certs");
        geokv::security::certs::init_dir(&dir, "another-cluster").unwrap()
    }

    /// Runs [`Cluster::command`]: (success, stdout + stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String) {
        run_cli(&mut self.command(args))
    }

    /// Cuts (or heals) every link between datacenters `a` and `b`.
    pub async fn partition_dcs(&self, a: &str, b: &str, cut: bool) {
        let verb = if cut { "cut" } else { "heal" };
        for n in &self.nodes {
            if !self.children.contains_key(&n.id) {
                continue;
            }
            let other = if n.dc == a {
                b
            } else if n.dc == b {
                a
            } else {
                continue;
            };
            admin(
                n.admin_address,
                "POST",
                &format!("/faults/{verb}?target={other}"),
            )
            .await
            .expect("fault injection");
        }
    }

    /// Sets a one-way delay on every inter-DC link.
    pub async fn wan_delay(&self, ms: u64) {
        for n in &self.nodes {
            for dc in self.topology.datacenter_names() {
                if dc != n.dc && self.children.contains_key(&n.id) {
                    admin(
                        n.admin_address,
                        "POST",
                        &format!("/faults/delay?dc={dc}&ms={ms}"),
                    )
                    .await
                    .expect("fault injection");
                }
            }
        }
    }

    /// A metric's value on one node (sum over label sets matching `filter`).
    pub async fn metric(&self, id: &str, name: &str, filter: &str) -> f64 {
        metric_at(self.node(id).admin_address, name, filter).await
    }
}
