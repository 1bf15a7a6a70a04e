//! The `geokv topology check FILE` report: ownership and rack diversity.
//!
//! Owns the summary of a ring built from a topology, as data
//! ([`CheckReport`], what `--json` prints) and as text ([`check_report`]).
//! Builds values and strings only; printing and exit codes belong to the CLI.
//!
//! Must not: print or set an exit code (the CLI does).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use serde::Serialize;

use super::{Ring, TokenRange};
use crate::topology::{KeyspaceSpec, Topology};

/// How many offending ranges to list per keyspace before summarising.
const MAX_LISTED: usize = 10;

/// What `geokv topology check` found, per keyspace.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub source: String,
    pub cluster: String,
    pub datacenters: usize,
    pub nodes: usize,
    pub ranges: usize,
    pub keyspaces: Vec<KeyspaceReport>,
}

/// One keyspace: each replicating node's share of the ring as primary
/// (first replica in its DC) and as any replica, and the ranges whose
/// replicas span fewer than `min(rf, racks)` racks of a datacenter.
#[derive(Debug, Clone, Serialize)]
pub struct KeyspaceReport {
    pub name: String,
    pub replication: BTreeMap<String, u32>,
    pub nodes: Vec<NodeShare>,
    pub rack_shortfalls: Vec<RackShortfall>,
}

/// A node's share of one keyspace's ring, in percent.
#[derive(Debug, Clone, Serialize)]
pub struct NodeShare {
    pub dc: String,
    pub rack: String,
    pub node: String,
    pub vnodes: usize,
    pub primary_pct: f64,
    pub replica_pct: f64,
}

/// A range whose replicas in `dc` span fewer racks than they should.
#[derive(Debug, Clone, Serialize)]
pub struct RackShortfall {
    pub range: String,
    pub dc: String,
    pub racks: usize,
    pub want: usize,
}

/// The report on `topology`'s ring.
pub fn check(topology: &Topology) -> CheckReport {
    let ring = Ring::new(topology);
    CheckReport {
        source: topology.source.to_string(),
        cluster: topology.cluster_name.clone(),
        datacenters: topology.datacenters.len(),
        nodes: ring.nodes().len(),
        ranges: ring.range_count(),
        keyspaces: (topology.keyspaces.iter())
            .map(|(name, spec)| keyspace(topology, &ring, name, spec))
            .collect(),
    }
}

/// Per keyspace: each node's share of the ring as primary (first replica in
/// its DC) and as any replica, and whether every range's replicas span
/// `min(rf, racks)` racks in each datacenter.
pub fn check_report(topology: &Topology) -> String {
    let r = check(topology);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "topology {}: cluster {}, {} datacenter(s), {} node(s), {} ranges",
        r.source, r.cluster, r.datacenters, r.nodes, r.ranges
    );
    for ks in &r.keyspaces {
        let rfs: Vec<String> = (ks.replication.iter())
            .map(|(dc, rf)| format!("{dc}: {rf}"))
            .collect();
        let _ = writeln!(out, "\nkeyspace {} ({})", ks.name, rfs.join(", "));
        if ks.nodes.is_empty() {
            continue;
        }
        let mut rows =
            vec![["dc", "rack", "node", "vnodes", "primary %", "replica %"].map(String::from)];
        for n in &ks.nodes {
            rows.push([
                n.dc.clone(),
                n.rack.clone(),
                n.node.clone(),
                n.vnodes.to_string(),
                format!("{:.2}", n.primary_pct),
                format!("{:.2}", n.replica_pct),
            ]);
        }
        write_table(&mut out, &rows);
        write_rack_check(&mut out, &ks.rack_shortfalls);
    }
    out
}

