//! Whether a batched write whose caller gave up was sent (review-conn29
//! M1, issue 12): the unary call's first-read-wins gate (`gate.rs`)
//! stretched over a batch. Each entry carries a [`Claim`], shared by its
//! caller and the lane; the batch call the lane makes of it is one
//! [`Batch`], whose [`Gate`] its request body passes on its first read.
//!
//! - A caller that gives up while its entry is still queued takes it back:
//!   the lane never puts it in a batch ([`Claim::join`] fails), so it is
//!   "not sent".
//! - An entry in a batch gives up its share of the batch. The **last**
//!   live entry to give up abandons the batch's gate: if that wins (the
//!   body was never read, and never will be), it is "not sent". Any other
//!   entry that gives up is "not sent" only if the gate is already
//!   abandoned; else the batch may still go out with it: "may have been
//!   applied" (conservative: the entries that gave up before the last
//!   one of a batch never sent are told so too).
//! - The lane holds a share of each batch while it fills it, so no entry
//!   is the last before the batch is complete; sealed with no live entry
//!   left, the batch is abandoned and not sent at all.
//! - A batch whose entries are sent anew (single writes) is marked read
//!   first ([`Batch::resend`]): a caller giving up then may have been
//!   applied.
//!
//! Owns: the claims and each batch's share count. Must not: send, or
//! decide anything but "not sent" versus "may have been sent".

use crate::transport::gate::Gate;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// One entry's claim, shared by its caller and the lane.
#[derive(Clone, Debug, Default)]
pub struct Claim(Arc<Mutex<State>>);

#[derive(Debug, Default)]
enum State {
    /// Not in a batch yet.
    #[default]
    Queued,
    /// In this batch, its caller still waiting.
    Joined(Arc<Batch>),
    /// Its caller gave up.
    GaveUp,
    /// Put in a second batch (an entry submitted twice): whether it was
    /// sent is not known.
    Unknown,
}

impl Claim {
    /// The lane puts the entry in `batch`: `false` if its caller gave up
    /// first (it must not be sent).
    pub(super) fn join(&self, batch: &Arc<Batch>) -> bool {
        let mut s = self.0.lock();
        match &*s {
            State::Queued => {
                batch.live.fetch_add(1, Ordering::AcqRel);
                *s = State::Joined(batch.clone());
                true
            }
            State::GaveUp => false,
            // A share never given back: neither batch is abandoned for it.
            State::Joined(_) | State::Unknown => {
                batch.live.fetch_add(1, Ordering::AcqRel);
                *s = State::Unknown;
                true
            }
        }
    }

    /// The caller's timer ended: `true` if the entry was not sent and
    /// never will be; `false` if it may have been.
    pub(super) fn give_up(&self) -> bool {
        let was = std::mem::replace(&mut *self.0.lock(), State::GaveUp);
        match was {
            State::Queued => true,
            State::Joined(batch) => batch.leave(),
            State::GaveUp | State::Unknown => false,
        }
    }
}

/// One batch call of a lane: its request body's gate, and how many shares
/// of it are live (its entries' waiting callers, the lane's while it fills
/// the batch).
#[derive(Debug)]
pub struct Batch {
    gate: Gate,
    live: AtomicUsize,
}

impl Batch {
    /// A batch being filled: the lane holds a share until [`Batch::seal`].
    pub fn new() -> Arc<Self> {
        Arc::new(Batch {
            gate: Gate::new(),
            live: AtomicUsize::new(1),
        })
    }

    /// The gate the batch call's body passes.
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// The lane's share given up once the batch is filled: `true` if no
    /// entry is left waiting (the batch is abandoned, not to be sent).
    pub fn seal(&self) -> bool {
        self.leave()
    }

    /// The batch's entries go anew (single writes): `false` if the batch
    /// was abandoned (they must not be sent); else an entry giving up from
    /// now on may have been applied.
    pub fn resend(&self) -> bool {
        self.gate.send()
    }

    /// One share given up: `true` if the batch's body never yields a byte.
    fn leave(&self) -> bool {
        match self.live.fetch_sub(1, Ordering::AcqRel) {
            1 => self.gate.abandon(),
            _ => self.gate.abandoned(),
        }
    }
}

#[cfg(test)]
mod tests;
