//! The read's wait under paused time: speculation exactly at the delay
//! (and again after each further delay) and only when the level is not yet
//! met, replacements at once when a replica
//! fails, and the error when none is left.

use super::*;
use crate::coordinator::consistency::{ConsistencyLevel, Requirement};
use tokio::time::Duration;

const DELAY: Duration = Duration::from_millis(20);

/// QUORUM on three live replicas of dc1 (nodes 0, 1, 2), its first wave
/// asked: the targets, the wait, and the sender replicas answer on.
fn quorum_rf3() -> (ReadTargets, Gather<u32>, mpsc::Sender<Answer<u32>>, Instant) {
    two_of(&["dc1", "dc1", "dc1"])
}

/// A read needing two of the live replicas in `dcs` (node i in `dcs[i]`),
/// its first wave (nodes 0 and 1, both in dc1) asked.
fn two_of(dcs: &[&str]) -> (ReadTargets, Gather<u32>, mpsc::Sender<Answer<u32>>, Instant) {
    let req = Requirement::Total { count: 2 };
    let cands = dcs
        .iter()
        .enumerate()
        .map(|(i, dc)| Candidate {
            node: NodeIdx(i as u32),
            dc: dc.to_string(),
            up: true,
        })
        .collect();
    let mut targets = ReadTargets::new(req.clone(), cands);
    let wave = targets.first_wave();
    assert_eq!(wave.len(), 2);
    let (tx, rx) = mpsc::channel(8);
    let deadline = Instant::now() + Duration::from_secs(2);
    let gather = Gather::new(
        Wait {
            level: ConsistencyLevel::Quorum,
            req,
            op: OpKind::Read,
            deadline,
            timeout_ms: 2000,
        },
        rx,
        BTreeMap::from([("dc1".to_string(), 2)]),
        AckCounts::default(),
    );
    (targets, gather, tx, deadline)
}

/// The speculation delay, `deadline`, and no first-wave call to poll.
fn waits(deadline: Instant) -> Waves<'static> {
    Waves {
        speculation: DELAY,
        deadline,
        calls: ReadCalls::default(),
    }
}

/// An `ask` that only records or answers through the channel (no call to
/// poll).
fn asks(mut f: impl FnMut(Candidate)) -> impl FnMut(Candidate) -> Option<ReadCall<'static>> {
    move |c| {
        f(c);
        None
    }
}

fn ok(n: u32) -> Answer<u32> {
    Answer::Replica(NodeIdx(n), "dc1".into(), Ok(n))
}

fn err(n: u32) -> Answer<u32> {
    let reset = HandleError::BadReply {
        peer: format!("n{n}"),
        detail: "reset".into(),
    };
    Answer::Replica(NodeIdx(n), "dc1".into(), Err(reset))
}

#[tokio::test(start_paused = true)]
async fn fast_replicas_meet_the_level_without_speculation() {
    let (mut targets, mut gather, tx, deadline) = quorum_rf3();
    tx.send(ok(0)).await.unwrap();
    tx.send(ok(1)).await.unwrap();
    let mut asked = Vec::new();
    gather_read(
        &mut targets,
        &mut gather,
        waits(deadline),
        asks(|c| asked.push(c.node)),
    )
    .await
    .unwrap();
    assert!(asked.is_empty(), "asked {asked:?}");
}

#[tokio::test(start_paused = true)]
async fn a_slow_replica_brings_one_more_exactly_at_the_delay() {
    let (mut targets, mut gather, tx, deadline) = quorum_rf3();
    let start = Instant::now();
    tx.send(ok(0)).await.unwrap(); // node 1 never answers
    let mut asked = Vec::new();
    let answers = tx.clone();
    gather_read(
        &mut targets,
        &mut gather,
        waits(deadline),
        asks(|c| {
            asked.push((c.node, start.elapsed()));
            answers.try_send(ok(c.node.0)).unwrap();
        }),
    )
    .await
    .unwrap();
    assert_eq!(asked, vec![(NodeIdx(2), DELAY)]);
    assert_eq!(gather.received(), 2);
}

