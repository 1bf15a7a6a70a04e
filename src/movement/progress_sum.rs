//! What `geokv ring` and `geokv removenode` make of the nodes' boards
//! ([`super::progress`]): each movement of a layout with its [`phase`] and
//! its nodes' reports summed ([`movements`]), the steps held back
//! ([`Held`]), and a removal's [`verdict`].
//!
//! Must not stream, change the layout, or read a board itself (callers
//! gather the reports).

use std::collections::BTreeMap;

use serde::Serialize;

use super::progress::Report;
use crate::layout::Layout;

/// Where a movement in progress is: `copying` (writes go to the old and
/// the new owners, reads to the old), `reads switched` (reads go to the new
/// owners; the finish follows), `aborting` (`geokv removenode` abandoned a
/// join or replacement after its switch: reads are back on the old owners
/// and its dead node is dropped once every live member is on that layout)
/// or `cancelling` (`geokv decommission --cancel` past the switch: reads
/// are back on the leaver, which stays, in the same two steps). A removal
/// carrying a stale `aborting` mark is not abandoned: it heals and goes on
/// (`Layout::abandoning`), so it shows as copying or switched.
pub fn phase(layout: &Layout, dc: &str) -> &'static str {
    if layout.cancelling(dc).is_some() {
        "cancelling"
    } else if layout.abandoning(dc).is_some() {
        "aborting"
    } else if layout.reads_new(dc) {
        "reads switched"
    } else {
        "copying"
    }
}

/// One movement in progress as `geokv ring` shows it: its phase and what
/// the nodes streaming for it report, summed (ranges done of total, keys,
/// bytes), with the nodes that reported.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct MovementProgress {
    pub dc: String,
    /// E.g. "decommission of dc1-n3".
    pub movement: String,
    /// [`phase`].
    pub phase: String,
    pub ranges_done: u64,
    pub ranges_total: u64,
    pub keys: u64,
    pub bytes: u64,
    /// The nodes whose board reports this movement.
    pub reported_by: Vec<String>,
    /// `node: why` of each node holding a step of it back (a removal's
    /// finisher waiting on the upgrade gate); absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<String>,
}

/// A step of `movement` that node `node` holds back, and why (its
/// `GET /movement`'s `held`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub node: String,
    pub movement: String,
    pub why: String,
}

/// Every movement of `layout` with the reports of it in `reports` (each
/// node's board, `GET /movement`), summed, and the steps of it `held`;
/// reports of other movements (by name) are left out.
pub fn movements(
    layout: &Layout,
    reports: &[(String, Report)],
    held: &[Held],
) -> Vec<MovementProgress> {
    (layout.movements.iter())
        .map(|(dc, m)| {
            let name = m.to_string();
            let mut out = MovementProgress {
                dc: dc.clone(),
                movement: name.clone(),
                phase: phase(layout, dc).to_string(),
                ranges_done: 0,
                ranges_total: 0,
                keys: 0,
                bytes: 0,
                reported_by: Vec::new(),
                held: (held.iter().filter(|h| h.movement == name))
                    .map(|h| format!("{}: {}", h.node, h.why))
                    .collect(),
            };
            for (id, r) in reports.iter().filter(|(_, r)| r.movement == name) {
                out.ranges_done += r.ranges_done;
                out.ranges_total += r.ranges_total;
                out.keys += r.keys;
                out.bytes += r.bytes;
                out.reported_by.push(id.clone());
            }
            out
        })
        .collect()
}

/// Per gainer, its warnings about a movement.
pub type Warnings = BTreeMap<String, Vec<String>>;

