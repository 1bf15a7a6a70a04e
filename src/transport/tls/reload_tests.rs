//! Reloading a node's material: SIGHUP loads the files whether their stamps
//! changed or not (a renewed pair copied with `cp -p` or `rsync -t` and of
//! the same size looks unchanged), a pair that does not load or that no
//! peer would accept (expired, of another CA) is refused and the one in use
//! stays, and the expiry gauge follows every load.
//!
//! Owns: these tests. Must not: share state between tests.

use super::expiry::{not_after, EXPIRY_METRIC};
use super::reload::{self, RELOADS_METRIC};
use super::tests::{cluster_dir, files, node_pair_until, store};
use super::*;
use crate::security::certs::{issue, Pair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::path::Path;
use std::time::SystemTime;

fn der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

/// Writes `pair` over node `id`'s files in `dir`, then gives them back the
/// modification times they had: with the sizes equal too, the stamps
/// (time, size) look unchanged.
fn overwrite_keeping_stamps(dir: &Path, id: &str, pair: &Pair) {
    let f = files(dir, id);
    for (path, text) in [(&f.cert, &pair.cert_pem), (&f.key, &pair.key_pem)] {
        let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
        std::fs::write(path, text).unwrap();
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(mtime).unwrap();
    }
}

/// A renewed pair for n1 of `dir`'s CA whose files have the sizes of the
/// ones in `dir` (ECDSA signatures vary in length: a few tries).
fn renewed_same_size(dir: &Path) -> Pair {
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    let ca = Pair {
        cert_pem: read("ca.pem"),
        key_pem: read("ca-key.pem"),
    };
    let (cert, key) = (read("node-n1.pem"), read("node-n1-key.pem"));
    (0..500)
        .map(|_| issue(&ca, &Identity::Node("n1".into()), &[], &[]).unwrap())
        .find(|p| p.cert_pem.len() == cert.len() && p.key_pem.len() == key.len())
        .expect("a renewed pair of the same sizes")
}

#[tokio::test(start_paused = true)]
async fn a_hangup_loads_a_renewed_pair_whose_stamps_look_unchanged() {
    let dir = cluster_dir(&["n1"]);
    let s = store(dir.path(), "n1");
    let renewed = renewed_same_size(dir.path());
    overwrite_keeping_stamps(dir.path(), "n1", &renewed);
    assert!(
        !s.reload_if_changed().unwrap(),
        "the stamps hide the renewal"
    );

    let (hup, hangups) = futures::channel::mpsc::unbounded();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let mut reloads = s.reloads();
    let every = Duration::from_secs(5);
    tokio::spawn(reload::run(s.clone(), every, hangups, shutdown));
    hup.unbounded_send(()).unwrap();
    let loaded = tokio::time::timeout(Duration::from_secs(60), reloads.changed()).await;
    assert!(loaded.is_ok(), "SIGHUP did not load the renewed pair");
    assert_eq!(s.current().key.cert[0], der(&renewed.cert_pem));
    stop.send(true).unwrap();
}

/// The counter `geokv_tls_reloads_total{outcome}` in `text`.
fn reloads(text: &str, outcome: &str) -> Option<u64> {
    let head = format!("{RELOADS_METRIC}{{outcome=\"{outcome}\"}} ");
    let line = text.lines().find_map(|l| l.strip_prefix(head.as_str()))?;
    line.trim().parse().ok()
}

#[tokio::test(start_paused = true)]
async fn a_hangup_refuses_a_broken_pair_and_keeps_the_one_in_use() {
    // The test runs on one thread: the loop's counters land here.
    let rec = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let _local = metrics::set_default_local_recorder(&rec);
    let dir = cluster_dir(&["n1"]);
    let s = store(dir.path(), "n1");
    let before = s.current().key.cert[0].clone();
    std::fs::write(files(dir.path(), "n1").key, "-----BEGIN PRIVATE KEY-----\n").unwrap();
    assert!(s.reload().is_err());

    let (hup, hangups) = futures::channel::mpsc::unbounded();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let hour = Duration::from_secs(3600);
    tokio::spawn(reload::run(s.clone(), hour, hangups, shutdown));
    hup.unbounded_send(()).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let text = rec.handle().render();
    assert_eq!(reloads(&text, "error"), Some(1), "{text}");
    assert_eq!(reloads(&text, "ok"), None, "{text}");
    assert_eq!(s.current().key.cert[0], before);
    stop.send(true).unwrap();
}

/// A pair or a CA file that parses but that no peer would accept: refused.
#[tokio::test(start_paused = true)]
async fn a_hangup_refuses_an_expired_pair_or_another_cas_file_and_keeps_the_material() {
    let rec = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let _local = metrics::set_default_local_recorder(&rec);
    let (dir, other) = (cluster_dir(&["n1"]), cluster_dir(&[]));
    let s = store(dir.path(), "n1");
    let before = s.current();
    let (hup, hangups) = futures::channel::mpsc::unbounded();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let hour = Duration::from_secs(3600);
    tokio::spawn(reload::run(s.clone(), hour, hangups, shutdown));
    let f = files(dir.path(), "n1");
    let (cert, key) = (
        std::fs::read(&f.cert).unwrap(),
        std::fs::read(&f.key).unwrap(),
    );
    let expired = node_pair_until(dir.path(), "n1", SystemTime::now() - hour);
    std::fs::write(&f.cert, &expired.cert_pem).unwrap();
    std::fs::write(&f.key, &expired.key_pem).unwrap();
    hup.unbounded_send(()).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let err = s.reload().unwrap_err();
    assert!(matches!(err, TlsError::OwnChain { .. }), "{err}");

    // The pair back, beside another cluster's CA file.
    std::fs::write(&f.cert, cert).unwrap();
    std::fs::write(&f.key, key).unwrap();
    std::fs::copy(other.path().join("ca.pem"), &f.ca).unwrap();
    hup.unbounded_send(()).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let err = s.reload().unwrap_err();
    assert!(matches!(err, TlsError::OwnChain { .. }), "{err}");
    let text = rec.handle().render();
    assert_eq!(reloads(&text, "error"), Some(2), "{text}");
    assert_eq!(reloads(&text, "ok"), None, "{text}");
    assert!(Arc::ptr_eq(&s.current(), &before), "the old material stays");
    stop.send(true).unwrap();
}

/// The gauge's value for `kind` in `text`.
fn expiry(text: &str, kind: &str) -> Option<f64> {
    let head = format!("{EXPIRY_METRIC}{{kind=\"{kind}\"}} ");
    let line = text.lines().find_map(|l| l.strip_prefix(head.as_str()))?;
    line.trim().parse().ok()
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn the_expiry_gauge_shows_each_loaded_certificate_and_follows_a_reload() {
    let rec = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let _local = metrics::set_default_local_recorder(&rec);
    let dir = cluster_dir(&["n1"]);
    let s = store(dir.path(), "n1");
    let text = rec.handle().render();
    let leaf = std::fs::read(files(dir.path(), "n1").cert).unwrap();
    let ca = std::fs::read(dir.path().join("ca.pem")).unwrap();
    let (leaf, ca) = (
        der(&String::from_utf8(leaf).unwrap()),
        der(&String::from_utf8(ca).unwrap()),
    );
    let year = unix(SystemTime::now() + Duration::from_secs(365 * 24 * 3600));
    let node_at = not_after(&leaf).unwrap();
    assert!(
        (node_at - year).abs() < 120,
        "a leaf lasts a year: {node_at}"
    );
    assert_eq!(expiry(&text, "node"), Some(node_at as f64), "{text}");
    assert_eq!(
        expiry(&text, "ca"),
        Some(not_after(&ca).unwrap() as f64),
        "{text}"
    );

    // A pair that expires in 3 days is loaded: the gauge says so.
    let soon = SystemTime::now() + Duration::from_secs(3 * 24 * 3600);
    let pair = node_pair_until(dir.path(), "n1", soon);
    std::fs::write(files(dir.path(), "n1").cert, &pair.cert_pem).unwrap();
    std::fs::write(files(dir.path(), "n1").key, &pair.key_pem).unwrap();
    s.reload().unwrap();
    let text = rec.handle().render();
    let at = expiry(&text, "node").unwrap();
    assert!((at - unix(soon) as f64).abs() <= 1.0, "{text}");
    // A pair that does not load leaves the gauge as it was.
    std::fs::write(files(dir.path(), "n1").key, "-----BEGIN PRIVATE KEY-----\n").unwrap();
    assert!(s.reload().is_err());
    assert_eq!(expiry(&rec.handle().render(), "node"), Some(at));
}

/// `node` is the soonest of the presented chain: an intermediate that
/// expires before the leaf shows, and a reload to a chain without it shows
/// the leaf again (no series of a certificate no longer loaded stays).
#[test]
fn the_node_gauge_is_the_soonest_of_the_presented_chain() {
    let rec = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let _local = metrics::set_default_local_recorder(&rec);
    let dir = cluster_dir(&["n1"]);
    let f = files(dir.path(), "n1");
    let leaf = std::fs::read_to_string(&f.cert).unwrap();
    // Any certificate expiring sooner stands in for an intermediate here.
    let soon = SystemTime::now() + Duration::from_secs(3 * 24 * 3600);
    let short = node_pair_until(dir.path(), "n2", soon).cert_pem;
    std::fs::write(&f.cert, format!("{leaf}{short}")).unwrap();
    let s = store(dir.path(), "n1");
    let text = rec.handle().render();
    let at = expiry(&text, "node").unwrap();
    assert!((at - unix(soon) as f64).abs() <= 1.0, "{text}");

    std::fs::write(&f.cert, &leaf).unwrap();
    s.reload().unwrap();
    let text = rec.handle().render();
    let at = not_after(&der(&leaf)).unwrap();
    assert_eq!(expiry(&text, "node"), Some(at as f64), "{text}");
    assert!(!text.contains("kind=\"intermediate\""), "{text}");
}
