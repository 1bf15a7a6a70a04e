//! # geokv
//!
//! A multi-datacenter, geo-replicated key-value store in the line of Dynamo,
//! Cassandra and Riak KV. Every request picks its consistency level; every
//! value carries a dotted version vector, so concurrent writes become siblings
//! that the client resolves with the causal context it was handed.
//!
//! ## Data flow
//!
//! ```text
//!  client SDK ──gRPC──▶ api ──▶ coordinator ──▶ ring (placement) ──▶ transport ──▶ replica ──▶ engine (RocksDB)
//!                                   │  consistency::block_for           (internode gRPC)
//!                                   └─ hints (remote DCs, dead peers) ── membership (gossip, φ) ── repair
//! ```
//!
//! ## Module map
//!
//! | module | owns | pure? |
//! |---|---|---|
//! | [`topology`] | the YAML topology file: parsing and validation | yes |
//! | [`layout`] | the versioned cluster layout: node states, tokens, movements | yes |
//! | [`token`] | the key hash, vnode tokens, token ranges | yes |
//! | [`clock`] | wall-clock milliseconds for stored timestamps | yes |
//! | [`cli_tree`] | the walk of a clap command tree the command-line tests share (feature `cli`) | yes |
//! | [`ring`] | virtual nodes, NetworkTopologyStrategy placement, pending ranges, token allocation | yes |
//! | [`version`] | vector clocks, dots, sibling sets and their codec | yes |
//! | [`consistency`] | consistency levels and the acks each needs | yes |
//! | `mutation` | one write as it travels api → coordinator → replica → stream | yes |
//! | [`client`] | the Rust SDK: re-export of the `geokv-client` crate | no |
//! | `engine` | the storage trait and memory engine (no feature); only `engine::rocks` imports RocksDB (feature `rocksdb`) | no |
//! | `coordinator` | plan → fan out → wait for the level → reconcile → repair | no |
//! | `api`, `transport`, `replica` | client gRPC edge; internode gRPC (TLS in `transport::tls`); replica apply | no |
//! | `security` | cluster CA, node/client certificates, certificate identities | no |
//! | `hints`, `membership`, `repair` | hinted streams, gossip + φ detector, anti-entropy | no |
//! | `node` | wires one node together: start-up and shutdown | no |
//! | `view` | the one current view of the cluster (ring, placement, peers, liveness) per layout version; the layout compare-and-set | no |
//! | `movement` | range streaming for join, decommission, replace and removenode; the stream cap | no |
//! | `admin` | the admin HTTP API, metrics, the status page | no |
//! | `blocking` | the rule for running blocking engine work off the async workers | no |
//! | `error` | typed errors and their one mapping to gRPC statuses (`applied: no/maybe`) | no |
//! | `proto` | the generated gRPC types of `proto/` | yes |
//! | `telemetry` | logs, OpenTelemetry traces and their propagation across nodes | no |
//! | `tasks` | where a subsystem spawns its background tasks: the node's task set | no |
//! | `local_cluster` | real `geokv node` processes on this machine: `geokv dev`, the benchmarks (`crates/geokv-bench`) | no |
//!
//! Must not: hold code: the modules do; this file only names them.

pub use geokv_client as client;
pub mod blocking;
// Only the command-line tests use it (of `geokv` and `geokv-bench`).
#[cfg(feature = "cli")]
pub mod cli_tree;
pub mod clock;
pub mod consistency;
#[cfg(feature = "server")]
pub mod coordinator;
// The engine trait and the memory engine build without RocksDB (what a
// simulation needs); the `rocksdb` feature adds `engine::rocks`.
pub mod engine;
pub mod layout;
pub mod proto;
pub mod ring;
pub mod token;
pub mod topology;
pub mod version;

#[cfg(feature = "server")]
pub mod admin;
#[cfg(feature = "server")]
pub mod api;
#[cfg(feature = "server")]
pub mod error;
#[cfg(feature = "server")]
pub mod hints;
#[cfg(feature = "server")]
pub mod local_cluster;
#[cfg(feature = "server")]
pub mod membership;
#[cfg(feature = "server")]
pub mod movement;
#[cfg(feature = "server")]
pub mod mutation;
#[cfg(feature = "server")]
pub mod node;
#[cfg(feature = "server")]
pub mod repair;
#[cfg(feature = "server")]
pub mod replica;
#[cfg(feature = "server")]
pub mod security;
#[cfg(feature = "server")]
pub mod tasks;
#[cfg(feature = "server")]
pub mod telemetry;
#[cfg(feature = "server")]
pub mod transport;
#[cfg(feature = "server")]
pub mod view;
