//! `geokv decommission --endpoint ADMIN_ADDR`, `geokv cleanup --endpoint
//! ADMIN_ADDR` and `geokv stream-throughput --endpoint ADMIN_ADDR [MIB]`,
//! over the node's admin port (`POST /decommission`, then
//! `GET /decommission` until it has left; `POST /cleanup`;
//! `GET`/`PUT /stream-throughput`).
//!
//! `geokv decommission --cancel` stops a decommission instead
//! (`leave_cancel`: `POST /decommission/cancel`, then `GET /decommission`
//! until `cancelled`); a waiting `decommission` ends non-zero on
//! `cancelled`.
//!
//! Owns the printing of the progress (or, with `--json`, of one JSON object
//! once the command is done). Running `decommission` again after a crash of
//! the node or of this command resumes the leave.
//! Must not: decide the movement (the node does), or treat a lost
//! connection as a finished leave.
use std::time::Duration;

use anyhow::Context;
use geokv::movement::control::Status;
use serde_json::{json, Value};

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
    /// Cancel the node's decommission instead: it stays a member, Normal,
    /// with its tokens (the way out when a gainer died mid-leave); waits
    /// until the layout shows it Normal with no movement. Refused once it
    /// has left, and for a node that is not decommissioning.
    #[arg(long, conflicts_with_all = ["allow_old_gainers", "no_wait"])]
    pub cancel: bool,
    /// Print no progress, only one JSON object once done: outcome (begun,
    /// left, stopped, cancelled), phase, detail, progress, allow_old_gainers,
    /// error.
    #[arg(long)]
    pub json: bool,
    /// Let the switch pass gainers of an older build, which cannot confirm
    /// that what they took is durable (a rolling upgrade; by default the
    /// leave waits for them to be upgraded). Once the node accepted the
    /// request, on for the node's process: running the command again
    /// without it does not take it back (`--json`: allow_old_gainers); a
    /// refused request leaves it off, a `--cancel` or a restart of the
    /// node drops it.
    #[arg(long)]
    pub allow_old_gainers: bool,
    #[command(flatten)]
    pub tls: super::admin_http::AdminTlsArgs,
}

/// The request that begins (or resumes) the decommission.
fn begin_path(allow_old_gainers: bool) -> &'static str {
    match allow_old_gainers {
        true => "/decommission?allow_old_gainers=true",
        false => "/decommission",
    }
}

/// Arguments of `geokv cleanup`.
#[derive(clap::Args, Debug)]
pub struct CleanupArgs {
    /// The node's admin address (host:port).
    #[arg(long)]
    pub endpoint: String,
    /// Print one JSON object: `{"endpoint","ranges","keys","bytes"}`.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub tls: super::admin_http::AdminTlsArgs,
}

/// Arguments of `geokv stream-throughput`.
#[derive(clap::Args, Debug)]
pub struct StreamThroughputArgs {
    /// The node's admin address (host:port).
    #[arg(long)]
    pub endpoint: String,
    /// The new cap in MiB/s (0: no cap, else at least 0.01); without it, print
    /// the current one.
    pub mib_per_sec: Option<f64>,
    /// Print one JSON object: `{"endpoint","mib_per_sec","capped","set"}`
    /// (`mib_per_sec` 0 and `capped` false: no cap).
    #[arg(long)]
    pub json: bool,
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

/// How `geokv decommission` ended: `begun` (`--no-wait`), `left`,
/// `stopped` (the node stopped answering while draining or finishing; check
/// `geokv ring`), or `cancelled` (`--cancel`, here or from another shell:
/// the node stays).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Begun,
    Left,
    Stopped,
    Cancelled,
}

/// `geokv decommission --json`: the outcome and the last status seen
/// (`phase`, `detail`, `progress`, `allow_old_gainers`), plus `error`
/// when the node stopped.
fn outcome_json(endpoint: &str, outcome: Outcome, s: &Status, error: Option<String>) -> Value {
    let outcome = match outcome {
        Outcome::Begun => "begun",
        Outcome::Left => "left",
        Outcome::Stopped => "stopped",
        Outcome::Cancelled => "cancelled",
    };
    json!({
        "endpoint": endpoint,
        "outcome": outcome,
        "phase": s.phase,
        "detail": s.detail,
        "progress": s.progress,
        "allow_old_gainers": s.allow_old_gainers,
        "error": error,
    })
}

