//! Issue 10 (review of the shutdown, Medium): a closed replica writes
//! nothing, through any write path, and a write racing the close either
//! commits before `close` returns (so the final sync covers it) or is
//! refused as not applied.

use super::*;
use crate::engine::testing::{Hooked, Hooks};
use crate::version::CausalContext;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Counts writes committed after `synced` was set (what the node does
/// right after `close`: the final sync and marker).
struct Watched {
    synced: AtomicBool,
    late: AtomicUsize,
}

impl Hooks for Watched {
    fn before_write(&self, _: &WriteBatch) -> Result<(), EngineError> {
        // Widen the window a racing write has to slip past the close.
        std::thread::sleep(std::time::Duration::from_micros(200));
        Ok(())
    }
    fn after_write(&self) {
        if self.synced.load(Ordering::SeqCst) {
            self.late.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn watched() -> (Arc<Hooked<Watched>>, Arc<Replica>) {
    let engine = Arc::new(Hooked::new(Watched {
        synced: AtomicBool::new(false),
        late: AtomicUsize::new(0),
    }));
    let replica = Arc::new(Replica::new(engine.clone(), "n1", 8));
    (engine, replica)
}

fn record(value: &str) -> SiblingSet {
    let mut set = SiblingSet::new();
    let actor = ActorId::from_node_id("peer#1");
    (set.update(
        actor,
        &CausalContext::new(),
        Some(value.to_string().into()),
        1,
        8,
    ))
    .expect("a fresh set takes a value");
    set
}

fn mutation(key: &str) -> Mutation {
    Mutation {
        keyspace: "ks".into(),
        key: bytes::Bytes::from(key.to_string()),
        value: Some(bytes::Bytes::from_static(b"v")),
        context: CausalContext::new(),
    }
}

#[test]
fn every_write_path_is_refused_once_closed_and_writes_nothing() {
    let (engine, replica) = watched();
    replica.apply("ks", b"before", &record("v")).expect("open");
    replica
        .close(crate::replica::gate::CLOSE_WITHIN)
        .expect("closed");
    engine.synced.store(true, Ordering::SeqCst);
    let refusals = [
        replica.apply("ks", b"a", &record("v")),
        replica.apply_page("ks", &[(b"b".to_vec(), record("v"))]),
        replica.update(&mutation("c"), 1, |_, _| Ok(())).map(|_| ()),
        replica.open().map(|_| ()),
    ];
    for r in refusals {
        let e = r.expect_err("a closed replica takes no write");
        assert!(matches!(e, GeokvError::ShuttingDown), "{e}");
        assert!(e.nothing_applied(), "the sender may keep and resend it");
        assert!(e.to_string().contains("nothing was written"), "{e}");
    }
    assert_eq!(engine.late.load(Ordering::SeqCst), 0);
    for key in [&b"a"[..], b"b", b"c"] {
        assert_eq!(replica.read("ks", key).unwrap(), None, "nothing written");
    }
    assert!(replica.read("ks", b"before").unwrap().is_some());
}

#[test]
fn a_write_racing_the_close_lands_before_it_returns_or_is_refused() {
    let (engine, replica) = watched();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let replica = replica.clone();
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for i in 0.. {
                    let key = format!("w{w}-{i}");
                    let res = if i % 2 == 0 {
                        replica.apply("ks", key.as_bytes(), &record("v"))
                    } else {
                        replica
                            .update(&mutation(&key), 1, |_, _| Ok(()))
                            .map(|_| ())
                    };
                    match res {
                        Ok(()) => acked.push(key),
                        Err(GeokvError::ShuttingDown) => return acked,
                        Err(e) => panic!("unexpected {e}"),
                    }
                }
                unreachable!()
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(30));
    replica
        .close(crate::replica::gate::CLOSE_WITHIN)
        .expect("closed");
    // What `node::run` does next: the final sync, then the marker.
    engine.synced.store(true, Ordering::SeqCst);
    let mut total = 0;
    for w in writers {
        for key in w.join().unwrap() {
            assert!(replica.read("ks", key.as_bytes()).unwrap().is_some());
            total += 1;
        }
    }
    assert!(total > 0, "the writers ran before the close");
    assert_eq!(
        engine.late.load(Ordering::SeqCst),
        0,
        "a write committed after the close returned (after the final sync)"
    );
}
