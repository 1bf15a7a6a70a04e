//! Model test: random put/merge/delete/get/scan/reopen/compact sequences run
//! against `RocksEngine`, `MemoryEngine` and a `BTreeMap` model, which must
//! agree at every read, including after a reopen (sled's fuzz_model style).

use std::collections::BTreeMap;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::{enc, enc_opt, open, overwrite};
use crate::engine::{Engine, MemoryEngine, RocksEngine, WriteBatch};
use crate::ring::token_of;
use crate::version::SiblingSet;

const KEYSPACES: [&str; 2] = ["ks", "other"];
const KEYS: u64 = 24;
const LOCAL: u64 = 1;
const REMOTES: [u64; 3] = [2, 3, 4];

type Key = (&'static str, Vec<u8>);

struct World {
    dir: tempfile::TempDir,
    rocks: Option<RocksEngine>,
    memory: MemoryEngine,
    /// What both engines must hold.
    model: BTreeMap<Key, SiblingSet>,
    /// Each remote replica's own state per key: the source of merge writes,
    /// so every actor's dots stay unique as in the real system.
    remotes: BTreeMap<(u64, Key), SiblingSet>,
    rng: SmallRng,
    ts: u64,
}

impl World {
    fn new(seed: u64) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let rocks = Some(open(dir.path(), |_| {}));
        World {
            dir,
            rocks,
            memory: MemoryEngine::default(),
            model: BTreeMap::new(),
            remotes: BTreeMap::new(),
            rng: SmallRng::seed_from_u64(seed),
            ts: 0,
        }
    }

    fn rocks(&self) -> &RocksEngine {
        self.rocks.as_ref().expect("rocks engine open")
    }

    fn key(&mut self) -> Key {
        let ks = KEYSPACES[self.rng.random_range(0..KEYSPACES.len())];
        let n = self.rng.random_range(0..KEYS);
        let len = self.rng.random_range(0..4);
        (ks, [format!("k{n}").into_bytes(), vec![b'x'; len]].concat())
    }

    fn value(&mut self) -> Vec<u8> {
        let len = self.rng.random_range(0..32);
        (0..len).map(|_| self.rng.random()).collect()
    }

    /// Applies one write to both engines (in one batch of 1..=3 ops).
    fn write(&mut self, ops: usize) {
        let mut batch = WriteBatch::new();
        for _ in 0..ops {
            let key = self.key();
            self.ts += 1;
            let current = self.model.get(&key).cloned().unwrap_or_default();
            match self.rng.random_range(0..3) {
                0 => {
                    let value = self.value();
                    let next = overwrite(&current, LOCAL, Some(&value), self.ts);
                    batch.put_versions(key.0, &key.1, &next);
                    self.model.insert(key, next);
                }
                1 => {
                    let next = overwrite(&current, LOCAL, None, self.ts);
                    batch.put_versions(key.0, &key.1, &next);
                    self.model.insert(key, next);
                }
                _ => {
                    let actor = REMOTES[self.rng.random_range(0..REMOTES.len())];
                    let mut remote = self
                        .remotes
                        .get(&(actor, key.clone()))
                        .cloned()
                        .unwrap_or_default();
                    if self.rng.random_bool(0.3) {
                        remote.merge(&current);
                    }
                    let value = self.value();
                    let remote = overwrite(&remote, actor, Some(&value), self.ts);
                    batch.merge_versions(key.0, &key.1, &remote);
                    let mut merged = current;
                    merged.merge(&remote);
                    self.model.insert(key.clone(), merged);
                    self.remotes.insert((actor, key), remote);
                }
            }
        }
        self.rocks().write(batch.clone()).expect("rocks write");
        self.memory.write(batch).expect("memory write");
    }

    fn check_get(&mut self) {
        let key = self.key();
        let want = enc_opt(&self.model.get(&key).cloned());
        let rocks = self.rocks().get_versions(key.0, &key.1).expect("rocks get");
        let memory = self.memory.get_versions(key.0, &key.1).expect("memory get");
        assert_eq!(enc_opt(&rocks), want, "rocks get {key:?}");
        assert_eq!(enc_opt(&memory), want, "memory get {key:?}");
    }

    fn check_scan(&mut self) {
        let ks = KEYSPACES[self.rng.random_range(0..KEYSPACES.len())];
        let (start, end) = match self.rng.random_range(0..3) {
            0 => (self.rng.random(), self.rng.random()),
            1 => {
                let t = self.rng.random();
                (t, t)
            }
            _ => {
                let a = token_of(&self.key().1);
                (a, token_of(&self.key().1))
            }
        };
        let page = self.rng.random_range(1..8);
        let in_range = |t: u64| {
            if start < end {
                t > start && t <= end
            } else {
                t > start || t <= end
            }
        };
        let mut want: Vec<(u64, Vec<u8>, Vec<u8>)> = self
            .model
            .iter()
            .filter(|((k, key), _)| *k == ks && in_range(token_of(key)))
            .map(|((_, key), set)| (token_of(key), key.clone(), enc(set)))
            .collect();
        want.sort();
        let want: Vec<(Vec<u8>, Vec<u8>)> = want.into_iter().map(|(_, k, v)| (k, v)).collect();
        let engines: [(&str, &dyn Engine); 2] = [("rocks", self.rocks()), ("memory", &self.memory)];
        for (name, engine) in engines {
            let mut got = Vec::new();
            let mut after: Option<Vec<u8>> = None;
            loop {
                let rows = engine
                    .scan_token_range(ks, start, end, after.as_deref(), page)
                    .expect("scan");
                assert!(rows.len() <= page);
                let done = rows.len() < page;
                after = rows.last().map(|(k, _)| k.clone());
                got.extend(rows.into_iter().map(|(k, s)| (k, enc(&s))));
                if done {
                    break;
                }
            }
            assert_eq!(got, want, "{name} scan {ks} ({start}, {end}] page {page}");
        }
    }

    fn reopen(&mut self) {
        drop(self.rocks.take());
        self.rocks = Some(open(self.dir.path(), |_| {}));
    }
}

#[test]
fn engines_agree_with_the_model() {
    for seed in 0..40 {
        let mut w = World::new(seed);
        for _ in 0..250 {
            match w.rng.random_range(0..100) {
                0..=49 => {
                    let ops = w.rng.random_range(1..=3);
                    w.write(ops)
                }
                50..=74 => w.check_get(),
                75..=91 => w.check_scan(),
                92..=97 => w.reopen(),
                _ => w.rocks().compact_data().expect("compact"),
            }
        }
        w.reopen();
        let keys: Vec<Key> = w.model.keys().cloned().collect();
        for key in keys {
            let want = enc_opt(&w.model.get(&key).cloned());
            assert_eq!(
                enc_opt(&w.rocks().get_versions(key.0, &key.1).unwrap()),
                want,
                "seed {seed}"
            );
        }
    }
}
