//! Tests of `adopt`: who adopts a leaver's queue, and what adopting keeps.

use super::*;
use crate::engine::memory::MemoryEngine;
use crate::engine::{Engine, Limits};
use crate::hints::testing::entry;
use crate::hints::testing::layouts;
use crate::layout::Layout;
use crate::proto::v1::internode::StreamEntry;
use crate::view::Cluster;

fn dc(n: &str) -> Dest {
    Dest::Dc(n.into())
}

fn node(n: &str) -> Dest {
    Dest::Node(n.into())
}

#[test]
fn a_member_adopts_queues_it_would_keep_itself_and_nothing_else() {
    let (_, left) = layouts();
    let a = ClusterView::derive(left.clone(), "a").unwrap();
    assert_eq!(decide(&a, "a", "dc1", "dc:dc2"), Ok(dc("dc2")));
    assert_eq!(decide(&a, "a", "dc1", "node:b"), Ok(node("b")));
    assert_eq!(decide(&a, "a", "dc1", "node:a"), Err(Refusal::Mine));
    // Its own datacenter has no stream; an unknown one or a node that is
    // not a member (here: the leaver) has no delivery task.
    for label in ["dc:dc1", "dc:dc9", "node:d", "node:zz"] {
        assert_eq!(
            decide(&a, "a", "dc1", label),
            Err(Refusal::NotMine(label.into())),
            "{label}"
        );
    }
    assert!(matches!(
        decide(&a, "a", "dc1", "dc2"),
        Err(Refusal::UnknownQueue(_))
    ));
    // A node that has left adopts nothing: it is leaving with its queues.
    let d = ClusterView::derive(left, "d").unwrap();
    assert_eq!(decide(&d, "d", "dc1", "dc:dc2"), Err(Refusal::Left));
}

#[test]
fn adopters_are_the_live_normal_members_of_the_leavers_datacenter_but_the_destination() {
    let (seed, left) = layouts();
    let d = ClusterView::derive(left, "d").unwrap();
    let all_up = |_: &str| true;
    assert_eq!(
        adopters(&d, "d", "dc1", &dc("dc2"), all_up),
        ["a", "b", "c"]
    );
    assert_eq!(adopters(&d, "d", "dc1", &node("b"), all_up), ["a", "c"]);
    let b_down = |id: &str| id != "b";
    assert_eq!(adopters(&d, "d", "dc1", &dc("dc2"), b_down), ["a", "c"]);
    // Only its own datacenter adopts (here the caller says it is in dc2).
    assert_eq!(adopters(&d, "d", "dc2", &dc("dc1"), all_up), ["x"]);
    // While a (here: c) leaves, it is no adopter either.
    let c_leaving = seed.begin_leave("c").unwrap();
    let a = ClusterView::derive(c_leaving, "a").unwrap();
    assert_eq!(adopters(&a, "d", "dc1", &dc("dc2"), all_up), ["a", "b"]);
}

fn hints_on(layout: Layout, me: &str) -> Arc<Hints> {
    let engine: Arc<dyn Engine> = Arc::new(MemoryEngine::new(Limits::default()));
    let cluster = Cluster::new(layout, me, None).unwrap();
    let info = cluster.current().me().unwrap().clone();
    Arc::new(Hints::open(engine, cluster, info, Default::default()).unwrap())
}

fn batch(adopt_for: &str, seqs: &[u64]) -> StreamBatch {
    StreamBatch {
        source_node: "d".into(),
        source_dc: "dc1".into(),
        entries: (seqs.iter())
            .map(|&seq| StreamEntry {
                seq,
                need_acks: 2,
                coordinator_pending: Some(1),
                ..entry(format!("k{seq}").as_bytes())
            })
            .collect(),
        batch_id: 7,
        urgent: true,
        adopt_for: adopt_for.into(),
    }
}

/// Adopted entries are queued durably for the same destination, in the
/// backlog lane (nobody waits on them here), and acknowledged as durable;
/// a refused batch is acknowledged as not applied and queues nothing.
#[tokio::test]
async fn an_adopted_batch_is_queued_here_for_its_destination_and_acknowledged_durable() {
    let (_, left) = layouts();
    let a = hints_on(left, "a");
    let ack = adopt(&a, "a", "dc1", batch("dc:dc2", &[40, 41, 42])).await;
    assert_eq!(ack.batch_id, 7);
    let acked: Vec<(u64, bool)> = ack.entries.iter().map(|e| (e.seq, e.durable)).collect();
    assert_eq!(acked, [(40, true), (41, true), (42, true)]);
    assert_eq!(a.backlog_entries(&dc("dc2")), 3);
    let from = dc("dc2").prefix(Lane::Backlog);
    let page = (a.store)
        .load_page(&dc("dc2"), Lane::Backlog, from, Vec::new(), 10)
        .unwrap();
    let keys: Vec<&[u8]> = page.entries.iter().map(|l| &l.entry.key[..]).collect();
    assert_eq!(keys, [b"k40", b"k41", b"k42"]);
    for l in &page.entries {
        assert_eq!((l.entry.need_acks, l.entry.coordinator_pending), (0, None));
    }

    let refused = adopt(&a, "a", "dc1", batch("node:a", &[43])).await;
    assert_eq!(refused.entries.len(), 1);
    assert!(!refused.entries[0].durable && !refused.entries[0].refused);
    assert_eq!(a.backlog_entries(&node("a")), 0);
    for label in ["dc:dc1", "node:d", ""] {
        let refused = adopt(&a, "a", "dc1", batch(label, &[44, 45])).await;
        assert!(refused.entries.iter().all(|e| !e.durable), "{label}");
    }
    assert_eq!(a.backlog_entries(&dc("dc1")), 0);
    assert_eq!(a.backlog_entries(&dc("dc2")), 3);
    // On the delivery call such a batch is never applied either.
    let on_stream = refuse(batch("dc:dc2", &[46]));
    assert_eq!((on_stream.batch_id, on_stream.entries.len()), (7, 1));
    assert!(!on_stream.entries[0].durable && !on_stream.entries[0].refused);
}
