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
use crate::cli::admin_http::StatusError;
use crate::cli::ring::http;

/// Runs `geokv decommission --cancel`: asks for the cancel, then, past the
/// switch, polls until the node is Normal with no movement (the second
/// step is the abort driver's, review-cancel31 M3); prints the progress,
/// or with `--json` one object whose outcome is `cancelled`.
pub(super) async fn cancel(args: &DecommissionArgs) -> anyhow::Result<()> {
    let body = (http(&args.endpoint, "POST", "/decommission/cancel").await)
        .map_err(|e| cancel_refused(&args.endpoint, e))?;
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

/// The error of the cancel's request. A node of an older build has no
/// such route: its router answers `404 not found`, which an operator
/// would read as no such node or no decommission (review-l4-33 M1). The
/// route's own 404s have other bodies (`no range movements on this port`,
/// a node not in the layout).
fn cancel_refused(endpoint: &str, e: anyhow::Error) -> anyhow::Error {
    match e.downcast_ref::<StatusError>() {
        Some(s) if s.code == 404 && s.body == "not found" => anyhow::anyhow!(
            "{endpoint} runs a build without POST /decommission/cancel: nothing was changed; upgrade it (or cancel with the geokv binary of its build), then run --cancel again"
        ),
        _ => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// review-l4-33 M1: an older build's `404 not found` names the
    /// upgrade; every other refusal reads as before.
    #[test]
    fn an_older_build_without_the_route_is_named_and_other_refusals_read_as_before() {
        let answered = |code, body: &str| {
            anyhow::Error::new(StatusError {
                endpoint: "n:1".into(),
                code,
                body: body.into(),
            })
        };
        let old = cancel_refused("n:1", answered(404, "not found")).to_string();
        assert!(
            old.contains("n:1 runs a build without POST /decommission/cancel")
                && old.contains("nothing was changed")
                && old.contains("upgrade it"),
            "{old}"
        );
        let body = "no range movements on this port";
        let none = cancel_refused("n:1", answered(404, body)).to_string();
        assert_eq!(none, format!("n:1 answered 404: {body}"));
        let not = cancel_refused("n:1", answered(409, "node 'd' is not decommissioning"));
        assert_eq!(
            not.to_string(),
            "n:1 answered 409: node 'd' is not decommissioning"
        );
        let other = cancel_refused("n:1", anyhow::anyhow!("connection refused"));
        assert_eq!(other.to_string(), "connection refused");
    }
}
