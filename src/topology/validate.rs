//! Semantic validation of a parsed [`Topology`].
//!
//! Owns the rules listed in the module doc of [`crate::topology`]; each
//! failure names the field path and the reason. Must not parse or read files.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use super::{NodeSpec, Topology, TopologyError, MAX_VNODES};

impl Topology {
    /// Checks the rules in the [module doc](crate::topology). [`Topology::parse`]
    /// and [`Topology::load`] call it; call it yourself on a topology built in code.
    pub fn validate(&self) -> Result<(), TopologyError> {
        let err = |path: String, reason: String| TopologyError {
            file: self.source.clone(),
            path,
            reason,
        };
        check_name(&self.cluster_name).map_err(|r| err("cluster_name".into(), r))?;
        let d = &self.defaults;
        if d.vnodes == 0 || d.vnodes > MAX_VNODES {
            return Err(err("defaults.vnodes".into(), vnodes_reason(d.vnodes)));
        }
        if d.admin_port == 0 {
            return Err(err("defaults.admin_port".into(), "must not be 0".into()));
        }
        if self.datacenters.is_empty() {
            return Err(err(
                "datacenters".into(),
                "at least one datacenter is required".into(),
            ));
        }

        let mut dc_names: HashMap<&str, String> = HashMap::new();
        let mut node_ids: HashMap<&str, String> = HashMap::new();
        // address → (node id, path of the field that claimed it)
        let mut addresses: HashMap<SocketAddr, (&str, String)> = HashMap::new();
        for (i, dc) in self.datacenters.iter().enumerate() {
            let p = format!("datacenters[{i}]");
            check_name(&dc.name).map_err(|r| err(format!("{p}.name"), r))?;
            if let Some(first) = dc_names.insert(&dc.name, p.clone()) {
                let reason = format!("duplicate datacenter name '{}' (also at {first})", dc.name);
                return Err(err(format!("{p}.name"), reason));
            }
            if dc.racks.is_empty() {
                return Err(err(
                    format!("{p}.racks"),
                    "a datacenter needs at least one rack".into(),
                ));
            }
            let mut rack_names: HashMap<&str, String> = HashMap::new();
            for (j, rack) in dc.racks.iter().enumerate() {
                let p = format!("{p}.racks[{j}]");
                check_name(&rack.name).map_err(|r| err(format!("{p}.name"), r))?;
                if let Some(first) = rack_names.insert(&rack.name, p.clone()) {
                    let reason = format!(
                        "duplicate rack name '{}' in datacenter {} (also at {first})",
                        rack.name, dc.name
                    );
                    return Err(err(format!("{p}.name"), reason));
                }
                if rack.nodes.is_empty() {
                    return Err(err(
                        format!("{p}.nodes"),
                        "a rack needs at least one node".into(),
                    ));
                }
                for (k, node) in rack.nodes.iter().enumerate() {
                    let p = format!("{p}.nodes[{k}]");
                    self.validate_node(&p, node, &mut node_ids, &mut addresses, &err)?;
                }
            }
        }
        self.validate_keyspaces(&err)
    }

