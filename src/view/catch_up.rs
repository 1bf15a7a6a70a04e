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
//! The layout is installed with what the answers know of its lineage
//! (its predecessor, its proof of choice: review-layout31 H1), as backed
//! by its voters when a quorum of them holds it.
//! Must not: open ports, decide or merge layouts (it installs through
//! [`Cluster::install_from`]), or wait past its bound.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::time::Instant;

use super::lineage::{Lineage, Lineages};
use super::{Cluster, Source};
use crate::layout::Layout;
use crate::proto::v1::internode::LayoutMessage;
use crate::topology::NodeInfo;
use crate::transport::{Peers, TransportError};

/// How long a start waits for a majority of its members' layouts.
pub const CATCH_UP_WITHIN: Duration = Duration::from_secs(10);

/// Once a majority answered, how long a start waits for more answers
/// while the newest version answered has no backing (review-layout28 L3).
pub const SETTLE_WITHIN: Duration = Duration::from_secs(1);

/// Pause before asking a member that did not answer again.
const RETRY_AFTER: Duration = Duration::from_millis(250);

/// Deadline of one `GetLayout`.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// A layout and its lineage being fetched, or why none came.
pub type WithLineage<'a> =
    Pin<Box<dyn Future<Output = Result<(Layout, Lineage), FetchError>> + Send + 'a>>;

/// A layout being fetched, or why none came.
pub type Fetched<'a> = Pin<Box<dyn Future<Output = Result<Layout, FetchError>> + Send + 'a>>;

/// Why another member's layout did not come: logged by the catch-up
/// (which asks again), wrapped by the gossip's fetch (`SyncError::Fetch`).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The call failed: not sent, no answer in time, or refused.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The answer's layout does not decode.
    #[error("layout from {from} does not decode: {source}")]
    Decode {
        from: String,
        source: serde_json::Error,
    },
}

/// How the catch-up reaches another member's layout.
pub trait LayoutSource: Send + Sync {
    /// `to`'s layout, or why none came within `timeout`.
    fn layout_of(&self, to: &NodeInfo, timeout: Duration) -> Fetched<'_>;

    /// [`LayoutSource::layout_of`] with what `to` knows of its lineage
    /// (`super::lineage`; unknown unless the source carries it).
    fn layout_with_lineage(&self, to: &NodeInfo, timeout: Duration) -> WithLineage<'_> {
        let asked = self.layout_of(to, timeout);
        Box::pin(async move { Ok((asked.await?, Lineage::default())) })
    }
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
/// of the view answered and the answers back a layout of the newest
/// version answered (else until all answered, or [`SETTLE_WITHIN`] after
/// the majority: a dead member does not hold the start, review-layout28
/// L3), or `within` passed; then installs the layout they back
/// ([`backed`]), not the first to arrive (review-layout27 M4).
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
    let mut lineages = Lineages::default();
    lineages.add(&view.layout, cluster.lineage_of(&view.layout));
    let enough =
        |a: &[(String, Layout)]| a.len() > needed && (a.len() > others.len() || newest_backed(a));
    // Once a majority answered, more answers are awaited only briefly.
    let mut until = give_up;
    while !enough(&answers) {
        match tokio::time::timeout_at(until, asks.next()).await {
            Ok(Some((id, layout, lineage))) => {
                lineages.add(&layout, lineage);
                answers.push((id, layout));
            }
            Ok(None) | Err(_) => break,
        }
        if answers.len() == needed + 1 {
            until = give_up.min(Instant::now() + SETTLE_WITHIN);
        }
    }
    install_backed(cluster, &answers, lineages);
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

/// Installs the layout `answers` back ([`backed`]) with what the answers
/// know of its lineage: as held by a quorum of its voters when it is
/// (review-layout30 L2), else on the members' word (the install guard
/// checks it, `super::guard`).
fn install_backed(cluster: &Cluster, answers: &[(String, Layout)], lineages: Lineages) {
    let Some(layout) = backed(answers) else {
        return;
    };
    let held: Vec<(String, Layout)> = (answers.iter())
        .filter(|(_, l)| l.version == layout.version)
        .cloned()
        .collect();
    let source = match crate::layout::acceptors::held_by_its_voters(&held) {
        Some(l) if l == layout => Source::Voters,
        _ => Source::Peer,
    };
    let lineage = lineages.of(layout);
    if let Err(e) = cluster.install_from(layout.clone(), lineage, source) {
        tracing::warn!(version = layout.version, error = %e, "layout: the layout the members back at start not installed");
    }
}

