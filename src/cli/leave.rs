//! `geokv decommission --endpoint ADMIN_ADDR`, `geokv cleanup --endpoint
//! ADMIN_ADDR` and `geokv stream-throughput --endpoint ADMIN_ADDR [MIB]`,
//! over the node's admin port (`POST /decommission`, then
//! `GET /decommission` until it has left; `POST /cleanup`;
//! `GET`/`PUT /stream-throughput`).
//!
//! Owns the printing of the progress. Running `decommission` again after a
//! crash of the node or of this command resumes the leave.
//! Must not: decide the movement (the node does), or treat a lost
//! connection as a finished leave.
use std::time::Duration;

use anyhow::Context;
use geokv::movement::control::Status;

use super::ring::http;

/// Arguments of `geokv decommission`.
#[derive(clap::Args, Debug)]
pub struct DecommissionArgs {
    /// The leaving node's admin address (host:port).
    #[arg(long)]
    pub endpoint: String,
    /// Return once the leave has begun, without waiting for it to finish.
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub tls: super::admin_http::AdminTlsArgs,
}

/// Arguments of `geokv cleanup`.
#[derive(clap::Args, Debug)]
pub struct CleanupArgs {
    /// The node's admin address (host:port).
    #[arg(long)]
    pub endpoint: String,
    #[command(flatten)]
    pub tls: super::admin_http::AdminTlsArgs,
}

/// Arguments of `geokv stream-throughput`.
#[derive(clap::Args, Debug)]
pub struct StreamThroughputArgs {
    /// The node's admin address (host:port).
    #[arg(long)]
    pub endpoint: String,
    /// The new cap in MiB/s (0: no cap); without it, print the current one.
    pub mib_per_sec: Option<f64>,
    #[command(flatten)]
    pub tls: super::admin_http::AdminTlsArgs,
}

fn line(s: &Status) -> String {
    let p = &s.progress;
    let mut out = format!(
        "{}: {}/{} ranges, {} keys, {:.1} MB",
        s.phase,
        p.ranges_done,
        p.ranges_total,
        p.keys,
        p.bytes as f64 / 1e6
    );
    if !s.detail.is_empty() {
        out += &format!(" ({})", s.detail);
    }
    out
}

/// Runs `geokv decommission`.
pub async fn decommission(args: DecommissionArgs) -> anyhow::Result<()> {
    let body = http(&args.endpoint, "POST", "/decommission").await?;
    let mut status: Status = serde_json::from_str(&body).context("decoding the status")?;
    println!("decommission of {} begun", args.endpoint);
    if args.no_wait {
        println!("{}", line(&status));
        return Ok(());
    }
    let mut last = String::new();
    loop {
        let now = line(&status);
        if now != last {
            println!("{now}");
            last = now;
        }
        if status.phase == "left" {
            println!("the node has left the cluster and stops");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        match http(&args.endpoint, "GET", "/decommission").await {
            Ok(body) => status = serde_json::from_str(&body).context("decoding the status")?,
            // It stops on its own once it has left; otherwise the node
            // crashed: running the command again resumes it.
            Err(e) if status.phase == "draining" || status.phase == "finishing" => {
                println!("the node stopped ({e:#}); check `geokv ring`: it shows it Left once done, or run this again to resume");
                return Ok(());
            }
            Err(e) => {
                return Err(e.context("the node stopped answering; run the command again to resume"))
            }
        }
    }
}

/// Runs `geokv cleanup`.
pub async fn cleanup(args: CleanupArgs) -> anyhow::Result<()> {
    let body = http(&args.endpoint, "POST", "/cleanup").await?;
    println!("{}", body.trim());
    Ok(())
}

/// Runs `geokv stream-throughput`: prints the node's cap, or sets it.
pub async fn stream_throughput(args: StreamThroughputArgs) -> anyhow::Result<()> {
    let token = super::admin_http::env_token();
    let body = match args.mib_per_sec {
        None => super::ring::http(&args.endpoint, "GET", "/stream-throughput").await?,
        Some(mib) => {
            let set = serde_json::json!({ "mib_per_sec": mib }).to_string();
            super::admin_http::request(
                &args.endpoint,
                "PUT",
                "/stream-throughput",
                token.as_deref(),
                &set,
            )
            .await?
        }
    };
    let t: serde_json::Value = serde_json::from_str(&body).context("decoding the answer")?;
    match t["mib_per_sec"].as_f64() {
        Some(0.0) => println!("stream throughput: no cap"),
        Some(mib) => println!("stream throughput: {mib} MiB/s"),
        None => anyhow::bail!("unexpected answer: {}", body.trim()),
    }
    Ok(())
}
