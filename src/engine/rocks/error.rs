//! Classifies a `rocksdb::Error` into an [`EngineError`] by its kind, so no
//! caller parses RocksDB's status strings and `rocksdb::Error` never leaves
//! [`rocks`](super); and says which classes mean the data may not be on
//! disk ([`wal_failed`], [`flush_failed`]: the engine latches those). Must
//! not decide what to do about an error (callers do, by its variant and
//! [`EngineError::is_retriable`]).

use rocksdb::ErrorKind;

use crate::engine::EngineError;

/// The engine error for a RocksDB status, by its kind.
pub(super) fn rocks(e: rocksdb::Error) -> EngineError {
    classify(e.kind(), e.into_string())
}

/// The variant for a RocksDB status of `kind` with message `detail`.
pub(super) fn classify(kind: ErrorKind, detail: String) -> EngineError {
    match kind {
        ErrorKind::Busy
        | ErrorKind::TryAgain
        | ErrorKind::TimedOut
        | ErrorKind::Incomplete
        | ErrorKind::Expired => EngineError::Busy(detail),
        ErrorKind::ShutdownInProgress | ErrorKind::ColumnFamilyDropped => {
            EngineError::Closed(detail)
        }
        ErrorKind::InvalidArgument | ErrorKind::NotSupported => {
            EngineError::InvalidArgument(detail)
        }
        ErrorKind::Corruption => EngineError::Corrupt {
            what: "database".into(),
            detail,
        },
        ErrorKind::IOError => EngineError::Io(std::io::Error::other(detail)),
        ErrorKind::NotFound
        | ErrorKind::MergeInProgress
        | ErrorKind::Aborted
        | ErrorKind::CompactionTooLarge
        | ErrorKind::Unknown => EngineError::Backend(detail),
    }
}

/// Whether a failed write means its WAL write or fsync failed, or RocksDB
/// stopped taking writes until a reopen: RocksDB answers such a failure
/// with `IOError`, and a write refused for a `Corruption` is practically
/// always its unrecoverable background error (a flush's or a compaction's,
/// error_handler.cc), which it answers every later write with
/// (review-tidy34b L1: latching it loses nothing and makes the node not
/// ready). Not a stall or a contention (`Incomplete`, `Busy`, `TryAgain`,
/// ...: nothing was written), a shutdown, a refused argument, or a failure
/// of another kind, which say nothing of the WAL.
pub(super) fn wal_failed(e: &EngineError) -> bool {
    matches!(e, EngineError::Io(_) | EngineError::Corrupt { .. })
}

/// Whether a failed flush (a WAL fsync, or with no WAL the memtables'
/// flush) may have left what it was to make durable off the disk: an I/O
/// error, a corruption, or a failure of no known kind; not a contention, a
/// shutdown or a refused argument, which a later flush may get past
/// (review-tidy34 L2).
pub(super) fn flush_failed(e: &EngineError) -> bool {
    matches!(
        e,
        EngineError::Io(_) | EngineError::Corrupt { .. } | EngineError::Backend(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_callers_act_on_are_typed_not_parsed() {
        let cases = [
            (ErrorKind::Busy, "busy", true),
            (ErrorKind::TryAgain, "busy", true),
            (ErrorKind::TimedOut, "busy", true),
            (ErrorKind::Incomplete, "busy", true),
            (ErrorKind::ShutdownInProgress, "closed", false),
            (ErrorKind::ColumnFamilyDropped, "closed", false),
            (ErrorKind::InvalidArgument, "invalid", false),
            (ErrorKind::NotSupported, "invalid", false),
            (ErrorKind::Corruption, "corrupt", false),
            (ErrorKind::IOError, "io", true),
            (ErrorKind::Unknown, "other", false),
        ];
        for (kind, want, retriable) in cases {
            // The message says nothing: only the kind classifies.
            let e = classify(kind.clone(), "no words to parse".into());
            let got = match &e {
                EngineError::Busy(_) => "busy",
                EngineError::Closed(_) => "closed",
                EngineError::InvalidArgument(_) => "invalid",
                EngineError::Corrupt { .. } => "corrupt",
                EngineError::Io(_) => "io",
                EngineError::Backend(_) => "other",
                other => panic!("{kind:?} became {other:?}"),
            };
            assert_eq!(got, want, "{kind:?}");
            assert_eq!(e.is_retriable(), retriable, "{kind:?}");
            assert!(e.to_string().contains("no words to parse"), "{e}");
            let latches = (wal_failed(&e), flush_failed(&e));
            // review-tidy34b L1: a write refused for a corruption latches.
            let want = match want {
                "io" | "corrupt" => (true, true),
                "other" => (false, true),
                _ => (false, false),
            };
            assert_eq!(latches, want, "{kind:?}: latched by a write, a flush");
        }
    }
}
