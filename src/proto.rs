//! Generated gRPC types for `geokv.v1` (client API) and `geokv.v1.internode`.
//! The client API's messages and client stub come from the SDK
//! (`geokv_client::proto`); this module adds the `Kv` server stub over them
//! and the internode protocol. Owns nothing else: conversions live next to
//! the code that needs them.
//!
//! Must not: hold hand-written conversions or logic.
#![allow(clippy::all, missing_docs)]

pub use geokv_client::proto::{APPLIED_METADATA, RETRY_AFTER_METADATA};

/// The encoded `FileDescriptorSet` of `geokv/v1/client.proto`, for gRPC
/// server reflection on the client port (grpcurl needs no .proto file).
pub const CLIENT_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("geokv_client_descriptor");

/// Metadata of an internode refusal of a write planned on an older layout:
/// the refusing replica's layout version (see `ReplicaWriteRequest`).
pub const LAYOUT_VERSION_METADATA: &str = "geokv-layout-version";

/// Client API: `geokv.v1` (the SDK's messages and client, and `kv_server`).
pub mod v1 {
    pub use geokv_client::proto::v1::*;
    tonic::include_proto!("geokv.v1");
    /// Internode protocol: `geokv.v1.internode` (not a public API).
    pub mod internode {
        tonic::include_proto!("geokv.v1.internode");
    }
}
