//! Range movements: what moves where when a node joins, leaves, is removed
//! or replaced, and the streaming that copies the ranges.
//!
//! | file | owns |
//! |---|---|
//! | `bootstrap.rs` | before a joiner starts: fetch the seed's layout, propose `begin_join`, persist it |
//! | `leave.rs` | decommission: begin (Leaving), hand over (push each lost range), finish (Left); resumable |
//! | `leave_end.rs` | the end of a leave on the leaver: its queues handed over (Left, or its leave became a removal, then it stops with the removal); `follow_removal` ends any node whose removal the layout decides the same way |
//! | `push.rs` | the leaver's push of a range to a gainer over a [`RangeSink`], with cursors |
//! | `push_sync.rs` | a leave's gainers sync what they took before the switch; one that restarted (new incarnation) is pushed to again |
//! | `control.rs` | the node's decommission (background, status, stop once left) and cleanup (by hand, and after every movement) |
//! | `cleanup.rs` | dropping the ranges a node no longer replicates, once no movement is in progress |
//! | `cleanup_follow.rs` | the automatic cleanup once a movement has finished and every live member is on its layout |
//! | `plan.rs` | the pure plan: ranges a node gains (with sources) or loses, ranges to clean up |
//! | `stream.rs` | the resumable streaming driver over a [`RangeSource`] |
//! | `stream_progress.rs` | a stream's progress ([`Progress`]) and its metrics |
//! | `cursor.rs` | per-range cursors in the meta CF, committed with the rows they cover; the pulls' ones forgotten after a lost WAL tail |
//! | `ops.rs` | the operations: join (allocate, begin, stream, finish; resumable) over a [`LayoutHandle`] |
//! | `peer.rs` | the production source: a peer's `RangeScan` |
//! | `rate.rs` | the adaptive (AIMD) page size and pauses, pure |
//! | `throughput.rs` | the node's byte cap shared by every stream in or out (`--stream-throughput-mib`) |
//! | `remove.rs` | removing a dead node: gainers copy from survivors, the finisher proposes `finish_remove`; resumable |
//! | `remove_finish.rs` | a removal's finisher: the switch once every gainer is done, holds shown and forgotten |
//! | `replace.rs` | replacing a dead node: copy its ranges from survivors, `finish_replace`; resumable |
//! | `replace_bootstrap.rs` | before a replacing node starts: check the dead node is dead, propose `begin_replace` |
//! | `settled.rs` | which removals this node's copy is done for, so another datacenter's finish does not re-run it |
//! | `rereplicate.rs` | copying the ranges a dead node held from survivors, one resumable stream per source |
//! | `survivors.rs` | which live survivors (any datacenter) a dead node's range is copied from so every quorum write is among them, pure |
//! | `abort.rs` | the second step of abandoning a movement whose joiner or replacement died after the switch of reads (or of cancelling a decommission past it), once every live member is on the first; who drives it |
//! | `switch.rs` | the end of every movement in steps (reads switch to the new owners, then finish), each once every live member is on the step before; resumable |
//! | `progress.rs` | the board `GET /movement` reads: movement, ranges, keys, bytes, rate, ETA; each movement's phase (`aborting` for an abandoned one) and its nodes' reports summed |
//! | `progress_sum.rs` | each movement's phase and its nodes' reports summed (`geokv ring`), held steps, a removal's verdict |
//! | `upgrade.rs` | the rolling-upgrade gate: a switch or abort step waits until every member's build advertises it in gossip |
//!
//! Must not change the layout (the operations propose layout versions) nor
//! serve requests.

pub mod abort;
pub mod announce;
pub mod bootstrap;
pub mod cleanup;
pub mod cleanup_follow;
pub mod control;
pub mod cursor;
pub mod leave;
pub mod leave_end;
pub mod ops;
pub mod peer;
pub mod plan;
pub mod progress;
pub mod progress_sum;
pub mod push;
pub mod push_sync;
pub mod rate;
pub mod remove;
mod remove_copy;
pub mod remove_finish;
pub mod replace;
pub mod replace_bootstrap;
pub mod rereplicate;
pub mod settled;
pub mod stream;
pub mod stream_progress;
pub mod survivors;
pub mod switch;
pub mod throughput;
pub mod upgrade;

#[cfg(test)]
mod tests_abort;
#[cfg(test)]
mod tests_bootstrap_adopt;
#[cfg(test)]
mod tests_cleanup_stall;
#[cfg(test)]
mod tests_leave;
#[cfg(test)]
mod tests_leave_cancel;
#[cfg(test)]
mod tests_leave_crash;
#[cfg(test)]
mod tests_leave_epoch;
#[cfg(test)]
mod tests_leave_sync;
#[cfg(test)]
mod tests_loopback;
#[cfg(test)]
mod tests_lost_tail;
#[cfg(test)]
mod tests_ops;
#[cfg(test)]
mod tests_ops_removed;
#[cfg(test)]
mod tests_pacing;
#[cfg(test)]
mod tests_plan;
#[cfg(test)]
mod tests_remove;
#[cfg(test)]
mod tests_remove_gainer;
#[cfg(test)]
mod tests_replace;
#[cfg(test)]
mod tests_stream;
#[cfg(test)]
mod tests_stream_durable;
#[cfg(test)]
mod tests_stream_rate;
#[cfg(test)]
mod tests_survivors;
#[cfg(test)]
mod tests_switch;
#[cfg(test)]
mod tests_withdraw;

pub use cleanup::{cleanup, Cleaned, CleanupError};
pub use control::Control;
pub use cursor::Cursor;
pub use leave::LeaveError;
pub use ops::{join, run_join, JoinError, JoinRequest, Joined, LayoutHandle, ProposeError};
pub use peer::PeerSource;
pub use plan::{gains, losses, unreplicated, Gain, Loss, PlanError};
pub use push::{PeerSink, RangeSink};
pub use rate::{Rate, RateConfig};
pub use stream::{
    Page, Progress, ProgressSnapshot, RangeSource, SourceError, StreamConfig, StreamError, Streamer,
};
pub use throughput::Throughput;
