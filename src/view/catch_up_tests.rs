//! Tests of the layout catch-up at start (`catch_up.rs`): members that
//! answer after a delay or never, under paused time; which layout the
//! answers back (a fork, a lone answer) and how long a start waits.

use super::catch_up::*;
use super::Cluster;
use crate::layout::Layout;
use crate::topology::NodeInfo;
use crate::topology::Topology;
use crate::transport::TransportError;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

use super::cas_testing::with_keyspace;

/// Each member answers with its layout after its delay, or never.
struct Members(BTreeMap<String, (Option<Duration>, Layout)>);

impl LayoutSource for Members {
    fn layout_of(&self, to: &NodeInfo, timeout: Duration) -> Fetched<'_> {
        let answer = self.0.get(&to.id).cloned();
        let peer = to.id.clone();
        Box::pin(async move {
            match answer {
                Some((Some(delay), layout)) if delay <= timeout => {
                    tokio::time::sleep(delay).await;
                    Ok(layout)
                }
                _ => {
                    tokio::time::sleep(timeout).await;
                    let ms = timeout.as_millis() as u64;
                    Err(FetchError::Transport(TransportError::Timeout { peer, ms }))
                }
            }
        })
    }
}

/// dc1-n1 restarted on the seed layout while the others went on to v3.
fn restarted(answer: impl Fn(&str) -> Option<Duration>) -> (Cluster, Members, Layout) {
    let seed = Layout::seed(&Topology::dev());
    let v3 = with_keyspace(&with_keyspace(&seed, "a"), "b");
    let me = Cluster::new(seed.clone(), "dc1-n1", None).expect("a view");
    let members = (seed.nodes().map(|(_, _, n)| n.id.clone()))
        .filter(|id| id != "dc1-n1")
        .map(|id| (id.clone(), (answer(&id), v3.clone())))
        .collect();
    (me, Members(members), v3)
}

#[tokio::test(start_paused = true)]
async fn a_restarted_node_takes_its_members_newer_layout_before_serving() {
    let (me, members, v3) = restarted(|_| Some(Duration::from_millis(30)));
    let done = catch_up(&me, &members, CATCH_UP_WITHIN).await;
    assert!(
        matches!(done, CaughtUp::Majority { from: 1, to: 3, .. }),
        "{done:?}"
    );
    assert_eq!(*me.current().layout, v3);
}

