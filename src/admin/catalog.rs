//! Every metric family a node exports, described once: name, type and the
//! `# HELP` text `/metrics` shows. [`describe_all`] runs at start-up, after
//! the recorder is installed; a family emitted anywhere but missing here
//! has no HELP line, which `tests/observability.rs` catches. Also owns
//! `geokv_build_info`. Must not record measurements itself.
use crate::membership::{PHI_GAUGE, TRANSITIONS_COUNTER, UP_GAUGE};

/// The type a family is exported as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

use Kind::{Counter, Gauge, Histogram};

/// `(type, name, help)` of every family the node's own code emits.
pub const FAMILIES: &[(Kind, &str, &str)] = &[
    // Client requests (api).
    (Counter, "geokv_requests_total", "Client requests by operation, consistency level and outcome."),
    (Histogram, "geokv_request_seconds", "Client request latency by operation and consistency level, in seconds."),
    (Counter, "geokv_errors_total", "Errors returned to callers, by gRPC status code."),
    (Counter, crate::api::admission::SHED_METRIC, "Client requests shed, by reason: with RESOURCE_EXHAUSTED before anything was done (in_flight_limit: the node's bound on client requests in flight, --max-in-flight-requests; bytes_in_flight: its budget of request bytes in flight, --client-max-request-bytes-in-flight; per_address: one client address past its share of either, --client-max-requests-in-flight-per-address, --client-max-request-bytes-in-flight-per-address) or with DEADLINE_EXCEEDED (handler_timeout: dropped past --client-handler-timeout-ms, a stuck handler, a write may have been applied; body_timeout: its body had not ended (no data for --client-body-timeout-ms, or still arriving at --client-handler-timeout-ms), nothing applied)."),
    (Gauge, crate::api::shed::BYTES_IN_FLIGHT_METRIC, "Bytes of client request bodies this node holds now (received, the call not ended)."),
    (Gauge, crate::api::admission::IN_FLIGHT_METRIC, "Client requests (get, put, delete) this node is coordinating now."),
    // Coordinator.
    (Counter, "geokv_remote_fallbacks_total", "Requests that had to use replicas in another datacenter, by operation."),
    (Counter, "geokv_siblings_over_cap_total", "Reads whose merged result exceeded the sibling cap."),
    (Counter, "geokv_read_repairs_total", "Stale replicas repaired by reads."),
    (Counter, "geokv_speculative_reads_total", "Extra replicas asked because those asked were slow."),
    (Counter, "geokv_writes_forwarded_total", "Writes forwarded to a replica to coordinate (this node does not replicate the key)."),
    (Counter, "geokv_writes_outcome_unknown_total", "Forwarded writes whose coordinator failed before answering (may have been applied)."),
    (Counter, "geokv_sibling_cap_rejections_total", "Replica writes refused because they would exceed the sibling cap."),
    (Counter, "geokv_stale_view_refusals_total", "Replica requests refused as planned on an older layout, by kind: write (a client write whose targets miss a replica of this node's), repair (read repair or a repair session's merge of a key this node no longer replicates; a refused repair page applied nothing here, though the peer may have applied earlier pages of the session), read (a read of a key this node no longer replicates)."),
    (Counter, "geokv_stale_view_retries_total", "Client writes sent again on a newer layout after a replica refused them as planned on an older one."),
    (Counter, "geokv_stale_view_layout_fetches_total", "Layouts fetched from a replica that refused a request as planned on an older layout (one per peer and version at a time, shared by the requests it refused)."),
    // Internode transport.
    (Counter, "geokv_internode_requests_total", "Internode RPCs served, by RPC and source datacenter."),
    (Histogram, "geokv_internode_call_seconds", "Latency of internode calls made, by peer datacenter, in seconds."),
    (Histogram, "geokv_internode_batch_entries", "Replica writes per ReplicaBatch call sent, in buckets of 1, 2, 4, ..., 64 entries (issue 14: batched while a call to the peer is in flight)."),
    (Gauge, "geokv_internode_lane_entries", "Replica writes held by a peer's batching lane (queued or in flight), by peer."),
    (Gauge, "geokv_internode_lane_bytes", "Bytes of replica writes held by a peer's batching lane (queued or in flight), by peer."),
    (Counter, "geokv_internode_lane_shed_total", "Replica writes or reads refused unsent because their peer's batching lane held its cap (that replica counts as failed)."),
    (Counter, "geokv_internode_lane_restarts_total", "Batching lanes whose task had died and was replaced."),
    (Counter, "geokv_internode_batch_unimplemented_total", "ReplicaBatch calls a peer did not know (an older node): their writes were resent one by one."),
    (Histogram, "geokv_internode_read_batch_entries", "Replica reads per ReplicaReadBatch call sent, in buckets of 1, 2, 4, ..., 64 entries (issue 14: batched while a read of the peer is in flight)."),
    (Counter, "geokv_internode_read_batch_unimplemented_total", "ReplicaReadBatch calls a peer did not know (an older node): their reads were resent one by one."),
    // Hinted handoff and inter-datacenter streams.
    (Gauge, "geokv_hint_backlog_entries", "Entries queued for a destination, by destination and lane."),
    (Gauge, "geokv_hint_backlog_bytes", "Bytes queued for a destination, by destination and lane."),
    (Gauge, "geokv_hint_oldest_age_seconds", "Age of the oldest queued entry per destination (replication lag), in seconds."),
    (Gauge, "geokv_stream_batches_in_flight", "Stream batches sent and not yet acknowledged, by destination."),
    (Counter, "geokv_hints_stored_total", "Entries stored in the hinted queues."),
    (Counter, "geokv_hints_copied_to_pending_total", "Hints for an owner of a moving range also given to the range's pending replicas."),
    (Counter, "geokv_hints_redirected_total", "Hints for a node that has left the cluster handed to the key's current replicas instead, by destination."),
    (Counter, "geokv_hints_adopted_total", "Entries of a node that has left the cluster queued here for their destination (handed over by the leaver), by destination."),
    (Counter, "geokv_hints_orphaned_total", "Hints for a node that has left the cluster dropped (no replica to redirect to; recorded for anti-entropy), by destination."),
    (Counter, "geokv_hint_sent_total", "Queued entries delivered and acknowledged, by destination and lane."),
    (Counter, "geokv_hint_send_failures_total", "Failed deliveries of a stream batch, by destination."),
    (Counter, "geokv_hint_overflows_total", "Entries not queued because the destination's backlog was full (left to anti-entropy), by destination."),
    (Counter, "geokv_hint_corrupt_total", "Queued entries that did not decode and were set aside, by destination."),
    (Counter, "geokv_stream_refused_total", "Stream entries the destination refused, by destination."),
    (Counter, "geokv_stream_applied_total", "Stream entries applied here, by source datacenter and lane."),
    // Anti-entropy.
    (Counter, "geokv_repair_recorded_total", "Keys recorded for anti-entropy instead of a hint, by destination."),
    (Counter, "geokv_repair_records_quarantined_total", "Anti-entropy record keys that did not parse, set aside so they hold nothing up."),
    (Gauge, "geokv_repair_pending", "Recorded ranges waiting for an anti-entropy session."),
    (Gauge, "geokv_repair_running", "1 while an anti-entropy sweep runs."),
    (Counter, "geokv_repair_sessions_total", "Merkle-tree comparisons run."),
    (Counter, "geokv_repair_leaves_differing_total", "Merkle leaves found different by anti-entropy."),
    (Counter, "geokv_repair_keys_streamed_total", "Keys streamed by anti-entropy, by direction: pages applied in full (a page a peer refused as planned on an older layout is not counted, though some of its rows may have been applied there)."),
    (Counter, "geokv_repair_failures_total", "Anti-entropy sessions that failed."),
    // Engine (written by the engine itself).
    (Counter, "geokv_quarantined_operands_total", "Stored merge operands that did not decode and were set aside."),
    (Counter, "geokv_engine_write_stalls_total", "Writes RocksDB would have stalled (flushes or compactions behind), written again off the async workers."),
    (Counter, "geokv_engine_read_cache_misses_total", "Point reads the memtables and block cache could not answer, read again from the files off the async workers."),
    // Membership.
    (Gauge, UP_GAUGE, "1 if this node believes the node is up, else 0."),
    (Gauge, PHI_GAUGE, "Current phi-accrual suspicion of the node."),
    (Counter, TRANSITIONS_COUNTER, "Up/down verdict changes of the node."),
    // Cluster layout and range movements.
    (Gauge, "geokv_layout_version", "Version of the cluster layout this node is on."),
    (Counter, crate::view::guard::REFUSED_METRIC, "Layouts not installed on one peer's word, by reason: accepted_other (this node's acceptor accepted another layout of that version, and no proof of choice above it came with it), wrong_prev (built on another layout of the version in force), skips_accepted (it skips a version in which this node's acceptor accepted a layout). Installed once a quorum of its voters shows it."),
    (Counter, "geokv_layout_forks_total", "Layouts refused because another layout of the same version is in force (a fork)."),
    (Gauge, "geokv_pending_ranges", "Token ranges with pending replicas in the layout in force."),
    (Counter, "geokv_stream_keys_total", "Keys streamed by range movements: pulled by a joiner, pushed by a leaving node."),
    (Counter, "geokv_stream_bytes_total", "Bytes streamed by range movements: pulled by a joiner, pushed by a leaving node."),
    (Gauge, "geokv_stream_throughput_cap_bytes_per_second", "This node's cap on the bytes per second its range movements stream together (--stream-throughput-mib, PUT /stream-throughput); 0 means no cap."),
    (Counter, "geokv_stream_throttled_total", "Stream pages after which the node's throughput cap made its movement wait."),
    (Gauge, "geokv_stream_ranges_remaining", "Ranges a movement still has to stream to (join) or from (decommission) this node."),
    (Counter, "geokv_cleanup_ranges_total", "Token ranges dropped by cleanup because this node no longer replicates them."),
    (Counter, "geokv_cleanup_keys_total", "Keys deleted by cleanup (in ranges this node no longer replicates)."),
    (Counter, "geokv_cleanup_bytes_total", "Bytes (key + record) deleted by cleanup."),
    // TLS.
    (Counter, crate::transport::tls::REFUSED_METRIC, "Connections or calls refused by TLS, by port and reason."),
    (Gauge, crate::transport::tls::OPEN_METRIC, "Connections open on a gRPC or admin port (established or handshaking), by port."),
    (Counter, crate::transport::tls::CAP_REFUSED_METRIC, "Connections closed as soon as accepted, by port and reason: connections (the port had its cap open: --client-max-connections on the client port, 4096 on the peer port), connections_per_address (the remote address had its own: --client-max-connections-per-address, 1024 on the peer port), handshakes_per_address (the address had its TLS handshakes in progress: --client-max-handshakes-per-address on the client port, 32 on the peer port)."),
    (Counter, crate::transport::tls::RELOADS_METRIC, "Reloads of certificates and keys from disk (their files changed, or SIGHUP), by outcome: ok, or error (the files do not load; the previous ones stay in use)."),
    (Gauge, crate::transport::tls::EXPIRY_METRIC, "When each certificate this node loaded expires (its not-after), in Unix seconds, by kind: node (the soonest of the chain it presents, its own certificate and any intermediates), ca (the soonest of the CA file's)."),
    // Authentication (security::auth).
    (Counter, crate::security::auth::DENIED_METRIC, "Requests refused by authentication or authorization, by reason (missing, malformed, bad_token, unknown_role, permission, throttled: too many failed authentications from the address, unverified: a verification that ended without a verdict)."),
    (Gauge, "geokv_auth_version", "Wall time (ms) of the newest change to the replicated roles and permissions in force on this node (equal on converged nodes)."),
    (Gauge, "geokv_auth_verifications_running", "argon2 token verifications running now (at most two at once; calls past them wait)."),
    (Counter, "geokv_auth_states_refused_total", "Peer auth states refused, by reason (clock_ahead: its clock is more than 60 s ahead of this node's; check NTP)."),
    (Counter, crate::security::auth::CHANGES_REFUSED, "Auth changes refused on this node before anything was stamped, by reason (clock_skew: this node's clock is more than 60 s ahead of or behind most of the members'; fix it with NTP or chrony; not_heard: fewer than a quorum of the members heard since this node started; not_within: a quorum heard, but fewer than a quorum known within 60 s since this node started, a far member up and members down since then counting as not within; both answered 503 and passing once a quorum of the members is reachable and within, seconds when it is; clock_ahead: this node's clock is more than 60 s behind its own newest stamp; clock_exhausted: that stamp is the largest there is; both 409)."),
    (Counter, crate::security::auth::spread::CHANGES_ANSWERED, "Auth changes made on this node and answered, by outcome: acknowledged (200: a quorum of the members holds it), short_of_quorum (503 made on this node: in force on fewer, not rolled back, still spreading), superseded (409: applied, then undone by a later change of the same role or grant that a peer or this node holds), failed (500: the save failed or its task was lost; it may have been made)."),
    (Gauge, crate::security::auth::peer_clocks::OFFSET_METRIC, "Each member's wall clock minus this node's, in seconds, as last measured on an auth sync (by peer; within half the round trip; a peer removed from the layout is not shown). A change made on a node more than 60 s ahead of or behind most of the members is refused."),
    // Build.
    (Gauge, "geokv_build_info", "Always 1; the labels say which build runs."),
];

