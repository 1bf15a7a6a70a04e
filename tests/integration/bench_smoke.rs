//! Smoke test of `geokv bench run` (the `geokv` binary execs `geokv-bench`,
//! built beside it): a one-node cluster (real process), a tiny
//! workload A, and the JSON it writes. Not a timed test: it never looks at
//! latency or throughput values, only that they are there.
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_geokv");
/// An address no other test or `geokv dev` uses.
const IP: &str = "127.0.0.35";

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_node(dir: &std::path::Path) -> Node {
    let yaml = format!(
        "cluster_name: bench-smoke\ndatacenters:\n  - name: dc1\n    racks:\n      - name: r1\n        nodes:\n          - id: n1\n            client_address: {IP}:7070\n            peer_address: {IP}:7071\n            admin_address: {IP}:7072\nkeyspaces:\n  default:\n    replication: {{dc1: 1}}\n"
    );
    let topo = dir.join("topology.yaml");
    std::fs::write(&topo, yaml).unwrap();
    let log = std::fs::File::create(dir.join("node.log")).unwrap();
    let child = Command::new(EXE)
        .args(["node", "--node", "n1", "--durability", "none", "--insecure"])
        .arg("--topology")
        .arg(&topo)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let node = Node(child);
    let started = Instant::now();
    while std::net::TcpStream::connect(format!("{IP}:7070")).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "node did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    node
}

#[test]
fn bench_run_writes_a_json_report() {
    let dir = tempfile::tempdir().unwrap();
    let _node = start_node(dir.path());
    let json = dir.path().join("out.json");
    let plots = dir.path().join("plots");
    let out = Command::new(EXE)
        .args([
            "bench",
            "run",
            "--workload",
            "a",
            "--records",
            "200",
            "--operations",
            "500",
        ])
        .args([
            "--concurrency",
            "4",
            "--read-consistency",
            "ONE",
            "--write-consistency",
            "ONE",
        ])
        .args(["--endpoint", &format!("http://{IP}:7070"), "--retries", "2"])
        .arg("--json")
        .arg(&json)
        .arg("--plot-dir")
        .arg(&plots)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("READ") && stdout.contains("p99"),
        "{stdout}"
    );

    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["workload"], "a");
    assert_eq!(v["read_consistency"], "ONE");
    assert_eq!(v["load"]["by_op"]["INSERT"]["count"], 200);
    let run = &v["run"];
    let ops = run["operations"].as_u64().unwrap();
    let errors = run["error_count"].as_u64().unwrap();
    assert!(ops > 0);
    assert_eq!(ops + errors, 500);
    for op in ["READ", "UPDATE"] {
        for field in [
            "count",
            "throughput",
            "p50_us",
            "p95_us",
            "p99_us",
            "p999_us",
            "max_us",
        ] {
            assert!(run["by_op"][op][field].is_number(), "{op}.{field}");
        }
    }
    assert!(run["errors"].is_object() && run["siblings_seen"].is_u64());
    assert!(run["timeline"].as_array().is_some_and(|t| !t.is_empty()));
    for plot in ["latency-cdf.svg", "throughput.svg"] {
        let svg = std::fs::read_to_string(plots.join(plot)).unwrap();
        assert!(svg.starts_with("<svg") || svg.contains("<svg"), "{plot}");
    }
}