/// Whether the answers back a layout of the newest version answered, or
/// nothing newer than this node's (the first answer) was answered.
fn newest_backed(answers: &[(String, Layout)]) -> bool {
    let newest = answers.iter().map(|(_, l)| l.version).max();
    newest <= Some(answers[0].1.version) || pick(answers, |_, _| {}).map(|l| l.version) == newest
}

/// The layout `answers` (each member and its layout, this node's
/// included) back ([`pick`]), logging the versions passed over.
pub(crate) fn backed(answers: &[(String, Layout)]) -> Option<&Layout> {
    let chosen = pick(answers, |version, held| {
        let digests: BTreeSet<u128> = held.iter().map(|(_, l)| l.digest()).collect();
        match digests.len() {
            1 => tracing::warn!(version, holder = %held[0].0,
                "layout: one member alone answered a newer layout at start; not taken on its word (gossip brings it once others hold it)"),
            n => tracing::error!(version, layouts = n,
                "layout: members answered different layouts of one version at start, none held by a quorum of its voters: took none of them"),
        }
    })?;
    let (version, digest) = (chosen.version, chosen.digest());
    if (answers.iter()).any(|(_, l)| l.version == version && l.digest() != digest) {
        tracing::warn!(version, chosen = %format!("{digest:032x}"),
            "layout: members answered different layouts of one version at start (a fork); took the one a quorum of its voters holds");
    }
    Some(chosen)
}

/// Per version from the newest: the layout every answer of that version
/// holds when at least two members answered it (one member's word is
/// not taken: it may hold a fork, review-layout28 L3), else the one a
/// quorum of its own voters holds among them
/// ([`crate::layout::acceptors::held_by_its_voters`]); a version with
/// neither is passed over (`passed(version, answers of it)`).
fn pick(
    answers: &[(String, Layout)],
    passed: impl Fn(u64, &[(String, Layout)]),
) -> Option<&Layout> {
    let versions: BTreeSet<u64> = answers.iter().map(|(_, l)| l.version).collect();
    for version in versions.into_iter().rev() {
        let held: Vec<(String, Layout)> = (answers.iter())
            .filter(|(_, l)| l.version == version)
            .cloned()
            .collect();
        let digests: BTreeSet<u128> = held.iter().map(|(_, l)| l.digest()).collect();
        let chosen = match digests.len() {
            1 if held.len() >= 2 => Some(&held[0].1),
            _ => crate::layout::acceptors::held_by_its_voters(&held),
        };
        let Some(chosen) = chosen else {
            passed(version, &held);
            continue;
        };
        let digest = chosen.digest();
        return (answers.iter().map(|(_, l)| l)).find(|l| l.digest() == digest);
    }
    None
}

/// `peer`'s layout and its lineage, asked again after each failure until
/// `give_up`.
async fn ask_until_answered(
    source: &dyn LayoutSource,
    peer: &NodeInfo,
    give_up: Instant,
) -> (String, Layout, Lineage) {
    loop {
        let left = give_up.saturating_duration_since(Instant::now());
        match source
            .layout_with_lineage(peer, left.min(CALL_TIMEOUT))
            .await
        {
            Ok((layout, lineage)) => return (peer.id.clone(), layout, lineage),
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
    fn layout_of(&self, to: &NodeInfo, timeout: Duration) -> Fetched<'_> {
        let to = to.clone();
        Box::pin(async move { decoded(&to.id, &self.0.get_layout(&to, timeout).await?) })
    }

    fn layout_with_lineage(&self, to: &NodeInfo, timeout: Duration) -> WithLineage<'_> {
        let to = to.clone();
        Box::pin(async move {
            let msg = self.0.get_layout(&to, timeout).await?;
            Ok((decoded(&to.id, &msg)?, Lineage::from_message(&msg)))
        })
    }
}

/// The layout of `msg`, from `from`.
fn decoded(from: &str, msg: &LayoutMessage) -> Result<Layout, FetchError> {
    super::sync::decode(msg).map_err(|source| FetchError::Decode {
        from: from.to_string(),
        source,
    })
}
