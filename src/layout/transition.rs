//! Layout transitions: join, leave, remove and replace, each a pure function
//! from one layout version to the next (or a typed refusal).
//!
//! Owns [`NewNode`] and [`LayoutError`] (the [`Movement`] recorded is
//! `movement.rs`'s). Each movement has a
//! `begin_*` (the node becomes Joining or Leaving, the movement is recorded
//! for its datacenter) and a `finish_*` (the node becomes Normal, Left or
//! Removed; the movement is cleared). At most one movement per datacenter:
//! a second `begin_*` is refused naming the one in progress (`remove.rs`
//! has the rest of a removal: force, a second dead node, finish). Must not decide
//! *when* to finish (that is the streaming driver's job) nor check liveness.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use super::{Layout, LayoutNode, LayoutRack, Movement, NodeState};
use crate::token::Token;
use crate::topology::MAX_VNODES;

/// A node entering the layout (join or replace).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewNode {
    pub id: String,
    pub client_address: SocketAddr,
    pub peer_address: SocketAddr,
    pub admin_address: SocketAddr,
}

/// A transition the layout refuses. None is retriable as is: the request
/// must change (or wait for the movement in progress to finish).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("datacenter '{dc}' already has a range movement in progress: {in_progress}; wait for it to finish")]
    MovementInProgress { dc: String, in_progress: Movement },
    #[error("node '{0}' is not in the layout")]
    UnknownNode(String),
    #[error("datacenter '{0}' is not in the layout")]
    UnknownDatacenter(String),
    #[error("node id '{0}' is already used in the layout (ids are never reused)")]
    DuplicateNode(String),
    #[error("address {address} is already used by node '{by}'")]
    AddressInUse { address: SocketAddr, by: String },
    #[error("node '{node}' is {state:?}; this needs it {expected}")]
    WrongState {
        node: String,
        state: NodeState,
        expected: &'static str,
    },
    #[error("no {expected} is in progress in datacenter '{dc}'")]
    NoSuchMovement { dc: String, expected: Movement },
    #[error("node '{0}' is moved by no movement in progress")]
    NoMovementOf(String),
    #[error("the movement of '{node}' in '{dc}' is being abandoned (`removenode {node}`); it cannot finish")]
    Abandoned { node: String, dc: String },
    #[error("node '{node}' gains ranges in the decommission of {leaver} in datacenter '{dc}', which cannot finish without it; cancel it first (`geokv decommission --cancel --endpoint ADMIN_ADDRESS_OF_{leaver}`), then remove '{node}'")]
    GainerOfLeave {
        node: String,
        dc: String,
        leaver: String,
    },
    #[error("node '{node}' gains ranges in the decommission of {leaver} in datacenter '{dc}', whose cancel is in progress (reads went back to {leaver}; the next version drops the decommission once every live member is on it): wait for `geokv decommission --cancel` to report `cancelled`, then remove '{node}'")]
    GainerOfCancelledLeave {
        node: String,
        dc: String,
        leaver: String,
    },
    #[error("the {in_progress} in datacenter '{dc}' reads from its new owners already (its copies are done) and finishes without '{node}'; remove '{node}' once it is over")]
    RemovalReadsNew {
        node: String,
        dc: String,
        in_progress: Movement,
    },
    #[error("the {in_progress} in datacenter '{dc}' reads from its new owners already (its copies are done): it cannot be withdrawn; let it finish")]
    WithdrawAfterSwitch { dc: String, in_progress: Movement },
    #[error("node '{0}' has left the cluster already (its decommission finished): there is nothing to cancel; to use the machine again, wipe its data directory and join it under a new id")]
    AlreadyLeft(String),
    #[error("a node needs between 1 and {MAX_VNODES} tokens, got {0}")]
    TokenCount(usize),
    #[error("token {token:#018x} is already owned by node '{owner}'")]
    TokenTaken { token: Token, owner: String },
    #[error(
        "keyspace '{keyspace}' needs {rf} replicas in '{dc}', which would have only {left} node(s)"
    )]
    TooFewNodes {
        keyspace: String,
        dc: String,
        rf: u32,
        left: usize,
    },
}

type Result<T> = std::result::Result<T, LayoutError>;

