//! Tests of gossip's install of newer layouts (`sync.rs`, `staging.rs`):
//! dc1-n1 on the dev seed hears gossip digests from the other five dev
//! nodes, whose layouts a scripted source hands out; paused time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::cas_testing::{accept_in, with_keyspace};
use super::catch_up::{FetchError, Fetched, LayoutSource};
use super::staging::STAGE_GRACE;
use super::sync::LayoutSync;
use super::Cluster;
use crate::layout::Layout;
use crate::proto::v1::internode::GossipDigest;
use crate::topology::{NodeInfo, Topology};
use crate::transport::faults::Faults;
use crate::transport::{Peers, TransportError};

/// Each member's layout, handed out at once.
struct Members(BTreeMap<String, Layout>);

impl LayoutSource for Members {
    fn layout_of(&self, to: &NodeInfo, _: Duration) -> Fetched<'_> {
        let silent = || {
            FetchError::Transport(TransportError::Timeout {
                peer: to.id.clone(),
                ms: 0,
            })
        };
        let answer = self.0.get(&to.id).cloned().ok_or_else(silent);
        Box::pin(async move { answer })
    }
}

/// dc1-n1 on the seed, fetching from `members`.
fn node(members: &[(&str, &Layout)]) -> (Cluster, Arc<LayoutSync>) {
    let seed = Layout::seed(&Topology::dev());
    let cluster = Cluster::new(seed, "dc1-n1", None).expect("a view");
    let me = cluster.current().me().expect("a member").clone();
    let tls = crate::transport::tls::Tls::insecure();
    let peers = Arc::new(Peers::new(me, Arc::new(Faults::new(false)), &tls));
    let members = (members.iter())
        .map(|(id, l)| (id.to_string(), (*l).clone()))
        .collect();
    let source = Arc::new(Members(members));
    let spawner = crate::tasks::Spawner::detached();
    let sync = LayoutSync::with_source(cluster.clone(), peers, spawner, source);
    (cluster, sync)
}

/// `from`'s gossip digest advertising `layout`; then lets the fetch run.
async fn hear(sync: &Arc<LayoutSync>, from: &str, layout: &Layout) {
    let digest = GossipDigest {
        from: from.to_string(),
        layout_version: layout.version,
        layout_digest: layout.digest().to_be_bytes().to_vec(),
        ..GossipDigest::default()
    };
    sync.observe(&digest);
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// The fork's other path (note28 "Issue 11" Left): dc1-n2 holds a fork
/// of v2 that was never chosen and gossips first; the four others show
/// the chosen v2. dc1-n1 does not install the fork: it takes the v2 a
/// quorum of its voters shows. Before: the first peer's fork was
/// installed at once, and the chosen v2 then refused as a fork.
#[tokio::test(start_paused = true)]
async fn a_fork_one_gossip_peer_shows_is_not_installed() {
    let seed = Layout::seed(&Topology::dev());
    let (chosen, fork) = (with_keyspace(&seed, "a"), with_keyspace(&seed, "fork"));
    let others = ["dc1-n3", "dc2-n1", "dc2-n2", "dc2-n3"];
    let mut members = vec![("dc1-n2", &fork)];
    members.extend(others.iter().map(|id| (*id, &chosen)));
    let (cluster, sync) = node(&members);
    hear(&sync, "dc1-n2", &fork).await;
    assert_eq!(cluster.current().version(), 1, "one peer's word is staged");
    for id in others {
        hear(&sync, id, &chosen).await;
    }
    assert_eq!(
        *cluster.current().layout,
        chosen,
        "the chosen v2, not the fork"
    );
    tokio::time::sleep(STAGE_GRACE * 2).await;
    hear(&sync, "dc1-n2", &fork).await;
    assert_eq!(*cluster.current().layout, chosen);
}

/// A chosen layout still spreads by gossip: two members show it (the
/// others still on the seed) and it is installed at once.
#[tokio::test(start_paused = true)]
async fn a_layout_two_members_show_is_installed_at_once() {
    let seed = Layout::seed(&Topology::dev());
    let v2 = with_keyspace(&seed, "a");
    let (cluster, sync) = node(&[("dc1-n2", &v2), ("dc2-n1", &v2)]);
    hear(&sync, "dc1-n2", &v2).await;
    hear(&sync, "dc1-n3", &seed).await;
    assert_eq!(cluster.current().version(), 1);
    hear(&sync, "dc2-n1", &v2).await;
    assert_eq!(*cluster.current().layout, v2);
}

/// A layout only one member shows (its other holders down), with no
/// other layout of its version in sight, is installed after the grace:
/// a node that never took it would hold every later change BEHIND.
#[tokio::test(start_paused = true)]
async fn a_lone_uncontested_layout_is_installed_after_the_grace() {
    let seed = Layout::seed(&Topology::dev());
    let v3 = with_keyspace(&with_keyspace(&seed, "a"), "b");
    let (cluster, sync) = node(&[("dc1-n2", &v3)]);
    hear(&sync, "dc1-n2", &v3).await;
    tokio::time::sleep(STAGE_GRACE - Duration::from_secs(1)).await;
    hear(&sync, "dc1-n2", &v3).await;
    assert_eq!(cluster.current().version(), 1, "still within the grace");
    tokio::time::sleep(Duration::from_secs(1)).await;
    hear(&sync, "dc1-n2", &v3).await;
    assert_eq!(*cluster.current().layout, v3);
}

/// review-layout29b High, the converse (no wedge): dc1-n1's acceptor
/// accepted another v2 at round 1, and v2 was chosen without it at a
/// higher round. Two or three members showing it are one peer's word
/// against what dc1-n1 accepted (`guard.rs`): not installed; a quorum of
/// its voters (4 of the 6) showing it is: installed.
#[tokio::test(start_paused = true)]
async fn a_layout_chosen_without_this_acceptor_is_installed_once_a_quorum_shows_it() {
    let seed = Layout::seed(&Topology::dev());
    let (chosen, other) = (with_keyspace(&seed, "a"), with_keyspace(&seed, "other"));
    let holders = ["dc1-n2", "dc1-n3", "dc2-n1", "dc2-n2"];
    let members: Vec<(&str, &Layout)> = holders.iter().map(|id| (*id, &chosen)).collect();
    let (cluster, sync) = node(&members);
    accept_in(&cluster, &seed, &other, 1, "dc2-n3/p");
    for id in &holders[..3] {
        hear(&sync, id, &chosen).await;
        assert_eq!(cluster.current().version(), 1, "{id}: not a quorum yet");
    }
    hear(&sync, holders[3], &chosen).await;
    assert_eq!(*cluster.current().layout, chosen, "a quorum of its voters");
}
