//! Whether the previous run may have lost writes it acknowledged: after
//! the operating system restarted (a process crash — SIGKILL, OOM, panic
//! — leaves them in the page cache, and RocksDB finds them in its WAL), if
//! that run acknowledged writes before their fsync (`Durability::Periodic`;
//! not `Sync`); after any unclean stop if it ran with no WAL at all
//! (`Durability::None`: the memtable is all there was, review-recover31 L4).
//!
//! Owns the meta keys `boot_id` (the kernel's boot id at the last start
//! whose recovery, if it needed one, is done) and `run_durability` (how
//! the run begun by that start acknowledges writes, tagged with that
//! start's gossip generation). The previous run's durability decides, not
//! this start's: a periodic run restarted with `--durability sync` after
//! a power loss still lost its tail (review-final30 M2). The tag is
//! checked only where the note spares a recovery, `sync`: one whose tag
//! is not the previous start's generation counts as not synced, since a
//! build that does not note its durability (a downgrade) may have run
//! since, or a start failed or was killed before noting its own (review-
//! recover31 L1). A `none` note counts whatever its tag: the recovery
//! that run owed is still owed if the starts since did not finish theirs
//! (review-recover2-31 N2).
//! A failed sync of a run marks the data directory (`rocks/latch.rs`): the
//! kernel may have dropped the pages it did not write while later ones
//! reached the disk (fsyncgate), so the next start counts as after a lost
//! tail, in the same boot too and whatever the run's durability (under
//! `sync` too: set-aside batches are not synced by their own write), and
//! [`note_start`] removes the mark once that start's recovery is durable
//! (review-tidy34 M3).
//! Must not decide what to do about a loss (the node records ranges for
//! anti-entropy).
//!
//! The boot id is `/proc/sys/kernel/random/boot_id`; `GEOKV_BOOT_ID`
//! overrides it (tests simulate a power loss with it). Where neither is
//! available, every start counts as after a restart.

use super::{Cf, Durability, Engine, EngineError, WriteBatch};

const BOOT_ID: &[u8] = b"boot_id";
const RUN_DURABILITY: &[u8] = b"run_durability";

/// How a run acknowledges writes, as [`note_start`] notes it
/// (`<name>@<generation>`). Read back ([`previous_run`]): `none@` any tag
/// is [`RunDurability::NoWal`], `sync@` the previous start's generation
/// is [`RunDurability::Sync`]; anything else, or nothing (a data
/// directory from before the key, or a `sync` of another start), is
/// [`RunDurability::Periodic`]: it may not have synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunDurability {
    /// Each write synced before its acknowledgement.
    Sync,
    /// Acknowledged before the fsync (or not known).
    Periodic,
    /// No WAL: acknowledged writes live in the memtable until a flush.
    NoWal,
}

impl RunDurability {
    fn name(self) -> &'static str {
        match self {
            RunDurability::Sync => "sync",
            RunDurability::Periodic => "periodic",
            RunDurability::NoWal => "none",
        }
    }
}

impl From<&Durability> for RunDurability {
    fn from(d: &Durability) -> Self {
        match d {
            Durability::Sync => RunDurability::Sync,
            Durability::Periodic { .. } => RunDurability::Periodic,
            Durability::None => RunDurability::NoWal,
        }
    }
}

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
    /// How that run acknowledged writes.
    pub durability: RunDurability,
    /// A sync of that run (or of a start since) failed: its mark is on disk.
    pub sync_failed: bool,
}

impl Previous {
    /// Whether writes the previous run acknowledged may be gone (if it
    /// did not stop cleanly: the caller knows).
    pub fn may_have_lost(self) -> bool {
        if self.sync_failed {
            return true;
        }
        match self.durability {
            RunDurability::Sync => false,
            RunDurability::Periodic => self.rebooted,
            RunDurability::NoWal => true,
        }
    }
}

/// The previous run as the last [`note_start`] recorded it, if that was
/// the start of `previous_generation` (the generation stored before this
/// start took its own). Reads only: the caller notes this start once it
/// has recovered.
pub fn previous_run(
    engine: &dyn Engine,
    previous_generation: u64,
) -> Result<Previous, EngineError> {
    let stored = engine.get_raw(Cf::Meta, BOOT_ID)?;
    let rebooted = match (stored, current()) {
        (Some(before), Some(now)) => before != now.as_bytes(),
        _ => true,
    };
    let noted = engine.get_raw(Cf::Meta, RUN_DURABILITY)?;
    let durability = (noted.as_deref()).map_or(RunDurability::Periodic, |n| {
        read_note(n, previous_generation)
    });
    Ok(Previous {
        rebooted,
        durability,
        sync_failed: engine.sync_failure_marked()?,
    })
}

