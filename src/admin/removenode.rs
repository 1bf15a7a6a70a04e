//! `POST /removenode?id=ID[&force=true][&withdraw=true]`: begin (or force)
//! the removal of a dead node, force a replacement of a dead node
//! (audit11 D3), or withdraw a removal before its switch (review-cancel31
//! H1, `Layout::withdraw_remove`). An unknown query field is 400, never a
//! removal; so is `withdraw` with `force`. Every refusal the layout gives
//! is 409 naming it. A forced replacement answers `forced_replacement`.
//!
//! Must not decide anything: the layout's transitions and
//! `movement::remove` do; the gates are `movement::upgrade`'s.
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::routes::Admin;
use crate::layout::{Layout, Movement, NodeState};
use crate::movement::{remove, upgrade};
use crate::view::Cluster;

const JSON: &str = "application/json";

/// Parameters of `POST /removenode`. An unknown one is refused (400): a
/// request meant as something else must not begin a removal.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveQuery {
    pub id: Option<String>,
    /// Copy from the survivors that are up even when too few are (a
    /// removal, or the replacement of `id`).
    #[serde(default)]
    pub force: bool,
    /// Withdraw the removal of `id` (before its switch).
    #[serde(default)]
    pub withdraw: bool,
}

impl RemoveQuery {
    /// `withdraw` with `force`: one cannot be both (review-withdraw34 L1).
    fn contradicts(&self) -> bool {
        self.withdraw && self.force
    }
}

fn answer(v: u64, id: &str, state: &str) -> Response {
    let body = serde_json::json!({ "version": v, "node": id, "removal": state });
    ([(header::CONTENT_TYPE, JSON)], body.to_string() + "\n").into_response()
}

fn conflict(e: impl std::fmt::Display) -> Response {
    (StatusCode::CONFLICT, format!("{e}\n")).into_response()
}

/// `POST /removenode?id=ID`: begins the removal of a dead node (refused
/// while this node believes it up); its new owners copy its ranges from the
/// survivors and the removal finishes by itself (`movement::remove`).
/// Asking again while it runs answers the removal in progress;
/// `&force=true` (begun or not) forces it: ranges short of survivors are
/// copied from those that are up (`movement::remove`); on a dead node
/// being replaced it forces the replacement. `&withdraw=true` withdraws
/// the removal of ID (409 when none runs, or past its switch).
pub async fn removenode(
    State(a): State<Admin>,
    q: Result<Query<RemoveQuery>, QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    if q.contradicts() {
        let why = "withdraw and force cannot be asked together\n";
        return (StatusCode::BAD_REQUEST, why).into_response();
    }
    let (Some(cluster), Some(id)) = (&a.cluster, q.id) else {
        return (
            StatusCode::BAD_REQUEST,
            "missing id (or no cluster on this port)\n",
        )
            .into_response();
    };
    if q.withdraw {
        let layout = cluster.current().layout.clone();
        // Only once every member up tells attempts apart (`began`): in a
        // mixed cluster a removal begun again after a withdraw would share
        // the withdrawn one's name, and a gainer that missed the gap could
        // finish it on a stale `done` (review-withdraw34 M3). The way out
        // needs a forced replacement, gated the same. The layout then
        // carries `withdrawn`, which a build with REMOVE_SETS alone cannot
        // decode (review-elastic35 M1).
        // Judged on the withdrawn layout, so the nodes it makes members
        // again (the one given back, any declared dead with it) hold it too
        // when they are up (review-elastic35b M-b).
        let next = match layout.withdraw_removal_of(&id) {
            Ok(next) => next,
            Err(e) => return conflict(e),
        };
        if let Err(e) = upgrade::here_needing(&a.node_id, &next, &a.node_id, WITHDRAWS) {
            return conflict(e);
        }
        return propose(cluster, &layout, next, &id, "withdrawn").await;
    }
    let Some(is_up) = crate::movement::progress::board(&a.node_id).liveness() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the failure detector is not running yet\n",
        )
            .into_response();
    };
    let layout = cluster.current().layout.clone();
    if let Some(state) = settled_answer(&layout, &id, q.force) {
        return answer(layout.version, &id, state);
    }
    // A forced replacement is named as such (review-withdraw34 M2): no
    // removal begins, so there is no removal to wait for.
    let begun = match q.force && replaced(&layout, &id) {
        true => "forced_replacement",
        false => "begun",
    };
    let mut next = match next_layout(&layout, &id, q.force, &*is_up) {
        Ok(next) if next.version == layout.version => {
            let state = if begun == "begun" {
                "in_progress"
            } else {
                begun
            };
            return answer(layout.version, &id, state);
        }
        Ok(next) => next,
        Err(e) => return conflict(e),
    };
    if let Err(e) = gates(&a.node_id, &layout, &mut next, &id) {
        return conflict(e);
    }
    propose(cluster, &layout, next, &id, begun).await
}

