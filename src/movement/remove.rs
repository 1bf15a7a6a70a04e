//! Removing a dead node (`geokv removenode ID`): `begin_remove` makes it
//! Leaving, and every node that gains one of its ranges waits until every
//! live member is on that layout (`announce`) and copies it from the
//! survivors ([`super::rereplicate`], sources chosen by
//! [`super::survivors`]; the dead node is never asked), then reports
//! `done` on its [`super::progress`] board (`GET /movement`). The
//! *finisher* — the first gainer by id, or the first Normal node of the
//! datacenter when nobody gains — waits until every gainer reports done
//! and proposes `finish_remove` (the node becomes Removed). Every node
//! runs [`follow`]; every step is idempotent, so a restart of any gainer
//! or of the finisher resumes (cursors per source, as for a replacement).
//!
//! Owns [`begin`] (the refusal of a live node), [`gainers`], [`finisher`]
//! and [`follow`]. Must not serve requests.

use std::sync::Arc;
use std::time::Duration;

use super::cursor;
use super::plan::gains;
use super::rereplicate::{rereplicate, Target};
use super::stream::{Progress, StreamConfig};
use crate::engine::Engine;
use crate::layout::{Layout, LayoutError, Movement, NodeState};
use crate::transport::tls::Tls;
use crate::view::Cluster;

/// A removal that cannot begin.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error("node '{0}' is alive per this node's failure detector; only a dead node can be removed (decommission a live one)")]
    Alive(String),
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

/// The layout with `dead`'s removal begun; refused while `is_up(dead)`.
pub fn begin(
    layout: &Layout,
    dead: &str,
    is_up: &dyn Fn(&str) -> bool,
) -> Result<Layout, RemoveError> {
    if layout.node(dead).is_none() {
        return Err(LayoutError::UnknownNode(dead.into()).into());
    }
    if is_up(dead) {
        return Err(RemoveError::Alive(dead.into()));
    }
    Ok(layout.begin_remove(dead)?)
}

/// The dead node of a removal in progress (the first by datacenter).
pub fn removing(layout: &Layout) -> Option<String> {
    layout.movements.values().find_map(|m| match m {
        Movement::Remove { node } => Some(node.clone()),
        _ => None,
    })
}

/// The members that gain a range in `layout`'s removal of `dead`, by id.
pub fn gainers(layout: &Layout, dead: &str) -> Vec<String> {
    let mut out: Vec<String> = layout
        .nodes()
        .filter(|(_, _, n)| n.state.is_member() && n.id != dead)
        .filter(|(_, _, n)| gains(layout, &n.id).is_ok_and(|g| !g.is_empty()))
        .map(|(_, _, n)| n.id.clone())
        .collect();
    out.sort();
    out
}

/// Who proposes `finish_remove`: the first gainer, else the first Normal
/// node of the dead node's datacenter.
pub fn finisher(layout: &Layout, dead: &str) -> Option<String> {
    if let Some(first) = gainers(layout, dead).into_iter().next() {
        return Some(first);
    }
    let (dc, _, _) = layout.node(dead)?;
    let mut normal: Vec<String> = layout
        .nodes()
        .filter(|(d, _, n)| *d == dc && n.state == NodeState::Normal)
        .map(|(_, _, n)| n.id.clone())
        .collect();
    normal.sort();
    normal.into_iter().next()
}

/// The movement name a gainer's board shows for the removal of `dead`.
pub fn movement_name(dead: &str) -> String {
    format!("removal of {dead}")
}

fn stream_id(dead: &str) -> String {
    format!("remove-{dead}")
}

/// Runs on every node: takes part in any removal in progress (copies what
/// this node gains; the finisher finishes it) until `shutdown`.
pub async fn follow(
    cluster: Cluster,
    engine: Arc<dyn Engine>,
    peers: Arc<crate::transport::Peers>,
    is_up: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let me = cluster.me().to_string();
    let board = super::progress::board(&me);
    let mut views = cluster.subscribe();
    let mut streamed: Option<(String, u64)> = None;
    loop {
        let layout = cluster.current().layout.clone();
        match removing(&layout) {
            Some(dead) => {
                let key = (dead.clone(), layout.version);
                if gainers(&layout, &dead).contains(&me) && streamed.as_ref() != Some(&key) {
                    let progress = Arc::new(Progress::default());
                    board.start(&movement_name(&dead), progress.clone());
                    // As for a join: every live member must send writes to
                    // this pending replica before the copy passes a key.
                    let wait = Duration::from_secs(30);
                    let announced = super::announce::until_announced(
                        &cluster,
                        &peers,
                        &*is_up,
                        layout.version,
                        wait,
                    );
                    let announced = tokio::select! {
                        r = announced => r,
                        _ = shutdown.wait_for(|v| *v) => return,
                    };
                    if let Err(e) = announced {
                        board.status(&format!("waiting: {e}"));
                        continue;
                    }
                    let source = super::ops::peer_source(&cluster, &peers, &is_up);
                    let target = Target {
                        layout: &layout,
                        gainer: &me,
                        dead: &dead,
                        stream_id: &stream_id(&dead),
                    };
                    let cfg = StreamConfig::default();
                    let run = rereplicate(target, engine.clone(), Arc::new(source), &cfg, progress);
                    let r = tokio::select! {
                        r = run => r,
                        _ = shutdown.wait_for(|v| *v) => return,
                    };
                    match r {
                        Ok(()) => {
                            board.status("done");
                            tracing::info!(node = %me, dead = %dead, "removal: ranges copied");
                            streamed = Some(key);
                        }
                        Err(e) => {
                            board.status(&format!("waiting: {e}"));
                            tracing::warn!(node = %me, dead = %dead, error = %e, "removal: copy not finished; retrying");
                        }
                    }
                }
                if finisher(&layout, &dead).as_deref() == Some(&me) {
                    try_finish(&cluster, peers.tls(), &layout, &dead, &me).await;
                }
            }
            None => {
                if let Some((dead, _)) = streamed.take() {
                    if let Err(e) = cursor::forget(&*engine, &stream_id(&dead)) {
                        tracing::warn!(error = %e, "removal: forgetting cursors");
                    }
                }
            }
        }
        tokio::select! {
            _ = views.changed() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.wait_for(|v| *v) => return,
        }
    }
}

/// Proposes `finish_remove` once every gainer reports the removal done.
async fn try_finish(cluster: &Cluster, tls: &Tls, layout: &Layout, dead: &str, me: &str) {
    let name = movement_name(dead);
    for g in gainers(layout, dead) {
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
            return;
        }
    }
    match layout.finish_remove(dead) {
        Ok(next) => match cluster.propose(next) {
            Ok(_) => tracing::info!(node = %me, dead, "removal complete: node is removed"),
            Err(e) => tracing::warn!(error = %e, "removal: finish not accepted; retrying"),
        },
        Err(e) => tracing::warn!(error = %e, "removal: cannot finish"),
    }
}

/// Whether node `id` (admin port `admin`) reports movement `name` done
/// (`GET /movement`, over HTTPS when the node runs TLS).
async fn gainer_done(tls: &Tls, id: &str, admin: std::net::SocketAddr, name: &str) -> bool {
    let connector = tls.admin_connector(id);
    let ask = async {
        let addr = admin.to_string();
        let answer =
            crate::admin::client::call(&addr, connector.as_ref(), "GET", "/movement", None, "")
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
