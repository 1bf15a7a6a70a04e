//! Feature bits: each node advertises those of its build in its gossip
//! entry, spread with its heartbeat, so a change an older build would
//! refuse or misread waits until every member runs a build that knows it
//! (Cassandra gates such changes on the minimum version seen in gossip).
//!
//! Owns the bits and this build's set. Must not decide what waits: the
//! callers do (`movement::upgrade`).

/// The layout may carry the steps that end or abandon a movement:
/// `reading_new` (the switch of reads) and `aborting` (a movement
/// abandoned by `removenode`). A build without this bit rejects a layout
/// carrying them (`Layout` refuses unknown fields).
pub const LAYOUT_STEPS: u64 = 1;

/// Every feature of this build.
pub const THIS_BUILD: u64 = LAYOUT_STEPS;
