//! How the layout CAS proposer (`super::cas`) reaches the acceptors:
//! this node's own acceptor directly and the others through the
//! internode transport ([`LocalFirst`]), or only the transport
//! ([`PeersNet`], for a node proposing from outside the layout).
//! Must not: decide anything of the CAS (the driver does), or install
//! layouts (a push is installed, or refused, by its receiver).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::acceptor;
use super::cas::{AcceptorNet, CallError, CallResult, PushFuture};
use super::lineage::Lineage;
use crate::engine::CallSite;
use crate::layout::consensus::{Msg, Reply};
use crate::layout::Layout;
use crate::topology::NodeInfo;
use crate::transport::Peers;

/// Deadline of one CAS call.
pub(super) const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// An acceptor's answer to a CAS message: its reply, and the lineage of
/// the layout a DECIDED or WRONG_BASE reply names (the acceptor's
/// installed one: its holder's proof of choice, so a proposer that learns
/// the layout from it keeps the proof, review-layout31 H1). Unknown from
/// an older acceptor and for every other reply.
#[derive(Clone, Debug)]
pub struct Answer {
    pub reply: Reply<Layout>,
    pub lineage: Lineage,
}

impl From<Reply<Layout>> for Answer {
    /// A reply with no lineage known.
    fn from(reply: Reply<Layout>) -> Answer {
        Answer {
            reply,
            lineage: Lineage::default(),
        }
    }
}

/// This node's own acceptor directly, the others through `remote`.
pub struct LocalFirst {
    pub cluster: super::Cluster,
    pub remote: Option<Arc<dyn AcceptorNet>>,
}

impl AcceptorNet for LocalFirst {
    fn call(
        &self,
        to: &NodeInfo,
        msg: Msg<Layout>,
    ) -> Pin<Box<dyn Future<Output = CallResult> + Send>> {
        if to.id == self.cluster.me() {
            let cluster = self.cluster.clone();
            return Box::pin(async move {
                let answer = CallSite::BlockingPool.run(move || cluster.answer(&msg));
                Ok(answer.await??)
            });
        }
        match &self.remote {
            Some(remote) => remote.call(to, msg),
            None => Box::pin(async { Err(CallError::NoNetwork) }),
        }
    }

    fn push(&self, to: &NodeInfo, layout: &Layout, lineage: &Lineage) -> PushFuture {
        match &self.remote {
            // This node's own acceptor holds the base: it proposes on it.
            _ if to.id == self.cluster.me() => Box::pin(async { Ok(()) }),
            Some(remote) => remote.push(to, layout, lineage),
            None => Box::pin(async { Err(CallError::NoNetwork) }),
        }
    }

    fn lineage(&self, base: &Layout) -> Lineage {
        self.cluster.lineage_of(base)
    }
}

/// Acceptors reached through the internode transport.
pub struct PeersNet(pub Arc<Peers>);

impl AcceptorNet for PeersNet {
    fn call(
        &self,
        to: &NodeInfo,
        msg: Msg<Layout>,
    ) -> Pin<Box<dyn Future<Output = CallResult> + Send>> {
        let (peers, node) = (self.0.clone(), to.clone());
        Box::pin(async move {
            let reply = match &msg {
                Msg::Prepare { slot, ballot, base } => {
                    let req = acceptor::prepare_request(*slot, ballot, *base);
                    peers.layout_prepare(&node, req, CALL_TIMEOUT).await
                }
                Msg::Accept {
                    slot,
                    ballot,
                    base,
                    value,
                } => {
                    let req = acceptor::accept_request(*slot, ballot, *base, value);
                    peers.layout_accept(&node, req, CALL_TIMEOUT).await
                }
            }?;
            Ok(acceptor::answer_from(&node.id, &reply)?)
        })
    }

    fn push(&self, to: &NodeInfo, layout: &Layout, lineage: &Lineage) -> PushFuture {
        let msg = super::sync::to_message_with(layout, lineage);
        let (peers, node) = (self.0.clone(), to.clone());
        Box::pin(async move {
            peers.push_layout(&node, msg, CALL_TIMEOUT).await?;
            Ok(())
        })
    }
}