/// Describes every family of [`FAMILIES`] and the engine's, and sets
/// `geokv_build_info`. Call once the recorder is installed.
pub fn describe_all() {
    for &(kind, name, help) in FAMILIES.iter().chain(super::collect::FAMILIES) {
        match kind {
            Counter => metrics::describe_counter!(name, help),
            Gauge => metrics::describe_gauge!(name, help),
            Histogram => metrics::describe_histogram!(name, help),
        }
    }
    metrics::gauge!(
        "geokv_build_info",
        "version" => env!("CARGO_PKG_VERSION"),
        "profile" => if cfg!(debug_assertions) { "debug" } else { "release" },
    )
    .set(1.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every metric macro in the source that names a `geokv_` family by a
    /// string literal is described here, so no family reaches `/metrics`
    /// without HELP (the node test only sees the families one run emits).
    #[test]
    fn every_family_named_in_the_source_is_described() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).expect("src") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(p);
                }
            }
        }
        let described: std::collections::BTreeSet<&str> = FAMILIES
            .iter()
            .chain(super::super::collect::FAMILIES)
            .map(|f| f.1)
            .collect();
        let mut files = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        let mut missing = std::collections::BTreeSet::new();
        for f in &files {
            let text = std::fs::read_to_string(f).expect("source");
            for mac in ["counter!(", "gauge!(", "histogram!("] {
                for (i, _) in text.match_indices(mac) {
                    let rest = text[i + mac.len()..].trim_start();
                    let Some(rest) = rest.strip_prefix("\"geokv_") else {
                        continue;
                    };
                    let name = format!("geokv_{}", rest.split('"').next().unwrap_or(""));
                    if !described.contains(name.as_str()) {
                        missing.insert(format!("{name} ({})", f.display()));
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "emitted without a description: {missing:?}"
        );
    }

    #[test]
    fn families_are_described_once_with_conventional_names() {
        let mut seen = std::collections::BTreeSet::new();
        for &(kind, name, help) in FAMILIES.iter().chain(super::super::collect::FAMILIES) {
            assert!(seen.insert(name), "{name} described twice");
            assert!(name.starts_with("geokv_"), "{name}");
            assert!(!help.is_empty());
            assert_eq!(
                kind == Counter,
                name.ends_with("_total"),
                "{name}: counters and only counters end in _total"
            );
        }
    }
}
