//! What a node knows of where a layout comes from ([`Lineage`], issue 11,
//! review-layout30 H2 and M1): the digest of the layout of the version
//! before it that it was built on (`prev`: the layout CAS's base), and
//! the ballot at which a proposer saw it chosen (`chosen_at`: its proof
//! of choice). Kept beside the installed layout (the `meta` key
//! [`LINEAGE_KEY`], read back at start), and carried by `PushLayout` and
//! `GetLayout` (`LayoutMessage` fields 3 and 4). The layout's own JSON and
//! digest do not change: an older node decodes every layout as before.
//!
//! Unknown is a valid answer: a layout persisted by an older build, or
//! sent by an older peer, has no lineage (both `None`), and the install
//! guard (`super::guard`) then checks only what it can.
//! Must not: decide whether a layout is installed (the guard does), or
//! persist the layout itself (`super::store`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::store::StoreError;
use crate::engine::{Cf, Engine};
use crate::layout::consensus::Ballot;
use crate::layout::Layout;
use crate::proto::v1::internode::{LayoutBallot, LayoutMessage};

/// The `meta` key of the installed layout's lineage.
pub const LINEAGE_KEY: &[u8] = b"layout-lineage";

/// Where a layout comes from, as far as known (see the module doc).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lineage {
    /// The digest of the layout of the version before, which this one
    /// was built on; `None`: unknown (an older build or peer).
    pub prev: Option<u128>,
    /// The ballot at which a proposer saw this layout chosen (a quorum
    /// accepted it there); `None`: no proof known here.
    pub chosen_at: Option<Ballot>,
}

/// What several answers know of the lineage of each layout they named,
/// by digest: the first known predecessor and proof of choice (the
/// catch-up at start; a CAS's DECIDED and WRONG_BASE answers, which carry
/// their holder's lineage: review-layout31 H1, a proof dropped on the way
/// could wedge a quorum). A holder's proof is its word, as a pushed one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lineages(BTreeMap<u128, Lineage>);

impl Lineages {
    /// Adds what one answer knows of `layout`'s lineage.
    pub fn add(&mut self, layout: &Layout, lineage: Lineage) {
        if lineage == Lineage::default() {
            return;
        }
        let known = self.0.entry(layout.digest()).or_default();
        known.prev = known.prev.or(lineage.prev);
        known.chosen_at = known.chosen_at.take().or(lineage.chosen_at);
    }

    /// What the answers know of `layout`'s lineage (unknown if nothing).
    pub fn of(&self, layout: &Layout) -> Lineage {
        self.0.get(&layout.digest()).cloned().unwrap_or_default()
    }
}

/// The lineage persisted beside a layout: for its version only (`prev`
/// in hex).
#[derive(Serialize, Deserialize)]
struct Persisted {
    version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prev: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chosen_at: Option<Ballot>,
}

impl Lineage {
    /// Built on `prev`, no proof of choice.
    pub fn on(prev: u128) -> Lineage {
        Lineage {
            prev: Some(prev),
            chosen_at: None,
        }
    }

    /// The lineage a layout message carries (none from an older peer).
    pub fn from_message(msg: &LayoutMessage) -> Lineage {
        let prev = <[u8; 16]>::try_from(msg.prev_digest.as_slice()).ok();
        Lineage {
            prev: prev.map(u128::from_be_bytes),
            chosen_at: (msg.chosen_at.as_ref()).map(|b| Ballot {
                round: b.round,
                node: b.node.clone(),
            }),
        }
    }

    /// Sets this lineage on `msg`.
    pub fn to_message(&self, msg: &mut LayoutMessage) {
        msg.prev_digest = (self.prev.map(|p| p.to_be_bytes().to_vec())).unwrap_or_default();
        msg.chosen_at = (self.chosen_at.as_ref()).map(|b| LayoutBallot {
            round: b.round,
            node: b.node.clone(),
        });
    }
}

