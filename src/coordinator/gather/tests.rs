//! Gathering under scripted answers: what is counted, and which error (and
//! so which gRPC code) a wait ends with. Deadlines already past or far away,
//! so no test sleeps.

use super::*;
use std::time::Duration;
use tonic::Code;

fn local_quorum() -> Requirement {
    Requirement::Local {
        dc: "dc1".into(),
        count: 2,
    }
}

fn acks(dc1: u32, hints: u32) -> AckCounts {
    let mut a = AckCounts::default();
    a.per_dc.insert("dc1".into(), dc1);
    a.hints = hints;
    a
}

fn pending(dc1: u32) -> BTreeMap<String, u32> {
    BTreeMap::from([("dc1".to_string(), dc1)])
}

fn refused(peer: &str, detail: &str) -> HandleError {
    HandleError::BadReply {
        peer: peer.into(),
        detail: detail.into(),
    }
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

#[tokio::test]
async fn a_failed_level_counts_replicas_not_hints_and_may_have_been_applied() {
    // LOCAL_QUORUM: the coordinator applied it, one replica is down (hinted),
    // the third fails.
    let (tx, rx) = mpsc::channel(4);
    let mut g = Gather::<()>::new(
        Wait {
            level: ConsistencyLevel::LocalQuorum,
            req: local_quorum(),
            op: OpKind::Write,
            deadline: far(),
            timeout_ms: 2000,
        },
        rx,
        pending(1),
        acks(1, 1),
    );
    tx.send(Answer::Replica(
        NodeIdx(2),
        "dc1".into(),
        Err(refused("dc1-n3", "reset")),
    ))
    .await
    .unwrap();
    assert_eq!(g.run(far()).await.unwrap(), Step::Short);
    let e = g.failed();
    let text = e.to_string();
    assert_eq!(e.code(), Code::Aborted, "{text}");
    assert!(!e.nothing_applied());
    assert!(text.contains("1 of 2 required"), "{text}");
    // Not "1 of 2" alone, which reads as if the other answered no
    // (an early abort, issue 13's recorded README run).
    assert!(text.contains("gave up with 1 of 2"), "{text}");
    assert!(text.contains("too many replicas failed"), "{text}");
    assert!(text.contains("1 hint(s)"), "{text}");
    assert!(text.contains("may have been applied"), "{text}");
}

#[tokio::test]
async fn a_timeout_is_deadline_exceeded_and_counts_replicas_only() {
    let (_tx, rx) = mpsc::channel::<Answer<()>>(4);
    let past = Instant::now();
    let mut g = Gather::new(
        Wait {
            level: ConsistencyLevel::LocalQuorum,
            req: local_quorum(),
            op: OpKind::Write,
            deadline: past,
            timeout_ms: 2000,
        },
        rx,
        pending(1),
        acks(1, 1),
    );
    let e = g.run(far()).await.expect_err("deadline passed");
    let text = e.to_string();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{text}");
    assert!(text.contains("with 1 of 2"), "{text}");
    assert!(text.contains("dc1 has 1 of 2"), "{text}");
    assert!(text.contains("may have been applied"), "{text}");
}

#[tokio::test]
async fn a_short_count_level_goes_on_with_more_replicas() {
    // TWO: the coordinator's own ack; the other local replica fails; the
    // caller then asks dc2 through its stream, which settles 3 replicas.
    let (tx, rx) = mpsc::channel(4);
    let mut g = Gather::<()>::new(
        Wait {
            level: ConsistencyLevel::Two,
            req: Requirement::Total { count: 2 },
            op: OpKind::Write,
            deadline: far(),
            timeout_ms: 2000,
        },
        rx,
        pending(1),
        acks(1, 0),
    );
    tx.send(Answer::Replica(
        NodeIdx(1),
        "dc1".into(),
        Err(refused("dc1-n2", "refused")),
    ))
    .await
    .unwrap();
    assert_eq!(g.run(far()).await.unwrap(), Step::Short);
    g.expect("dc2", 3);
    tx.send(Answer::Stream {
        dc: "dc2".into(),
        settles: 3,
        result: Ok(3),
    })
    .await
    .unwrap();
    assert_eq!(g.run(far()).await.unwrap(), Step::Met);
    let got = g.into_gathered();
    assert_eq!(got.acks.per_dc.get("dc2"), Some(&3));
    assert_eq!(got.acks.per_dc.get("dc1"), Some(&1));
}

#[tokio::test]
async fn until_stops_the_wait_early_without_an_error() {
    let (_tx, rx) = mpsc::channel::<Answer<()>>(4);
    let mut g = Gather::new(
        Wait {
            level: ConsistencyLevel::Two,
            req: Requirement::Total { count: 2 },
            op: OpKind::Read,
            deadline: far(),
            timeout_ms: 2000,
        },
        rx,
        pending(2),
        AckCounts::default(),
    );
    assert_eq!(g.run(Instant::now()).await.unwrap(), Step::Short);
    let e = g.failed();
    assert!(!e.to_string().contains("applied"), "a read: {e}");
}
