//! The rolling-upgrade gate of a movement's steps: the switch of reads and
//! the two steps of an abort put fields in the layout (`reading_new`,
//! `aborting`) that a build without [`LAYOUT_STEPS`] rejects, so they are
//! proposed only once every member that could read them advertises that
//! bit in gossip (`membership::features`), as Cassandra gates on the
//! minimum version in gossip. A member up that has not advertised it (an
//! older build, or not heard yet) holds the step back, and so does a
//! member down whose last heartbeat came from an older build; a member
//! down and never heard does not (it fetches the layout when it starts,
//! and an older build there is the operator's rolling upgrade to finish).
//! The node the step is about is not asked (a dead joiner being dropped).
//!
//! Owns [`gate`]. Must not propose anything: the step drivers
//! (`switch::finish_movement`, `abort::drop_abandoned`, `removenode`) ask
//! it before proposing.

use crate::layout::Layout;
pub use crate::membership::features::LAYOUT_STEPS;

/// A step held back until every member runs a build that knows it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not proposed: {} run a build without the layout's movement steps (`reading_new`, `aborting`); upgrade every node first, then the movement goes on by itself", .members.join(", "))]
pub struct NotUpgraded {
    /// `id (why)` of each member holding it back.
    pub members: Vec<String>,
}

/// Feature bits by node id, as gossip last heard them (`None`: not heard).
pub type Features<'a> = &'a dyn Fn(&str) -> Option<u64>;

/// Whether a step needing `needed` may be proposed on `layout` by `me`,
/// the step being about `except` (see the module doc).
pub fn gate(
    layout: &Layout,
    needed: u64,
    me: &str,
    except: &str,
    is_up: &dyn Fn(&str) -> bool,
    features: Features,
) -> Result<(), NotUpgraded> {
    let members = (layout.nodes())
        .filter(|(_, _, n)| n.state.is_member() && n.id != me && n.id != except)
        .filter_map(|(_, _, n)| {
            let up = is_up(&n.id);
            match features(&n.id) {
                Some(f) if f & needed == needed => None,
                Some(_) => Some(format!("{} (an older build)", n.id)),
                None if up => Some(format!("{} (not heard in gossip yet)", n.id)),
                None => None,
            }
        })
        .collect::<Vec<_>>();
    if members.is_empty() {
        Ok(())
    } else {
        Err(NotUpgraded { members })
    }
}

/// [`gate`] on node `me`'s failure detector and gossip table (on its
/// board once it runs); a process without them (tools, tests) asks nobody.
pub fn here(me: &str, layout: &Layout, except: &str) -> Result<(), NotUpgraded> {
    let board = super::progress::board(me);
    let (Some(is_up), Some(features)) = (board.liveness(), board.features()) else {
        return Ok(());
    };
    gate(layout, LAYOUT_STEPS, me, except, &*is_up, &*features)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::testing::dev_join;
    use crate::topology::Topology;

    /// A joiner in the dev cluster; every node up and on this build but
    /// `old` (an older build: bits 0) and `unheard` (never heard).
    fn check(old: &str, unheard: &str, up: bool) -> Result<(), NotUpgraded> {
        let l = dev_join(&Layout::seed(&Topology::dev()), "dc1-new", "127.0.0.14");
        let features = |id: &str| match id {
            _ if id == old => Some(0),
            _ if id == unheard => None,
            _ => Some(crate::membership::features::THIS_BUILD),
        };
        let is_up = |id: &str| up || (id != old && id != unheard);
        gate(&l, LAYOUT_STEPS, "dc1-n1", "dc1-new", &is_up, &features)
    }

    #[test]
    fn a_step_waits_for_every_member_to_run_a_build_that_knows_it() {
        assert_eq!(check("", "", true), Ok(()), "every member upgraded");
        let err = check("dc2-n3", "", true).unwrap_err();
        assert_eq!(err.members, vec!["dc2-n3 (an older build)".to_string()]);
        assert!(err.to_string().contains("upgrade every node"), "{err}");
        assert!(check("dc2-n3", "", false).is_err(), "down, last heard old");
        assert!(check("", "dc2-n2", true).is_err(), "up, not heard yet");
        assert_eq!(check("", "dc2-n2", false), Ok(()), "down, never heard");
        assert_eq!(check("dc1-new", "", true), Ok(()), "the step's own node");
        assert_eq!(check("dc1-n1", "", true), Ok(()), "the proposer itself");
    }
}
