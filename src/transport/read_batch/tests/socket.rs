//! The read batch RPC over a real tonic server on a loopback socket: each
//! entry of a batch gets its own answer from the peer's; a server from
//! before `ReplicaReadBatch` answers UNIMPLEMENTED through tonic's own
//! fallback (no handler runs), and the lane resends every read single,
//! marks the peer single-only and reads it single at once afterwards.

use super::*;
use crate::transport::testing::{peers, record_of, serve, Recorder};
use std::sync::atomic::{AtomicUsize, Ordering};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Reads `keys` of `to` all at once through its read lane: the first goes
/// alone, the others queue behind it. Each one's outcome, in order.
async fn read_all(peers: &Arc<Peers>, to: &NodeInfo, keys: &[&str]) -> Vec<ReadOutcome> {
    let read = |k: &str| ReplicaReadRequest {
        keyspace: "ks".into(),
        key: k.as_bytes().to_vec(),
        ..Default::default()
    };
    let calls = (keys.iter()).map(|k| peers.replica_read_batched(to, read(k), TIMEOUT));
    futures::future::join_all(calls).await
}

fn sorted(mut keys: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    keys.sort();
    keys
}

fn bytes(keys: &[&str]) -> Vec<Vec<u8>> {
    sorted(keys.iter().map(|k| k.as_bytes().to_vec()).collect())
}

/// Each read's outcome is its own key's answer.
fn assert_answers(keys: &[&str], got: &[ReadOutcome]) {
    for (k, r) in keys.iter().zip(got) {
        match (k.split('-').next(), r) {
            (Some("refuse"), Err(TransportError::StaleView { version: 9, .. })) => {}
            (Some("missing"), Ok(r)) => assert!(!r.found, "{k}: {r:?}"),
            (_, Ok(r)) => assert_eq!((r.found, &r.record), (true, &record_of(k.as_bytes()))),
            _ => panic!("{k}: {r:?}"),
        }
    }
}

fn single_only(peers: &Peers, id: &str) -> bool {
    peers.read_lanes.lock()[id]
        .support
        .single_only(Instant::now())
}

#[tokio::test]
async fn a_read_batch_crosses_a_real_socket_and_each_entry_gets_its_own_answer() {
    let peer = Recorder::default();
    let to = serve("new", peer.clone(), None).await;
    let peers = peers();
    let keys = ["a", "b", "refuse-c", "missing-d", "e", "f"];
    let got = read_all(&peers, &to, &keys).await;
    assert_answers(&keys, &got);
    let batches = peer.read_batches.lock().clone();
    let mut sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, vec![1, 5], "the five queued behind the first as one");
    assert_eq!(sorted(batches.concat()), bytes(&keys), "every read once");
    assert!(peer.read_singles.lock().is_empty());
    assert!(!single_only(&peers, "new"));
}

#[tokio::test]
async fn an_old_server_gets_every_read_single_and_later_ones_go_single() {
    let peer = Recorder::default();
    let refused = Arc::new(AtomicUsize::new(0));
    let to = serve("old", peer.clone(), Some(refused.clone())).await;
    let peers = peers();
    let keys = ["a", "missing-b", "c", "d"];
    assert_answers(&keys, &read_all(&peers, &to, &keys).await);
    assert!(
        peer.read_batches.lock().is_empty(),
        "no batch reached a handler"
    );
    let turned_away = refused.load(Ordering::SeqCst);
    assert!(turned_away >= 1, "batches were tried");
    assert_eq!(sorted(peer.read_singles.lock().clone()), bytes(&keys));
    assert!(single_only(&peers, "old"), "marked single-only");
    assert_answers(&["e"], &read_all(&peers, &to, &["e"]).await);
    assert_eq!(peer.read_singles.lock().len(), 5);
    assert_eq!(
        refused.load(Ordering::SeqCst),
        turned_away,
        "no batch tried"
    );
}
