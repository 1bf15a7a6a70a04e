//! A fork (two different layouts of one version: pre-CAS layouts, nodes
//! seeded from different files, an acceptor that lost its state) is
//! refused loudly by the view (issue 11, review M1): the layout in force
//! stays, the other is refused with an error naming both digests, whichever
//! digest is higher. Before, the higher digest silently replaced the one in
//! force, on nodes that may have acted on it.

use super::*;
use crate::topology::Topology;

fn with_keyspace(l: &Layout, name: &str) -> Layout {
    let mut next = l.clone();
    next.version += 1;
    let spec = next.keyspaces.values().next().expect("dev has one").clone();
    next.keyspaces.insert(name.to_string(), spec);
    next
}

#[test]
fn a_different_layout_of_the_version_in_force_is_refused_either_way() {
    let seed = Layout::seed(&Topology::dev());
    let (a, b) = (with_keyspace(&seed, "a"), with_keyspace(&seed, "b"));
    for (first, second) in [(&a, &b), (&b, &a)] {
        let c = Cluster::new(seed.clone(), "dc1-n1", None).expect("a view");
        c.install(first.clone()).expect("v2 installs");
        match c.install(second.clone()) {
            Err(ViewError::Fork { version: 2, .. }) => {}
            other => panic!("expected the fork refused, got {other:?}"),
        }
        assert_eq!(*c.current().layout, *first, "the layout in force stays");
        // The same layout again, or an older one, is no fork.
        assert!(c.install(first.clone()).is_ok());
        assert!(c.install(seed.clone()).is_ok());
    }
}

#[test]
fn a_pushed_fork_is_refused_and_says_so() {
    let seed = Layout::seed(&Topology::dev());
    let (a, b) = (with_keyspace(&seed, "a"), with_keyspace(&seed, "b"));
    let c = Cluster::new(seed, "dc1-n1", None).expect("a view");
    c.install(a.clone()).expect("v2 installs");
    let text = c.install(b).expect_err("a fork").to_string();
    assert!(
        text.contains("two different layouts have version 2"),
        "{text}"
    );
    assert!(text.contains("refused"), "{text}");
    assert_eq!(*c.current().layout, a);
}

/// Review L2: a change refused because another won the version is a
/// conflict (409), an undecided one is unavailable (503) and says it may
/// still be applied; before, both were 400 "bad request".
#[test]
fn a_concurrent_change_is_409_and_an_undecided_one_503_that_may_be_applied() {
    use super::http::KeyspaceError;
    let concurrent = ProposeError::Concurrent {
        version: 2,
        now: "no movement".into(),
    };
    assert_eq!(KeyspaceError::Propose(concurrent).status(), 409);
    let undecided = ProposeError::Cas(cas::CasError::Contended {
        slot: 2,
        secs: 10,
        maybe_applied: true,
    });
    assert!(
        undecided.to_string().contains("may still be applied"),
        "{undecided}"
    );
    assert_eq!(KeyspaceError::Propose(undecided).status(), 503);
}

/// Review L1: two proposers preempting each other (one per datacenter)
/// back off exponentially with jitter, past one inter-DC round trip;
/// before, every pause was a flat 10–90 ms, shorter than one such round.
#[test]
fn a_preempted_proposer_backs_off_exponentially_with_jitter() {
    let first = cas::retry_pause(1, 1.0);
    let sixth = cas::retry_pause(6, 0.0);
    assert!(sixth >= first * 8, "{first:?} then {sixth:?}");
    assert!(cas::retry_pause(30, 1.0) <= std::time::Duration::from_secs(2));
    assert!(
        cas::retry_pause(3, 0.0) < cas::retry_pause(3, 1.0),
        "jittered"
    );
}
