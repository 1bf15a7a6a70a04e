//! `geokv dev` operated like ccm, with real processes: start a dev cluster,
//! kill a node (status shows it down, the supervisor reports it and keeps
//! running), start it again (status shows it up), cut and heal links
//! through the subcommands, stop one node cleanly, then stop everything;
//! `geokv getendpoints` names a key's replicas. The subcommands' `--json`
//! objects say what each did.
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const GEOKV: &str = env!("CARGO_BIN_EXE_geokv");

/// Three nodes (dc1: 2, dc2: 1) on loopback addresses unique to this process.
fn topology(dir: &Path) -> PathBuf {
    let b = std::process::id() % 200 + 20;
    let mut y = String::from("cluster_name: dev-test\ndefaults:\n  vnodes: 16\ndatacenters:\n");
    for (dc, ips) in [("dc1", vec![201, 202]), ("dc2", vec![211])] {
        y += &format!("  - name: {dc}\n    racks:\n");
        for (i, ip) in ips.iter().enumerate() {
            let ip = format!("127.{b}.250.{ip}");
            y += &format!(
                "      - name: r{r}\n        nodes:\n          - id: {dc}-n{r}\n            client_address: {ip}:7070\n            peer_address: {ip}:7071\n            admin_address: {ip}:7072\n",
                r = i + 1
            );
        }
    }
    y += "keyspaces:\n  default:\n    replication: {dc1: 2, dc2: 1}\n";
    let path = dir.join("topology-in.yaml");
    std::fs::write(&path, y).unwrap();
    path
}

struct Dev {
    data: PathBuf,
    supervisor: Child,
    stderr: PathBuf,
}

impl Dev {
    fn cmd(&self, args: &[&str]) -> Output {
        let out = Command::new(GEOKV)
            .arg("dev")
            .args(args)
            .env("GEOKV_DEV_DATA_DIR", &self.data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "geokv dev {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs `geokv dev ARGS --json`: the one JSON object it printed.
    fn json(&self, args: &[&str]) -> Value {
        let out = self.cmd(&[args, &["--json"]].concat());
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
    }

    fn status(&self) -> Value {
        self.json(&["status"])
    }

    fn state(&self, node: &str) -> String {
        let s = self.status();
        let n = s["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node"] == node)
            .unwrap()
            .clone();
        n["state"].as_str().unwrap().to_string()
    }

    /// Runs `geokv dev ARGS --json`: the named `fields` of its object.
    fn json_step(&self, args: &[&str], fields: &[&str]) -> Vec<Value> {
        let v = self.json(args);
        fields.iter().map(|f| v[*f].clone()).collect()
    }

    /// Starts `geokv dev` on `topo` in `tmp` and waits until it is up.
    fn start(tmp: &Path, topo: &Path) -> (Dev, PathBuf) {
        let data = tmp.join("data");
        let (stdout, stderr) = (tmp.join("dev.out"), tmp.join("dev.err"));
        let supervisor = Command::new(GEOKV)
            .args(["dev", "--topology"])
            .arg(topo)
            .arg("--data-dir")
            .arg(&data)
            .args(["--", "--gossip-interval-ms", "200"])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        wait_for("the dev cluster to be up", Duration::from_secs(120), || {
            std::fs::read_to_string(&stdout)
                .unwrap_or_default()
                .contains("is up (3 nodes)")
        });
        let dev = Dev {
            data,
            supervisor,
            stderr,
        };
        (dev, stdout)
    }

    /// `geokv getendpoints default KEY --json` against dc1-n1: the ids.
    fn endpoints(&self, key: &str) -> Vec<String> {
        let out = Command::new(GEOKV)
            .args(["getendpoints", "default", key, "--json", "--endpoint"])
            .arg(self.admin("dc1-n1"))
            .env("GEOKV_CA", self.data.join("certs/ca.pem"))
            .env("GEOKV_TOKEN", self.token())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        let ep: Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut ids: Vec<String> = (ep["endpoints"].as_array().unwrap().iter())
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    }

    fn token(&self) -> String {
        let t = std::fs::read_to_string(self.data.join("admin-token")).unwrap();
        t.trim().to_string()
    }

    /// The pids of the nodes running now.
    fn pids(&self) -> Vec<u64> {
        let s = self.status();
        let nodes = s["nodes"].as_array().unwrap().iter();
        nodes.filter_map(|n| n["pid"].as_u64()).collect()
    }

    fn supervisor_log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn admin(&self, node: &str) -> String {
        let s = self.status();
        let n = s["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node"] == node)
            .unwrap()
            .clone();
        n["admin"].as_str().unwrap().to_string()
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        // Whatever happened, leave no process behind.
        let _ = Command::new(GEOKV)
            .args(["dev", "stop"])
            .env("GEOKV_DEV_DATA_DIR", &self.data)
            .output();
        let _ = self.supervisor.kill();
        let _ = self.supervisor.wait();
    }
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `GET /faults` over HTTPS with the dev cluster's CA and admin token (TLS
/// and authentication are on by default in `geokv dev`).
fn faults(data: &Path, admin: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let access = geokv::local_cluster::AdminAccess {
        ca: Some(data.join("certs/ca.pem")),
        token: std::fs::read_to_string(data.join("admin-token"))
            .ok()
            .map(|t| t.trim().to_string()),
    };
    rt.block_on(geokv::local_cluster::admin_request_as(
        &access,
        admin.parse().unwrap(),
        "GET",
        "/faults",
    ))
    .unwrap()
}

fn pid_alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit_once(')').unwrap().1.trim_start().starts_with('Z'))
        .unwrap_or(false)
}

