//! Feature bits: each node advertises those of its build in its gossip
//! entry, spread with its heartbeat, so a change an older build would
//! refuse or misread waits until every member runs a build that knows it
//! (Cassandra gates such changes on the minimum version seen in gossip).
//!
//! Owns the bits and this build's set. Must not decide what waits: the
//! callers do (`movement::upgrade`).

/// The layout may carry the steps that end or abandon a movement:
/// `reading_new` (the switch of reads) and `aborting` (a movement
/// abandoned by `removenode`). A build older than those fields rejects a
/// layout carrying them (`Layout` refuses unknown fields).
///
/// The previous release reads both fields but predates feature bits (it
/// advertises none), so gossip cannot tell it from an older build that
/// rejects them: a member up on it holds those steps until it is
/// upgraded. Decided so on purpose (session 29): the hold ends by itself
/// once the node runs this build, the upgrade itself needs no movement
/// step, and a member down never holds one, so a rolling upgrade from the
/// previous release pauses a movement at its switch but cannot wedge it
/// (as Cassandra asks for no topology change during an upgrade). Taking
/// "no bits" as this bit would let a build older than the previous
/// release (not a supported upgrade) be sent layouts it refuses.
pub const LAYOUT_STEPS: u64 = 1;

/// A removal may remove several dead nodes (`Movement::Remove`'s
/// `also`, audit11 D1). A build without it would decode such a layout
/// while ignoring the field (a movement's fields are not checked), so it
/// would send no write to the gainers of the other nodes' ranges: the
/// second node joins a removal only once every member up advertises it.
/// It also means a build that cancels a decommission (`aborting` on a
/// Leave, `Layout::cancel_leave`): one without it neither drives the
/// second step nor reads the Leave as cancelled (review-cancel31 M2).
/// And a removal attempt's id (`Movement::Remove`'s `began`, written
/// only once every member up has it) and a forced replacement
/// (`Movement::Replace`'s `force`): fields an older build would drop.
pub const REMOVE_SETS: u64 = 2;

/// The layout may remember a withdrawn removal (`Layout::withdrawn`,
/// review-final34 M1). Builds that advertise `REMOVE_SETS` without this
/// bit have no such field and refuse a layout carrying it (`Layout`
/// refuses unknown fields): the withdraw, and a removal begun again of a
/// node it recorded, wait until every member up advertises both
/// (review-elastic35 M1).
pub const WITHDRAW_RECORD: u64 = 4;

/// Every feature of this build.
pub const THIS_BUILD: u64 = LAYOUT_STEPS | REMOVE_SETS | WITHDRAW_RECORD;
