//! The batch RPC over a real tonic server on a loopback socket (review of
//! the merged batching, Medium): each entry of a batch gets its own result
//! from the peer's answer; a server from before `ReplicaBatch` answers
//! UNIMPLEMENTED through tonic's own fallback (no handler runs), and the
//! lane resends every entry as a single write, marks the peer single-only
//! and sends later writes single at once.

use super::*;
use crate::transport::testing::{peers, serve, Recorder};
use std::sync::atomic::{AtomicUsize, Ordering};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Writes `keys` to `to` all at once through its lane: the first goes
/// alone, the others queue behind it. Each one's result, in order.
async fn write_all(
    peers: &Arc<Peers>,
    to: &NodeInfo,
    keys: &[&str],
) -> Vec<Result<(), TransportError>> {
    let write = |k: &str| ReplicaWriteRequest {
        keyspace: "ks".into(),
        key: k.as_bytes().to_vec().into(),
        record: bytes::Bytes::from_static(b"a record"),
        ..Default::default()
    };
    let calls = (keys.iter()).map(|k| peers.replica_write_batched(to, write(k), TIMEOUT));
    futures::future::join_all(calls).await
}

fn sorted(mut keys: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    keys.sort();
    keys
}

fn bytes(keys: &[&str]) -> Vec<Vec<u8>> {
    sorted(keys.iter().map(|k| k.as_bytes().to_vec()).collect())
}

/// Whether `peers` sends `id` single writes only, now.
fn single_only(peers: &Peers, id: &str) -> bool {
    peers.lanes.lock()[id].support.single_only(Instant::now())
}

#[tokio::test]
async fn a_batch_crosses_a_real_socket_and_each_entry_gets_its_own_result() {
    let peer = Recorder::default();
    let to = serve("new", peer.clone(), None).await;
    let peers = peers();
    let keys = ["a", "b", "refuse-c", "d", "e", "f"];
    let got = write_all(&peers, &to, &keys).await;
    for (k, r) in keys.iter().zip(&got) {
        if k.starts_with("refuse") {
            let stale = matches!(r, Err(TransportError::StaleView { version: 9, .. }));
            assert!(stale, "{k}: {r:?}");
        } else {
            assert!(r.is_ok(), "{k}: {r:?}");
        }
    }
    let batches = peer.batches.lock().clone();
    let mut sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
    sizes.sort_unstable();
    assert_eq!(
        sizes,
        vec![1, 5],
        "the five queued behind the first went as one"
    );
    assert_eq!(sorted(batches.concat()), bytes(&keys), "every entry once");
    assert!(peer.singles.lock().is_empty());
    assert!(!single_only(&peers, "new"));
}

#[tokio::test]
async fn an_old_server_gets_every_entry_as_a_single_write_and_later_ones_go_single() {
    let peer = Recorder::default();
    let refused = Arc::new(AtomicUsize::new(0));
    let to = serve("old", peer.clone(), Some(refused.clone())).await;
    let peers = peers();
    let keys = ["a", "b", "c", "d"];
    for r in write_all(&peers, &to, &keys).await {
        assert!(r.is_ok(), "{r:?}: none maybe applied, none lost");
    }
    assert!(peer.batches.lock().is_empty(), "no batch reached a handler");
    let turned_away = refused.load(Ordering::SeqCst);
    assert!(turned_away >= 1, "batches were tried");
    assert_eq!(sorted(peer.singles.lock().clone()), bytes(&keys));
    assert!(single_only(&peers, "old"), "marked single-only");
    // A later write goes single at once: no batch refused first.
    for r in write_all(&peers, &to, &["e"]).await {
        assert!(r.is_ok(), "{r:?}");
    }
    assert_eq!(peer.singles.lock().len(), 5);
    assert_eq!(
        refused.load(Ordering::SeqCst),
        turned_away,
        "no batch tried"
    );
}
