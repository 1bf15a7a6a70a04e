//! Before a benchmark starts its own nodes: every address they will listen
//! on must be free. Otherwise a node fails to bind and exits while another
//! process already answers `/health` there, and the benchmark measures that
//! other cluster (it once reported 0.000 ms of CPU per operation that way).
//!
//! Owns the check only. Must not start or stop processes.

use super::ClusterError;
use crate::topology::NodeInfo;
use std::net::TcpListener;

/// `Err(InUse)` naming the first node and address something else listens
/// on. Binding and dropping leaves no trace (std sets `SO_REUSEADDR`, so a
/// closed connection in TIME_WAIT does not count as in use).
pub fn ensure_free(nodes: &[NodeInfo]) -> Result<(), ClusterError> {
    for n in nodes {
        for addr in [n.client_address, n.peer_address, n.admin_address] {
            if TcpListener::bind(addr).is_err() {
                return Err(ClusterError::InUse {
                    node: n.id.clone(),
                    addr,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Topology;

    /// A port free on `ip` just now.
    fn free(ip: &str) -> String {
        let l = TcpListener::bind((ip, 0)).unwrap();
        l.local_addr().unwrap().to_string()
    }

    fn nodes(admin: &str) -> Vec<NodeInfo> {
        let (client, peer) = (free("127.0.0.2"), free("127.0.0.3"));
        let yaml = format!(
            "cluster_name: t
datacenters:
  - name: dc1
    racks:
      - name: r1
        nodes:
          - {{ id: a, client_address: {client}, peer_address: {peer}, admin_address: {admin} }}
keyspaces:
  ks: {{ replication: {{ dc1: 1 }} }}
"
        );
        Topology::parse("t.yaml", &yaml).expect("topology").nodes()
    }

    #[test]
    fn an_address_another_process_listens_on_is_refused_by_name() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = ensure_free(&nodes(&addr.to_string())).unwrap_err();
        assert!(
            matches!(&err, ClusterError::InUse { node, addr: a } if node == "a" && *a == addr),
            "{err}"
        );
        drop(taken);
        ensure_free(&nodes(&addr.to_string())).expect("free once closed");
    }
}