#[tokio::test(start_paused = true)]
async fn hung_local_replicas_bring_a_remote_one_after_a_doubled_delay() {
    let (mut targets, mut gather, tx, deadline) = two_of(&["dc1", "dc1", "dc1", "dc2"]);
    let start = Instant::now();
    tx.send(ok(0)).await.unwrap(); // nodes 1 and 2 hang
    let mut asked = Vec::new();
    let answers = tx.clone();
    gather_read(
        &mut targets,
        &mut gather,
        waits(deadline),
        asks(|c| {
            asked.push((c.node, start.elapsed()));
            if c.dc == "dc2" {
                let answer = Answer::Replica(c.node, c.dc, Ok(c.node.0));
                answers.try_send(answer).unwrap();
            }
        }),
    )
    .await
    .unwrap();
    // Each further speculation waits twice as long as the one before, so an
    // overloaded cluster is not asked for every replica within 40 ms.
    assert_eq!(asked, vec![(NodeIdx(2), DELAY), (NodeIdx(3), DELAY * 3)]);
}

#[tokio::test(start_paused = true)]
async fn speculation_stops_when_no_replica_is_left_then_the_read_waits_for_the_deadline() {
    let (mut targets, mut gather, tx, deadline) = quorum_rf3();
    let start = Instant::now();
    tx.send(ok(0)).await.unwrap(); // nodes 1 and then 2 never answer
    let mut asked = Vec::new();
    let e = gather_read(
        &mut targets,
        &mut gather,
        waits(deadline),
        asks(|c| asked.push((c.node, start.elapsed()))),
    )
    .await
    .unwrap_err();
    assert_eq!(asked, vec![(NodeIdx(2), DELAY)]);
    assert_eq!(start.elapsed(), Duration::from_secs(2), "{e}");
    assert_eq!(e.code(), tonic::Code::DeadlineExceeded, "{e}");
}

#[tokio::test(start_paused = true)]
async fn a_failed_replica_is_replaced_at_once_and_none_left_fails() {
    let (mut targets, mut gather, tx, deadline) = quorum_rf3();
    let start = Instant::now();
    tx.send(err(1)).await.unwrap();
    tx.send(ok(0)).await.unwrap();
    let mut asked = Vec::new();
    let answers = tx.clone();
    gather_read(
        &mut targets,
        &mut gather,
        waits(deadline),
        asks(|c| {
            asked.push((c.node, start.elapsed()));
            answers.try_send(ok(c.node.0)).unwrap();
        }),
    )
    .await
    .unwrap();
    assert_eq!(asked, vec![(NodeIdx(2), Duration::ZERO)]);

    let (mut targets, mut gather, tx, deadline) = quorum_rf3();
    tx.send(err(0)).await.unwrap();
    tx.send(err(1)).await.unwrap();
    let answers = tx.clone();
    let e = gather_read(
        &mut targets,
        &mut gather,
        waits(deadline),
        asks(|c| {
            answers.try_send(err(c.node.0)).unwrap();
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Aborted, "{e}");
    assert_eq!(start.elapsed(), Duration::ZERO, "failed without waiting");
}

/// A replica's read is a call polled by the gather's own task: an answer
/// that comes only by polling it (a first-wave call, and a speculative one
/// that `ask` returns) meets the level, with nothing spawned.
#[tokio::test(start_paused = true)]
async fn calls_are_polled_by_the_gathering_task() {
    let (mut targets, mut gather, tx, deadline) = quorum_rf3();
    let start = Instant::now();
    tx.send(ok(0)).await.unwrap(); // node 1's call never answers
    let never: ReadCall<'static> = Box::pin(std::future::pending());
    let calls = ReadCalls(FuturesUnordered::from_iter([never]));
    let answers = tx.clone();
    let waves = Waves {
        speculation: DELAY,
        deadline,
        calls,
    };
    gather_read(&mut targets, &mut gather, waves, |c| {
        let answers = answers.clone();
        Some(Box::pin(async move {
            tokio::time::sleep(DELAY).await;
            answers.send(ok(c.node.0)).await.unwrap();
        }))
    })
    .await
    .unwrap();
    assert_eq!(gather.received(), 2);
    assert_eq!(
        start.elapsed(),
        DELAY * 2,
        "asked at the delay, answered a delay later"
    );
}

/// A read queued behind a stalled call to its peer goes out within twice
/// the read lane's hold (`transport::read_batch::tests`): by the default
/// speculation's half, so long before this read would ask another replica.
#[test]
fn the_read_lanes_hold_twice_over_is_within_half_the_default_speculation() {
    use crate::transport::read_batch::READ_HOLD;
    let speculation = crate::coordinator::CoordinatorConfig::default().read_speculation;
    assert!(
        READ_HOLD * 2 <= speculation / 2,
        "{READ_HOLD:?} vs {speculation:?}"
    );
}
