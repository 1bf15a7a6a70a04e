//! The layout catch-up at start (issue 11, W4): a node restarts on the
//! layout it persisted, which is old if it was down through a movement;
//! before it opens its client port it asks the other members of its view
//! for their layouts and installs the newest, so it does not coordinate
//! (nor answer as a replica it no longer is) on the layout it went down
//! with. Done once a majority of the view's members (itself counted)
//! answered, or after a bound ([`CATCH_UP_WITHIN`], 10 s): Cassandra
//! waits for schema agreement and for gossip to settle the same way, and
//! then starts anyway. A node that cannot reach a majority is cut off
//! with a minority, where quorum requests fail anyway; refusing to start
//! would keep a whole cluster restarted at once from ever starting (each
//! node's internode port is open before it waits, so nodes starting
//! together answer each other). Gossip brings anything newer later.
//! Must not: open ports, decide or merge layouts (it installs through
//! [`Cluster::install`]), or wait past its bound.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::time::Instant;

use super::Cluster;
use crate::layout::Layout;
use crate::topology::NodeInfo;
use crate::transport::Peers;

/// How long a start waits for a majority of its members' layouts.
pub const CATCH_UP_WITHIN: Duration = Duration::from_secs(10);

/// Pause before asking a member that did not answer again.
const RETRY_AFTER: Duration = Duration::from_millis(250);

/// Deadline of one `GetLayout`.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// How the catch-up reaches another member's layout.
pub trait LayoutSource: Send + Sync {
    /// `to`'s layout, or why none came within `timeout`.
    fn layout_of(
        &self,
        to: &NodeInfo,
        timeout: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<Layout, String>> + Send + '_>>;
}

/// What the catch-up did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaughtUp {
    /// The only member of its view: nobody to ask.
    Alone,
    /// `answered` of the other members answered (with this node, a
    /// majority of its view); the layout in force went `from` → `to`.
    Majority { answered: usize, from: u64, to: u64 },
    /// The bound passed with fewer than `needed` other members answered:
    /// the node serves on layout `to` (maybe behind; gossip catches up).
    TimedOut {
        answered: usize,
        needed: usize,
        from: u64,
        to: u64,
    },
}

/// Asks every other member of `cluster`'s view for its layout through
/// `source` (each again after a pause until it answers) until a majority
/// of the view answered (and, when the answers of the newest version
/// disagree, the rest too) or `within` passed; then installs the layout
/// they back ([`backed`]), not the first to arrive (review-layout27 M4).
pub async fn catch_up(cluster: &Cluster, source: &dyn LayoutSource, within: Duration) -> CaughtUp {
    let view = cluster.current();
    let from = view.version();
    let others: Vec<NodeInfo> = (view.members().iter())
        .filter(|n| n.id != view.me_id())
        .cloned()
        .collect();
    if others.is_empty() {
        return CaughtUp::Alone;
    }
    // A majority of the view, this node counted.
    let needed = others.len().div_ceil(2);
    let give_up = Instant::now() + within;
    let mut asks: FuturesUnordered<_> = (others.iter())
        .map(|peer| ask_until_answered(source, peer, give_up))
        .collect();
    let mut answers = vec![(view.me_id().to_string(), (*view.layout).clone())];
    let enough =
        |a: &[(String, Layout)]| a.len() > needed && (a.len() > others.len() || newest_agree(a));
    while !enough(&answers) {
        match tokio::time::timeout_at(give_up, asks.next()).await {
            Ok(Some(answer)) => answers.push(answer),
            Ok(None) | Err(_) => break,
        }
    }
    if let Some(layout) = backed(&answers) {
        if let Err(e) = cluster.install(layout.clone()) {
            tracing::warn!(version = layout.version, error = %e, "layout: the layout the members back at start not installed");
        }
    }
    let (answered, to) = (answers.len() - 1, cluster.current().version());
    if answered < needed {
        tracing::warn!(answered, needed, from, to, secs = within.as_secs(),
            "layout: too few members answered at start within the bound; serving on the layout in force (gossip brings newer ones)");
        return CaughtUp::TimedOut {
            answered,
            needed,
            from,
            to,
        };
    }
    tracing::info!(
        answered,
        from,
        to,
        "layout: caught up with a majority of the members before serving"
    );
    CaughtUp::Majority { answered, from, to }
}

