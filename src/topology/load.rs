//! Reading and parsing a topology file into a validated [`Topology`].
//!
//! Owns the mapping of serde errors to [`TopologyError`] paths. Reads only
//! the file it is given; validation rules live in `validate.rs`.
//!
//! Must not: hold a validation rule (`validate.rs` does), or read another file.

use std::path::Path;

use serde_path_to_error::Segment;

use super::{Topology, TopologyError, DEV_TOPOLOGY_YAML};

/// The `source` of [`Topology::dev`].
pub const DEV_SOURCE: &str = "<embedded dev>";

impl Topology {
    /// Reads, parses and validates the topology file at `path`.
    pub fn load(path: &Path) -> Result<Topology, TopologyError> {
        let file = path.display().to_string();
        let yaml = std::fs::read_to_string(path).map_err(|e| TopologyError {
            file: file.clone(),
            path: "(file)".to_string(),
            reason: format!("cannot read: {e}"),
        })?;
        Topology::parse(&file, &yaml)
    }

    /// Parses and validates `yaml`; `source` names it in errors and in
    /// [`Topology::source`].
    pub fn parse(source: &str, yaml: &str) -> Result<Topology, TopologyError> {
        let de = serde_yaml::Deserializer::from_str(yaml);
        let mut topology: Topology =
            serde_path_to_error::deserialize(de).map_err(|e| TopologyError {
                file: source.to_string(),
                path: format_path(e.path()),
                reason: e.into_inner().to_string(),
            })?;
        topology.source = source.to_string();
        topology.validate()?;
        Ok(topology)
    }

    /// The embedded development topology ([`DEV_TOPOLOGY_YAML`]).
    pub fn dev() -> Topology {
        Topology::parse(DEV_SOURCE, DEV_TOPOLOGY_YAML)
            .expect("the embedded topology/dev.yaml validates (tested)")
    }
}

/// `datacenters[1].racks[0].nodes[2].peer_address`; `(root)` for the document.
fn format_path(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    if out.is_empty() {
        out.push_str("(root)");
    }
    out
}