/// One keyspace's part of the report (no nodes when the ring cannot place
/// it).
fn keyspace(topology: &Topology, ring: &Ring, name: &str, spec: &KeyspaceSpec) -> KeyspaceReport {
    let mut report = KeyspaceReport {
        name: name.to_string(),
        replication: spec.replication.clone(),
        nodes: Vec::new(),
        rack_shortfalls: Vec::new(),
    };
    let Ok(ranges) = ring.ranges_with_replicas(name) else {
        return report;
    };
    let n = ring.nodes().len();
    let (mut primary, mut replica) = (vec![0u128; n], vec![0u128; n]);
    for (range, set) in ranges {
        for dcr in &set.per_dc {
            if let Some(first) = dcr.nodes.first() {
                primary[first.0 as usize] += range.width();
            }
            for node in &dcr.nodes {
                replica[node.0 as usize] += range.width();
            }
            let racks: BTreeSet<&str> = (dcr.nodes.iter())
                .map(|&i| ring.node(i).rack.as_str())
                .collect();
            let dc_racks = topology.datacenter(&dcr.dc).map_or(0, |d| d.racks.len());
            let want = (dcr.rf as usize).min(dc_racks);
            if racks.len() < want {
                report.rack_shortfalls.push(RackShortfall {
                    range: range.to_string(),
                    dc: dcr.dc.clone(),
                    racks: racks.len(),
                    want,
                });
            }
        }
    }
    for node in ring.nodes() {
        if spec.replication.get(&node.dc).copied().unwrap_or(0) == 0 {
            continue;
        }
        report.nodes.push(NodeShare {
            dc: node.dc.clone(),
            rack: node.rack.clone(),
            node: node.id.clone(),
            vnodes: node.vnodes as usize,
            primary_pct: percent(primary[node.idx.0 as usize]),
            replica_pct: percent(replica[node.idx.0 as usize]),
        });
    }
    report
}

fn write_rack_check(out: &mut String, bad: &[RackShortfall]) {
    if bad.is_empty() {
        let _ = writeln!(
            out,
            "  rack diversity: OK (every range spans min(rf, racks) racks in each datacenter)"
        );
        return;
    }
    let _ = writeln!(out, "  rack diversity: FAILED in {} range(s):", bad.len());
    for b in bad.iter().take(MAX_LISTED) {
        let _ = writeln!(
            out,
            "    {} {}: {} rack(s), want {}",
            b.dc, b.range, b.racks, b.want
        );
    }
    if bad.len() > MAX_LISTED {
        let _ = writeln!(out, "    … and {} more", bad.len() - MAX_LISTED);
    }
}

/// `share` of the 2^64-token ring as a percentage.
fn percent(share: u128) -> f64 {
    let full = TokenRange::new(0, 0).width() as f64;
    share as f64 / full * 100.0
}

/// Left-aligned text columns, right-aligned numeric ones, two-space indent.
fn write_table(out: &mut String, rows: &[[String; 6]]) {
    let mut widths = [0usize; 6];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        out.push(' ');
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i < 3 {
                let _ = write!(out, " {cell:<w$}");
            } else {
                let _ = write!(out, "  {cell:>w$}");
            }
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_report_is_ok_and_lists_every_node() {
        let r = check_report(&Topology::dev());
        println!("{r}");
        assert!(
            r.starts_with("topology <embedded dev>: cluster geokv-dev, 2 datacenter(s), 6 node(s)")
        );
        assert!(r.contains("keyspace default (dc1: 3, dc2: 3)"));
        assert!(r.contains("keyspace dc1_only (dc1: 2)"));
        assert_eq!(r.matches("rack diversity: OK").count(), 2);
        // rf 3 over 3 nodes: every node replicates the whole ring.
        let default = r.split("keyspace default").nth(1).unwrap();
        let dc1_n1 = default.lines().find(|l| l.contains("dc1-n1")).unwrap();
        assert!(dc1_n1.trim_end().ends_with("100.00"), "{dc1_n1}");
    }

    #[test]
    fn three_dc_report_is_ok() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("topology/three-dc.yaml");
        let r = check_report(&Topology::load(&path).unwrap());
        println!("{r}");
        assert_eq!(r.matches("rack diversity: OK").count(), 2);
        assert!(!r.contains("FAILED"));
    }

    #[test]
    fn the_report_as_data_matches_its_text() {
        let r = check(&Topology::dev());
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["cluster"], "geokv-dev");
        assert_eq!(v["nodes"], 6);
        let default = (r.keyspaces.iter()).find(|k| k.name == "default").unwrap();
        assert_eq!(default.replication.get("dc2"), Some(&3));
        assert_eq!(default.nodes.len(), 6);
        assert!(default.rack_shortfalls.is_empty());
        let n1 = &v["keyspaces"][0]["nodes"][0];
        for field in ["dc", "rack", "node", "vnodes", "primary_pct", "replica_pct"] {
            assert!(!n1[field].is_null(), "{field} in {n1}");
        }
        let dc1_only = (r.keyspaces.iter()).find(|k| k.name == "dc1_only").unwrap();
        assert_eq!(dc1_only.nodes.len(), 3, "only dc1's nodes replicate it");
        let total: f64 = dc1_only.nodes.iter().map(|n| n.primary_pct).sum();
        assert!(
            (total - 100.0).abs() < 0.01,
            "primaries cover the ring: {total}"
        );
    }
}