/// Whether every answer of the newest version holds one layout.
fn newest_agree(answers: &[(String, Layout)]) -> bool {
    let newest = answers.iter().map(|(_, l)| l.version).max();
    let mut digests = (answers.iter())
        .filter(|(_, l)| Some(l.version) == newest)
        .map(|(_, l)| l.digest());
    let first = digests.next();
    digests.all(|d| Some(d) == first)
}

/// The layout `answers` (each member and its layout, this node's
/// included) back: per version from the newest, the one every answer of
/// that version holds, else the one a quorum of its own voters holds
/// among them ([`crate::layout::acceptors::held_by_its_voters`]); a
/// version whose answers disagree with neither is passed over, logged.
pub(crate) fn backed(answers: &[(String, Layout)]) -> Option<&Layout> {
    let versions: std::collections::BTreeSet<u64> =
        answers.iter().map(|(_, l)| l.version).collect();
    for version in versions.into_iter().rev() {
        let held: Vec<(String, Layout)> = (answers.iter())
            .filter(|(_, l)| l.version == version)
            .cloned()
            .collect();
        let digests: std::collections::BTreeSet<u128> =
            held.iter().map(|(_, l)| l.digest()).collect();
        let chosen = match digests.len() {
            1 => Some(&held[0].1),
            _ => crate::layout::acceptors::held_by_its_voters(&held),
        };
        if let Some(chosen) = chosen {
            if digests.len() > 1 {
                tracing::warn!(version, layouts = digests.len(), chosen = %format!("{:032x}", chosen.digest()),
                    "layout: members answered different layouts of one version at start (a fork); took the one a quorum of its voters holds");
            }
            let digest = chosen.digest();
            return answers
                .iter()
                .map(|(_, l)| l)
                .find(|l| l.digest() == digest);
        }
        tracing::error!(version, layouts = digests.len(),
            "layout: members answered different layouts of one version at start, none held by a quorum of its voters: took none of them");
    }
    None
}

/// `peer`'s layout, asked again after each failure until `give_up`.
async fn ask_until_answered(
    source: &dyn LayoutSource,
    peer: &NodeInfo,
    give_up: Instant,
) -> (String, Layout) {
    loop {
        let left = give_up.saturating_duration_since(Instant::now());
        match source.layout_of(peer, left.min(CALL_TIMEOUT)).await {
            Ok(layout) => return (peer.id.clone(), layout),
            Err(e) => {
                tracing::debug!(peer = %peer.id, error = %e, "layout: no answer at start yet")
            }
        }
        tokio::time::sleep(RETRY_AFTER).await;
    }
}

/// Members reached through the internode transport.
pub struct PeersSource(pub Arc<Peers>);

