//! Classifies a `rocksdb::Error` into an [`EngineError`] by its kind, so no
//! caller parses RocksDB's status strings and `rocksdb::Error` never leaves
//! [`rocks`](super). Must not decide what to do about an error (callers do,
//! by its variant and [`EngineError::is_retriable`]).

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
        }
    }
}
