//! A hint whose copy to a pending replica fails (`moving`, via the
//! pump's fork) is parked alone; the rest of its queue goes on (issue 11,
//! left at stop 22: one refused local copy stalled the whole queue).

use super::rig::*;

/// A key of `keyspace` that `dc1-n2` replicates and this node (`dc1-n1`)
/// does, or does not (`here`), in the dev topology.
fn key_where(keyspace: &str, here: bool) -> Vec<u8> {
    let topo = Topology::dev();
    let n1 = crate::view::Cluster::fixed(&topo, "dc1-n1").current();
    let n2 = crate::view::Cluster::fixed(&topo, "dc1-n2").current();
    (0u32..10_000)
        .map(|i| format!("k{i}").into_bytes())
        .find(|k| {
            crate::hints::receive::replicates(&n2, keyspace, k)
                && crate::hints::receive::replicates(&n1, keyspace, k) == here
        })
        .expect("such a key")
}

/// This node is the pending replica of every key (`also_to` = itself); a
/// key it does not replicate is refused by its own stale-view check, so
/// that hint's copy fails. The other hint is sent at once on the one
/// stream and deleted once durable; the refused one stays queued, left
/// out of every batch, and the stream is never reset.
#[tokio::test(start_paused = true)]
async fn a_hint_whose_copy_to_a_pending_replica_fails_is_parked_alone() {
    let dest = Dest::Node("dc1-n2".into());
    let mut r = rig_for(&["dc1-n2"], dest.clone(), vec!["dc1-n1".into()]);
    let (ok, refused) = (key_where("dc1_only", true), key_where("dc1_only", false));
    let mut set = SiblingSet::new();
    set.update(ActorId(1), &CausalContext::new(), Some("v".into()), 1, 8)
        .expect("one sibling");
    for k in [&refused, &ok] {
        (r.hints.hint_node("dc1-n2", "dc1_only", k, &set).await).expect("hint");
    }
    let mut s = r.opened.recv().await.expect("a stream");
    let batch = s.batches.recv().await.expect("a batch");
    let keys: Vec<&[u8]> = batch.entries.iter().map(|e| &e.key[..]).collect();
    assert_eq!(keys, [&ok[..]], "the refused copy's hint left out");
    s.acks.send(Ok(durable(&batch))).expect("the pump listens");
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(r.hints.backlog_entries(&dest), 1, "the parked one stays");
    assert_eq!(r.link.asked.lock().len(), 1, "never reopened: no stall");
    while let Ok(b) = s.batches.try_recv() {
        assert!(b.entries.iter().all(|e| e.key != refused), "never sent");
        s.acks.send(Ok(durable(&b))).expect("the pump listens");
    }
}