/// Whether `id` is the dead node of its datacenter's replacement.
fn replaced(layout: &Layout, id: &str) -> bool {
    let dc = layout.node(id).map(|(dc, _, _)| dc);
    let movement = dc.and_then(|dc| layout.movements.get(dc));
    matches!(movement, Some(Movement::Replace { dead, .. }) if dead == id)
}

/// The answer when nothing is to be proposed: `done` once removed,
/// `in_progress` while its removal (forced when asked) or its abort runs.
fn settled_answer(layout: &Layout, id: &str, force: bool) -> Option<&'static str> {
    match layout.node(id).map(|(_, _, n)| n.state) {
        Some(NodeState::Removed) => Some("done"),
        Some(NodeState::Leaving)
            if remove::is_removing(layout, id) && (!force || remove::forced(layout, id)) =>
        {
            Some("in_progress")
        }
        // An abort between its two steps: the driver drops it (`movement::abort`).
        Some(NodeState::Joining)
            if crate::movement::abort::abandoned(layout)
                .iter()
                .any(|n| n == id) =>
        {
            Some("in_progress")
        }
        _ => None,
    }
}

/// The layout to propose: the removal in progress forced, the replacement
/// of `id` forced, or the removal begun (and forced when asked).
fn next_layout(
    layout: &Layout,
    id: &str,
    force: bool,
    is_up: &dyn Fn(&str) -> bool,
) -> Result<Layout, remove::RemoveError> {
    if remove::is_removing(layout, id) {
        return Ok(layout.force_remove(id)?);
    }
    if force && replaced(layout, id) {
        return Ok(layout.force_replace(id)?);
    }
    remove::begin(layout, id, is_up).and_then(|l| {
        // Only a removal is forced (an aborted join copies nothing).
        Ok(if force && remove::is_removing(&l, id) {
            l.force_remove(id)?
        } else {
            l
        })
    })
}

/// What a withdraw, and a removal begun again after one, need of every
/// member up: the attempt ids and the withdraw's record (review-elastic35 M1).
const WITHDRAWS: u64 = upgrade::REMOVE_SETS | upgrade::WITHDRAW_RECORD;

/// The upgrade gates of `next` (`movement::upgrade`); a new removal
/// attempt keeps the older builds' form (no `began`) while a member up
/// cannot read it, unless a removal of its node was withdrawn: it would
/// share that attempt's name, so it waits until every member up reads
/// the ids and the record (review-final34 M1, review-elastic35 M1).
fn gates(
    me: &str,
    layout: &Layout,
    next: &mut Layout,
    id: &str,
) -> Result<(), upgrade::NotUpgraded> {
    // The first step of an abort puts `aborting` in the layout: only once
    // every member's build reads it.
    if next.aborting != layout.aborting {
        upgrade::here(me, layout, id)?;
    }
    let sets = || upgrade::here_needing(me, layout, id, upgrade::REMOVE_SETS);
    // A second dead node in a removal, a forced replacement: only once
    // every build decodes it (an older one drops the field).
    if upgrade::joins_removal(layout, next) || upgrade::forces_replace(layout, next) {
        sets()?;
    }
    if upgrade::begins_attempt(layout, next) {
        if !upgrade::withdrawn_again(layout, next).is_empty() {
            upgrade::here_needing(me, layout, id, WITHDRAWS)?;
        } else if sets().is_err() {
            upgrade::drop_attempt_ids(layout, next);
        }
    }
    Ok(())
}

