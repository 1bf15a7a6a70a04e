//! What each replica holds: reads of a node's *local* copy over the
//! internode API (no coordination, no read repair), and ring placement of
//! keys. On a TLS cluster the harness dials the internode port as node
//! [`HARNESS_ID`] with its own certificate of the cluster CA. Must not:
//! write anything to a replica.

use super::{Cluster, HARNESS_ID};
use geokv::proto::v1::internode::internode_client::InternodeClient;
use geokv::proto::v1::internode::ReplicaReadRequest;
use geokv::topology::NodeInfo;
use geokv::transport::tls::{Tls, TlsFiles, TlsSetting};
use std::collections::BTreeMap;
use std::time::Duration;
use tonic::transport::Channel;

/// Reads replicas' local copies of keys; keeps one channel per node.
pub struct ReplicaReader {
    /// The harness's internode TLS identity on a TLS cluster.
    tls: Option<Tls>,
    channels: std::sync::Mutex<BTreeMap<String, Channel>>,
}

impl Default for ReplicaReader {
    /// A reader for a plaintext cluster ([`Cluster::start_insecure`]).
    fn default() -> Self {
        ReplicaReader {
            tls: None,
            channels: std::sync::Mutex::new(BTreeMap::new()),
        }
    }
}

impl Cluster {
    /// A [`ReplicaReader`] for this cluster (TLS or not).
    pub fn replica_reader(&self) -> ReplicaReader {
        let tls = self.certs_dir().map(|dir| {
            use geokv::security::certs::{ca_path, pair_paths, Identity};
            let stem = Identity::Node(HARNESS_ID.to_string()).file_stem();
            let (cert, key) = pair_paths(&dir, &stem);
            let files = TlsFiles {
                ca: ca_path(&dir),
                cert,
                key,
            };
            Tls::load(&TlsSetting::Files(files), HARNESS_ID).expect("harness TLS material")
        });
        ReplicaReader {
            tls,
            ..ReplicaReader::default()
        }
    }
}

impl ReplicaReader {
    /// The (cached) channel to `node`'s internode port, over mutual TLS as
    /// [`HARNESS_ID`] on a TLS cluster; calls need [`ReplicaReader::claim`].
    pub fn channel(&self, node: &NodeInfo) -> Channel {
        let mut channels = self.channels.lock().unwrap();
        let make = || match &self.tls {
            Some(tls) => tls.endpoint(&node.id, node.peer_address),
            None => {
                tonic::transport::Endpoint::from_shared(format!("http://{}", node.peer_address))
                    .unwrap()
                    .connect_timeout(Duration::from_secs(2))
                    .connect_lazy()
            }
        };
        channels.entry(node.id.clone()).or_insert_with(make).clone()
    }

    /// Names the harness as the caller of an internode call (`geokv-from`,
    /// which must match the certificate on a TLS cluster).
    pub fn claim<T>(&self, req: &mut tonic::Request<T>) {
        if self.tls.is_some() {
            let from = HARNESS_ID.parse().expect("ASCII id");
            req.metadata_mut()
                .insert(geokv::transport::FROM_HEADER, from);
        }
    }

    /// The sorted live values `node` holds for `key`; `None` if it did not answer.
    pub async fn holds(&self, node: &NodeInfo, keyspace: &str, key: &str) -> Option<Vec<String>> {
        let mut req = tonic::Request::new(ReplicaReadRequest {
            keyspace: keyspace.into(),
            key: key.as_bytes().to_vec(),
            // Unchecked: the test asks a node what it holds.
            ..Default::default()
        });
        self.claim(&mut req);
        let r = InternodeClient::new(self.channel(node))
            .replica_read(req)
            .await
            .ok()?
            .into_inner();
        if !r.found {
            return Some(Vec::new());
        }
        let set = geokv::version::SiblingSet::decode(&r.record).ok()?;
        let mut v: Vec<String> = set
            .values()
            .filter_map(|s| s.value.as_ref())
            .map(|v| String::from_utf8_lossy(v).to_string())
            .collect();
        v.sort();
        Some(v)
    }
}

/// The replicas of a key in `dc`, from the ring.
pub fn replicas_in(cluster: &Cluster, keyspace: &str, key: &str, dc: &str) -> Vec<NodeInfo> {
    let ring = geokv::ring::Ring::new(&cluster.topology);
    ring.replicas(keyspace, key.as_bytes())
        .expect("keyspace")
        .in_dc(dc)
        .iter()
        .map(|i| ring.node(*i).clone())
        .collect()
}
