//! Whether the operating system restarted since this data directory's last
//! start: only then can writes that were acknowledged but not yet fsynced
//! (`Durability::Periodic`) be gone. A process crash (SIGKILL, OOM, panic)
//! leaves them in the page cache, and RocksDB finds them in its WAL.
//!
//! Owns the meta key `boot_id` (the kernel's boot id at the last start
//! whose recovery, if it needed one, is done).
//! Must not decide what to do about a loss (the node records ranges for
//! anti-entropy).
//!
//! The boot id is `/proc/sys/kernel/random/boot_id`; `GEOKV_BOOT_ID`
//! overrides it (tests simulate a power loss with it). Where neither is
//! available, every start counts as after a restart.

use super::{Cf, Engine, EngineError, WriteBatch};

const BOOT_ID: &[u8] = b"boot_id";

/// The current boot id, if known.
fn current() -> Option<String> {
    if let Ok(id) = std::env::var("GEOKV_BOOT_ID") {
        return Some(id);
    }
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
}

/// Whether unsynced writes of the previous run may have been lost: the
/// boot id changed since the last [`note_boot`], or either one is unknown.
/// Reads only: the caller notes this boot once it has recovered.
pub fn rebooted_since_last_start(engine: &dyn Engine) -> Result<bool, EngineError> {
    let stored = engine.get_raw(Cf::Meta, BOOT_ID)?;
    Ok(match (stored, current()) {
        (Some(before), Some(now)) => before != now.as_bytes(),
        _ => true,
    })
}

/// Records this start's boot id (synced), so a later start of the same
/// boot does not count as after a restart. Call it only after whatever a
/// restart called for is durable: until then, every start recovers again.
pub fn note_boot(engine: &dyn Engine) -> Result<(), EngineError> {
    if let Some(id) = current() {
        let mut b = WriteBatch::new();
        b.put_raw(Cf::Meta, BOOT_ID, id.as_bytes());
        engine.write(b)?;
        engine.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::memory::MemoryEngine;
    use crate::engine::Limits;

    #[test]
    fn only_a_new_boot_id_counts_as_a_restart() {
        let engine = MemoryEngine::new(Limits::default());
        let mut b = WriteBatch::new();
        b.put_raw(Cf::Meta, BOOT_ID, b"another boot");
        engine.write(b).unwrap();
        // This process's boot differs from the stored one, until noted.
        assert!(rebooted_since_last_start(&engine).unwrap());
        assert!(
            rebooted_since_last_start(&engine).unwrap(),
            "reading notes nothing"
        );
        note_boot(&engine).unwrap();
        if current().is_some() {
            assert!(!rebooted_since_last_start(&engine).unwrap());
        }
        let none = MemoryEngine::new(Limits::default());
        assert!(
            rebooted_since_last_start(&none).unwrap(),
            "unknown: assume lost"
        );
    }
}
