//! The resource bounds of a node's gRPC ports, in one place with their
//! defaults: HTTP/2 streams and concurrent requests per connection on the
//! client and peer ports, message sizes, and the node-wide bound on client
//! requests in flight (`api::admission`). Applying them to a tonic server
//! builder is here too. Must not decide about single requests.

use crate::api::admission::AdmissionConfig;

/// Bounds of one gRPC port, per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortLimits {
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`: open requests a client may have
    /// on one connection; more wait on the client's side.
    pub max_concurrent_streams: u32,
    /// Requests one connection's handlers run at once; the others wait
    /// (bounded by the stream limit above), nothing is dropped.
    pub concurrency_per_connection: usize,
    /// Largest message accepted.
    pub max_decoding_bytes: usize,
    /// Largest message sent.
    pub max_encoding_bytes: usize,
}

/// Every bound of a node's ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    pub client: PortLimits,
    /// Between nodes. Generous: one connection per pair of nodes carries
    /// all replica calls and hint streams, and a call that waits here is
    /// retried or hinted by its sender on timeout, never lost.
    pub peer: PortLimits,
    /// Node-wide client requests in flight, and the retry hint past it.
    pub admission: AdmissionConfig,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            client: PortLimits {
                max_concurrent_streams: 256,
                concurrency_per_connection: 256,
                max_decoding_bytes: 8 << 20,
                max_encoding_bytes: 64 << 20,
            },
            peer: PortLimits {
                max_concurrent_streams: 2048,
                concurrency_per_connection: 2048,
                max_decoding_bytes: 64 << 20,
                max_encoding_bytes: 64 << 20,
            },
            admission: AdmissionConfig::default(),
        }
    }
}

impl PortLimits {
    /// `builder` with this port's stream and concurrency bounds.
    pub fn apply<L>(&self, builder: tonic::transport::Server<L>) -> tonic::transport::Server<L> {
        builder
            .max_concurrent_streams(self.max_concurrent_streams)
            .concurrency_limit_per_connection(self.concurrency_per_connection)
    }
}
