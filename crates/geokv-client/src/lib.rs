//! The Rust SDK for geokv: a cheap-to-clone [`Client`] that sends get / put /
//! delete / status to a coordinator of the local datacenter over gRPC
//! (`geokv.v1.Kv`), falls back to other datacenters, and retries what is safe
//! to retry. Its own crate: it depends on no server code (no RocksDB); the
//! server depends on it for [`ConsistencyLevel`] and the wire types.
//!
//! Must not: depend on server code (the `geokv` package, RocksDB), nor
//! retry a write that may have been applied.
//!
//! # Layout
//!
//! | file | owns |
//! |---|---|
//! | `builder.rs` | [`ClientBuilder`]: settings, seed validation, discovery |
//! | `calls.rs` | [`Client`]'s public calls |
//! | `core.rs` | [`Client`]: the handle, its channels and the single attempt loop |
//! | `read.rs`, `write.rs` | request builders [`Get`], [`Put`], [`Delete`] and their options |
//! | `endpoints.rs` | coordinator preference order (pure) |
//! | `refresh.rs` | when to ask for the members again, and merging the answer (pure) |
//! | `dial.rs` | opening channels, and the refresh state the attempt loop and the refresh task share |
//! | `discovery.rs` | the refresh task: asks a node for the members and swaps the node list |
//! | `retry.rs` | [`RetryPolicy`]: backoff schedule and the write idempotency rule (pure) |
//! | `error.rs` | [`ClientError`] and the classification of `tonic::Status` |
//! | `types.rs`, `status.rs` | results, siblings, [`CausalContext`], cluster status |
//! | `consistency.rs` | [`ConsistencyLevel`]: names and parsing |
//! | `level.rs` | `ConsistencyLevel` ↔ wire enum |
//! | `proto.rs` | the generated `geokv.v1` messages and `Kv` client stub |
//!
//! # Example
//!
//! ```no_run
//! use geokv_client::Client;
//!
//! # async fn demo() -> Result<(), geokv_client::ClientError> {
//! let client = Client::builder().endpoints(["http://127.0.0.11:7070"]).build().await?;
//! client.put("k", "v1").await?;
//! let read = client.get("k").await?;
//! if read.siblings.len() > 1 {
//!     client.resolve("k", "merged", &read).await?;
//! }
//! # Ok(()) }
//! ```
pub mod proto;

mod backoff;
mod builder;
mod calls;
mod consistency;
mod core;
mod dial;
mod discovery;
mod endpoints;
mod error;
mod level;
mod read;
mod refresh;
mod retry;
mod status;
mod sync;
mod tls;
mod types;
mod write;

pub use self::backoff::{Backoff, Streak};
pub use self::builder::ClientBuilder;
pub use self::consistency::{ConsistencyLevel, ParseLevelError};
pub use self::core::Client;
pub use self::error::{code_name, ClientError};
pub use self::level::{level_from_proto, level_to_proto};
pub use self::read::{Get, ReadOptions};
pub use self::retry::RetryPolicy;
pub use self::status::{ClusterStatus, KeyspaceInfo, NodeInfo};
pub use self::tls::TlsOptions;
pub use self::types::{CausalContext, DeleteResult, GetResult, PutResult, Sibling};
pub use self::write::{Delete, Put, WriteOptions};

#[cfg(test)]
mod tests;