#[test]
fn dev_cluster_survives_a_node_and_is_operable_from_another_shell() {
    let tmp = tempfile::tempdir().unwrap();
    let topo = topology(tmp.path());
    let (mut dev, stdout) = Dev::start(tmp.path(), &topo);
    // TLS and authentication by default: the banner says how to connect.
    let banner = std::fs::read_to_string(&stdout).unwrap();
    assert!(banner.contains("export GEOKV_CA="), "{banner}");
    assert!(banner.contains("export GEOKV_TOKEN=$(cat "), "{banner}");
    // Without the token the admin port refuses a mutating call.
    let access = geokv::local_cluster::AdminAccess {
        ca: Some(dev.data.join("certs/ca.pem")),
        token: None,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let admin_addr = dev.admin("dc1-n1").parse().unwrap();
    let denied = rt.block_on(geokv::local_cluster::admin_request_as(
        &access,
        admin_addr,
        "POST",
        "/faults/heal?target=*",
    ));
    assert!(format!("{denied:?}").contains("401"), "{denied:?}");
    let s = dev.status();
    assert!(s["supervisor_pid"].is_u64(), "{s}");
    for n in s["nodes"].as_array().unwrap() {
        assert_eq!(n["state"], "up", "{s}");
    }

    // nodetool getendpoints: rf {dc1: 2, dc2: 1} names every node once.
    assert_eq!(dev.endpoints("user:42"), ["dc1-n1", "dc1-n2", "dc2-n1"]);

    // A crash: the node is down, the supervisor says so and keeps running.
    let killed = dev.json_step(&["kill", "dc1-n2"], &["node", "action", "pid"]);
    assert_eq!(killed[..2], [json!("dc1-n2"), json!("killed")]);
    // SIGKILL is sent, not awaited: the process is gone (or a zombie) soon after.
    let pid = killed[2].as_u64().unwrap();
    wait_for("the killed node gone", Duration::from_secs(10), || {
        !pid_alive(pid)
    });
    assert_eq!(dev.state("dc1-n2"), "down");
    wait_for("the supervisor's report", Duration::from_secs(10), || {
        dev.supervisor_log()
            .contains("node dc1-n2 exited (signal: 9 (SIGKILL))")
    });
    assert!(
        dev.supervisor.try_wait().unwrap().is_none(),
        "supervisor exited"
    );
    assert_eq!(dev.state("dc1-n1"), "up");

    // Restarted from another shell with its recorded command line.
    let out = dev.cmd(&["start", "dc1-n2"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("started dc1-n2"));
    assert_eq!(dev.state("dc1-n2"), "up");
    wait_for("the supervisor's report", Duration::from_secs(10), || {
        dev.supervisor_log()
            .contains("node dc1-n2 is running again")
    });

    // Links: cut both sides, then heal everything.
    let cut = dev.json(&["cut", "dc1", "dc2"]);
    assert_eq!(
        cut,
        json!({"action": "cut", "between": ["dc1", "dc2"],
               "nodes": ["dc1-n1", "dc1-n2", "dc2-n1"], "down": [], "failed": []})
    );
    assert!(faults(&dev.data, &dev.admin("dc1-n1")).contains("dc2"));
    assert!(faults(&dev.data, &dev.admin("dc2-n1")).contains("dc1"));
    let healed = dev.json_step(&["heal"], &["action", "between"]);
    assert_eq!(healed, [json!("heal"), Value::Null]);
    assert!(!faults(&dev.data, &dev.admin("dc1-n1")).contains("dc2"));

    // A clean stop of one node, then of the whole cluster.
    let stopped = dev.json(&["stop", "dc2-n1"]);
    assert_eq!(stopped["nodes"][0]["node"], "dc2-n1", "{stopped}");
    assert_eq!(stopped["nodes"][0]["outcome"], "stopped", "{stopped}");
    assert!(stopped["supervisor_pid"].is_null(), "{stopped}");
    assert_eq!(dev.state("dc2-n1"), "down");
    let pids = dev.pids();
    assert_eq!(pids.len(), 2);
    let all = dev.json(&["stop"]);
    assert_eq!(all["supervisor_pid"], dev.supervisor.id(), "{all}");
    let outcomes: Vec<(&str, &str)> = (all["nodes"].as_array().unwrap().iter())
        .map(|n| (n["node"].as_str().unwrap(), n["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("dc1-n1", "stopped"),
            ("dc1-n2", "stopped"),
            ("dc2-n1", "not_running")
        ]
    );
    let status = dev.supervisor.wait().unwrap();
    assert!(status.success(), "supervisor: {status}");
    for pid in pids {
        assert!(!pid_alive(pid), "node pid {pid} still runs");
    }
    let s = dev.status();
    assert!(s["supervisor_pid"].is_null());
    assert!(s["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["state"] == "down"));
}
