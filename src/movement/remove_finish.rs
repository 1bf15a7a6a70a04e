//! The finisher's side of a removal (`remove`): once every gainer reports
//! the removal done (`GET /movement`), end it in steps (`switch`), showing
//! a step the upgrade gate holds on this node's board, and forgetting
//! holds this node no longer owns.
//!
//! Owns [`try_finish`] and [`forget_stale_holds`]. Must not copy ranges
//! nor decide who finishes (`remove::finisher`).

use std::collections::BTreeSet;
use std::time::Duration;

use super::ops::LayoutHandle;
use super::remove::{duties_up, gainers, movement_name};
use crate::layout::Layout;
use crate::transport::tls::Tls;

/// Ends the removal in steps (`switch`: reads to the gainers, then
/// `finish_remove`) once every gainer reports the removal done.
pub(super) async fn try_finish<H: LayoutHandle>(
    handle: &H,
    tls: &Tls,
    layout: &Layout,
    dead: &str,
    me: &str,
) {
    let name = movement_name(layout, dead);
    // Past the switch every gainer had reported its copy done (the switch
    // waits for it): a gainer dead since does not hold the finish up.
    let waited = match super::replace::copied(layout, dead) {
        true => Vec::new(),
        false => gainers(layout, dead),
    };
    for g in waited {
        let done = if g == me {
            super::progress::board(me)
                .report()
                .is_some_and(|r| r.movement == name && r.status == "done")
        } else {
            let Some((_, _, n)) = layout.node(&g) else {
                return;
            };
            gainer_done(tls, &g, n.admin_address, &name).await
        };
        if !done {
            // Held by a gainer now, not by the gate (review-final28 L3).
            super::progress::board(me).hold(&name, None);
            return;
        }
    }
    // The copies checked are this snapshot's movement's: a node joined to
    // the removal since has ranges nobody copied (review-cancel31 M1).
    let checked = layout
        .node(dead)
        .and_then(|(dc, _, _)| layout.movements.get(dc));
    let Some(checked) = checked else {
        return;
    };
    let r = super::switch::finish_movement_expecting(handle, dead, Some(checked)).await;
    // A switch the gate holds is shown (`GET /movement`'s `held`, M2).
    let held = match &r {
        Err(super::switch::FinishError::NotUpgraded(e)) => Some(e.to_string()),
        _ => None,
    };
    super::progress::board(me).hold(&name, held);
    match r {
        Ok(_) => tracing::info!(node = %me, dead, "removal complete: node is removed"),
        Err(e) => tracing::warn!(error = %e, "removal: finish not done; retrying"),
    }
}

/// Forgets the holds on `board` (this node's, `me`) of removals `me` no
/// longer finishes in `layout` with `is_up` (over, or finished by another node): a
/// hold is cleared only by its finisher's next try, so it outlived it
/// (review-final28 L3).
pub fn forget_stale_holds(
    board: &super::progress::Board,
    layout: &Layout,
    me: &str,
    is_up: &dyn Fn(&str) -> bool,
) {
    // Who finishes depends on who is up (`finisher_up`, review-cancel31 L2).
    let mine: BTreeSet<String> = (duties_up(layout, me, is_up).into_iter())
        .filter(|d| d.finish)
        .map(|d| movement_name(layout, &d.dead))
        .collect();
    for name in board.held().into_keys().filter(|n| !mine.contains(n)) {
        board.hold(&name, None);
    }
}

/// Whether node `id` (admin port `admin`) reports movement `name` done
/// (`GET /movement`, over HTTPS when the node runs TLS).
async fn gainer_done(tls: &Tls, id: &str, admin: std::net::SocketAddr, name: &str) -> bool {
    let connector = tls.admin_connector(id);
    let ask = async {
        let addr = admin.to_string();
        let answer = crate::transport::admin_client::call(
            &addr,
            connector.as_ref(),
            "GET",
            "/movement",
            None,
            "",
        )
        .await
        .ok()
        .filter(|a| a.is_success())?;
        let v: serde_json::Value = serde_json::from_str(&answer.body).ok()?;
        let r = &v["streaming"];
        Some(r["movement"] == name && r["status"] == "done")
    };
    tokio::time::timeout(Duration::from_secs(3), ask)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}