impl Layout {
    /// `node` starts joining `dc`/`rack` (created if new) with `tokens`.
    pub fn begin_join(
        &self,
        node: NewNode,
        dc: &str,
        rack: &str,
        tokens: &[Token],
    ) -> Result<Layout> {
        let mut out = self.begin(
            dc,
            Movement::Join {
                node: node.id.clone(),
            },
        )?;
        out.check_new_node(&node)?;
        let tokens: BTreeSet<Token> = tokens.iter().copied().collect();
        if tokens.is_empty() || tokens.len() > MAX_VNODES as usize {
            return Err(LayoutError::TokenCount(tokens.len()));
        }
        for (_, _, n) in self.nodes().filter(|(_, _, n)| n.state.is_member()) {
            if let Some(&t) = n.tokens.iter().find(|t| tokens.contains(t)) {
                return Err(LayoutError::TokenTaken {
                    token: t,
                    owner: n.id.clone(),
                });
            }
        }
        out.add_node(dc, rack, node, tokens.into_iter().collect());
        Ok(out)
    }

    /// The joining `node` has its data: it becomes Normal.
    pub fn finish_join(&self, node: &str) -> Result<Layout> {
        self.finish(node, Movement::Join { node: node.into() }, |l| {
            l.set_state(node, NodeState::Normal)
        })
    }

    /// The Normal `node` starts decommissioning: it becomes Leaving.
    pub fn begin_leave(&self, node: &str) -> Result<Layout> {
        self.begin_leaving(node, Movement::Leave { node: node.into() })
    }

    /// The leaving `node` has handed its ranges over: it becomes Left.
    pub fn finish_leave(&self, node: &str) -> Result<Layout> {
        self.finish(node, Movement::Leave { node: node.into() }, |l| {
            l.set_state(node, NodeState::Left)
        })
    }

    /// The dead Normal `node` is being removed: it becomes Leaving while the
    /// survivors re-replicate its ranges. The caller checks it is dead.
    pub fn begin_remove(&self, node: &str) -> Result<Layout> {
        let movement = Movement::Remove {
            node: node.into(),
            also: Vec::new(),
            force: false,
            began: self.version + 1,
        };
        // A withdraw's record stays until the node leaves the ring
        // (`set_state`, review-elastic35 M2).
        self.begin_leaving(node, movement)
    }

    /// `new` joins the rack of the dead Normal node `dead` with its tokens;
    /// nobody else's ownership changes. The caller checks `dead` is dead.
    pub fn begin_replace(&self, dead: &str, new: NewNode) -> Result<Layout> {
        let (dc, rack, old) = self
            .node(dead)
            .ok_or_else(|| LayoutError::UnknownNode(dead.into()))?;
        expect_state(old, NodeState::Normal, "Normal")?;
        let tokens = old.tokens.clone();
        let (dc, rack) = (dc.to_string(), rack.to_string());
        let movement = Movement::Replace {
            dead: dead.into(),
            new: new.id.clone(),
            force: false,
        };
        let mut out = self.begin(&dc, movement)?;
        out.check_new_node(&new)?;
        out.add_node(&dc, &rack, new, tokens);
        Ok(out)
    }

    /// The replacement `new` has its data: it becomes Normal, the dead node Removed.
    pub fn finish_replace(&self, new: &str) -> Result<Layout> {
        let (dc, _, _) = self
            .node(new)
            .ok_or_else(|| LayoutError::UnknownNode(new.into()))?;
        let Some(movement @ Movement::Replace { dead, .. }) = self.movements.get(dc) else {
            return Err(LayoutError::NoSuchMovement {
                dc: dc.into(),
                expected: Movement::Replace {
                    dead: "?".into(),
                    new: new.into(),
                    force: false,
                },
            });
        };
        // Forced or not (`force` is kept to the end).
        let (movement, dead) = (movement.clone(), dead.clone());
        self.finish(new, movement, |l| {
            l.set_state(&dead, NodeState::Removed);
            l.set_state(new, NodeState::Normal);
        })
    }

    /// A copy one version on, with `movement` recorded for `dc`.
    fn begin(&self, dc: &str, movement: Movement) -> Result<Layout> {
        if !self.datacenters.iter().any(|d| d.name == dc) {
            return Err(LayoutError::UnknownDatacenter(dc.into()));
        }
        if let Some(m) = self.movements.get(dc) {
            return Err(LayoutError::MovementInProgress {
                dc: dc.into(),
                in_progress: m.clone(),
            });
        }
        let mut out = self.clone();
        out.version += 1;
        out.movements.insert(dc.into(), movement);
        // A new movement reads from the old owners, whatever an older
        // build left behind (review of stop 26, L1).
        out.reading_new.remove(dc);
        out.aborting.remove(dc);
        Ok(out)
    }

