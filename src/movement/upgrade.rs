//! The rolling-upgrade gate of a movement's steps: the switch of reads and
//! the first step of an abort put fields in the layout (`reading_new`,
//! `aborting`) that a build without [`LAYOUT_STEPS`] rejects, so they are
//! proposed only once every member up advertises that bit in gossip
//! (`membership::features`), as Cassandra gates on the minimum version in
//! gossip. A member up that has not advertised it (an older build, or not
//! heard yet) holds the step back. A member **down** never does, whatever
//! build it was last heard with (review-elastic28 H1: a dead member frozen
//! at an old entry wedged every movement, the replace of that very node
//! included); should an older build come back, the stale-view checks
//! refuse it, and a layout past the finish no longer carries the fields.
//! The nodes a movement moves are not asked either: the step's own node
//! (a joiner, leaver or replacement), and every node being removed or
//! replaced in the layout (`Remove.node` and `Remove.also`,
//! `Replace.dead`). A removal of several nodes, a forced replacement and
//! the first step of a cancel past the switch need [`REMOVE_SETS`] too; a
//! removal begun while a member up lacks it has no attempt id (`began`).
//! A withdraw, and a removal begun again of a node it recorded
//! ([`withdrawn_again`], review-final34 M1), need [`REMOVE_SETS`] and
//! [`WITHDRAW_RECORD`] (the layout then carries `withdrawn`).
//!
//! Owns [`gate`], a pure function of the layout, the liveness and the
//! feature bits. Must not propose anything: the step drivers
//! (`switch::finish_movement`, `removenode`'s first abort step) ask it
//! before proposing; the abort's second step (it only removes `aborting`)
//! does not (review-elastic28 L2).

use crate::layout::{Layout, Movement};
pub use crate::membership::features::{LAYOUT_STEPS, REMOVE_SETS, WITHDRAW_RECORD};

/// A step held back until every member up runs a build that knows it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not proposed: {} run a build without this layout change (the movement steps `reading_new` and `aborting`, a removal of several nodes, a forced replacement, a removal's withdraw, a removal begun again after its withdraw, or a cancel past the switch); upgrade those nodes, then a movement step goes on by itself, and a withdraw, a removal begun again, a forced replacement or a cancel is asked again (a node down does not hold it)", .members.join(", "))]
pub struct NotUpgraded {
    /// `id (why)` of each member holding it back.
    pub members: Vec<String>,
}

/// Feature bits by node id, as gossip last heard them (`None`: not heard).
pub type Features<'a> = &'a dyn Fn(&str) -> Option<u64>;

/// The nodes `layout`'s movements move out (removed or replaced): never
/// asked, up or down.
fn moved_out(layout: &Layout) -> Vec<&str> {
    (layout.movements.values())
        .flat_map(Movement::declared_dead)
        .collect()
}

