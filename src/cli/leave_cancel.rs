//! `geokv decommission --cancel`: `POST /decommission/cancel`, then
//! `GET /decommission` until the node shows `cancelled` (past the switch
//! the second step is the abort driver's, review-cancel31 M3).
//!
//! Owns the cancel's printing (progress lines, or with `--json` one object
//! whose outcome is `cancelled`). Must not decide the cancel (the node
//! does), or treat a lost connection as a cancel done.
use std::time::Duration;

use anyhow::Context;
use geokv::movement::control::Status;

use super::{line, outcome_json, DecommissionArgs, Outcome};
use crate::cli::ring::http;

/// Runs `geokv decommission --cancel`: asks for the cancel, then, past the
/// switch, polls until the node is Normal with no movement (the second
/// step is the abort driver's, review-cancel31 M3); prints the progress,
/// or with `--json` one object whose outcome is `cancelled`.
pub(super) async fn cancel(args: &DecommissionArgs) -> anyhow::Result<()> {
    let body = http(&args.endpoint, "POST", "/decommission/cancel").await?;
    let mut status: Status = serde_json::from_str(&body).context("decoding the status")?;
    let mut last = String::new();
    while status.phase != "cancelled" {
        if status.phase == "failed" {
            anyhow::bail!("the decommission cannot be cancelled: {}", status.detail);
        }
        let now = line(&status);
        if now != last && !args.json {
            println!("{now}");
            last = now;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let body = (http(&args.endpoint, "GET", "/decommission").await)
            .context("the node stopped answering; run `geokv decommission --cancel` again")?;
        status = serde_json::from_str(&body).context("decoding the status")?;
    }
    if args.json {
        let v = outcome_json(&args.endpoint, Outcome::Cancelled, &status, None);
        println!("{v}");
    } else {
        println!(
            "decommission of {} cancelled: {}",
            args.endpoint, status.detail
        );
    }
    Ok(())
}