/// Proposes `next` (begun and forced in one version) and answers `state`.
async fn propose(
    cluster: &Cluster,
    layout: &Layout,
    mut next: Layout,
    id: &str,
    state: &str,
) -> Response {
    next.version = next.version.min(layout.version + 1);
    let v = next.version;
    match cluster.propose(next).await {
        Ok(_) => answer(v, id, state),
        Err(e) => {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::CONFLICT);
            let applied = [(crate::proto::APPLIED_METADATA, e.applied())];
            (status, applied, format!("{e}\n")).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An unknown field is refused; `withdraw` and `force` are read.
    #[test]
    fn the_query_denies_unknown_fields() {
        let q = |uri: &str| Query::<RemoveQuery>::try_from_uri(&uri.parse().unwrap());
        let w = q("/removenode?id=a&withdraw=true").unwrap().0;
        assert_eq!(
            (w.id.as_deref(), w.withdraw, w.force),
            (Some("a"), true, false)
        );
        assert!(q("/removenode?id=a&withdrw=true").is_err());
        assert!(!q("/removenode?id=a&force=true").unwrap().0.withdraw);
        // review-withdraw34 L1: both at once is refused (400), not a withdraw.
        assert!(q("/removenode?id=a&withdraw=true&force=true")
            .unwrap()
            .0
            .contradicts());
        assert!(!w.contradicts());
    }

    /// review-withdraw34 M3: in a cluster where a member up runs a build
    /// without `REMOVE_SETS`, a removal begun again after a withdraw would
    /// share the withdrawn attempt's name, so the withdraw is refused
    /// there (409 `not proposed`) and the removal stays. Fails before, by
    /// reading: the withdraw had no gate and went on to its proposal.
    #[tokio::test]
    async fn a_withdraw_waits_until_every_member_up_tells_attempts_apart() {
        let ids = ["w3a", "w3b", "w3c", "w3d"];
        let removing = remove::begin(&seed(&ids), "w3d", &|_| false).expect("a removal");
        let (admin, cluster) = admin_on(&removing, ("w3b", 0), "w3d");
        let body = refused(admin, "w3d", true).await;
        assert!(body.contains("w3b"), "{body}");
        assert_eq!(*cluster.current().layout, removing, "the removal stays");
    }

    /// review-final34 M1: x (m1b, an older build) was down during the
    /// withdraw and is up again: a removal of the same node begun now
    /// would have no attempt id, so it would share the withdrawn
    /// attempt's name and x's stale `done` could finish it. It is refused
    /// (409 `not proposed` naming x), the layout unchanged; the same begin
    /// of a node never withdrawn goes on in the older form. Fails before
    /// the fix: the begin was proposed with `began` 0.
    #[tokio::test]
    async fn a_removal_begun_again_after_a_withdraw_waits_for_every_member_up() {
        let ids = ["m1a", "m1b", "m1c", "m1d", "m1e"];
        let first = remove::begin(&seed(&ids), "m1d", &|_| false).expect("a removal");
        let back = first.withdraw_removal_of("m1d").expect("withdrawn");
        let (admin, cluster) = admin_on(&back, ("m1b", 0), "m1d");
        let body = refused(admin, "m1d", false).await;
        assert!(body.contains("m1b (an older build)"), "{body}");
        assert_eq!(*cluster.current().layout, back, "nothing proposed");
        // A node never withdrawn: begun with no attempt id, as before.
        let mut next = remove::begin(&back, "m1e", &|_| false).expect("a removal");
        gates("m1a", &back, &mut next, "m1e").expect("the older form");
        assert_eq!(next.movements["dc1"].to_string(), "removal of m1e");
    }

    /// review-elastic35 M1: a member up on main's build advertises
    /// `REMOVE_SETS` (3) but cannot decode `Layout::withdrawn`: the
    /// withdraw, and a removal begun again after one, are refused (409
    /// naming it), nothing proposed. Fails before, by reading: both were
    /// gated on `REMOVE_SETS` alone and went on to their proposals.
    #[tokio::test]
    async fn a_withdraw_waits_for_every_member_up_to_read_its_record() {
        let ids = ["r1a", "r1b", "r1c", "r1d", "r1e"];
        let removing = remove::begin(&seed(&ids), "r1d", &|_| false).expect("a removal");
        let (admin, cluster) = admin_on(&removing, ("r1b", 3), "r1d");
        let body = refused(admin, "r1d", true).await;
        assert!(body.contains("r1b"), "{body}");
        assert_eq!(*cluster.current().layout, removing, "the removal stays");
        let back = removing.withdraw_removal_of("r1d").expect("withdrawn");
        let (admin, cluster) = admin_on(&back, ("r1b", 3), "r1d");
        let body = refused(admin, "r1d", false).await;
        assert!(body.contains("r1b"), "{body}");
        assert_eq!(*cluster.current().layout, back, "nothing proposed");
    }

    /// review-elastic35b M-b: the node whose removal is withdrawn, back up
    /// on main's build (3), is a member again after the withdraw and could
    /// not decode its record: it holds the withdraw too (409 naming it).
    /// Fails before, by reading: the gate skipped it (`except` = the node).
    #[tokio::test]
    async fn a_withdraw_waits_for_the_node_it_gives_back() {
        let ids = ["r1a", "r1b", "r1c", "r1d", "r1e"];
        let removing = remove::begin(&seed(&ids), "r1d", &|_| false).expect("a removal");
        let (admin, cluster) = admin_on(&removing, ("r1d", 3), "none");
        let body = refused(admin, "r1d", true).await;
        assert!(body.contains("r1d (an older build)"), "{body}");
        assert_eq!(*cluster.current().layout, removing, "the removal stays");
    }

    fn seed(ids: &[&str]) -> Layout {
        let topo = crate::topology::testing::yaml(&[("dc1", ids)], &[("dc1", 3)]);
        Layout::seed(&crate::topology::Topology::parse("t.yaml", &topo).expect("parses"))
    }

    /// The admin of the first node on `layout`; `dead` down, `old.0` up on
    /// an older build (feature bits `old.1`), every other up on this one.
    fn admin_on(layout: &Layout, old: (&'static str, u64), dead: &'static str) -> (Admin, Cluster) {
        use std::sync::Arc;
        let me = layout.nodes().next().expect("a node").2.id.clone();
        let cluster = Cluster::new(layout.clone(), &me, None).expect("cluster");
        let board = crate::movement::progress::board(&me);
        board.set_liveness(Arc::new(move |id: &str| id != dead));
        board.set_features(Arc::new(move |id: &str| {
            Some(if id == old.0 { old.1 } else { u64::MAX })
        }));
        let admin = Admin {
            node_id: me.into(),
            metrics: crate::admin::install_metrics(),
            faults: Arc::new(crate::transport::faults::Faults::new(false)),
            repair: None,
            cluster: Some(cluster.clone()),
            control: None,
            engine: None,
            guard: crate::admin::Guard::open(),
            spawner: crate::tasks::Spawner::detached(),
        };
        (admin, cluster)
    }

    /// `POST /removenode?id=ID[&withdraw=true]` answered 409 `not
    /// proposed`: its body.
    async fn refused(admin: Admin, id: &str, withdraw: bool) -> String {
        let q = RemoveQuery {
            id: Some(id.into()),
            withdraw,
            force: false,
        };
        let ask = removenode(State(admin), Ok(Query(q)));
        let r = (tokio::time::timeout(std::time::Duration::from_secs(10), ask).await)
            .expect("answered, not proposed");
        let status = r.status();
        let body = axum::body::to_bytes(r.into_body(), 4096).await.unwrap();
        let body = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(body.contains("not proposed"), "{body}");
        body
    }
}
