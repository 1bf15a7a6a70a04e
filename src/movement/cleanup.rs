//! Cleanup: dropping the data of ranges this node no longer replicates.
//!
//! Owns [`cleanup`]: for every range of the layout's ring that `node` does
//! not replicate ([`super::plan::unreplicated`]), one range delete of its
//! data keys. Refuses while any movement is in progress — the new owners
//! must be Normal (the movement finished) before an old owner drops a
//! range, never before. Must not decide when to run (the node runs it after
//! a movement finishes, and `geokv cleanup` by hand).

use crate::engine::{keys, Cf, Engine, EngineError, WriteBatch};
use crate::layout::{Layout, Movement};
use crate::ring::{Ring, TokenRange};

use super::plan::{unreplicated, PlanError};

/// Cleanup cannot run.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    #[error("a range movement is in progress ({0}); cleanup waits for it to finish")]
    MovementInProgress(Movement),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// What a cleanup dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cleaned {
    /// The ranges dropped (every range the node does not replicate).
    pub ranges: Vec<(String, TokenRange)>,
    /// Keys found in them and deleted, and their bytes (key + record).
    pub keys: u64,
    pub bytes: u64,
}

/// Keys scanned per page while counting what a cleanup drops.
const COUNT_PAGE: usize = 1024;

/// Deletes from `engine` every key of `layout`'s keyspaces in a range
/// `node` does not replicate under `layout`.
pub fn cleanup(engine: &dyn Engine, layout: &Layout, node: &str) -> Result<Cleaned, CleanupError> {
    if let Some(m) = layout.movements.values().next() {
        return Err(CleanupError::MovementInProgress(m.clone()));
    }
    let ring = Ring::from_layout(layout);
    let drop = unreplicated(&ring, node)?;
    let (mut keys, mut bytes) = (0u64, 0u64);
    let mut batch = WriteBatch::new();
    for (ks, range) in &drop {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = engine.scan_token_range(
                ks,
                range.start,
                range.end,
                after.as_deref(),
                COUNT_PAGE,
            )?;
            keys += page.len() as u64;
            bytes += page
                .iter()
                .map(|(k, s)| (k.len() + s.encoded_len()) as u64)
                .sum::<u64>();
            match page.last() {
                Some((k, _)) if page.len() == COUNT_PAGE => after = Some(k.clone()),
                _ => break,
            }
        }
        for kr in keys::token_range_plan(ks, range.start, range.end, None)? {
            batch.delete_range_raw(Cf::Data, &kr.lower, &kr.upper);
        }
    }
    if !batch.is_empty() {
        engine.write(batch)?;
    }
    metrics::counter!("geokv_cleanup_ranges_total").increment(drop.len() as u64);
    metrics::counter!("geokv_cleanup_keys_total").increment(keys);
    metrics::counter!("geokv_cleanup_bytes_total").increment(bytes);
    Ok(Cleaned {
        ranges: drop,
        keys,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::MemoryEngine;
    use crate::layout::NewNode;
    use crate::ring::token_of;
    use crate::topology::Topology;
    use crate::version::{ActorId, CausalContext, SiblingSet};

    const TOPO: &str = "
cluster_name: t
defaults: { vnodes: 8 }
datacenters:
  - name: dc1
    racks:
      - name: r1
        nodes:
          - { id: a, client_address: 127.0.0.1:1, peer_address: 127.0.0.1:2, admin_address: 127.0.0.1:3 }
          - { id: b, client_address: 127.0.0.1:4, peer_address: 127.0.0.1:5, admin_address: 127.0.0.1:6 }
          - { id: c, client_address: 127.0.0.1:7, peer_address: 127.0.0.1:8, admin_address: 127.0.0.1:9 }
keyspaces:
  ks: { replication: { dc1: 2 } }
";

    #[test]
    fn drops_exactly_the_ranges_lost_and_only_after_the_movement() {
        let topo = Topology::parse("t.yaml", TOPO).unwrap();
        let v1 = Layout::seed(&topo);
        let new = NewNode {
            id: "d".into(),
            client_address: "127.0.0.1:10".parse().unwrap(),
            peer_address: "127.0.0.1:11".parse().unwrap(),
            admin_address: "127.0.0.1:12".parse().unwrap(),
        };
        let tokens = crate::ring::allocate_tokens(&v1, "dc1", "r1", 8, 2).unwrap();
        let joining = v1.begin_join(new, "dc1", "r1", &tokens).unwrap();
        let done = joining.finish_join("d").unwrap();

        let engine = MemoryEngine::default();
        let mut batch = WriteBatch::new();
        let keys: Vec<Vec<u8>> = (0..400).map(|i| format!("k{i}").into_bytes()).collect();
        for k in &keys {
            let mut set = SiblingSet::new();
            set.update(
                ActorId::from(1),
                &CausalContext::new(),
                Some(k.clone().into()),
                1,
                8,
            )
            .unwrap();
            batch.merge_versions("ks", k, &set);
        }
        engine.write(batch).unwrap();

        assert!(matches!(
            cleanup(&engine, &joining, "a"),
            Err(CleanupError::MovementInProgress(Movement::Join { .. }))
        ));
        let cleaned = cleanup(&engine, &done, "a").unwrap();
        let ring = Ring::from_layout(&done);
        let a = ring.node_by_id("a").unwrap().idx;
        let old = Ring::from_layout(&v1);
        let a_old = old.node_by_id("a").unwrap().idx;
        let (mut kept, mut dropped) = (0, 0);
        for k in &keys {
            let mine = ring.replicas("ks", k).unwrap().contains(a);
            let had = old.replicas("ks", k).unwrap().contains(a_old);
            let present = engine.get_versions("ks", k).unwrap().is_some();
            assert_eq!(present, mine, "key token {:#x}", token_of(k));
            if had && !mine {
                dropped += 1;
            } else if mine {
                kept += 1;
            }
        }
        assert!(dropped > 20 && kept > 100, "dropped {dropped}, kept {kept}");
        // Counted: every key a held and no longer replicates (none of the
        // others: a held no key outside its old ranges here).
        let outside = keys
            .iter()
            .filter(|k| !old.replicas("ks", k).unwrap().contains(a_old))
            .count() as u64;
        assert_eq!(cleaned.keys, dropped + outside);
        assert!(cleaned.bytes > cleaned.keys);
    }
}
