//! Tests of `geokv node`'s flags and of its bounded stop.

use super::*;

/// A worker stuck in a synchronous call (as an engine write in a stall
/// is) and a stuck blocking thread do not keep the runtime from
/// stopping: before, dropping the runtime waited for them forever.
#[test]
fn stopping_the_runtime_does_not_wait_for_a_stuck_worker() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    let (release, stuck) = std::sync::mpsc::channel::<()>();
    let stuck = std::sync::Arc::new(std::sync::Mutex::new(stuck));
    let (on_worker, blocking) = (stuck.clone(), stuck.clone());
    let (entered, inside) = std::sync::mpsc::channel();
    let entered2 = entered.clone();
    rt.spawn(async move {
        entered.send(()).expect("entered");
        let _ = on_worker.lock().expect("lock").recv();
    });
    rt.spawn_blocking(move || {
        entered2.send(()).expect("entered");
        let _ = blocking.lock().map(|r| r.recv());
    });
    inside.recv().expect("one is stuck");
    let (done, stopped) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        stop_runtime(rt);
        let _ = done.send(());
    });
    let waited = stopped.recv_timeout(RUNTIME_STOP * 10);
    drop(release);
    assert!(
        waited.is_ok(),
        "the runtime's stop waited for a stuck worker"
    );
}

/// A panic of the node's future itself, with a blocking thread stuck
/// (as in an engine write), ends as an error within the bound: before,
/// it unwound through the runtime's drop, which waited for that thread
/// forever (review of 9274d83).
#[test]
fn a_panicking_node_still_stops_the_runtime_within_the_bound() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    let (release, stuck) = std::sync::mpsc::channel::<()>();
    let (entered, inside) = std::sync::mpsc::channel();
    let node = async move {
        tokio::task::spawn_blocking(move || {
            entered.send(()).expect("entered");
            let _ = stuck.recv();
        });
        inside.recv().expect("one is stuck");
        panic!("boom");
    };
    let (done, ended) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let ran = run_bounded(rt, node);
        let _ = done.send(ran.map_err(|e| e.to_string()));
    });
    let waited = ended.recv_timeout(RUNTIME_STOP * 10);
    drop(release);
    let ran = waited.expect("the runtime's stop waited for a stuck thread");
    let err = ran.expect_err("a panic is an error");
    assert!(err.contains("the node panicked: boom"), "{err}");
}

#[test]
fn limit_flags_default_to_the_documented_bounds() {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        limits: LimitArgs,
    }
    let defaults = Cli::parse_from(["x"]).limits.limits();
    assert_eq!(defaults, geokv::node::limits::ServerLimits::default());
    let set = Cli::parse_from([
        "x",
        "--max-in-flight-requests",
        "4",
        "--client-max-streams",
        "8",
        "--client-max-connections",
        "16",
        "--client-max-connections-per-address",
        "3",
        "--client-max-handshakes-per-address",
        "64",
        "--client-max-request-bytes-in-flight",
        "16777216",
        "--client-handler-timeout-ms",
        "1500",
        "--client-body-timeout-ms",
        "2500",
        "--client-max-requests-in-flight-per-address",
        "7",
        "--client-max-request-bytes-in-flight-per-address",
        "9000000",
    ]);
    let l = set.limits.limits();
    assert_eq!(
        (l.admission.max_in_flight, l.client.max_concurrent_streams),
        (4, 8)
    );
    assert_eq!(l.client.concurrency_per_connection, 8);
    assert_eq!(l.client.max_connections, 16);
    assert_eq!(l.client.max_connections_per_address, 3);
    assert_eq!(l.client_bytes_in_flight, 16 << 20);
    assert_eq!(l.client_handler_timeout, Duration::from_millis(1500));
    assert_eq!(l.client_body_timeout, Duration::from_millis(2500));
    assert_eq!(
        (l.client_share().requests, l.client_share().bytes),
        (7, 9_000_000)
    );
    // The handshake cap reaches the client port's acceptor; the peer
    // port's stays the acceptor's own (issue 12).
    assert_eq!(l.client.caps().handshakes_per_address, 64);
    let fixed = geokv::transport::tls::MAX_HANDSHAKES_PER_ADDRESS;
    assert_eq!(l.peer.caps().handshakes_per_address, fixed);
    assert_eq!(defaults.client.caps().handshakes_per_address, fixed);
    // 0 would let no request through on that port (review L4).
    for flag in [
        "--client-max-streams",
        "--peer-max-streams",
        "--client-max-connections",
        "--client-max-connections-per-address",
        "--client-max-handshakes-per-address",
        "--client-handler-timeout-ms",
    ] {
        let zero = Cli::try_parse_from(["x", flag, "0"]);
        assert!(zero.is_err(), "{flag} 0 is refused");
    }
}

#[test]
fn tls_is_required_unless_insecure_is_explicit() {
    let none = TlsArgs::default();
    let err = none.setting("n1").unwrap_err().to_string();
    assert!(err.contains("--insecure"), "{err}");
    let insecure = TlsArgs {
        insecure: true,
        ..TlsArgs::default()
    };
    assert_eq!(insecure.setting("n1").unwrap(), TlsSetting::Insecure);
    let dir = TlsArgs {
        tls_dir: Some("/c".into()),
        key: Some("/k/other.pem".into()),
        ..TlsArgs::default()
    };
    assert_eq!(
        dir.setting("dc1-n2").unwrap(),
        TlsSetting::Files(TlsFiles {
            ca: "/c/ca.pem".into(),
            cert: "/c/node-dc1-n2.pem".into(),
            key: "/k/other.pem".into(),
        })
    );
}
