//! Generated gRPC types for `geokv.v1` (client API) and `geokv.v1.internode`.
//! Owns nothing else: conversions live next to the code that needs them.
#![allow(clippy::all, missing_docs)]

/// gRPC metadata on every error status a geokv node returns: `no` when
/// provably nothing was written (so the write may be sent again, e.g. to
/// another node), `maybe` otherwise. A status without it did not come from
/// a geokv node's request path (a broken connection, a proxy): treat it as
/// `maybe`.
pub const APPLIED_METADATA: &str = "geokv-applied";

/// Client API: `geokv.v1`.
pub mod v1 {
    tonic::include_proto!("geokv.v1");
    /// Internode protocol: `geokv.v1.internode` (not a public API).
    pub mod internode {
        tonic::include_proto!("geokv.v1.internode");
    }
}
