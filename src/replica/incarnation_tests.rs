//! kv679: a node that restarts on an older copy of its data (the WAL tail a
//! power loss took, or a restored copy) must never mint a dot it minted
//! before, or merging with the replicas that hold the first write loses one
//! of two acknowledged writes. A clean shutdown keeps the incarnation.
//! Here, not in the engine's tests: the replica mints the dots, on the
//! engine's incarnation (replica → engine, never the other way).

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;

use super::Replica;
use crate::engine::incarnation::{on_clean_shutdown, on_start};
use crate::engine::{Cf, Engine, EngineOptions, RocksEngine, WriteBatch};
use crate::mutation::Mutation;
use crate::version::{CausalContext, SiblingSet};

/// A RocksEngine in `dir` with a small cache.
fn open(dir: &std::path::Path) -> RocksEngine {
    let opts = EngineOptions {
        block_cache_bytes: 8 << 20,
        ..EngineOptions::default()
    };
    RocksEngine::open(dir, opts).expect("open RocksEngine")
}

fn replica_on(engine: &Arc<RocksEngine>) -> Replica {
    on_start(&**engine).expect("incarnation");
    Replica::new(engine.clone(), "n1", 64)
}

fn write(r: &Replica, key: &[u8], value: &str, ctx: &CausalContext) -> SiblingSet {
    r.update(&mutation(key, value, ctx), 1, |_, _| Ok(()))
        .expect("update")
        .0
}

fn mutation(key: &[u8], value: &str, ctx: &CausalContext) -> Mutation {
    Mutation {
        keyspace: "ks".into(),
        key: Bytes::copy_from_slice(key),
        value: Some(Bytes::from(value.to_string())),
        context: ctx.clone(),
    }
}

fn set(values: &[&str]) -> BTreeSet<String> {
    values.iter().map(|v| v.to_string()).collect()
}

fn values(set: &SiblingSet) -> BTreeSet<String> {
    set.values()
        .filter_map(|s| s.value.as_ref())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

#[test]
fn a_restart_on_an_older_copy_never_remints_a_dot() {
    let dir = tempfile::tempdir().unwrap();
    let (live, older) = (dir.path().join("live"), dir.path().join("older"));
    let engine = Arc::new(open(&live));
    let r = replica_on(&engine);
    // `peer_*`: what the other replicas hold after the fan-out of each ack.
    let v1 = write(&r, b"k", "v1", &CausalContext::new());
    engine.checkpoint(&older).unwrap(); // what survives the lost WAL tail
    let v2 = write(&r, b"k", "v2", &v1.context());
    let w1 = write(&r, b"k2", "w1", &CausalContext::new());
    let (mut peer_k, mut peer_k2) = (v1.clone(), w1.clone());
    peer_k.merge(&v2);
    drop(r);
    drop(engine); // crashed: no clean-shutdown marker

    let engine = Arc::new(open(&older));
    let r = replica_on(&engine);
    assert_eq!(values(&r.read("ks", b"k").unwrap().unwrap()), set(&["v1"]));
    let v3 = write(&r, b"k", "v3", &CausalContext::new());
    let w2 = write(&r, b"k2", "w2", &CausalContext::new());

    peer_k.merge(&v3);
    peer_k2.merge(&w2);
    assert_eq!(values(&peer_k), set(&["v2", "v3"]));
    assert_eq!(values(&peer_k2), set(&["w1", "w2"]));
}

#[test]
fn a_clean_shutdown_keeps_the_incarnation_and_a_kill_changes_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let first = on_start(&engine).unwrap();
    assert!(!first.kept, "a new data directory gets a new incarnation");
    on_clean_shutdown(&engine).unwrap();
    drop(engine);

    let engine = open(dir.path());
    let planned = on_start(&engine).unwrap();
    assert_eq!(planned.incarnation, first.incarnation);
    assert!(planned.kept, "a planned restart adds no actor to clocks");
    drop(engine); // killed: the marker was consumed by the start

    let engine = open(dir.path());
    let after_kill = on_start(&engine).unwrap();
    assert!(!after_kill.kept);
    assert_ne!(after_kill.incarnation, first.incarnation);

    // A marker left by another incarnation (an old copy) is not trusted.
    let mut b = WriteBatch::new();
    b.put_raw(
        Cf::Meta,
        b"clean_shutdown",
        &first.incarnation.to_le_bytes(),
    );
    engine.write(b).unwrap();
    drop(engine);
    let engine = open(dir.path());
    let stale = on_start(&engine).unwrap();
    assert!(!stale.kept);
    assert_ne!(stale.incarnation, after_kill.incarnation);
    assert_eq!(engine.get_raw(Cf::Meta, b"clean_shutdown").unwrap(), None);
}