/// Two of the five others dead: the three that answer make a majority
/// of six with this node; the start does not wait for the dead.
#[tokio::test(start_paused = true)]
async fn dead_members_in_a_minority_do_not_hold_the_start() {
    let dead = ["dc2-n1", "dc2-n2"];
    let (me, members, _) =
        restarted(|id| (!dead.contains(&id)).then_some(Duration::from_millis(30)));
    let started = Instant::now();
    let done = catch_up(&me, &members, CATCH_UP_WITHIN).await;
    assert_eq!(
        done,
        CaughtUp::Majority {
            answered: 3,
            from: 1,
            to: 3
        }
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

/// Nobody answers: the start waits the bound, then serves on its own
/// layout (and says so).
#[tokio::test(start_paused = true)]
async fn with_no_member_answering_the_start_waits_the_bound_then_serves() {
    let (me, members, _) = restarted(|_| None);
    let started = Instant::now();
    let done = catch_up(&me, &members, CATCH_UP_WITHIN).await;
    let timed_out = CaughtUp::TimedOut {
        answered: 0,
        needed: 3,
        from: 1,
        to: 1,
    };
    assert_eq!(done, timed_out);
    assert_eq!(started.elapsed(), CATCH_UP_WITHIN);
}

/// review-layout27 M4: among the answers, the layout the members back
/// is installed, not the first to arrive: dc1-n2 holds a fork of v3
/// and answers first, the others hold the chosen v3 (before: the fork
/// was installed, and the chosen v3 then refused as a fork).
#[tokio::test(start_paused = true)]
async fn the_layout_a_quorum_holds_is_installed_not_the_first_answer() {
    let (me, mut members, v3) = restarted(|_| Some(Duration::from_millis(30)));
    let fork = with_keyspace(&with_keyspace(&Layout::seed(&Topology::dev()), "a"), "x");
    let early = (Some(Duration::from_millis(1)), fork.clone());
    members.0.insert("dc1-n2".to_string(), early);
    let done = catch_up(&me, &members, CATCH_UP_WITHIN).await;
    assert!(matches!(done, CaughtUp::Majority { to: 3, .. }), "{done:?}");
    let installed = me.current().layout.digest();
    assert_eq!(installed, v3.digest(), "the chosen v3, not the fork");
}

/// dc1-n1 restarted on the seed; each other member answers `answers`
/// (its delay, or never, and its layout).
fn answering(answers: [(&str, Option<u64>, &Layout); 5]) -> (Cluster, Members) {
    let seed = Layout::seed(&Topology::dev());
    let me = Cluster::new(seed, "dc1-n1", None).expect("a view");
    let members = (answers.into_iter())
        .map(|(id, ms, l)| (id.to_string(), (ms.map(Duration::from_millis), l.clone())))
        .collect();
    (me, Members(members))
}

/// review-layout28 L3: the first to answer are a fork holder of v3
/// (dc1-n2) and two members still at v2; the chosen v3 has not reached
/// the others yet (dead). A lone answer of the newest version is not
/// taken on its word: the v2 two members agree on is installed, and the
/// lone v3 is left to gossip. Before: the fork was installed.
#[tokio::test(start_paused = true)]
async fn a_lone_answer_at_the_newest_version_is_not_installed() {
    let v2 = with_keyspace(&Layout::seed(&Topology::dev()), "a");
    let fork = with_keyspace(&v2, "fork");
    let (me, members) = answering([
        ("dc1-n2", Some(1), &fork),
        ("dc1-n3", Some(2), &v2),
        ("dc2-n1", Some(3), &v2),
        ("dc2-n2", None, &v2),
        ("dc2-n3", None, &v2),
    ]);
    let done = catch_up(&me, &members, CATCH_UP_WITHIN).await;
    assert!(matches!(done, CaughtUp::Majority { to: 2, .. }), "{done:?}");
    assert_eq!(*me.current().layout, v2, "not the lone fork");
}

/// review-layout28 L3: the answers of the newest version disagree (a
/// fork and the chosen v3) and one member is dead: the start waits a
/// short settling time for more answers, not the whole bound for the
/// dead one, and takes no layout of v3 that the answers do not back.
/// Before: every such start waited the full 10 s.
#[tokio::test(start_paused = true)]
async fn a_dead_member_does_not_hold_the_start_when_the_newest_answers_disagree() {
    let v2 = with_keyspace(&Layout::seed(&Topology::dev()), "a");
    let (v3, fork) = (with_keyspace(&v2, "b"), with_keyspace(&v2, "fork"));
    let (me, members) = answering([
        ("dc1-n2", Some(1), &fork),
        ("dc1-n3", Some(5), &v3),
        ("dc2-n1", Some(5), &v3),
        ("dc2-n2", Some(5), &v3),
        ("dc2-n3", None, &v3),
    ]);
    let started = Instant::now();
    let done = catch_up(&me, &members, CATCH_UP_WITHIN).await;
    let waited = started.elapsed();
    assert!(
        waited <= SETTLE_WITHIN + Duration::from_millis(5),
        "{waited:?}"
    );
    // The chosen v3 is held by 3 of the 4 needed and a fork of v3 is in
    // sight: no layout of v3 is backed, and none of v2 was answered, so
    // the node stays on v1 (review-layout29 L4). It gets v3 from the
    // first proposer it answers BEHIND (`cas::push_base`, H1).
    let stayed = CaughtUp::Majority {
        answered: 4,
        from: 1,
        to: 1,
    };
    assert_eq!(done, stayed);
    assert_ne!(me.current().layout.digest(), fork.digest(), "not the fork");
}
