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

/// A leaver's anti-entropy records may go to any live Normal member, those
/// of its own datacenter first (review M3 of stop 23).
#[test]
fn record_adopters_are_every_live_normal_member_own_datacenter_first() {
    let (_, left) = layouts();
    let d = ClusterView::derive(left, "d").unwrap();
    assert_eq!(
        record_adopters(&d, "d", "dc1", |_| true),
        ["a", "b", "c", "x"]
    );
    // Here the caller says it is in dc2: x first, then the rest but a (down).
    assert_eq!(
        record_adopters(&d, "d", "dc2", |id| id != "a"),
        ["x", "b", "c"]
    );
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

#[test]
fn a_leaver_hands_over_when_the_destination_is_down_or_keeps_stalling() {
    // A member is offered no adopter: it never hands over.
    for stalls in [0, HAND_OVER_AFTER, 1000] {
        assert!(!hand_over(false, false, stalls));
        assert!(!hand_over(false, true, stalls));
    }
    assert!(hand_over(true, false, 0), "no live destination: at once");
    assert!(!hand_over(true, true, HAND_OVER_AFTER - 1));
    assert!(hand_over(true, true, HAND_OVER_AFTER), "up, unreachable");
}

/// Review of stop 22: once past [`HAND_OVER_AFTER`], a leaver whose
/// adopters all refuse (older nodes in a rolling upgrade answer `Adopt`
/// UNIMPLEMENTED) must still go back to its reachable-again destination,
/// or the leave hangs although it could deliver itself. Every other
/// reopen past the threshold tries the destination.
#[test]
fn past_the_threshold_the_destination_is_tried_between_adopters() {
    let picks: Vec<bool> = (HAND_OVER_AFTER..HAND_OVER_AFTER + 6)
        .map(|stalls| hand_over(true, true, stalls))
        .collect();
    assert_eq!(picks, [true, false, true, false, true, false]);
    // A destination believed down is never tried: only adopters.
    for stalls in HAND_OVER_AFTER..HAND_OVER_AFTER + 6 {
        assert!(hand_over(true, false, stalls));
    }
}

fn recorded(keyspace: &str, token: u64, dest: &str) -> crate::repair::plan::Recorded {
    crate::repair::plan::Recorded {
        key: crate::repair::plan::repair_key(keyspace, token, token).expect("a short name"),
        keyspace: keyspace.into(),
        token,
        dest: dest.into(),
    }
}

/// A leaver's anti-entropy records, adopted: recorded again in the
/// adopter's store (same keyspace, token and destination) and acknowledged
/// durable; what is not a record is refused; what is not settled stays
/// with the leaver.
#[tokio::test]
async fn adopted_anti_entropy_records_are_recorded_at_the_adopter() {
    use crate::repair::records::load_records;
    let (_, left) = layouts();
    let a = hints_on(left, "a");
    let sender = a.cluster.current().node("b").unwrap().clone();
    let recs = [
        recorded("default", 7, "dc:dc2"),
        recorded("ks2", 9, "node:b"),
    ];
    let mut b = records::batch(&sender, &recs, 3);
    assert_eq!(b.adopt_for, records::LABEL);
    let mut junk = b.entries[0].clone();
    (junk.seq, junk.key) = (2, vec![1, 2, 3]);
    b.entries.push(junk);
    let ack = adopt(&a, "a", "dc1", b.clone()).await;
    let got: Vec<(u64, bool, bool)> = (ack.entries.iter())
        .map(|e| (e.seq, e.durable, e.refused))
        .collect();
    assert_eq!(got, [(0, true, false), (1, true, false), (2, false, true)]);
    assert_eq!(records::handed(&recs, &ack).len(), 2);
    let mut here: Vec<(String, u64, String)> = (load_records(&**a.store.engine()).unwrap())
        .into_iter()
        .map(|r| (r.keyspace, r.token, r.dest))
        .collect();
    here.sort();
    assert_eq!(
        here,
        [
            ("default".to_string(), 7, "dc:dc2".to_string()),
            ("ks2".to_string(), 9, "node:b".to_string())
        ]
    );
    // Not settled: kept by the leaver.
    let kept = acks(3, &[0, 1], false);
    assert!(records::handed(&recs, &kept).is_empty());
}

/// A record whose keyspace name does not fit a record key's one-byte
/// length (over 255 bytes: no topology has one) is refused, not recorded
/// under a key truncated to another keyspace (before: acknowledged
/// durable, its length byte wrapped to 0).
#[tokio::test]
async fn an_adopted_record_of_a_keyspace_name_over_255_bytes_is_refused() {
    use crate::repair::records::load_records;
    let (_, left) = layouts();
    let a = hints_on(left, "a");
    let sender = a.cluster.current().node("b").unwrap().clone();
    let recs = [recorded("default", 7, "dc:dc2")];
    let mut b = records::batch(&sender, &recs, 3);
    let mut long = b.entries[0].clone();
    (long.seq, long.keyspace) = (1, "k".repeat(256));
    b.entries.push(long);
    let ack = adopt(&a, "a", "dc1", b).await;
    let got: Vec<(u64, bool, bool)> = (ack.entries.iter())
        .map(|e| (e.seq, e.durable, e.refused))
        .collect();
    assert_eq!(got, [(0, true, false), (1, false, true)]);
    let here = load_records(&**a.store.engine()).unwrap();
    assert_eq!(here.len(), 1, "{here:?}");
    assert_eq!(here[0].keyspace, "default");
}

/// An adopter that acknowledges a record twice in one answer hands it over
/// once: the leaver deletes it once and takes one off its count (review
/// Low of stop 23: counted twice, the count could say none was left while
/// one was).
#[test]
fn a_record_acknowledged_twice_is_handed_over_once() {
    let recs = [
        recorded("default", 7, "dc:dc2"),
        recorded("default", 8, "dc:dc2"),
    ];
    let mut ack = acks(3, &[0, 0, 1], true);
    ack.entries[1].durable = false;
    ack.entries[1].refused = true;
    let handed: Vec<u64> = (records::handed(&recs, &ack).iter())
        .map(|r| r.token)
        .collect();
    assert_eq!(handed, [7, 8]);
}

/// An adopted entry keeps the trace context of the request that made it
/// (review Low of stop 21: the adopter replaced it with its own).
#[tokio::test]
async fn an_adopted_entry_keeps_its_trace_context() {
    let (_, left) = layouts();
    let a = hints_on(left, "a");
    let mut b = batch("dc:dc2", &[50]);
    let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    b.entries[0].traceparent = tp.into();
    assert!(adopt(&a, "a", "dc1", b).await.entries[0].durable);
    let from = dc("dc2").prefix(Lane::Backlog);
    let page = (a.store)
        .load_page(&dc("dc2"), Lane::Backlog, from, Vec::new(), 10)
        .unwrap();
    assert_eq!(page.entries[0].entry.traceparent, tp);
}

/// An adopted entry is queued as of when the leaver queued it, so its hint
/// window does not restart at the hand-over (review Low of stop 21); a
/// creation time ahead of this node's clock counts as now.
#[tokio::test]
async fn an_adopted_entry_keeps_its_creation_time() {
    let (_, left) = layouts();
    let a = hints_on(left, "a");
    let mut b = batch("node:b", &[60, 61]);
    for e in &mut b.entries {
        e.target_node = "b".into();
    }
    b.entries[0].created_ms = Some(1_000);
    b.entries[1].created_ms = Some(u64::MAX);
    assert!(adopt(&a, "a", "dc1", b).await.entries[0].durable);
    let from = node("b").prefix(Lane::Backlog);
    let page = (a.store)
        .load_page(&node("b"), Lane::Backlog, from, Vec::new(), 10)
        .unwrap();
    let created: Vec<u64> = page.entries.iter().map(|l| l.created_ms).collect();
    assert_eq!(created[0], 1_000);
    assert!(created[1] <= crate::hints::now_ms());
    assert!(page.entries.iter().all(|l| l.entry.created_ms.is_none()));
}

/// Each entry must belong in the queue it is adopted for (review Low of
/// stop 21): one naming another node, or a node hint in a stream, is
/// refused alone; the rest is adopted.
#[tokio::test]
async fn an_entry_that_does_not_belong_in_the_queue_is_refused_alone() {
    let (_, left) = layouts();
    let a = hints_on(left, "a");
    let mut b = batch("node:b", &[70, 71, 72]);
    b.entries[0].target_node = "b".into();
    b.entries[1].target_node = "c".into(); // 72: no node named
    let ack = adopt(&a, "a", "dc1", b).await;
    let got: Vec<(u64, bool, bool)> = (ack.entries.iter())
        .map(|e| (e.seq, e.durable, e.refused))
        .collect();
    assert_eq!(
        got,
        [(70, true, false), (71, false, true), (72, false, true)]
    );
    assert_eq!(a.backlog_entries(&node("b")), 1);
    let mut s = batch("dc:dc2", &[73]);
    s.entries[0].target_node = "x".into();
    assert!(adopt(&a, "a", "dc1", s).await.entries[0].refused);
    assert!(fits(&dc("dc2"), &entry(b"k")));
    assert!(!fits(&node("b"), &entry(b"k")));
}

/// A record of `keyspace` at `token`, towards dc2.
fn rec(token: u64) -> crate::repair::plan::Recorded {
    crate::repair::plan::Recorded {
        key: Vec::new(),
        keyspace: "ks".into(),
        token,
        dest: "dc:dc2".into(),
    }
}

/// A page of records goes first to the adopters that replicate most of
/// its ranges (a non-replica adopter's recorded pass runs every-pair
/// sessions, across the WAN); the given order (own datacenter first)
/// otherwise.
#[test]
fn record_adopters_that_replicate_the_records_ranges_come_first() {
    // `ks` has one replica in dc1 and one in dc2 (x); z, the leaver, is in
    // dc3, a coordinator-only datacenter.
    let dcs: [(&str, &[&str]); 3] = [("dc1", &["a", "b", "c"]), ("dc2", &["x"]), ("dc3", &["z"])];
    let topo = crate::topology::testing::yaml(&dcs, &[("dc1", 1), ("dc2", 1)]);
    let parsed = crate::topology::Topology::parse("t.yaml", &topo).expect("parses");
    let seed = Layout::seed(&parsed);
    let left = seed.begin_leave("z").unwrap().finish_leave("z").unwrap();
    let z = ClusterView::derive(left, "z").unwrap();
    let listed = record_adopters(&z, "z", "dc3", |_| true);
    assert_eq!(listed, ["a", "b", "c", "x"]);
    // x replicates every range, each dc1 node about a third of them.
    let page: Vec<_> = (0..64u64).map(|i| rec(i << 58)).collect();
    let ranked = by_replicated(&z, listed.clone(), &page);
    assert_eq!(ranked[0], "x", "{ranked:?}");
    // One record: its dc1 replica and x tie, in the given order, then the rest.
    let ring = &z.ring;
    let replicas = ring.replicas_for_token("ks", 1 << 62).unwrap();
    let ids: Vec<String> = replicas.all().map(|n| ring.node(n).id.clone()).collect();
    let dc1 = ids.iter().find(|id| *id != "x").expect("a dc1 replica");
    let ranked = by_replicated(&z, listed.clone(), &[rec(1 << 62)]);
    assert_eq!(ranked[..2], [dc1.clone(), "x".to_string()]);
    let rest: Vec<&String> = listed.iter().filter(|id| !ids.contains(id)).collect();
    assert_eq!(ranked[2..].iter().collect::<Vec<_>>(), rest);
    // Nobody replicates a keyspace the ring does not know: order kept.
    let unknown = [crate::repair::plan::Recorded {
        keyspace: "nope".into(),
        ..rec(1)
    }];
    assert_eq!(by_replicated(&z, listed.clone(), &unknown), listed);
}