/// A note as the start after `previous_generation`'s trusts it: its tag
/// only for a `sync` (the note that spares a recovery); `none` whatever
/// its tag, or none (review-recover2-31 N2).
fn read_note(noted: &[u8], previous_generation: u64) -> RunDurability {
    let noted = String::from_utf8_lossy(noted);
    let (name, tag) = noted.split_once('@').unwrap_or((&noted, ""));
    match name {
        "none" => RunDurability::NoWal,
        "sync" if tag == previous_generation.to_string() => RunDurability::Sync,
        _ => RunDurability::Periodic,
    }
}

fn note(durability: RunDurability, generation: u64) -> String {
    format!("{}@{generation}", durability.name())
}

/// Records this start's boot id and how the run it begins acknowledges
/// writes, tagged with this start's `generation`, durably, before that
/// run acknowledges any: a later start of the same boot does not count as
/// after a restart, and a later one decides on this run's durability.
/// Call it only after whatever the previous run called for is durable:
/// until then, every start recovers again. The tag changes at every
/// start, so it is written (and flushed) at every start. A failed sync's
/// mark is removed last, once the note is durable.
pub fn note_start(
    engine: &dyn Engine,
    durability: RunDurability,
    generation: u64,
) -> Result<(), EngineError> {
    let mut b = WriteBatch::new();
    b.put_raw(
        Cf::Meta,
        RUN_DURABILITY,
        note(durability, generation).as_bytes(),
    );
    if let Some(id) = current() {
        b.put_raw(Cf::Meta, BOOT_ID, id.as_bytes());
    }
    engine.write(b)?;
    engine.flush()?;
    engine.clear_sync_failure_mark()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::memory::MemoryEngine;
    use crate::engine::testing::{Hooked, Hooks};
    use crate::engine::Limits;
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

    fn reboot(engine: &dyn Engine) {
        let mut b = WriteBatch::new();
        b.put_raw(Cf::Meta, BOOT_ID, b"another boot");
        engine.write(b).unwrap();
    }

    #[test]
    fn only_a_new_boot_id_counts_as_a_restart() {
        let engine = MemoryEngine::new(Limits::default());
        reboot(&engine);
        // This process's boot differs from the stored one, until noted.
        assert!(previous_run(&engine, 0).unwrap().rebooted);
        assert!(
            previous_run(&engine, 0).unwrap().rebooted,
            "reading notes nothing"
        );
        note_start(&engine, RunDurability::Periodic, 1).unwrap();
        if current().is_some() {
            assert!(!previous_run(&engine, 1).unwrap().rebooted);
        }
        let none = MemoryEngine::new(Limits::default());
        assert!(
            previous_run(&none, 0).unwrap().rebooted,
            "unknown: assume lost"
        );
    }

    /// The run's durability is noted with its boot, and decides at the
    /// next start; absent (an older data directory) is not synced.
    #[test]
    fn the_previous_runs_durability_decides_whether_it_may_have_lost() {
        let engine = MemoryEngine::new(Limits::default());
        reboot(&engine);
        assert!(previous_run(&engine, 0).unwrap().may_have_lost(), "absent");
        note_start(&engine, RunDurability::Sync, 1).unwrap();
        reboot(&engine);
        let previous = previous_run(&engine, 1).unwrap();
        assert_eq!(previous.durability, RunDurability::Sync);
        assert!(previous.rebooted && !previous.may_have_lost());
        note_start(&engine, RunDurability::Periodic, 2).unwrap();
        reboot(&engine);
        assert!(previous_run(&engine, 2).unwrap().may_have_lost());
    }

    /// A note tagged with another start's generation (a build that does
    /// not note its durability ran since, and took the generation after
    /// it) counts as not synced (review-recover31 L1).
    #[test]
    fn a_note_of_another_generation_is_not_synced() {
        let engine = MemoryEngine::new(Limits::default());
        note_start(&engine, RunDurability::Sync, 7).unwrap();
        reboot(&engine);
        assert!(!previous_run(&engine, 7).unwrap().may_have_lost());
        let older_build_ran = previous_run(&engine, 8).unwrap();
        assert_eq!(older_build_ran.durability, RunDurability::Periodic);
        assert!(older_build_ran.may_have_lost());
    }

    /// A `none` note counts whatever its tag: a start after it that failed
    /// or was killed before its own note (same boot) leaves the recovery
    /// owed, and the next start does it (review-recover2-31 N2); only a
    /// `sync` note must be the previous start's.
    #[test]
    fn a_note_of_no_wal_counts_whatever_its_generation() {
        let engine = MemoryEngine::new(Limits::default());
        note_start(&engine, RunDurability::NoWal, 1).unwrap();
        let previous = previous_run(&engine, 2).unwrap();
        assert_eq!(previous.durability, RunDurability::NoWal);
        assert!(previous.may_have_lost(), "rebooted: {}", previous.rebooted);
        let read = |noted: &str| read_note(noted.as_bytes(), 5);
        assert_eq!(read("none"), RunDurability::NoWal, "untagged");
        assert_eq!(read("none@9"), RunDurability::NoWal);
        assert_eq!(read("sync@5"), RunDurability::Sync);
        for other in ["sync@4", "sync", "sync@", "periodic@5", "syncx@5", ""] {
            assert_eq!(read(other), RunDurability::Periodic, "{other:?}");
        }
    }

    /// A run with no WAL may have lost its memtable at any unclean stop,
    /// on the same boot too; a sync run did not (review-recover31 L4).
    #[test]
    fn a_run_with_no_wal_may_have_lost_without_a_reboot() {
        let engine = MemoryEngine::new(Limits::default());
        note_start(&engine, RunDurability::NoWal, 3).unwrap();
        let previous = previous_run(&engine, 3).unwrap();
        assert_eq!(previous.durability, RunDurability::NoWal);
        assert!(previous.may_have_lost(), "rebooted: {}", previous.rebooted);
        let same_boot = Previous {
            rebooted: false,
            durability: RunDurability::NoWal,
            sync_failed: false,
        };
        assert!(same_boot.may_have_lost());
        let synced = Previous {
            rebooted: false,
            durability: RunDurability::Sync,
            sync_failed: false,
        };
        assert!(
            !synced.may_have_lost()
                && !Previous {
                    rebooted: true,
                    ..synced
                }
                .may_have_lost()
        );
        let failed = Previous {
            sync_failed: true,
            ..synced
        };
        assert!(
            failed.may_have_lost(),
            "a failed sync's mark: same boot, sync"
        );
        assert_eq!(RunDurability::from(&Durability::None), RunDurability::NoWal);
    }

    /// A marked directory whose writes or flushes fail on demand, with
    /// errors that latch nothing (so a removal is not hidden by a fresh
    /// mark, review-tidy34b L3).
    #[derive(Default)]
    struct Marked {
        marked: AtomicBool,
        fail_write: AtomicBool,
        fail_flush: AtomicBool,
    }

    impl Hooks for Marked {
        fn before_write(&self, _: &WriteBatch) -> Result<(), EngineError> {
            match self.fail_write.load(SeqCst) {
                true => Err(EngineError::Busy("injected write failure".into())),
                false => Ok(()),
            }
        }
        fn before_flush(&self) -> Result<(), EngineError> {
            match self.fail_flush.load(SeqCst) {
                true => Err(EngineError::Busy("injected flush failure".into())),
                false => Ok(()),
            }
        }
        fn sync_failure_marked(&self) -> bool {
            self.marked.load(SeqCst)
        }
        fn clear_sync_failure_mark(&self) {
            self.marked.store(false, SeqCst);
        }
    }

    /// review-tidy34b L3: the mark of a failed sync is removed only once
    /// the start's note is durable: reading the previous run keeps it, and
    /// a note whose write or flush fails keeps it, so the next start
    /// recovers again. Fails if `previous_run` or `note_start` removed it
    /// before the note's flush.
    #[test]
    fn the_mark_is_removed_only_after_the_note_is_durable() {
        let engine = Hooked::new(Marked::default());
        engine.marked.store(true, SeqCst);
        assert!(previous_run(&engine, 0).unwrap().sync_failed);
        assert!(engine.marked.load(SeqCst), "reading removes nothing");
        engine.fail_write.store(true, SeqCst);
        assert!(note_start(&engine, RunDurability::Sync, 1).is_err());
        assert!(engine.marked.load(SeqCst), "kept: the note's write failed");
        engine.fail_write.store(false, SeqCst);
        engine.fail_flush.store(true, SeqCst);
        assert!(note_start(&engine, RunDurability::Sync, 1).is_err());
        assert!(engine.marked.load(SeqCst), "kept: the note's flush failed");
        assert!(previous_run(&engine, 0).unwrap().may_have_lost());
        engine.fail_flush.store(false, SeqCst);
        note_start(&engine, RunDurability::Sync, 1).unwrap();
        assert!(!engine.marked.load(SeqCst), "removed once durable");
        assert!(!previous_run(&engine, 1).unwrap().sync_failed);
    }
}