    fn begin_leaving(&self, node: &str, movement: Movement) -> Result<Layout> {
        let (dc, _, n) = self
            .node(node)
            .ok_or_else(|| LayoutError::UnknownNode(node.into()))?;
        expect_state(n, NodeState::Normal, "Normal")?;
        self.enough_left(dc, node)?;
        let mut out = self.begin(dc, movement)?;
        out.set_state(node, NodeState::Leaving);
        Ok(out)
    }

    /// Every keyspace still has its replicas in `dc` once `node` and the
    /// nodes already Leaving there are gone.
    pub(super) fn enough_left(&self, dc: &str, node: &str) -> Result<()> {
        let left = self
            .nodes()
            .filter(|(d, _, m)| *d == dc && m.state == NodeState::Normal && m.id != node)
            .count();
        for (ks, spec) in &self.keyspaces {
            let rf = spec.replication.get(dc).copied().unwrap_or(0);
            if rf as usize > left {
                return Err(LayoutError::TooFewNodes {
                    keyspace: ks.clone(),
                    dc: dc.into(),
                    rf,
                    left,
                });
            }
        }
        Ok(())
    }

    /// A copy one version on, with `movement` of `node`'s DC cleared and `apply` done.
    pub(super) fn finish(
        &self,
        node: &str,
        movement: Movement,
        apply: impl FnOnce(&mut Layout),
    ) -> Result<Layout> {
        let (dc, _, _) = self
            .node(node)
            .ok_or_else(|| LayoutError::UnknownNode(node.into()))?;
        if self.movements.get(dc) != Some(&movement) {
            return Err(LayoutError::NoSuchMovement {
                dc: dc.into(),
                expected: movement,
            });
        }
        let mut out = self.clone();
        out.version += 1;
        out.movements.remove(dc);
        out.reading_new.remove(dc);
        out.aborting.remove(dc);
        apply(&mut out);
        Ok(out)
    }

    fn check_new_node(&self, new: &NewNode) -> Result<()> {
        if self.node(&new.id).is_some() {
            return Err(LayoutError::DuplicateNode(new.id.clone()));
        }
        let addresses = [new.client_address, new.peer_address, new.admin_address];
        for (_, _, n) in self.nodes().filter(|(_, _, n)| n.state.is_member()) {
            for a in [n.client_address, n.peer_address, n.admin_address] {
                if addresses.contains(&a) {
                    return Err(LayoutError::AddressInUse {
                        address: a,
                        by: n.id.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    fn add_node(&mut self, dc: &str, rack: &str, new: NewNode, tokens: Vec<Token>) {
        let dc = self
            .datacenters
            .iter_mut()
            .find(|d| d.name == dc)
            .expect("checked by begin");
        let rack = match dc.racks.iter().position(|r| r.name == rack) {
            Some(i) => &mut dc.racks[i],
            None => {
                dc.racks.push(LayoutRack {
                    name: rack.into(),
                    nodes: Vec::new(),
                });
                dc.racks.last_mut().expect("just pushed")
            }
        };
        rack.nodes.push(LayoutNode {
            id: new.id,
            client_address: new.client_address,
            peer_address: new.peer_address,
            admin_address: new.admin_address,
            state: NodeState::Joining,
            tokens,
        });
    }

    /// Sets `node`'s state; Left and Removed nodes give up their tokens.
    pub(super) fn set_state(&mut self, node: &str, state: NodeState) {
        let n = self.node_mut(node).expect("checked by the caller");
        n.state = state;
        if !state.is_member() {
            n.tokens.clear();
            // Its story is over (finish_remove, finish_leave, a replaced
            // node): a withdraw's record ends here, not when a new attempt
            // begins, so an older build never reads that attempt under the
            // withdrawn one's name (review-elastic35 M2). Bounded: one
            // entry per member at most.
            self.withdrawn.remove(node);
        }
    }
}

pub(super) fn expect_state(n: &LayoutNode, state: NodeState, expected: &'static str) -> Result<()> {
    if n.state == state {
        Ok(())
    } else {
        Err(LayoutError::WrongState {
            node: n.id.clone(),
            state: n.state,
            expected,
        })
    }
}
