//! The `geokv topology check FILE` report: ownership and rack diversity.
//!
//! Owns the human-readable summary of a ring built from a topology. Builds
//! a string only; printing and exit codes belong to the CLI.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::{Ring, TokenRange};
use crate::topology::{KeyspaceSpec, Topology};

/// How many offending ranges to list per keyspace before summarising.
const MAX_LISTED: usize = 10;

/// Per keyspace: each node's share of the ring as primary (first replica in
/// its DC) and as any replica, and whether every range's replicas span
/// `min(rf, racks)` racks in each datacenter.
pub fn check_report(topology: &Topology) -> String {
    let ring = Ring::new(topology);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "topology {}: cluster {}, {} datacenter(s), {} node(s), {} ranges",
        topology.source,
        topology.cluster_name,
        topology.datacenters.len(),
        ring.nodes().len(),
        ring.range_count()
    );
    for (name, spec) in &topology.keyspaces {
        keyspace_section(&mut out, topology, &ring, name, spec);
    }
    out
}

/// A range whose replicas in `dc` span fewer racks than they should.
struct RackShortfall {
    range: TokenRange,
    dc: String,
    got: usize,
    want: usize,
}

/// One keyspace's part of the report: its ownership table and rack check.
fn keyspace_section(
    out: &mut String,
    topology: &Topology,
    ring: &Ring,
    name: &str,
    spec: &KeyspaceSpec,
) {
    let rfs: Vec<String> = (spec.replication.iter())
        .map(|(dc, rf)| format!("{dc}: {rf}"))
        .collect();
    let _ = writeln!(out, "\nkeyspace {name} ({})", rfs.join(", "));
    let Ok(ranges) = ring.ranges_with_replicas(name) else {
        return;
    };
    let n = ring.nodes().len();
    let (mut primary, mut replica) = (vec![0u128; n], vec![0u128; n]);
    let mut bad = Vec::new();
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
                let (dc, got) = (dcr.dc.clone(), racks.len());
                bad.push(RackShortfall {
                    range,
                    dc,
                    got,
                    want,
                });
            }
        }
    }
    let mut rows =
        vec![["dc", "rack", "node", "vnodes", "primary %", "replica %"].map(String::from)];
    for node in ring.nodes() {
        if spec.replication.get(&node.dc).copied().unwrap_or(0) == 0 {
            continue;
        }
        rows.push([
            node.dc.clone(),
            node.rack.clone(),
            node.id.clone(),
            node.vnodes.to_string(),
            percent(primary[node.idx.0 as usize]),
            percent(replica[node.idx.0 as usize]),
        ]);
    }
    write_table(out, &rows);
    write_rack_check(out, &bad);
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
            b.dc, b.range, b.got, b.want
        );
    }
    if bad.len() > MAX_LISTED {
        let _ = writeln!(out, "    … and {} more", bad.len() - MAX_LISTED);
    }
}

/// `share` of the 2^64-token ring as a percentage with two decimals.
fn percent(share: u128) -> String {
    let full = TokenRange::new(0, 0).width() as f64;
    format!("{:.2}", share as f64 / full * 100.0)
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
}