impl LayoutSource for PeersSource {
    fn layout_of(
        &self,
        to: &NodeInfo,
        timeout: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<Layout, String>> + Send + '_>> {
        let to = to.clone();
        Box::pin(async move {
            let msg = (self.0.get_layout(&to, timeout).await).map_err(|e| e.to_string())?;
            super::sync::from_message(&to.id, &msg).map_err(|e| e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Topology;
    use std::collections::BTreeMap;

    fn with_keyspace(l: &Layout, name: &str) -> Layout {
        let mut next = l.clone();
        next.version += 1;
        let spec = next.keyspaces.values().next().expect("dev has one").clone();
        next.keyspaces.insert(name.to_string(), spec);
        next
    }

    /// Each member answers with its layout after its delay, or never.
    struct Members(BTreeMap<String, (Option<Duration>, Layout)>);

    impl LayoutSource for Members {
        fn layout_of(
            &self,
            to: &NodeInfo,
            timeout: Duration,
        ) -> Pin<Box<dyn Future<Output = Result<Layout, String>> + Send + '_>> {
            let answer = self.0.get(&to.id).cloned();
            Box::pin(async move {
                match answer {
                    Some((Some(delay), layout)) if delay <= timeout => {
                        tokio::time::sleep(delay).await;
                        Ok(layout)
                    }
                    _ => {
                        tokio::time::sleep(timeout).await;
                        Err("no answer".to_string())
                    }
                }
            })
        }
    }

    /// dc1-n1 restarted on the seed layout while the others went on to v3.
    fn restarted(answer: impl Fn(&str) -> Option<Duration>) -> (Cluster, Members, Layout) {
        let seed = Layout::seed(&Topology::dev());
        let v3 = with_keyspace(&with_keyspace(&seed, "a"), "b");
        let me = Cluster::new(seed.clone(), "dc1-n1", None).expect("a view");
        let members = (seed.nodes().map(|(_, _, n)| n.id.clone()))
            .filter(|id| id != "dc1-n1")
            .map(|id| (id.clone(), (answer(&id), v3.clone())))
            .collect();
        (me, Members(members), v3)
    }

    #[tokio::test(start_paused = true)]
    async fn a_restarted_node_takes_its_members_newer_layout_before_serving() {
        let (me, members, v3) = restarted(|_| Some(Duration::from_millis(30)));
        let done = catch_up(&me, &members, CATCH_UP_WITHIN).await;
        assert!(
            matches!(done, CaughtUp::Majority { from: 1, to: 3, .. }),
            "{done:?}"
        );
        assert_eq!(*me.current().layout, v3);
    }

    /// Two of the five others dead: the three that answer make a majority
    /// of six with this node; the start does not wait for the dead.
    #[tokio::test(start_paused = true)]
    async fn dead_members_in_a_minority_do_not_hold_the_start() {
        let dead = ["dc2-n1", "dc2-n2"];
        let (me, members, _) =
            restarted(|id| (!dead.contains(&id)).then_some(Duration::from_millis(30)));
        let started = Instant::now();
        let done = catch_up(&me, &members, CATCH_UP_WITHIN).await;
        assert_eq!(
            done,
            CaughtUp::Majority {
                answered: 3,
                from: 1,
                to: 3
            }
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }

    /// Nobody answers: the start waits the bound, then serves on its own
    /// layout (and says so).
    #[tokio::test(start_paused = true)]
    async fn with_no_member_answering_the_start_waits_the_bound_then_serves() {
        let (me, members, _) = restarted(|_| None);
        let started = Instant::now();
        let done = catch_up(&me, &members, CATCH_UP_WITHIN).await;
        let timed_out = CaughtUp::TimedOut {
            answered: 0,
            needed: 3,
            from: 1,
            to: 1,
        };
        assert_eq!(done, timed_out);
        assert_eq!(started.elapsed(), CATCH_UP_WITHIN);
    }

    /// review-layout27 M4: among the answers, the layout the members back
    /// is installed, not the first to arrive: dc1-n2 holds a fork of v3
    /// and answers first, the others hold the chosen v3 (before: the fork
    /// was installed, and the chosen v3 then refused as a fork).
    #[tokio::test(start_paused = true)]
    async fn the_layout_a_quorum_holds_is_installed_not_the_first_answer() {
        let (me, mut members, v3) = restarted(|_| Some(Duration::from_millis(30)));
        let fork = with_keyspace(&with_keyspace(&Layout::seed(&Topology::dev()), "a"), "x");
        let early = (Some(Duration::from_millis(1)), fork.clone());
        members.0.insert("dc1-n2".to_string(), early);
        let done = catch_up(&me, &members, CATCH_UP_WITHIN).await;
        assert!(matches!(done, CaughtUp::Majority { to: 3, .. }), "{done:?}");
        let installed = me.current().layout.digest();
        assert_eq!(installed, v3.digest(), "the chosen v3, not the fork");
    }
}
