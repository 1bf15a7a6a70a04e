//! The one mapping to `Status`: codes, `geokv-applied`, messages.

use super::*;
use tonic::Code;

fn applied(s: &Status) -> Option<&str> {
    s.metadata()
        .get(crate::proto::APPLIED_METADATA)
        .and_then(|v| v.to_str().ok())
}

#[test]
fn only_errors_before_sending_say_nothing_was_applied() {
    let unavailable = GeokvError::Unavailable {
        level: "LOCAL_QUORUM".into(),
        required: 2,
        alive: 1,
        scope: " in dc1".into(),
    };
    let timeout = GeokvError::timeout(
        crate::consistency::ConsistencyLevel::Quorum,
        1,
        4,
        2000,
        String::new(),
        true,
    );
    let failed = GeokvError::QuorumFailed {
        level: "LOCAL_QUORUM".into(),
        received: 1,
        required: 2,
        detail: "dc1-n2: refused".into(),
        write: true,
    };
    let unknown = GeokvError::MaybeApplied("sent to dc1-n2, which failed".into());
    let cases = [
        (unavailable, Code::Unavailable, "no"),
        (timeout, Code::DeadlineExceeded, "maybe"),
        (failed, Code::Aborted, "maybe"),
        (unknown, Code::Aborted, "maybe"),
        (
            GeokvError::UnknownKeyspace("x".into()),
            Code::NotFound,
            "no",
        ),
        (GeokvError::Internal("x".into()), Code::Internal, "maybe"),
        // A node that left and sealed its hint store refuses what follows
        // a minted or sent write: never "nothing applied".
        (GeokvError::HintsSealed, Code::Aborted, "maybe"),
        // Views differ during a layout change: UNAVAILABLE + applied: no,
        // which the forwarder answers by trying the next replica.
        (
            GeokvError::NotAReplica("dc1-n4 joined".into()),
            Code::Unavailable,
            "no",
        ),
    ];
    for (e, code, header) in cases {
        let text = e.to_string();
        let status = Status::from(e);
        assert_eq!(status.code(), code, "{text}");
        assert_eq!(applied(&status), Some(header), "{text}");
        assert_eq!(
            text.contains("may have been applied"),
            header == "maybe" && code != Code::Internal,
            "{text}"
        );
    }
}

/// The internode port's refusals go through the one mapping: each its
/// own code, each "applied: no" (a forwarder or a lane may send the
/// write elsewhere), none saying it may have been applied.
#[test]
fn internode_refusals_say_nothing_was_applied() {
    let cases = [
        (
            GeokvError::LinkCut {
                from: "from dc1-n2 ".into(),
            },
            Code::Unavailable,
        ),
        (
            GeokvError::NotPermitted("gossip from 'a' claims 'b'".into()),
            Code::PermissionDenied,
        ),
        (GeokvError::Expired, Code::DeadlineExceeded),
        (
            GeokvError::LayoutRefused("does not decode".into()),
            Code::FailedPrecondition,
        ),
        (
            GeokvError::InvalidArgument("bad record: truncated".into()),
            Code::InvalidArgument,
        ),
    ];
    for (e, code) in cases {
        let text = e.to_string();
        let status = Status::from(e);
        assert_eq!(status.code(), code, "{text}");
        assert_eq!(applied(&status), Some("no"), "{text}");
        assert!(!text.contains("may have been applied"), "{text}");
    }
}

#[test]
fn read_failures_do_not_talk_about_writes() {
    let e = GeokvError::QuorumFailed {
        level: "TWO".into(),
        received: 1,
        required: 2,
        detail: "x".into(),
        write: false,
    };
    assert!(!e.to_string().contains("applied"), "{e}");
    assert_eq!(e.code(), Code::Aborted);
}

#[test]
fn storage_failures_keep_their_codes_and_only_refusals_say_nothing_applied() {
    let cases = [
        (
            EngineError::KeyTooLarge { size: 2, limit: 1 },
            Code::InvalidArgument,
            "no",
        ),
        (
            EngineError::Corrupt {
                what: "database".into(),
                detail: "x".into(),
            },
            Code::DataLoss,
            "maybe",
        ),
        (EngineError::Busy("stall".into()), Code::Internal, "maybe"),
        (
            EngineError::Closed("shutdown".into()),
            Code::Internal,
            "maybe",
        ),
        (EngineError::Backend("x".into()), Code::Internal, "maybe"),
        (
            EngineError::Io(std::io::Error::other("disk")),
            Code::Internal,
            "maybe",
        ),
    ];
    for (e, code, header) in cases {
        let text = e.to_string();
        let status = Status::from(GeokvError::Engine(e));
        assert_eq!(status.code(), code, "{text}");
        assert_eq!(applied(&status), Some(header), "{text}");
    }
}