/// Runs `geokv decommission`.
pub async fn decommission(args: DecommissionArgs) -> anyhow::Result<()> {
    if args.cancel {
        return cancel::cancel(&args).await;
    }
    let begin = begin_path(args.allow_old_gainers);
    let body = http(&args.endpoint, "POST", begin).await?;
    let mut status: Status = serde_json::from_str(&body).context("decoding the status")?;
    let say = |text: &str| {
        if !args.json {
            println!("{text}");
        }
    };
    let done = |outcome, status: &Status, error: Option<String>| -> anyhow::Result<()> {
        if args.json {
            println!("{}", outcome_json(&args.endpoint, outcome, status, error));
        }
        Ok(())
    };
    say(&format!("decommission of {} begun", args.endpoint));
    if args.no_wait {
        say(&line(&status));
        return done(Outcome::Begun, &status, None);
    }
    let mut last = String::new();
    loop {
        let now = line(&status);
        if now != last {
            say(&now);
            last = now;
        }
        if status.phase == "left" {
            say("the node has left the cluster and stops");
            return done(Outcome::Left, &status, None);
        }
        if status.phase == "cancelled" {
            // Final: `decommission --cancel` stopped it; the node stays.
            let why = "the decommission was cancelled (`geokv decommission --cancel`); the node stays a member";
            done(Outcome::Cancelled, &status, Some(why.into()))?;
            anyhow::bail!("{why}");
        }
        if status.phase == "failed" {
            // Final: the node was removed meanwhile and stops.
            anyhow::bail!("the decommission cannot go on: {}", status.detail);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        match http(&args.endpoint, "GET", "/decommission").await {
            Ok(body) => status = serde_json::from_str(&body).context("decoding the status")?,
            // It stops on its own once it has left; otherwise the node
            // crashed: running the command again resumes it.
            Err(e) if status.phase == "draining" || status.phase == "finishing" => {
                say(&format!("the node stopped ({e:#}); check `geokv ring`: it shows it Left once done, or run this again to resume"));
                return done(Outcome::Stopped, &status, Some(format!("{e:#}")));
            }
            Err(e) => {
                return Err(e.context("the node stopped answering; run the command again to resume"))
            }
        }
    }
}

/// What `POST /cleanup` answered (`admin::movement::cleanup`).
#[derive(Debug, serde::Deserialize, serde::Serialize, PartialEq, Eq)]
struct Cleaned {
    ranges: u64,
    keys: u64,
    bytes: u64,
}

/// The line `geokv cleanup` prints without `--json`.
fn cleaned_line(endpoint: &str, c: &Cleaned) -> String {
    format!(
        "cleanup of {endpoint}: dropped {} range(s), {} key(s), {:.1} MB",
        c.ranges,
        c.keys,
        c.bytes as f64 / 1e6
    )
}

/// Runs `geokv cleanup`.
pub async fn cleanup(args: CleanupArgs) -> anyhow::Result<()> {
    let body = http(&args.endpoint, "POST", "/cleanup").await?;
    let c: Cleaned = serde_json::from_str(&body).context("decoding the answer")?;
    if args.json {
        let mut v = serde_json::to_value(&c)?;
        v["endpoint"] = json!(args.endpoint);
        println!("{v}");
    } else {
        println!("{}", cleaned_line(&args.endpoint, &c));
    }
    Ok(())
}

/// Runs `geokv stream-throughput`: prints the node's cap, or sets it.
pub async fn stream_throughput(args: StreamThroughputArgs) -> anyhow::Result<()> {
    let token = super::admin_http::env_token();
    let body = match args.mib_per_sec {
        None => super::ring::http(&args.endpoint, "GET", "/stream-throughput").await?,
        Some(mib) => {
            let mib = geokv::movement::throughput::valid_mib_per_sec(mib)?;
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
    let set = args.mib_per_sec.is_some();
    println!(
        "{}",
        throughput_output(&args.endpoint, &body, set, args.json)?
    );
    Ok(())
}

/// What `geokv stream-throughput` prints for the node's answer `body`
/// (`{"mib_per_sec": N}`, 0 for no cap): a line, or one JSON object.
fn throughput_output(
    endpoint: &str,
    body: &str,
    set: bool,
    as_json: bool,
) -> anyhow::Result<String> {
    let t: Value = serde_json::from_str(body).context("decoding the answer")?;
    let Some(mib) = t["mib_per_sec"].as_f64() else {
        anyhow::bail!("unexpected answer: {}", body.trim());
    };
    Ok(match (as_json, mib) {
        (true, _) => {
            json!({"endpoint": endpoint, "mib_per_sec": mib, "capped": mib != 0.0, "set": set})
                .to_string()
        }
        (false, 0.0) => "stream throughput: no cap".to_string(),
        (false, mib) => format!("stream throughput: {mib} MiB/s"),
    })
}

#[path = "leave_cancel.rs"]
mod cancel;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decommission_json_names_the_outcome_and_the_last_status() {
        let mut s = Status {
            phase: "draining".into(),
            detail: "hints left: 3".into(),
            ..Status::default()
        };
        s.progress.ranges_done = 4;
        s.progress.ranges_total = 9;
        let v = outcome_json(
            "127.0.0.14:7072",
            Outcome::Stopped,
            &s,
            Some("refused".into()),
        );
        assert_eq!(v["endpoint"], "127.0.0.14:7072");
        assert_eq!(v["outcome"], "stopped");
        assert_eq!(v["phase"], "draining");
        assert_eq!(v["detail"], "hints left: 3");
        assert_eq!(v["progress"]["ranges_done"], 4);
        assert_eq!(v["progress"]["ranges_total"], 9);
        assert_eq!(v["error"], "refused");
        assert_eq!(v["allow_old_gainers"], false);
        let sticky = Status {
            allow_old_gainers: true,
            ..s.clone()
        };
        let v = outcome_json("a:1", Outcome::Begun, &sticky, None);
        assert_eq!(v["allow_old_gainers"], true);
        let left = outcome_json("a:1", Outcome::Left, &s, None);
        assert_eq!(left["outcome"], "left");
        assert!(left["error"].is_null());
        assert_eq!(
            outcome_json("a:1", Outcome::Begun, &s, None)["outcome"],
            "begun"
        );
        // review-cancel31 M3: a cancel's outcome is final and named.
        let c = outcome_json("a:1", Outcome::Cancelled, &s, Some("why".into()));
        assert_eq!(
            (c["outcome"].as_str(), c["error"].as_str()),
            (Some("cancelled"), Some("why"))
        );
    }

    #[test]
    fn stream_throughput_prints_the_cap_as_text_or_json() {
        let out = |body, set, as_json| throughput_output("n:1", body, set, as_json).unwrap();
        assert_eq!(
            out(r#"{"mib_per_sec":24.0}"#, false, false),
            "stream throughput: 24 MiB/s"
        );
        assert_eq!(
            out(r#"{"mib_per_sec":0.0}"#, false, false),
            "stream throughput: no cap"
        );
        let v: Value = serde_json::from_str(&out(r#"{"mib_per_sec":48.0}"#, true, true)).unwrap();
        assert_eq!(
            v,
            json!({"endpoint": "n:1", "mib_per_sec": 48.0, "capped": true, "set": true})
        );
        let v: Value = serde_json::from_str(&out(r#"{"mib_per_sec":0}"#, false, true)).unwrap();
        assert_eq!(v["capped"], false);
        assert_eq!(v["mib_per_sec"], 0.0);
        let err = throughput_output("n:1", r#"{"cap":1}"#, false, true).unwrap_err();
        assert!(err.to_string().contains("unexpected answer"), "{err}");
    }

    #[test]
    fn cleanup_reads_the_nodes_answer_and_prints_it_as_text_or_json() {
        let c: Cleaned = serde_json::from_str(r#"{"ranges":2,"keys":30,"bytes":2500000}"#).unwrap();
        assert_eq!(
            c,
            Cleaned {
                ranges: 2,
                keys: 30,
                bytes: 2_500_000
            }
        );
        assert_eq!(
            cleaned_line("n:1", &c),
            "cleanup of n:1: dropped 2 range(s), 30 key(s), 2.5 MB"
        );
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v, json!({"ranges": 2, "keys": 30, "bytes": 2_500_000}));
    }

    /// review-cancel32 L3: `--cancel` conflicts with `--allow-old-gainers`
    /// and `--no-wait`; the override reaches the begin's query.
    #[test]
    fn cancel_conflicts_with_the_begins_flags() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            d: DecommissionArgs,
        }
        let parse =
            |more: &[&str]| Cli::try_parse_from([&["x", "--endpoint", "a:1"], more].concat());
        assert!(parse(&["--cancel"]).unwrap().d.cancel);
        assert!(parse(&["--cancel", "--allow-old-gainers"]).is_err());
        assert!(parse(&["--cancel", "--no-wait"]).is_err());
        assert!(parse(&["--allow-old-gainers", "--no-wait"]).is_ok());
        assert_eq!(begin_path(true), "/decommission?allow_old_gainers=true");
        assert_eq!(begin_path(false), "/decommission");
    }
}
