//! The integration suite: one test binary with a module per concern (it is
//! linked once; `cargo test --test integration <module>::` runs one concern).
//! Every cluster test drives real `geokv node` processes through the
//! harness in `common` (one cluster at a time per binary).
//!
//! | module | what it proves |
//! |---|---|
//! | `auth` | `--auth`: no token → UNAUTHENTICATED, a read-only role → PERMISSION_DENIED, grant/revoke on every node, a guarded admin port |
//! | `auth_quorum` | an auth change is acknowledged (CLI exit 0) only once a quorum holds it: with two of three nodes SIGKILLed, a revoke reports "in force on 1 of 3", exits non-zero, and holds on the live node |
//! | `auth_certs` | a client certificate is its role: writes and reads back with a grant; no credential, a role without write, a certificate naming no role or of another CA are refused with their status and store nothing |
//! | `architecture` | house rules on the source tree: no import cycle between top-level modules (of `src/` and of the SDK crate) |
//! | `client_edge` | the client port refuses a call without a credential from its headers, before decoding its body; client connections past `--client-max-connections` are closed and counted |
//! | `cluster_basics` | every level against a real multi-DC cluster; reads ask only what their level needs |
//! | `cluster_failures` | killed nodes and cut links: levels that can still be met are, the others fail clearly |
//! | `coordinator_faults` | coordinators and replicas dying between commit and reply; forwarding |
//! | `count_levels` | ONE/TWO/THREE falling back to remote replicas when local ones die or hang |
//! | `dev_cluster` | `geokv dev` like ccm: kill, status, start, cut/heal, stop from another shell |
//! | `elastic` | a node joins a running two-DC cluster under LOCAL_QUORUM writers; nothing acknowledged is lost |
//! | `exit_paths` | a node with a write stuck for good still exits within a bound: 1 and no clean-shutdown marker on SIGTERM, 128+signal on a second signal |
//! | `geo_replication` | inter-DC hinted streams: ordering, urgent lanes, remote acks |
//! | `grpc_services` | the client port's grpc.health.v1 and server reflection |
//! | `hinted_durability` | hinted handoff survives restarts and is delivered |
//! | `latched_node` | a node whose WAL fsync fails (`POST /faults/engine?fail=sync`) says not ready and refuses puts; once gossip carries its not-ready bit, ALL through another node is UNAVAILABLE "not applied" up front, QUORUM is acknowledged, and reads still go to it |
//! | `join_weight` | a node joined with `--weight 2` holds about twice the keys of the others |
//! | `layout_convergence` | the layout as replicated state: a created keyspace reaches every node; a restarted node catches up |
//! | `movement_readers` | a dc2 node decommissions, a joiner is SIGKILLed mid-stream and restarted, under LOCAL_QUORUM writers and readers in both DCs: no read misses an earlier ack, nothing acked is lost |
//! | `observability` | standard /metrics (HELP/TYPE, promtool), alert rules, JSON logs |
//! | `ops_cli` | `geokv repair --dc` (background job, progress, summary), `geokv lag` (every DC pair), `status` with load/ownership/version |
//! | `overload` | a node past `--max-in-flight-requests` sheds with RESOURCE_EXHAUSTED + `retry-after-ms`, counted, nothing acked lost; a too-deep Merkle request is INVALID_ARGUMENT; a message over the size bound is RESOURCE_EXHAUSTED, nothing stored |
//! | `shed` | a stalled partial body on the client port holds its bytes (`geokv_request_bytes_in_flight`) until `--client-body-timeout-ms` drops it (DEADLINE_EXCEEDED, applied no, counted); the gauge returns to 0 |
//! | `replace` | a SIGKILLed node is replaced by a new one under LOCAL_QUORUM writers; only its ranges move, nothing acknowledged is lost |
//! | `restart_durability` | acknowledged writes survive SIGKILL, lost WAL tails and OS restarts |
//! | `anti_entropy` | Merkle repair finds and heals divergence |
//! | `nemesis` | Jepsen-style register and set workloads under faults, with oracles |
//! | `decommission` | a node leaves a 4-node datacenter under writers (`geokv decommission`), nothing acked is lost |
//! | `decommission_cancel` | a leave held by a SIGKILLed gainer is cancelled (`geokv decommission --cancel`): the leaver Normal on every live node, nothing acked is lost |
//! | `removenode_withdraw` | a removal held by a SIGKILLed gainer in a DC of rf+1 nodes is withdrawn (`geokv removenode --withdraw`): the node Normal, no movement on every live node, a new removal attempt accepted under its own name |
//! | `decommission_kill` | the leaver SIGKILLed mid-push resumes after a restart, leaves and exits 0; nothing acked is lost |
//! | `sdk` | the Rust SDK against a real cluster |
//! | `sdk_nodes` | the SDK, given one node, learns a joined node and forgets a decommissioned one |
//! | `status_page` | the admin port's live status page in headless Chromium: a killed node shows down |
//! | `tls` | mutual TLS between nodes, TLS clients, a foreign-CA node refused (gossip, replication, join, the 2-DC stream), certificate rotation, the CLI on the system roots |
//! | `trace_propagation` | nodes export OTLP to a receiver in the test: an EACH_QUORUM write is one trace on the coordinator, its local replica and both remote replicas |
//! | `bench_smoke` | `geokv bench` runs end to end |

mod common;

mod anti_entropy;
mod architecture;
mod auth;
mod auth_certs;
mod auth_quorum;
mod auth_throttle;
mod bench_smoke;
mod client_edge;
mod cluster_basics;
mod cluster_failures;
mod coordinator_faults;
mod count_levels;
mod decommission;
mod decommission_cancel;
mod decommission_drain;
mod decommission_kill;
mod dev_cluster;
mod elastic;
mod exit_paths;
mod geo_replication;
mod graceful_shutdown;
mod grpc_services;
mod hinted_durability;
mod join_weight;
mod latched_node;
mod layout_convergence;
mod movement_readers;
mod nemesis;
mod observability;
mod ops_cli;
mod overload;
mod removenode_withdraw;
mod replace;
mod restart_durability;
mod sdk;
mod sdk_nodes;
mod shed;
mod stale_view_retry;
mod status_page;
mod tls;
mod tls_admin;
mod tls_node_identity;
mod trace_propagation;