    /// One node: its id unique, weight or vnodes in range, every address
    /// connectable and claimed by no other node.
    fn validate_node<'a>(
        &self,
        p: &str,
        node: &'a NodeSpec,
        node_ids: &mut HashMap<&'a str, String>,
        addresses: &mut HashMap<SocketAddr, (&'a str, String)>,
        err: &dyn Fn(String, String) -> TopologyError,
    ) -> Result<(), TopologyError> {
        let d = &self.defaults;
        check_name(&node.id).map_err(|r| err(format!("{p}.id"), r))?;
        if let Some(first) = node_ids.insert(&node.id, p.to_string()) {
            let reason = format!("duplicate node id '{}' (also at {first})", node.id);
            return Err(err(format!("{p}.id"), reason));
        }
        match (node.weight, node.vnodes) {
            (Some(_), Some(_)) => {
                let reason = "give either weight or vnodes, not both".to_string();
                return Err(err(format!("{p}.weight"), reason));
            }
            (Some(w), None) if !(w.is_finite() && w > 0.0) => {
                let reason = format!("weight must be a finite number > 0, got {w}");
                return Err(err(format!("{p}.weight"), reason));
            }
            (Some(w), None) => {
                let v = node.effective_vnodes(d);
                if v == 0 || v > MAX_VNODES {
                    let reason = format!(
                        "weight {w} × defaults.vnodes {} gives {v} vnodes; {}",
                        d.vnodes,
                        vnodes_reason(v)
                    );
                    return Err(err(format!("{p}.weight"), reason));
                }
            }
            (None, Some(v)) if v == 0 || v > MAX_VNODES => {
                return Err(err(format!("{p}.vnodes"), vnodes_reason(v)));
            }
            _ => {}
        }
        let admin = node.effective_admin_address(d);
        let admin_field = if node.admin_address.is_some() {
            "admin_address"
        } else {
            "admin_address (defaulted to the client IP and defaults.admin_port)"
        };
        for (field, addr) in [
            ("client_address", node.client_address),
            ("peer_address", node.peer_address),
            ("admin_address", admin),
        ] {
            let fp = format!("{p}.{field}");
            if addr.ip().is_unspecified() || addr.port() == 0 {
                let reason = format!(
                    "{addr} is not an address peers can connect to (unspecified IP or port 0)"
                );
                return Err(err(fp, reason));
            }
            let shown = if field == "admin_address" {
                admin_field
            } else {
                field
            };
            if let Some((owner, at)) = addresses.get(&addr) {
                let reason = format!("{shown} {addr} is already used by node {owner} at {at}");
                return Err(err(fp, reason));
            }
            addresses.insert(addr, (&node.id, fp));
        }
        Ok(())
    }

    fn validate_keyspaces(
        &self,
        err: &dyn Fn(String, String) -> TopologyError,
    ) -> Result<(), TopologyError> {
        if self.keyspaces.is_empty() {
            return Err(err(
                "keyspaces".into(),
                "at least one keyspace is required".into(),
            ));
        }
        let nodes_per_dc: BTreeMap<&str, usize> = self
            .datacenters
            .iter()
            .map(|d| (d.name.as_str(), d.node_count()))
            .collect();
        for (name, ks) in &self.keyspaces {
            let p = format!("keyspaces.{name}");
            check_name(name).map_err(|r| err(p.clone(), r))?;
            if name.len() > MAX_KEYSPACE_NAME {
                let reason = format!(
                    "the name is {} bytes long; at most {MAX_KEYSPACE_NAME} (anti-entropy records store its length in one byte)",
                    name.len()
                );
                return Err(err(p, reason));
            }
            for (dc, &rf) in &ks.replication {
                let fp = format!("{p}.replication.{dc}");
                let Some(&count) = nodes_per_dc.get(dc.as_str()) else {
                    let known: Vec<&str> = nodes_per_dc.keys().copied().collect();
                    let reason = format!("unknown datacenter '{dc}' (known: {})", known.join(", "));
                    return Err(err(fp, reason));
                };
                if rf as usize > count {
                    let reason = format!(
                        "replication factor {rf} exceeds the {count} node(s) of datacenter {dc}"
                    );
                    return Err(err(fp, reason));
                }
            }
            if ks.replication.values().all(|&rf| rf == 0) {
                let reason = "keyspace replicates nowhere: give at least one datacenter an rf > 0";
                return Err(err(format!("{p}.replication"), reason.into()));
            }
        }
        Ok(())
    }
}

/// The longest keyspace name, in bytes: a repair record's key stores the
/// name's length in one byte (`repair::plan::repair_key`), so a longer one
/// made every record of the keyspace unparseable.
pub const MAX_KEYSPACE_NAME: usize = 255;

fn vnodes_reason(v: u32) -> String {
    format!("vnodes must be between 1 and {MAX_VNODES}, got {v}")
}

/// Names appear in metrics labels, file names and gossip: keep them plain.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if let Some(bad) = name.chars().find(|&c| !ok(c)) {
        return Err(format!(
            "'{name}' contains {bad:?}; use only A-Z a-z 0-9 . _ -"
        ));
    }
    Ok(())
}
