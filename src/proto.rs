//! Generated gRPC types for `geokv.v1` (client API) and `geokv.v1.internode`.
//! Owns nothing else: conversions live next to the code that needs them.
#![allow(clippy::all, missing_docs)]

/// Client API: `geokv.v1`.
pub mod v1 {
    tonic::include_proto!("geokv.v1");
    /// Internode protocol: `geokv.v1.internode` (not a public API).
    pub mod internode {
        tonic::include_proto!("geokv.v1.internode");
    }
}
