//! The layout in node metadata: serde JSON under the `layout` key of the
//! `meta` column family, and the start-up choice between it and the seed of
//! the topology file ([`choose`], pure).
//!
//! Must not: swap views or talk to peers (that is [`super::Cluster`]).

use crate::engine::{Cf, Engine, EngineError, WriteBatch};
use crate::layout::Layout;

/// The `meta` key of the persisted layout.
pub const LAYOUT_KEY: &[u8] = b"layout";

/// The persisted layout could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("layout in meta: {0}")]
    Engine(#[from] EngineError),
    #[error("the layout in meta does not decode: {0}")]
    Decode(#[from] serde_json::Error),
}

/// The layout persisted by an earlier run, if any.
pub fn load(engine: &dyn Engine) -> Result<Option<Layout>, StoreError> {
    match engine.get_raw(Cf::Meta, LAYOUT_KEY)? {
        None => Ok(None),
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
    }
}

/// Persists `layout` (replacing the one stored).
pub fn save(engine: &dyn Engine, layout: &Layout) -> Result<(), StoreError> {
    engine.write(batch(layout)?)?;
    Ok(())
}

/// The write of `layout` (`super::lineage` adds its lineage to it).
pub fn batch(layout: &Layout) -> Result<WriteBatch, StoreError> {
    let bytes = serde_json::to_vec(layout)?;
    let mut batch = WriteBatch::new();
    batch.put_raw(Cf::Meta, LAYOUT_KEY, &bytes);
    Ok(batch)
}

/// [`save`], then synced to disk (the engine's flush): for a layout this
/// node must find again after a crash or a power loss (a bootstrap's).
pub fn save_synced(engine: &dyn Engine, layout: &Layout) -> Result<(), StoreError> {
    save(engine, layout)?;
    engine.flush()?;
    Ok(())
}

/// Where the layout a node starts with came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// First start: the topology file's seed.
    Seed,
    /// The persisted layout is newer than the seed: the file is only the seed.
    Persisted,
    /// The persisted layout has the seed's version: the file is taken
    /// (a fixed cluster edited by hand keeps working as before).
    SeedOverPersisted,
}

/// The layout to start with: the persisted one when its version is newer
/// than the seed's, else the seed.
pub fn choose(seed: Layout, persisted: Option<Layout>) -> (Layout, Origin) {
    match persisted {
        None => (seed, Origin::Seed),
        Some(p) if p.version > seed.version => (p, Origin::Persisted),
        Some(_) => (seed, Origin::SeedOverPersisted),
    }
}

/// Reads the persisted layout, chooses between it and `seed`, and persists
/// the choice (so a first start leaves version 1 in meta).
pub fn open(engine: &dyn Engine, seed: Layout) -> Result<(Layout, Origin), StoreError> {
    let (layout, origin) = choose(seed, load(engine)?);
    if origin != Origin::Persisted {
        save(engine, &layout)?;
    }
    Ok((layout, origin))
}