/// What the gainers' reports say of movement `name` to a caller that
/// requested it at layout `since` (`geokv removenode`): the first gainer
/// that failed on that layout or a later one, with why (a `failed:` left
/// from before, e.g. the unforced attempt a `--force` follows, is stale and
/// ignored; a report without a version counts), and every gainer's
/// warnings about it.
pub fn verdict(
    reports: &[(String, Report)],
    name: &str,
    since: u64,
) -> (Option<(String, String)>, Warnings) {
    let current = |r: &&(String, Report)| {
        r.1.movement == name && (r.1.layout_version == 0 || r.1.layout_version >= since)
    };
    let failed = (reports.iter().filter(current))
        .find_map(|(id, r)| Some((id.clone(), r.status.strip_prefix("failed: ")?.to_string())));
    let warnings = (reports.iter().filter(current))
        .filter(|(_, r)| !r.warnings.is_empty())
        .map(|(id, r)| (id.clone(), r.warnings.clone()))
        .collect();
    (failed, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::movement::progress::Board;

    fn report(status: &str, version: u64, warnings: &[&str]) -> Report {
        Report {
            movement: "removal of x".into(),
            status: status.into(),
            layout_version: version,
            ranges_done: 0,
            ranges_total: 0,
            keys: 0,
            bytes: 0,
            elapsed_secs: 0.0,
            keys_per_sec: 0.0,
            bytes_per_sec: 0.0,
            eta_secs: None,
            warnings: warnings.iter().map(|w| w.to_string()).collect(),
        }
    }

    /// `geokv ring --json`: each movement names its phase (an abandoned
    /// one `aborting`, where it showed as an ordinary join) and sums its
    /// nodes' reports (a decommission's, from the leaver's board).
    #[test]
    fn each_movement_names_its_phase_and_sums_its_reports() {
        let mut seed = Layout::seed(&crate::topology::Topology::dev());
        for spec in seed.keyspaces.values_mut() {
            spec.replication.values_mut().for_each(|rf| *rf = 1);
        }
        let joining = crate::layout::testing::dev_join(&seed, "dc1-new", "127.0.0.14");
        let step = joining.next_finish_step("dc1-new").expect("switch");
        let switched = step.layout().clone();
        assert_eq!(phase(&joining, "dc1"), "copying");
        assert_eq!(phase(&switched, "dc1"), "reads switched");
        // review-cancel2-31 L4: a cancel is not an abort; a removal's stale
        // mark is neither.
        let leave = seed.begin_leave("dc2-n1").expect("decommission");
        let leave = leave.next_finish_step("dc2-n1").expect("switch");
        let back = leave.layout().cancel_leave("dc2-n1").expect("cancel");
        assert_eq!(phase(&back, "dc2"), "cancelling");
        let mut stale = seed.begin_remove("dc2-n1").expect("removal");
        stale.aborting.insert("dc2".into());
        assert_eq!(phase(&stale, "dc2"), "copying");
        let l = (switched.abort("dc1-new").expect("first step"))
            .begin_leave("dc2-n1")
            .expect("decommission");
        let mut leave = report("streaming", l.version, &[]);
        leave.movement = "decommission of dc2-n1".into();
        (leave.ranges_done, leave.ranges_total, leave.keys) = (3, 8, 120);
        let mut other = report("done", 1, &[]);
        other.keys = 999;
        let reports = vec![("dc2-n1".to_string(), leave), ("dc1-n1".to_string(), other)];
        let held = [Held {
            node: "dc2-n2".into(),
            movement: "removal of dc2-n9".into(),
            why: "not proposed".into(),
        }];
        let v = serde_json::to_value(movements(&l, &reports, &held)).unwrap();
        assert_eq!(v[0]["movement"], "join of dc1-new");
        assert_eq!(v[0]["phase"], "aborting", "{v}");
        assert_eq!(v[0]["keys"], 0, "another movement's report is not summed");
        assert_eq!(v[1]["movement"], "decommission of dc2-n1");
        assert_eq!(v[1]["phase"], "copying");
        assert_eq!(
            (v[1]["ranges_done"].as_u64(), v[1]["ranges_total"].as_u64()),
            (Some(3), Some(8))
        );
        assert_eq!(v[1]["keys"], 120);
        assert_eq!(v[1]["reported_by"], serde_json::json!(["dc2-n1"]));
        assert!(v[1].get("held").is_none(), "another movement's hold: {v}");
    }

    /// review-elastic28 M2: a removal whose switch the upgrade gate holds
    /// says so where the CLI reads it: the finisher's board (`GET
    /// /movement`'s `held`) and `geokv ring --json`'s `progress`.
    #[test]
    fn a_held_step_is_named_on_the_board_and_in_the_movement() {
        let mut seed = Layout::seed(&crate::topology::Topology::dev());
        for spec in seed.keyspaces.values_mut() {
            spec.replication.values_mut().for_each(|rf| *rf = 1);
        }
        let l = seed.begin_remove("dc1-n3").expect("removal");
        let name = l.movements["dc1"].to_string();
        let board = Board::default();
        let why = "not proposed: dc2-n1 (an older build) run a build without …";
        board.hold(&name, Some(why.into()));
        let on_board = board.held();
        assert_eq!(on_board[&name], why);
        let held: Vec<Held> = (on_board.into_iter())
            .map(|(movement, why)| Held {
                node: "dc1-n1".into(),
                movement,
                why,
            })
            .collect();
        let v = serde_json::to_value(movements(&l, &[], &held)).unwrap();
        assert_eq!(v[0]["movement"], name.as_str());
        assert_eq!(v[0]["held"], serde_json::json!([format!("dc1-n1: {why}")]));
        board.hold(&name, None);
        assert!(board.held().is_empty(), "cleared once proposed");
    }

    /// `removenode --force` at layout 7 after an unforced attempt failed
    /// at 6: the gainer's `failed:` from 6, still on its board until it
    /// sees 7, does not end the command; one at 7 does; the warnings of
    /// the forced pass are kept, those of other movements are not.
    #[test]
    fn a_failure_from_before_the_forced_layout_is_stale() {
        let name = "removal of x";
        let stale = vec![("a".to_string(), report("failed: short", 6, &[]))];
        assert_eq!(verdict(&stale, name, 7).0, None);
        let now = vec![("a".to_string(), report("failed: short", 7, &[]))];
        assert_eq!(verdict(&now, name, 7).0, Some(("a".into(), "short".into())));
        let old_peer = vec![("a".to_string(), report("failed: short", 0, &[]))];
        assert!(
            verdict(&old_peer, name, 7).0.is_some(),
            "no version: counts"
        );
        let mut other = report("done", 9, &["w2"]);
        other.movement = "removal of y".into();
        let done = vec![
            ("a".to_string(), report("done", 7, &["w1"])),
            ("b".to_string(), other),
        ];
        let (failed, warnings) = verdict(&done, name, 7);
        assert_eq!(failed, None);
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings["a"], vec!["w1".to_string()]);
    }
}