/// Whether a step needing `needed` may be proposed on `layout` by `me`,
/// the step being about `except` (see the module doc): every member up,
/// but `me`, `except` and the nodes moved out, advertises `needed`.
pub fn gate(
    layout: &Layout,
    needed: u64,
    me: &str,
    except: &str,
    is_up: &dyn Fn(&str) -> bool,
    features: Features,
) -> Result<(), NotUpgraded> {
    let moved = moved_out(layout);
    let members = (layout.nodes())
        .map(|(_, _, n)| n)
        .filter(|n| n.state.is_member() && n.id != me && n.id != except)
        .filter(|n| !moved.contains(&n.id.as_str()) && is_up(&n.id))
        .filter_map(|n| match features(&n.id) {
            Some(f) if f & needed == needed => None,
            Some(_) => Some(format!("{} (an older build)", n.id)),
            None => Some(format!("{} (not heard in gossip yet)", n.id)),
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
    here_needing(me, layout, except, LAYOUT_STEPS)
}

/// [`here`] for the feature bits `needed`.
pub fn here_needing(
    me: &str,
    layout: &Layout,
    except: &str,
    needed: u64,
) -> Result<(), NotUpgraded> {
    let board = super::progress::board(me);
    let (Some(is_up), Some(features)) = (board.liveness(), board.features()) else {
        return Ok(());
    };
    gate(layout, needed, me, except, &*is_up, &*features)
}

/// Whether `next` adds a node to a removal in progress in `layout`
/// ([`Layout::join_removal`]): proposed only once every member up runs a
/// build that knows it ([`REMOVE_SETS`], [`here_needing`]).
pub fn joins_removal(layout: &Layout, next: &Layout) -> bool {
    (next.movements.iter()).any(|(dc, m)| match m {
        Movement::Remove { also, .. } if !also.is_empty() => !matches!(
            layout.movements.get(dc),
            Some(Movement::Remove { also: before, .. }) if before == also
        ),
        _ => false,
    })
}

/// Whether `next` forces a replacement ([`Layout::force_replace`]): an
/// older build would drop the flag, so only under [`REMOVE_SETS`].
pub fn forces_replace(layout: &Layout, next: &Layout) -> bool {
    (next.movements.iter()).any(|(dc, m)| {
        matches!(m, Movement::Replace { force: true, .. }) && layout.movements.get(dc) != Some(m)
    })
}

fn began(l: &Layout, dc: &str) -> u64 {
    match l.movements.get(dc) {
        Some(Movement::Remove { began, .. }) => *began,
        _ => 0,
    }
}

/// Whether `next` begins a removal attempt with an identity (`began`,
/// review-cancel31 H1) that `layout` does not have.
pub fn begins_attempt(layout: &Layout, next: &Layout) -> bool {
    (next.movements.keys()).any(|dc| began(next, dc) != 0 && began(next, dc) != began(layout, dc))
}

/// The nodes `next`'s new removal attempts remove whose earlier removal
/// `layout` records as withdrawn ([`Layout::withdrawn`]): begun without
/// an attempt id ([`drop_attempt_ids`]) such an attempt would take the
/// withdrawn one's name, and a gainer on an older build that missed the
/// gap could finish it on its stale `done` (review-final34 M1).
pub fn withdrawn_again(layout: &Layout, next: &Layout) -> Vec<String> {
    (next.movements.iter())
        .filter(|(dc, _)| began(next, dc) != began(layout, dc))
        .flat_map(|(_, m)| m.declared_dead())
        .filter(|n| layout.withdrawn.contains_key(*n))
        .map(str::to_string)
        .collect()
}

/// The removals `next` begins over `layout` in the form an older build
/// writes (no `began`): a member up without [`REMOVE_SETS`] would drop the
/// field and so hold a different layout of the same version. Such an
/// attempt is named as before (one after a withdraw then shares its name).
pub fn drop_attempt_ids(layout: &Layout, next: &mut Layout) {
    let old: Vec<String> = (next.movements.keys())
        .filter(|dc| began(next, dc) != began(layout, dc))
        .cloned()
        .collect();
    for dc in old {
        if let Some(Movement::Remove { began, .. }) = next.movements.get_mut(&dc) {
            *began = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::testing::{dev_join, new_node};
    use crate::membership::features::THIS_BUILD;
    use crate::topology::Topology;
    use proptest::prelude::*;

    /// A joiner in the dev cluster; every node up and on this build but
    /// `old` (an older build: bits 0) and `unheard` (never heard), which
    /// are up when `up`.
    fn check(old: &str, unheard: &str, up: bool) -> Result<(), NotUpgraded> {
        let l = dev_join(&Layout::seed(&Topology::dev()), "dc1-new", "127.0.0.14");
        let features = |id: &str| match id {
            _ if id == old => Some(0),
            _ if id == unheard => None,
            _ => Some(THIS_BUILD),
        };
        let is_up = |id: &str| up || (id != old && id != unheard);
        gate(&l, LAYOUT_STEPS, "dc1-n1", "dc1-new", &is_up, &features)
    }

    #[test]
    fn a_step_waits_for_every_member_up_to_run_a_build_that_knows_it() {
        assert_eq!(check("", "", true), Ok(()), "every member upgraded");
        let err = check("dc2-n3", "", true).unwrap_err();
        assert_eq!(err.members, vec!["dc2-n3 (an older build)".to_string()]);
        assert!(err.to_string().contains("upgrade those nodes"), "{err}");
        assert!(check("", "dc2-n2", true).is_err(), "up, not heard yet");
        assert_eq!(check("", "dc2-n2", false), Ok(()), "down, never heard");
        assert_eq!(check("dc1-new", "", true), Ok(()), "the step's own node");
        assert_eq!(check("dc1-n1", "", true), Ok(()), "the proposer itself");
    }

    /// review-elastic28 H1: a member down, last heard with an older build,
    /// held every switch for good; it no longer does.
    #[test]
    fn a_member_down_last_heard_on_an_older_build_does_not_hold_a_step() {
        assert_eq!(check("dc2-n3", "", false), Ok(()), "down, last heard old");
    }

    /// Gossip heard `old` (bits 0) and every other node on this build;
    /// `down` are down.
    fn on(
        l: &Layout,
        me: &str,
        except: &str,
        old: &[&str],
        down: &[&str],
    ) -> Result<(), NotUpgraded> {
        let features = |id: &str| Some(if old.contains(&id) { 0 } else { THIS_BUILD });
        let is_up = |id: &str| !down.contains(&id);
        gate(l, LAYOUT_STEPS, me, except, &is_up, &features)
    }

    /// H1: dc1-n3 died on an older build; its replacement's switch is
    /// asked about the new node, and the dead node does not hold it.
    #[test]
    fn the_replace_of_a_dead_member_last_heard_on_an_older_build_proceeds() {
        let l = seed()
            .begin_replace("dc1-n3", new_node("dc1-r", "127.0.0.18"))
            .expect("replace");
        assert_eq!(on(&l, "dc1-r", "dc1-r", &["dc1-n3"], &["dc1-n3"]), Ok(()));
        // Even while the failure detector still thinks it up: it is moved out.
        assert_eq!(on(&l, "dc1-r", "dc1-r", &["dc1-n3"], &[]), Ok(()));
    }

    /// H1: x in dc1 and y in dc2 died on an older build; each removal's
    /// switch proceeds (before, each was held by the other dead node).
    #[test]
    fn two_dead_old_members_removed_in_two_datacenters_both_proceed() {
        let l = (seed()
            .begin_remove("dc1-n3")
            .and_then(|l| l.begin_remove("dc2-n2")))
        .expect("two removals");
        let (old, down) = (["dc1-n3", "dc2-n2"], ["dc1-n3", "dc2-n2"]);
        assert_eq!(on(&l, "dc1-n1", "dc1-n3", &old, &down), Ok(()));
        assert_eq!(on(&l, "dc2-n1", "dc2-n2", &old, &down), Ok(()));
        // Moved out, so not asked even if believed up.
        assert_eq!(on(&l, "dc1-n1", "dc1-n3", &old, &[]), Ok(()));
    }

    /// A live member on an older build still holds the switch.
    #[test]
    fn a_live_member_on_an_older_build_still_holds_the_switch() {
        let l = seed().begin_remove("dc1-n3").expect("removal");
        let err = on(&l, "dc1-n1", "dc1-n3", &["dc2-n1"], &["dc1-n3"]).unwrap_err();
        assert_eq!(err.members, vec!["dc2-n1 (an older build)".to_string()]);
    }

    /// The dev seed with rf 1 everywhere, so a node can leave a datacenter.
    fn seed() -> Layout {
        let mut l = Layout::seed(&Topology::dev());
        for spec in l.keyspaces.values_mut() {
            spec.replication.values_mut().for_each(|rf| *rf = 1);
        }
        l
    }

    proptest! {
        /// Whatever gossip last heard from a member down (an older build,
        /// this one, nothing), the verdict is the same, and only members
        /// up are named.
        #[test]
        fn a_member_down_never_changes_the_verdict(
            heard in proptest::collection::vec((any::<bool>(), 0u8..3), 10),
            me in 0usize..10,
        ) {
            let l = dev_join(&Layout::seed(&Topology::dev()), "dc1-new", "127.0.0.14");
            let ids: Vec<String> = l.nodes().map(|(_, _, n)| n.id.clone()).collect();
            let at = |id: &str| ids.iter().position(|i| i == id).map(|i| heard[i % heard.len()]);
            let is_up = |id: &str| at(id).is_some_and(|(up, _)| up);
            let bits = |b: u8| [None, Some(0), Some(THIS_BUILD)][b as usize];
            let features = |id: &str| at(id).and_then(|(_, b)| bits(b));
            let tidy = |id: &str| match at(id) {
                Some((false, _)) => Some(THIS_BUILD),
                _ => features(id),
            };
            let me = &ids[me % ids.len()];
            let v = gate(&l, LAYOUT_STEPS, me, "dc1-new", &is_up, &features);
            let w = gate(&l, LAYOUT_STEPS, me, "dc1-new", &is_up, &tidy);
            prop_assert_eq!(&v, &w);
            for m in v.err().map(|e| e.members).unwrap_or_default() {
                let id = m.split(' ').next().unwrap_or_default();
                prop_assert!(is_up(id), "{} is down", m);
            }
        }
    }
}
