//! The layout compare-and-set's bytes (issue 12 §3): `LayoutPrepare` and
//! `LayoutAccept` requests as a peer sends them, decoded into a
//! `Msg<Layout>` and answered by an acceptor on the dev seed as the
//! internode server does; `LayoutPaxosReply` decoded into a
//! `Reply<Layout>` as a proposer does; and the acceptor state persisted
//! under the `layout-paxos` meta key, loaded by an acceptor over a memory
//! engine. Random bytes and mutated valid encodings: a value or a typed
//! error, never a panic.
//!
//! Owns: these properties only (tests). Must not: change a decoder to
//! suit a property.

use super::super::decoding;
use super::{cfg, mutate};
use crate::engine::{Cf, Engine, Limits, MemoryEngine, WriteBatch};
use crate::layout::consensus::{Ballot, Msg, Reply};
use crate::layout::Layout;
use crate::proto::v1::internode::{LayoutAcceptRequest, LayoutPaxosReply};
use crate::topology::Topology;
use crate::view::acceptor::{self, Acceptor, AcceptorError, PAXOS_KEY};
use proptest::prelude::*;
use prost::Message;
use std::sync::{Arc, OnceLock};

/// The dev seed (v1, installed) and `dc1-new` joining it (v2, the
/// proposal of slot 2), computed once.
fn layouts() -> &'static (Layout, Layout) {
    static LAYOUTS: OnceLock<(Layout, Layout)> = OnceLock::new();
    LAYOUTS.get_or_init(|| {
        let seed = Layout::seed(&Topology::dev());
        let next = crate::layout::testing::dev_join(&seed, "dc1-new", "127.0.0.14");
        (seed, next)
    })
}

fn ballot(round: u64) -> Ballot {
    Ballot {
        round,
        node: "dc1-n1".into(),
    }
}

/// What `layout_prepare` and `layout_accept` do with a peer's bytes, on
/// the seed (the body the fuzz target shares).
fn serve(raw: &[u8]) {
    decoding::layout_paxos(&layouts().0, raw);
}

/// A memory acceptor on the seed whose persisted state is `state`, asked
/// to promise slot 2 (which loads that state first).
fn load_state(state: &[u8]) -> Result<Reply<Layout>, AcceptorError> {
    decoding::acceptor_state(&layouts().0, state)
}

/// The state an acceptor persists once it accepted `next` at `round`.
fn valid_state(round: u64) -> Vec<u8> {
    let (installed, next) = layouts();
    let engine = Arc::new(MemoryEngine::new(Limits::default()));
    let acc = Acceptor::new(Some(engine.clone() as Arc<dyn Engine>));
    let msg = Msg::Accept {
        slot: next.version,
        ballot: ballot(round),
        base: installed.digest(),
        value: next.clone(),
    };
    acc.handle(installed, &msg).expect("an accept");
    (engine.get_raw(Cf::Meta, PAXOS_KEY))
        .expect("a memory read")
        .expect("the accept persisted its state")
}

/// Every kind of reply an acceptor sends, on the wire.
fn replies(round: u64) -> Vec<LayoutPaxosReply> {
    let (installed, next) = layouts();
    let b = ballot(round);
    [
        Reply::Promise {
            ballot: b.clone(),
            accepted: Some((b.clone(), next.clone())),
        },
        Reply::Accepted { ballot: b.clone() },
        Reply::Rejected {
            ballot: b.clone(),
            promised: ballot(round.saturating_add(1)),
        },
        Reply::Decided {
            value: installed.clone(),
        },
        Reply::WrongBase {
            ballot: b.clone(),
            installed: installed.clone(),
        },
        Reply::Behind { ballot: b },
    ]
    .iter()
    .map(acceptor::reply_to)
    .collect()
}

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn layout_paxos_messages_decode_or_fail_typed(raw in proptest::collection::vec(any::<u8>(), 0..512),
                                                  round: u64, which: usize,
                                                  kind: u8, at: usize, byte: u8) {
        serve(&raw);
        let (installed, next) = layouts();
        let base = installed.digest();
        let prepare = acceptor::prepare_request(next.version, &ballot(round), base).encode_to_vec();
        let accept = acceptor::accept_request(next.version, &ballot(round), base, next).encode_to_vec();
        let decoded = LayoutAcceptRequest::decode(&accept[..]).expect("a valid accept");
        prop_assert!(acceptor::accept_msg("peer", &decoded).is_ok());
        let replies = replies(round);
        let reply = replies[which % replies.len()].encode_to_vec();
        let decoded = LayoutPaxosReply::decode(&reply[..]).expect("a valid reply");
        prop_assert!(acceptor::reply_from("peer", &decoded).is_ok());
        for valid in [prepare, accept, reply] {
            serve(&mutate(valid, kind, at, byte));
        }
    }

    #[test]
    fn persisted_acceptor_state_loads_or_fails_typed(raw in proptest::collection::vec(any::<u8>(), 0..512),
                                                     round in 0u64..u64::MAX,
                                                     kind: u8, at: usize, byte: u8) {
        let _ = load_state(&raw);
        let valid = valid_state(round);
        let promised = load_state(&valid);
        prop_assert!(matches!(promised, Ok(Reply::Promise { accepted: Some(_), .. })), "{promised:?}");
        let _ = load_state(&mutate(valid, kind, at, byte));
    }
}

/// A persisted acceptor state that does not decode is a typed error naming
/// its meta key, on every message (the node keeps refusing, loudly, rather
/// than forgetting its promises), and it is left as it was for an operator.
#[test]
fn a_corrupt_acceptor_state_is_refused_by_name_and_kept() {
    let (installed, _) = layouts();
    let engine = Arc::new(MemoryEngine::new(Limits::default()));
    let mut b = WriteBatch::new();
    b.put_raw(Cf::Meta, PAXOS_KEY, b"{\"2\": {\"promised\"");
    engine.write(b).expect("a memory write");
    let acc = Acceptor::new(Some(engine.clone() as Arc<dyn Engine>));
    let msg = Msg::Prepare {
        slot: installed.version + 1,
        ballot: ballot(7),
        base: installed.digest(),
    };
    for _ in 0..2 {
        let err = acc.handle(installed, &msg).expect_err("a corrupt state");
        assert!(matches!(err, AcceptorError::Corrupt(_)), "{err:?}");
        assert!(err.to_string().contains("layout-paxos"), "{err}");
    }
    let kept = engine.get_raw(Cf::Meta, PAXOS_KEY).expect("a memory read");
    assert_eq!(kept.as_deref(), Some(&b"{\"2\": {\"promised\""[..]));
}
