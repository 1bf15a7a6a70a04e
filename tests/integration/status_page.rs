//! The live status page (`GET /status` on the admin port) in a real
//! headless browser: a two-datacenter cluster loses a node to SIGKILL, and
//! once the others' failure detectors see it down, Chromium's rendered DOM
//! of a survivor's page shows that node DOWN and every other one UP, the
//! requests this node coordinated, and a screenshot of the page is a real
//! image (`GEOKV_KEEP_SCREENSHOT=PATH` keeps a copy). Skipped (with a message) when Chromium is not installed
//! (`scripts/ensure-deps` installs it as root).

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH")?
                .to_str()?
                .split(':')
                .map(|d| Path::new(d).join(name))
                .find(|p| p.is_file())
        })
}

/// Runs headless Chromium on `url` with `extra` arguments; its stdout.
fn browse(exe: &Path, profile: &Path, url: &str, extra: &[&str]) -> String {
    let out = Command::new(exe)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--virtual-time-budget=5000",
            "--ignore-certificate-errors",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `data-up` attribute of node `id`'s entry in the rendered DOM.
fn shown_up(dom: &str, id: &str) -> Option<bool> {
    let at = dom.find(&format!("data-node=\"{id}\""))?;
    let rest = &dom[at..];
    let v = rest.split("data-up=\"").nth(1)?.split('"').next()?;
    v.parse().ok()
}

#[tokio::test]
async fn a_killed_node_shows_down_in_a_headless_browser() {
    let Some(exe) = chromium() else {
        tool_missing("chromium not installed (scripts/ensure-deps installs it as root)");
        return;
    };
    // A browser sends no bearer token: the page is open only with
    // --open-metrics (authentication is on in the harness).
    let mut spec = Spec::pair(2, 2);
    spec.extra_args.push("--open-metrics".into());
    let mut cluster = Cluster::start(spec).await;
    cluster.preload("dc1-n1", "k", 5).await;
    cluster.kill("dc2-n2");
    for observer in ["dc1-n1", "dc1-n2", "dc2-n1"] {
        cluster
            .wait_seen(observer, "dc2-n2", false, Duration::from_secs(20))
            .await;
    }
    // HTTPS with the node certificate of the test CA, which Chromium does not know.
    let url = format!("https://{}/status", cluster.node("dc1-n1").admin_address);
    let profile = cluster.dir.path().join("chromium-profile");
    let dom = browse(&exe, &profile, &url, &["--dump-dom"]);
    assert_eq!(shown_up(&dom, "dc2-n2"), Some(false), "{dom}");
    for id in ["dc1-n1", "dc1-n2", "dc2-n1"] {
        assert_eq!(shown_up(&dom, id), Some(true), "{id}: {dom}");
    }
    assert!(dom.contains("dc2 — 1/2 up"), "{dom}");
    assert!(dom.contains("<td>put</td>"), "the requests table: {dom}");

    let png = cluster.dir.path().join("status.png");
    let shot = format!("--screenshot={}", png.display());
    browse(&exe, &profile, &url, &[&shot, "--window-size=1280,900"]);
    let bytes = std::fs::read(&png).expect("screenshot written");
    if let Some(keep) = std::env::var_os("GEOKV_KEEP_SCREENSHOT") {
        std::fs::copy(&png, keep).expect("copy the screenshot");
    }
    assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
    assert!(
        bytes.len() > 20_000,
        "a near-empty screenshot: {} bytes",
        bytes.len()
    );
}
