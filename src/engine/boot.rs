//! Whether the previous run may have lost writes it acknowledged: only
//! after the operating system restarted (a process crash — SIGKILL, OOM,
//! panic — leaves them in the page cache, and RocksDB finds them in its
//! WAL), and only if that run acknowledged writes before their fsync
//! (`Durability::Periodic`; not `Sync`).
//!
//! Owns the meta keys `boot_id` (the kernel's boot id at the last start
//! whose recovery, if it needed one, is done) and `run_durability` (whether
//! the run begun by that start syncs each write before acknowledging it).
//! The previous run's durability decides, not this start's: a periodic
//! run restarted with `--durability sync` after a power loss still lost
//! its tail (review-final30 M2).
//! Must not decide what to do about a loss (the node records ranges for
//! anti-entropy).
//!
//! The boot id is `/proc/sys/kernel/random/boot_id`; `GEOKV_BOOT_ID`
//! overrides it (tests simulate a power loss with it). Where neither is
//! available, every start counts as after a restart.

use super::{Cf, Engine, EngineError, WriteBatch};

const BOOT_ID: &[u8] = b"boot_id";
const RUN_DURABILITY: &[u8] = b"run_durability";
/// `run_durability` of a run that syncs every write before acknowledging
/// it; anything else, or nothing (a data directory from before the key),
/// is a run that may not have.
const SYNCED: &[u8] = b"sync";
const NOT_SYNCED: &[u8] = b"not-synced";

/// The current boot id, if known.
fn current() -> Option<String> {
    if let Ok(id) = std::env::var("GEOKV_BOOT_ID") {
        return Some(id);
    }
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
}

/// What the last [`note_start`] left, as this start sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Previous {
    /// The boot id changed since, or either one is unknown.
    pub rebooted: bool,
    /// That run synced every write before acknowledging it.
    pub synced: bool,
}

impl Previous {
    /// Whether writes the previous run acknowledged may be gone (if it
    /// did not stop cleanly: the caller knows).
    pub fn may_have_lost(self) -> bool {
        self.rebooted && !self.synced
    }
}

/// The previous run as the last [`note_start`] recorded it. Reads only:
/// the caller notes this start once it has recovered.
pub fn previous_run(engine: &dyn Engine) -> Result<Previous, EngineError> {
    let stored = engine.get_raw(Cf::Meta, BOOT_ID)?;
    let rebooted = match (stored, current()) {
        (Some(before), Some(now)) => before != now.as_bytes(),
        _ => true,
    };
    let synced = engine.get_raw(Cf::Meta, RUN_DURABILITY)?.as_deref() == Some(SYNCED);
    Ok(Previous { rebooted, synced })
}

/// Records this start's boot id and whether the run it begins syncs every
/// write before acknowledging it (`synced`), durably, before that run
/// acknowledges any: a later start of the same boot does not count as
/// after a restart, and a later one after a restart decides on this
/// run's durability. Call it only after whatever the previous run called
/// for is durable: until then, every start recovers again. Writes and
/// syncs only what changed (review-final30 L3).
pub fn note_start(engine: &dyn Engine, synced: bool) -> Result<(), EngineError> {
    let durability = if synced { SYNCED } else { NOT_SYNCED };
    let mut b = WriteBatch::new();
    let mut changed = false;
    if engine.get_raw(Cf::Meta, RUN_DURABILITY)?.as_deref() != Some(durability) {
        b.put_raw(Cf::Meta, RUN_DURABILITY, durability);
        changed = true;
    }
    if let Some(id) = current() {
        if engine.get_raw(Cf::Meta, BOOT_ID)?.as_deref() != Some(id.as_bytes()) {
            b.put_raw(Cf::Meta, BOOT_ID, id.as_bytes());
            changed = true;
        }
    }
    if changed {
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
        assert!(previous_run(&engine).unwrap().rebooted);
        assert!(
            previous_run(&engine).unwrap().rebooted,
            "reading notes nothing"
        );
        note_start(&engine, false).unwrap();
        if current().is_some() {
            assert!(!previous_run(&engine).unwrap().rebooted);
        }
        let none = MemoryEngine::new(Limits::default());
        assert!(
            previous_run(&none).unwrap().rebooted,
            "unknown: assume lost"
        );
    }

    /// The run's durability is noted with its boot, and decides at the
    /// next start; absent (an older data directory) is not synced.
    #[test]
    fn the_previous_runs_durability_decides_whether_it_may_have_lost() {
        let engine = MemoryEngine::new(Limits::default());
        let reboot = || {
            let mut b = WriteBatch::new();
            b.put_raw(Cf::Meta, BOOT_ID, b"another boot");
            engine.write(b).unwrap();
        };
        reboot();
        assert!(previous_run(&engine).unwrap().may_have_lost(), "absent");
        note_start(&engine, true).unwrap();
        reboot();
        let previous = previous_run(&engine).unwrap();
        assert!(previous.rebooted && previous.synced && !previous.may_have_lost());
        note_start(&engine, false).unwrap();
        reboot();
        assert!(previous_run(&engine).unwrap().may_have_lost());
    }

    /// A start of the same boot with the same durability writes nothing
    /// (no write, no flush: review-final30 L3); a change is written.
    #[test]
    fn a_start_that_changes_nothing_writes_nothing() {
        use crate::engine::testing::{Hooked, Threads};
        let engine = Hooked::new(Threads::new());
        note_start(&engine, true).unwrap();
        engine.fail_after(0);
        note_start(&engine, true).expect("nothing written, so no failure");
        note_start(&engine, false).expect_err("the durability changed: written");
    }
}
