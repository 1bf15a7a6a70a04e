//! The acceptor state of the layout CAS's other Paxos instances. Slot v+1
//! has one instance per base (the layout of v it builds on), and this
//! node's acceptor answers only the one built on the layout it has
//! installed (`super::acceptor`: its live slots). When `on_wrong_base`
//! replaces that layout by another of the same version, the live slots
//! above v are kept here under (slot, base), and what was kept for the
//! new base comes back as the live slots: nothing is forgotten, so a node
//! that swaps back finds its promises again (review-layout32b M2).
//!
//! Kept durably under the `layout-paxos-others` key of `meta`, written in
//! the swap's batch. An older build neither writes nor reads that key:
//! its live slots are those of the layout installed at load.
//! Must not: answer CAS messages, install layouts, or write by itself.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::engine::{Cf, Engine, EngineError, WriteBatch};
use crate::layout::consensus::AcceptorSlot;
use crate::layout::Layout;

/// The `meta` key of the other instances' state.
pub const OTHERS_KEY: &[u8] = b"layout-paxos-others";

/// The state of one instance per slot (the live slots, or one base's).
pub type Slots = BTreeMap<u64, AcceptorSlot<Layout>>;

/// An instance's slot as persisted (JSON keys are strings).
#[derive(Serialize, Deserialize)]
struct Entry {
    slot: u64,
    /// The base digest, 32 hex digits.
    base: String,
    state: AcceptorSlot<Layout>,
}

/// A change of the instance answered: the layout of `version` built on
/// digest `from` is replaced by the one of digest `to`.
#[derive(Clone, Copy, Debug)]
pub struct Swap {
    pub version: u64,
    pub from: u128,
    pub to: u128,
}

/// The state of the instances not answered, by (slot, base digest).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Others(BTreeMap<(u64, u128), AcceptorSlot<Layout>>);

impl Others {
    /// What `engine` holds (none from an older build). A state that does
    /// not decode is an error (`Err` says why), as the live slots'.
    pub fn load(engine: &dyn Engine) -> Result<Result<Others, String>, EngineError> {
        let Some(bytes) = engine.get_raw(Cf::Meta, OTHERS_KEY)? else {
            return Ok(Ok(Others::default()));
        };
        let entries: Vec<Entry> = match serde_json::from_slice(&bytes) {
            Ok(entries) => entries,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let mut others = Others::default();
        for e in entries {
            let Ok(base) = u128::from_str_radix(&e.base, 16) else {
                return Ok(Err(format!("base digest `{}` is not hex", e.base)));
            };
            others.0.insert((e.slot, base), e.state);
        }
        Ok(Ok(others))
    }

    /// The write of this state.
    pub fn put(&self, batch: &mut WriteBatch) {
        let entries: Vec<Entry> = (self.0.iter())
            .map(|((slot, base), state)| Entry {
                slot: *slot,
                base: format!("{base:032x}"),
                state: state.clone(),
            })
            .collect();
        let bytes = serde_json::to_vec(&entries).expect("acceptor state serialises");
        batch.put_raw(Cf::Meta, OTHERS_KEY, &bytes);
    }

    /// The live slots after `swap`: those above its version are kept
    /// here under its `from`, and those kept for its `to` come back.
    /// Slots at or below the version are decided, so left as they are.
    pub fn swap(&mut self, live: &Slots, swap: Swap) -> Slots {
        let mut next = live.clone();
        for (slot, state) in next.split_off(&(swap.version + 1)) {
            self.0.insert((slot, swap.from), state);
        }
        let back: Vec<_> = (self.0.keys())
            .filter(|(slot, base)| *slot > swap.version && *base == swap.to)
            .copied()
            .collect();
        for key in back {
            let state = self.0.remove(&key).expect("listed above");
            next.insert(key.0, state);
        }
        next
    }

    /// Drops the slots at or below `version` (decided); true if any.
    pub fn retain_above(&mut self, version: u64) -> bool {
        let before = self.0.len();
        self.0.retain(|(slot, _), _| *slot > version);
        self.0.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::memory::MemoryEngine;
    use crate::engine::Limits;
    use crate::layout::consensus::Ballot;

    fn promised(round: u64) -> AcceptorSlot<Layout> {
        AcceptorSlot {
            promised: Some(Ballot {
                round,
                node: "dc1-n1/00".into(),
            }),
            accepted: None,
        }
    }

    /// V (digest 1) → Vf (2) → V at version 2: each swap puts the live
    /// slot 3 aside under its base and brings back the new base's; a
    /// decided slot (2) stays; the state survives its write, an older
    /// build's (no key) loads as none, and a bent one is an error.
    #[test]
    fn instances_are_swapped_not_forgotten_and_persisted() {
        let engine = MemoryEngine::new(Limits::default());
        let loaded = Others::load(&engine).expect("reads");
        assert_eq!(loaded, Ok(Others::default()), "an older build's");
        let mut others = Others::default();
        let live = Slots::from([(2, promised(1)), (3, promised(5))]);
        let to_fork = Swap {
            version: 2,
            from: 1,
            to: 2,
        };
        let on_fork = others.swap(&live, to_fork);
        assert_eq!(on_fork, Slots::from([(2, promised(1))]), "V's slot 3 aside");
        let on_fork = Slots::from([(2, promised(1)), (3, promised(7))]);
        let back = Swap {
            version: 2,
            from: 2,
            to: 1,
        };
        let mut batch = WriteBatch::new();
        others.put(&mut batch);
        engine.write(batch).expect("written");
        let mut reloaded = Others::load(&engine).expect("reads").expect("decodes");
        assert_eq!(reloaded, others);
        assert_eq!(reloaded.swap(&on_fork, back), live, "V's slot 3 back");
        assert!(reloaded.retain_above(3), "Vf's slot 3 dropped once decided");
        assert_eq!(reloaded, Others::default());
        let mut batch = WriteBatch::new();
        batch.put_raw(Cf::Meta, OTHERS_KEY, b"[{\"slot\":3,\"base\":\"zz\"}]");
        engine.write(batch).expect("written");
        assert!(Others::load(&engine).expect("reads").is_err());
    }
}
