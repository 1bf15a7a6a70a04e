//! Shared harness for integration tests: real `geokv node` processes on
//! distinct loopback addresses (127.P.C.x, unique per test process and
//! cluster), real gRPC over real sockets, SIGKILL and restart, and link cuts
//! through each node's fault-injection admin endpoint.
//!
//! One file per concept:
//! - [`cluster`]: the node processes (start, kill, restart, wait, views);
//! - [`admin`]: the admin HTTP port (`transport::admin_client`, HTTPS with
//!   the cluster CA when the cluster runs TLS), layouts, faults, metrics,
//!   and the `geokv` CLI pointed at the cluster;
//! - [`kv`]: client-port helpers (put/get at a level, writers, read-backs);
//! - [`replicas`]: what each replica's engine holds, over the internode API;
//! - [`joiner`]: nodes that are not in the topology file (join, replace);
//! - [`failure_logs`]: the nodes' logs of a failed test, kept.
//!
//! Clusters run as a user would deploy them by default ([`Cluster::start`]):
//! TLS, and `--auth` with an admin token every harness client, admin call
//! and CLI run sends ([`Cluster::anonymous_client`] and [`admin_raw`] send
//! none). Every suite runs so; [`Cluster::start_insecure`] (plaintext, no
//! auth) remains for a test that must speak plaintext. The harness must not hide
//! what a test asserts: helpers start, reach and observe; tests decide.
#![allow(dead_code)]

mod admin;
mod cluster;
mod failure_logs;
mod joiner;
mod kv;
mod replicas;

pub use admin::*;
pub use cluster::*;
pub use joiner::NewNode;
pub use kv::*;
pub use replicas::*;

// The nemesis and the two oracle workloads of tests/nemesis.rs.
pub mod nemesis;
pub mod register;
pub mod ryw;
pub mod set_workload;

/// Shape of a test cluster: datacenters with their node count (one rack
/// per node) and the `default` keyspace's replication.
pub struct Spec {
    pub dcs: Vec<(&'static str, usize)>,
    pub replication: Vec<(&'static str, u32)>,
    pub extra_keyspaces: Vec<(&'static str, Vec<(&'static str, u32)>)>,
    pub gossip_interval_ms: u64,
    pub extra_args: Vec<String>,
}

impl Spec {
    /// Two datacenters of three nodes, rf {dc1:3, dc2:3}, plus `dc1_only {dc1:2}`.
    pub fn two_dc() -> Spec {
        Spec {
            dcs: vec![("dc1", 3), ("dc2", 3)],
            replication: vec![("dc1", 3), ("dc2", 3)],
            extra_keyspaces: vec![("dc1_only", vec![("dc1", 2)])],
            gossip_interval_ms: 100,
            extra_args: Vec::new(),
        }
    }

    /// One datacenter `dc1` of `nodes` nodes at replication `rf`.
    pub fn one_dc(nodes: usize, rf: u32) -> Spec {
        Spec {
            dcs: vec![("dc1", nodes)],
            replication: vec![("dc1", rf)],
            extra_keyspaces: Vec::new(),
            gossip_interval_ms: 100,
            extra_args: Vec::new(),
        }
    }

    /// Datacenters `dc1` and `dc2` of `nodes` nodes each, rf `rf` in both.
    pub fn pair(nodes: usize, rf: u32) -> Spec {
        Spec {
            dcs: vec![("dc1", nodes), ("dc2", nodes)],
            replication: vec![("dc1", rf), ("dc2", rf)],
            extra_keyspaces: Vec::new(),
            gossip_interval_ms: 100,
            extra_args: Vec::new(),
        }
    }
}

/// The topology file of `spec`, node addresses under `127.base.0.base.1.x`.
fn yaml(spec: &Spec, base: (u32, u32)) -> String {
    use geokv::topology::generate;
    let dcs = (spec.dcs.iter().enumerate())
        .map(|(d, (dc, n))| {
            let nodes = (0..*n)
                .map(|i| {
                    let host = 10 * (d + 1) + i + 1;
                    let ip = std::net::IpAddr::from([127, base.0 as u8, base.1 as u8, host as u8]);
                    generate::node(format!("{dc}-n{}", i + 1), ip, [7070, 7071, 7072])
                })
                .collect();
            (dc.to_string(), nodes)
        })
        .collect();
    let mut keyspaces = vec![("default", spec.replication.as_slice())];
    keyspaces.extend(spec.extra_keyspaces.iter().map(|(n, r)| (*n, r.as_slice())));
    generate::one_rack_per_node("geokv-test", 64, dcs, &keyspaces).to_yaml()
}

/// A check whose outside tool (`what`: chromium, promtool) is missing:
/// skipped with a note, but under `CI=true` a failure, since CI installs
/// every tool with `scripts/ensure-deps` and a silent skip there would pass
/// a check that never ran.
pub fn tool_missing(what: &str) {
    if let Err(e) = skip_allowed(std::env::var("CI").ok().as_deref(), what) {
        panic!("{e}");
    }
}

fn skip_allowed(ci: Option<&str>, what: &str) -> Result<(), String> {
    if ci == Some("true") {
        return Err(format!(
            "{what}: CI=true, where scripts/ensure-deps installs it; not skipping"
        ));
    }
    eprintln!("{what}; skipping");
    Ok(())
}

#[test]
fn a_missing_tool_skips_only_outside_ci() {
    assert!(skip_allowed(None, "promtool not on PATH").is_ok());
    assert!(skip_allowed(Some("false"), "promtool not on PATH").is_ok());
    let e = skip_allowed(Some("true"), "promtool not on PATH").unwrap_err();
    assert!(
        e.contains("promtool not on PATH") && e.contains("CI=true"),
        "{e}"
    );
}
