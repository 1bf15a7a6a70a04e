//! The classification of gRPC statuses into [`ClientError`] and the
//! retriable / may-have-been-applied verdicts the retry loop relies on.

use super::*;

#[test]
fn server_codes_map_to_variants() {
    let cases = [
        (Code::DeadlineExceeded, Code::DeadlineExceeded, true),
        (Code::InvalidArgument, Code::InvalidArgument, false),
        (Code::FailedPrecondition, Code::FailedPrecondition, false),
        (Code::NotFound, Code::NotFound, false),
        (Code::Internal, Code::Internal, false),
        (Code::Aborted, Code::Aborted, true),
    ];
    for (sent, code, retriable) in cases {
        let err = ClientError::from(tonic::Status::new(sent, "m"));
        assert_eq!(err.code(), code, "{sent:?}");
        assert_eq!(err.is_retriable(), retriable, "{sent:?}");
        assert_eq!(err.message(), "m");
        assert!(err.reached_server());
    }
}

fn unavailable(verdict: Option<&'static str>) -> ClientError {
    let mut status = tonic::Status::new(Code::Unavailable, "1 of 2 alive");
    if let Some(v) = verdict {
        status.metadata_mut().insert(
            crate::proto::APPLIED_METADATA,
            tonic::metadata::MetadataValue::from_static(v),
        );
    }
    ClientError::from(status)
}

#[test]
fn only_unavailable_before_sending_lets_a_write_be_retried() {
    let policy = crate::RetryPolicy::default();
    let before = unavailable(Some("no"));
    assert!(
        matches!(before, ClientError::Unavailable { .. }),
        "{before:?}"
    );
    assert!(!before.may_have_been_applied());
    assert!(
        policy.should_retry(0, &before, false),
        "nothing was applied"
    );
    // Without a node's verdict (transport, proxy): may have been applied.
    for e in [unavailable(None), unavailable(Some("maybe"))] {
        assert_eq!(e.code(), Code::Unavailable);
        assert!(e.may_have_been_applied(), "{e:?}");
        assert!(!policy.should_retry(0, &e, false), "{e:?}");
        assert!(policy.should_retry(0, &e, true), "reads are retried: {e:?}");
    }
    for code in [Code::DeadlineExceeded, Code::Aborted, Code::Internal] {
        let e = ClientError::from(tonic::Status::new(code, "m"));
        assert!(e.may_have_been_applied(), "{code:?}");
        assert!(!policy.should_retry(0, &e, false), "{code:?}");
    }
}

#[test]
fn connect_error_in_source_chain_is_transport() {
    let status =
        tonic::Status::from_error(Box::new(tonic::ConnectError("connection refused".into())));
    let err = ClientError::from(status);
    assert!(matches!(err, ClientError::Transport { .. }), "{err:?}");
    assert!(!err.reached_server());
    assert_eq!(err.code(), Code::Unavailable);
}

#[test]
fn channel_deadline_is_timeout() {
    let status = tonic::Status::from_error(Box::new(tonic::TimeoutExpired(())));
    let err = ClientError::from(status);
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
}

#[test]
fn code_names_are_canonical() {
    assert_eq!(code_name(Code::Unavailable), "UNAVAILABLE");
    assert_eq!(code_name(Code::InvalidArgument), "INVALID_ARGUMENT");
}

#[test]
fn a_connection_broken_mid_request_is_retried_for_reads_only() {
    let err = ClientError::from(tonic::Status::new(Code::Unknown, "transport error"));
    assert!(matches!(err, ClientError::ConnectionLost { .. }), "{err:?}");
    assert_eq!(err.code(), Code::Unavailable);
    let policy = crate::RetryPolicy::default();
    assert!(
        policy.should_retry(0, &err, true),
        "a read goes to another node"
    );
    assert!(
        !policy.should_retry(0, &err, false),
        "a write may have been applied"
    );
    let dead = ClientError::from(tonic::Status::new(
        Code::Unknown,
        "Service was not ready: transport error",
    ));
    assert!(
        matches!(dead, ClientError::ConnectionLost { .. }),
        "{dead:?}"
    );
    let canceled = ClientError::from(tonic::Status::new(
        Code::Cancelled,
        "operation was canceled",
    ));
    assert!(
        matches!(canceled, ClientError::ConnectionLost { .. }),
        "{canceled:?}"
    );
    // Other UNKNOWN statuses stay as they are.
    let other = ClientError::from(tonic::Status::new(Code::Unknown, "boom"));
    assert!(matches!(other, ClientError::Other { .. }));
}

#[test]
fn a_shed_request_is_overloaded_with_its_hint_and_nothing_applied() {
    let shed = |verdict: Option<&'static str>, hint: Option<&'static str>| {
        let mut status = tonic::Status::resource_exhausted("2048 in flight");
        if let Some(v) = verdict {
            status.metadata_mut().insert(
                crate::proto::APPLIED_METADATA,
                tonic::metadata::MetadataValue::from_static(v),
            );
        }
        if let Some(h) = hint {
            status.metadata_mut().insert(
                crate::proto::RETRY_AFTER_METADATA,
                tonic::metadata::MetadataValue::from_static(h),
            );
        }
        ClientError::from(status)
    };
    let err = shed(Some("no"), Some("75"));
    assert_eq!(
        err,
        ClientError::Overloaded {
            message: "2048 in flight".into(),
            retry_after: Some(std::time::Duration::from_millis(75)),
        }
    );
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(err.is_retriable() && !err.may_have_been_applied());
    assert_eq!(shed(Some("no"), Some("soon")).retry_after(), None);
    // Not from a geokv node's admission (e.g. a message over tonic's size
    // limit): the outcome is unknown, so it stays a plain status.
    let foreign = shed(None, Some("75"));
    assert!(matches!(
        foreign,
        ClientError::Other {
            code: Code::ResourceExhausted,
            ..
        }
    ));
    assert!(foreign.may_have_been_applied());
}

/// review-shed33 M2: a node's body timeout (`DEADLINE_EXCEEDED`,
/// `geokv-applied: no`) is retriable and not applied, so a put is retried;
/// a deadline without the marker stays a `Timeout` that may be applied.
#[test]
fn a_body_timeout_marked_no_lets_a_put_be_retried() {
    let policy = crate::RetryPolicy::default();
    let mut status = tonic::Status::deadline_exceeded("no part of the body arrived for 10000 ms");
    status.metadata_mut().insert(
        crate::proto::APPLIED_METADATA,
        tonic::metadata::MetadataValue::from_static("no"),
    );
    let no = ClientError::from(status);
    assert!(matches!(no, ClientError::Unavailable { .. }), "{no:?}");
    assert_eq!(no.message(), "no part of the body arrived for 10000 ms");
    assert!(no.is_retriable() && !no.may_have_been_applied());
    assert!(policy.should_retry(0, &no, false), "a put is sent again");
    for verdict in [None, Some("maybe")] {
        let mut status = tonic::Status::deadline_exceeded("2 of 3 answered");
        if let Some(v) = verdict {
            status.metadata_mut().insert(
                crate::proto::APPLIED_METADATA,
                tonic::metadata::MetadataValue::from_static(v),
            );
        }
        let late = ClientError::from(status);
        assert!(matches!(late, ClientError::Timeout { .. }), "{late:?}");
        assert!(late.may_have_been_applied());
        assert!(!policy.should_retry(0, &late, false), "{verdict:?}");
    }
}