/// The lineage persisted for `layout`; none when absent (an older build),
/// for another version, or undecodable (logged: it is only a hint).
pub fn load(engine: &dyn Engine, layout: &Layout) -> Lineage {
    let bytes = match engine.get_raw(Cf::Meta, LINEAGE_KEY) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Lineage::default(),
        Err(e) => {
            tracing::warn!(error = %e, "layout: reading the installed layout's lineage");
            return Lineage::default();
        }
    };
    let decoded = serde_json::from_slice::<Persisted>(&bytes).map_err(|e| e.to_string());
    let decoded = decoded.and_then(|p| {
        let prev = (p.prev.as_deref()).map(|h| u128::from_str_radix(h, 16));
        let prev = prev.transpose().map_err(|e| e.to_string())?;
        Ok((
            p.version,
            Lineage {
                prev,
                chosen_at: p.chosen_at,
            },
        ))
    });
    match decoded {
        Ok((version, lineage)) if version == layout.version => lineage,
        Ok(_) => Lineage::default(),
        Err(e) => {
            tracing::warn!(error = %e, "layout: the installed layout's lineage does not decode; taken as unknown");
            Lineage::default()
        }
    }
}

/// The write of `lineage` beside `layout` (same batch as the layout).
pub fn put(batch: &mut crate::engine::WriteBatch, layout: &Layout, lineage: &Lineage) {
    let persisted = Persisted {
        version: layout.version,
        prev: lineage.prev.map(|p| format!("{p:032x}")),
        chosen_at: lineage.chosen_at.clone(),
    };
    let bytes = serde_json::to_vec(&persisted).expect("a lineage serialises");
    batch.put_raw(Cf::Meta, LINEAGE_KEY, &bytes);
}

/// Persists `layout` with its `lineage`, in one write.
pub fn save(engine: &dyn Engine, layout: &Layout, lineage: &Lineage) -> Result<(), StoreError> {
    let mut batch = super::store::batch(layout)?;
    put(&mut batch, layout, lineage);
    engine.write(batch)?;
    Ok(())
}

/// [`save`], then synced to disk (the engine's flush): a bootstrap's
/// chosen layout with its proof of choice (review-layout31 H1).
pub fn save_synced(
    engine: &dyn Engine,
    layout: &Layout,
    lineage: &Lineage,
) -> Result<(), StoreError> {
    save(engine, layout, lineage)?;
    engine.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::engine::memory::MemoryEngine;
    use crate::engine::Limits;

    fn proven() -> Lineage {
        Lineage {
            prev: Some(0x0123_4567_89ab_cdef_0011_2233_4455_6677),
            chosen_at: Some(Ballot {
                round: 7,
                node: "dc1-n1/00ff".into(),
            }),
        }
    }

    /// An older peer's `LayoutMessage` (fields 1 and 2 only, as it
    /// encodes them) decodes, its lineage unknown; a newer one's carries
    /// it through the wire form.
    #[test]
    fn a_layout_message_without_lineage_decodes_as_unknown() {
        let layout = Layout::seed(&crate::topology::Topology::dev());
        let old = super::super::sync::to_message(&layout).encode_to_vec();
        let msg = LayoutMessage::decode(&old[..]).expect("decodes");
        assert_eq!(Lineage::from_message(&msg), Lineage::default());
        let sent = super::super::sync::to_message_with(&layout, &proven());
        let msg = LayoutMessage::decode(&sent.encode_to_vec()[..]).expect("decodes");
        assert_eq!(Lineage::from_message(&msg), proven());
        let bent = LayoutMessage {
            prev_digest: vec![1, 2, 3],
            ..msg
        };
        assert_eq!(
            Lineage::from_message(&bent).prev,
            None,
            "malformed: unknown"
        );
    }

    /// A node of an older build persisted no lineage: unknown at start; a
    /// lineage persisted with the layout comes back for that version only;
    /// one that does not decode is unknown, not an error.
    #[test]
    fn a_persisted_lineage_is_read_back_for_its_layout_only() {
        let engine = MemoryEngine::new(Limits::default());
        let layout = Layout::seed(&crate::topology::Topology::dev());
        super::super::store::save(&engine, &layout).expect("an older build's save");
        assert_eq!(load(&engine, &layout), Lineage::default());
        save(&engine, &layout, &proven()).expect("saved");
        assert_eq!(load(&engine, &layout), proven());
        let stored = super::super::store::load(&engine).expect("loads");
        assert_eq!(
            stored,
            Some(layout.clone()),
            "the layout is stored as before"
        );
        let mut next = layout.clone();
        next.version += 1;
        assert_eq!(
            load(&engine, &next),
            Lineage::default(),
            "another version's"
        );
        let mut batch = crate::engine::WriteBatch::new();
        batch.put_raw(Cf::Meta, LINEAGE_KEY, b"{\"version\":1,\"prev\":\"zz\"}");
        engine.write(batch).expect("written");
        assert_eq!(load(&engine, &layout), Lineage::default());
    }
}