/// Review of issue 9's fixes: an update that commits after the clean
/// shutdown marker could be lost on a power loss while the marker survives,
/// and the next start would mint its dot again. Closing the replica refuses
/// later updates as not applied, before the marker is written.
#[test]
fn a_closed_replica_takes_no_more_updates() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(open(dir.path()));
    let r = replica_on(&engine);
    write(&r, b"k", "v1", &CausalContext::new());
    r.close(crate::replica::gate::CLOSE_WITHIN).expect("closed");
    let err = r
        .update(&mutation(b"k", "v2", &CausalContext::new()), 2, |_, _| {
            Ok(())
        })
        .unwrap_err();
    assert!(err.nothing_applied(), "{err}");
    assert_eq!(err.code(), tonic::Code::Unavailable);
    let stored = r.read("ks", b"k").unwrap().unwrap();
    assert_eq!(values(&stored), set(&["v1"]));
}

/// Review of issue 9's fixes: the bytes a quarantine sets aside may hold
/// this node's newest write of the key, whose dot is then missing from the
/// key's clock. Had the next update minted it again, merging with the
/// replicas that hold the first write would lose one of the two.
#[test]
fn a_write_set_aside_by_quarantine_is_never_reminted() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(open(dir.path()));
    let r = replica_on(&engine);
    let v1 = write(&r, b"k", "v1", &CausalContext::new());
    let v2 = write(&r, b"k", "v2", &v1.context());
    // The record holding v2 turns undecodable on disk; the other replicas
    // keep v2. Here: the key is v1 again, and v2's operand is garbage.
    let mut b = WriteBatch::new();
    b.put_versions("ks", b"k", &v1);
    b.merge_raw_unchecked(
        &crate::engine::keys::data_key("ks", b"k").unwrap(),
        b"\x01\xff\xff\xff not a sibling set",
    );
    engine.write(b).unwrap();
    engine.compact_data().unwrap();
    assert_eq!(values(&r.read("ks", b"k").unwrap().unwrap()), set(&["v1"]));

    // A client that read v1 writes v3: concurrent with v2, never a reuse
    // of v2's dot.
    let v3 = write(&r, b"k", "v3", &v1.context());
    let mut peer = v2.clone();
    peer.merge(&v3);
    assert_eq!(values(&peer), set(&["v2", "v3"]));

    // The new incarnation is durable with the set-aside bytes, and a clean
    // shutdown keeps it.
    let renewed = engine.incarnation().get();
    on_clean_shutdown(&*engine).unwrap();
    drop(r);
    drop(engine);
    let engine = open(dir.path());
    let start = on_start(&engine).unwrap();
    assert!(start.kept);
    assert_eq!(start.incarnation, renewed);
}

/// Review: every set-aside renewed the incarnation, so a sweep over many
/// bad records gave a hot key one new clock actor per record. Only an
/// incarnation that has minted is renewed: once per minting run.
#[test]
fn set_asides_renew_an_incarnation_only_after_it_minted() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(open(dir.path()));
    let r = replica_on(&engine);
    let garbage = |key: &[u8]| {
        let mut b = WriteBatch::new();
        b.merge_raw_unchecked(
            &crate::engine::keys::data_key("ks", key).unwrap(),
            b"\x01\xff\xff\xff not a sibling set",
        );
        engine.write(b).unwrap();
    };
    let first = engine.incarnation().get();
    garbage(b"a");
    r.read("ks", b"a").unwrap();
    assert_eq!(engine.incarnation().get(), first, "never minted: kept");

    write(&r, b"k", "v1", &CausalContext::new());
    for key in [b"b", b"c", b"d"] {
        garbage(key);
        r.read("ks", key).unwrap();
    }
    let second = engine.incarnation().get();
    assert_ne!(second, first, "minted, then a set-aside: renewed");
    garbage(b"e");
    r.read("ks", b"e").unwrap();
    assert_eq!(engine.incarnation().get(), second, "once per minting run");
}
