//! HTTPS on the admin port with real node processes (issue 12): on a TLS
//! cluster the admin port serves HTTPS with the node's certificate, the CLI
//! reaches it with `--ca`, a plaintext HTTP request is answered 400 saying
//! why, and a new node joins through a seed over mutual TLS.

use crate::common::*;
use geokv::layout::{Layout, NodeState};
use geokv::security::certs::{issue_in_dir, Identity};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn one_dc() -> Spec {
    Spec {
        dcs: vec![("dc1", 3)],
        replication: vec![("dc1", 3)],
        extra_keyspaces: Vec::new(),
        gossip_interval_ms: 100,
        extra_args: Vec::new(),
    }
}

/// `geokv <args>` without any TLS settings from the environment.
fn cli(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_geokv"))
        .args(args)
        .env_remove("GEOKV_CA")
        .output()
        .expect("run geokv");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_port_speaks_https_and_a_node_joins_over_tls() {
    let cluster = Cluster::start_tls(one_dc()).await;
    let n1 = cluster.node("dc1-n1").clone();
    let admin_addr = n1.admin_address.to_string();

    // Plaintext HTTP is answered 400 with the reason, and counted.
    let plain = geokv::transport::admin_client::call(&admin_addr, None, "GET", "/health", None, "")
        .await
        .expect("an answer");
    assert_eq!(plain.status, 400, "{plain:?}");
    assert!(plain.body.contains("requires HTTPS"), "{}", plain.body);
    let refused = cluster
        .metric("dc1-n1", "geokv_tls_refused_total", "port=\"admin\"")
        .await;
    assert!(refused >= 1.0, "plaintext admin request counted: {refused}");

    // The CLI: without --ca the same reason, with it the layout.
    let (ok, text) = cli(&["ring", "--endpoint", &admin_addr]);
    assert!(!ok && text.contains("requires HTTPS"), "{text}");
    let ca = cluster.tls_ca.clone().unwrap();
    let ca_s = ca.to_str().unwrap();
    let (ok, text) = cli(&["ring", "--endpoint", &admin_addr, "--ca", ca_s]);
    assert!(ok && text.contains("dc1-n3"), "{text}");
    // A CA that did not issue the node's certificate is refused.
    let other = cluster.dir.path().join("other-ca");
    geokv::security::certs::init_dir(&other, "another").unwrap();
    let other_ca = other.join("ca.pem");
    let (ok, text) = cli(&[
        "ring",
        "--endpoint",
        &admin_addr,
        "--ca",
        other_ca.to_str().unwrap(),
    ]);
    assert!(!ok && text.contains("TLS with the admin port"), "{text}");

    // A fourth node joins through dc1-n1 over mutual TLS.
    let std::net::IpAddr::V4(ip) = n1.client_address.ip() else {
        unreachable!()
    };
    let [a, b, c, d] = ip.octets();
    let ip = std::net::Ipv4Addr::new(a, b, c, d + 3);
    let certs = cluster.dir.path().join("certs");
    issue_in_dir(&certs, &Identity::Node("dc1-n4".into()), &[], &[ip.into()]).unwrap();
    let dir = cluster.dir.path().join("dc1-n4");
    std::fs::create_dir_all(&dir).unwrap();
    let log = std::fs::File::create(dir.join("node.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_geokv"))
        .args([
            "node",
            "--join",
            &n1.peer_address.to_string(),
            "--id",
            "dc1-n4",
        ])
        .args(["--dc", "dc1", "--rack", "r4"])
        .args(["--client-address", &format!("{ip}:7070")])
        .args(["--peer-address", &format!("{ip}:7071")])
        .args(["--admin-address", &format!("{ip}:7072")])
        .arg("--data-dir")
        .arg(&dir)
        .arg("--tls-dir")
        .arg(&certs)
        .args(["--gossip-interval-ms", "100"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let joiner_log = || std::fs::read_to_string(dir.join("node.log")).unwrap_or_default();
    let began = Instant::now();
    loop {
        let layout = admin(n1.admin_address, "GET", "/layout").await;
        let normal = layout
            .ok()
            .and_then(|body| serde_json::from_str::<Layout>(&body).ok())
            .is_some_and(|l| {
                l.node("dc1-n4")
                    .is_some_and(|(_, _, n)| n.state == NodeState::Normal)
            });
        if normal {
            break;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("joiner exited: {st}\n{}", joiner_log());
        }
        assert!(
            began.elapsed() < Duration::from_secs(240),
            "join did not finish\n{}",
            joiner_log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The joiner's own admin port serves HTTPS too.
    let n4_admin: std::net::SocketAddr = format!("{ip}:7072").parse().unwrap();
    admin_over_https(n4_admin, &ca);
    let health = admin(n4_admin, "GET", "/health").await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(health.as_deref(), Ok("ok dc1-n4\n"), "{}", joiner_log());
}
