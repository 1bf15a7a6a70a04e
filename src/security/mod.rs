//! Security material of a cluster: the cluster CA and the node and client
//! certificates it signs ([`certs`]), and the identity a certificate names;
//! roles, tokens and permissions per keyspace ([`auth`]).
//!
//! Owns: creating, storing and reading certificates and keys, and what
//! identity a certificate proves. Must not: open sockets or configure TLS
//! sessions (that is `transport::tls`).

pub mod auth;
pub mod certs;
