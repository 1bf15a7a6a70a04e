//! The resource bounds of a node's gRPC ports, in one place with their
//! defaults: connections open at once, HTTP/2 streams and concurrent
//! requests per connection on the client and peer ports, message sizes, and the node-wide bound on client
//! requests in flight (`api::admission`) and request bytes in flight
//! (`api::shed`), and the client port's handler timeout. Applying them to a tonic server
//! builder is here too, with the status of a message over the size bound
//! ([`oversize_status`]), and the start-up check of the bounds that depend
//! on each other ([`ServerLimits::check`]). Must not decide about single
//! requests.

use crate::api::admission::AdmissionConfig;

/// Bounds of one gRPC port: its connections, and per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortLimits {
    /// Connections open at once (established or handshaking); one past it
    /// is closed as soon as it is accepted, and counted
    /// (`geokv_connections_refused_total{port}`). Unlike Cassandra's
    /// default (no bound), bounded: each connection may hold its streams'
    /// buffers.
    pub max_connections: usize,
    /// Connections open at once from one remote address; one past it is
    /// closed as soon as it is accepted and counted
    /// (`geokv_connections_refused_total{port,reason="connections_per_address"}`), so
    /// one host cannot hold every place. A quarter of the port's cap by
    /// default, where Cassandra's and ScyllaDB's
    /// `native_transport_max_concurrent_connections_per_ip` is unbounded:
    /// clients behind one NAT share it and may need it raised.
    pub max_connections_per_address: usize,
    /// TLS handshakes in progress at once from one remote address; one past
    /// it is closed as soon as it is accepted and counted
    /// (`reason="handshakes_per_address"`). 32 by default (of the port's
    /// 256); clients behind one SNAT reconnecting after a restart may need
    /// it raised (`--client-max-handshakes-per-address`; the peer port's
    /// stays 32).
    pub max_handshakes_per_address: usize,
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
    /// Node-wide bytes of client request bodies in flight (`api::shed`;
    /// 0: no bound), as Cassandra's
    /// `native_transport_max_request_data_in_flight`.
    pub client_bytes_in_flight: usize,
    /// The longest a client call may take, its body's arrival included
    /// (`api::shed`), as the peer port's handler timeout.
    pub client_handler_timeout: std::time::Duration,
    /// The longest a client call's body may take to arrive in full
    /// (`api::shed`; review-shed32 M1).
    pub client_body_timeout: std::time::Duration,
    /// What one remote address may hold of the client port's requests and
    /// request bytes in flight (`api::shed`; review-shed32 M1), as
    /// Cassandra's `native_transport_max_request_data_in_flight_per_ip`:
    /// as set, or a quarter of the node-wide bounds ([`Self::client_share`]).
    pub client_share: crate::api::shed::ShareConfig,
}

/// Bounds that contradict each other, refused at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    #[error("--client-max-request-bytes-in-flight{per} {budget} is below the largest client message ({message} bytes) plus its 5-byte gRPC prefix: such a request could never be admitted; set it to at least {needed}, or 0 for no bound")]
    BudgetBelowMessage {
        /// "" or "-per-address".
        per: &'static str,
        budget: usize,
        message: usize,
        needed: usize,
    },
    #[error("--client-handler-timeout-ms {handler_ms} is not above the longest deadline of a client call ({longest_ms} ms: the 60 s maximum a client may ask for, or --default-timeout-ms if longer), so legitimate calls would be cut; raise it")]
    HandlerTimeoutTooShort { handler_ms: u128, longest_ms: u128 },
}

/// The gRPC prefix of a message (compression flag, 4-byte length).
const GRPC_PREFIX: usize = 5;

impl ServerLimits {
    /// One client address's share of the node-wide bounds: the flags, or
    /// a quarter of each bound (none where the node has none; review-shed33
    /// M3).
    pub fn client_share(&self) -> crate::api::shed::ShareLimits {
        let message = self.client.max_decoding_bytes + GRPC_PREFIX;
        let (requests, bytes) = (self.admission.max_in_flight, self.client_bytes_in_flight);
        self.client_share.limits(requests, bytes, message)
    }

    /// Refuses a byte budget a message of the largest size cannot fit in
    /// (review-shed32 M2), and a handler timeout at or under the longest
    /// deadline of a client call, `default_timeout` (a call that gives
    /// none) or `api::MAX_TIMEOUT` (review-shed32 L4).
    pub fn check(&self, default_timeout: std::time::Duration) -> Result<(), LimitsError> {
        let message = self.client.max_decoding_bytes;
        let needed = message + GRPC_PREFIX;
        let budgets = [
            ("", self.client_bytes_in_flight),
            ("-per-address", self.client_share().bytes),
        ];
        if let Some((per, budget)) = budgets.into_iter().find(|(_, b)| *b != 0 && *b < needed) {
            return Err(LimitsError::BudgetBelowMessage {
                per,
                budget,
                message,
                needed,
            });
        }
        let longest = default_timeout.max(crate::api::MAX_TIMEOUT);
        if self.client_handler_timeout <= longest {
            return Err(LimitsError::HandlerTimeoutTooShort {
                handler_ms: self.client_handler_timeout.as_millis(),
                longest_ms: longest.as_millis(),
            });
        }
        Ok(())
    }
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            client: PortLimits {
                max_connections: crate::transport::tls::MAX_CONNECTIONS,
                max_connections_per_address: crate::transport::tls::MAX_CONNECTIONS_PER_ADDRESS,
                max_handshakes_per_address: crate::transport::tls::MAX_HANDSHAKES_PER_ADDRESS,
                max_concurrent_streams: 256,
                concurrency_per_connection: 256,
                max_decoding_bytes: 8 << 20,
                max_encoding_bytes: 64 << 20,
            },
            peer: PortLimits {
                max_connections: crate::transport::tls::MAX_CONNECTIONS,
                max_connections_per_address: crate::transport::tls::MAX_CONNECTIONS_PER_ADDRESS,
                max_handshakes_per_address: crate::transport::tls::MAX_HANDSHAKES_PER_ADDRESS,
                max_concurrent_streams: 2048,
                concurrency_per_connection: 2048,
                // The sender's own check (`encoded::within_limit`) refuses a
                // replica write over this before sending it: one constant.
                max_decoding_bytes: crate::transport::encoded::MAX_MESSAGE_BYTES,
                max_encoding_bytes: crate::transport::encoded::MAX_MESSAGE_BYTES,
            },
            admission: AdmissionConfig::default(),
            client_bytes_in_flight: crate::api::shed::DEFAULT_MAX_BYTES_IN_FLIGHT,
            client_handler_timeout: crate::api::shed::DEFAULT_HANDLER_TIMEOUT,
            client_body_timeout: crate::api::shed::DEFAULT_BODY_TIMEOUT,
            client_share: crate::api::shed::ShareConfig::default(),
        }
    }
}

impl PortLimits {
    /// The caps the port's acceptor applies (handshakes at once: the
    /// acceptor's, 256).
    pub fn caps(&self) -> crate::transport::tls::Caps {
        crate::transport::tls::Caps {
            connections: self.max_connections,
            connections_per_address: self.max_connections_per_address,
            handshakes_per_address: self.max_handshakes_per_address,
        }
    }

    /// `builder` with this port's stream and concurrency bounds.
    pub fn apply<L>(&self, builder: tonic::transport::Server<L>) -> tonic::transport::Server<L> {
        // A connection whose peer vanished (a NAT dropped it, a host died)
        // stops answering pings and is closed, giving its place under the
        // connection cap back (review-sec27 M2).
        builder
            .max_concurrent_streams(self.max_concurrent_streams)
            .concurrency_limit_per_connection(self.concurrency_per_connection)
            .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(std::time::Duration::from_secs(20)))
    }
}

/// tonic refuses a message over `max_decoding_message_size` with
/// `OUT_OF_RANGE`; the gRPC status code table (and grpc-go, grpc-java)
/// say `RESOURCE_EXHAUSTED` for "request message larger than max receive
/// size", which is what a client's error handling expects. The refusal
/// comes before any handler runs (nothing is applied), as a trailers-only
/// answer, so its headers are rewritten here; every other answer passes
/// untouched. A layer for both gRPC servers
/// (`tower::util::MapResponseLayer::new(oversize_status)`).
pub fn oversize_status(
    mut res: tonic::codegen::http::Response<tonic::body::Body>,
) -> tonic::codegen::http::Response<tonic::body::Body> {
    let headers = res.headers_mut();
    let out_of_range = headers
        .get("grpc-status")
        .is_some_and(|s| s.as_bytes() == b"11");
    let too_large = headers.get("grpc-message").is_some_and(|m| {
        let m = m.as_bytes();
        m.windows(9).any(|w| w == b"too large") || m.windows(11).any(|w| w == b"too%20large")
    });
    if out_of_range && too_large {
        let code = tonic::Code::ResourceExhausted as i32;
        headers.insert("grpc-status", code.to_string().parse().expect("digits"));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::codegen::http::Response;

    fn answered(status: tonic::Status) -> tonic::Code {
        let res = oversize_status(status.into_http::<tonic::body::Body>());
        tonic::Status::from_header_map(res.headers())
            .expect("a status")
            .code()
    }

    #[test]
    fn only_tonics_oversize_refusal_becomes_resource_exhausted() {
        let oversize = tonic::Status::out_of_range(
            "Error, decoded message length too large: found 9 bytes, the limit is: 8 bytes",
        );
        assert_eq!(answered(oversize), tonic::Code::ResourceExhausted);
        let other = tonic::Status::out_of_range("past the end of the range");
        assert_eq!(answered(other), tonic::Code::OutOfRange);
        let ok = oversize_status(Response::new(tonic::body::Body::empty()));
        assert!(ok.headers().get("grpc-status").is_none());
    }

    #[test]
    fn a_budget_under_one_framed_message_is_refused_at_start_up() {
        let secs = std::time::Duration::from_secs;
        let mut l = ServerLimits::default();
        assert_eq!(l.check(secs(10)), Ok(()), "the defaults fit");
        l.client_bytes_in_flight = 8 << 20;
        let needed = (8 << 20) + 5;
        let refused = l.check(secs(10)).expect_err("8 MiB + 5 needed");
        assert!(
            matches!(refused, LimitsError::BudgetBelowMessage { needed: n, .. } if n == needed)
        );
        l.client_bytes_in_flight = needed;
        assert_eq!(l.check(secs(10)), Ok(()));
        l.client_bytes_in_flight = 0;
        assert_eq!(l.check(secs(10)), Ok(()), "0: no bound");
        l.client_share.bytes = Some(1 << 20);
        let per = l.check(secs(10)).expect_err("the share too");
        assert!(matches!(
            per,
            LimitsError::BudgetBelowMessage {
                per: "-per-address",
                ..
            }
        ));
    }

    #[test]
    fn a_handler_timeout_not_above_the_longest_deadline_is_refused() {
        let secs = std::time::Duration::from_secs;
        assert!(crate::api::shed::DEFAULT_HANDLER_TIMEOUT > crate::api::MAX_TIMEOUT);
        let mut l = ServerLimits {
            client_handler_timeout: secs(30),
            ..Default::default()
        };
        let short = LimitsError::HandlerTimeoutTooShort {
            handler_ms: 30_000,
            longest_ms: 60_000,
        };
        assert_eq!(l.check(secs(10)), Err(short));
        l.client_handler_timeout = secs(65);
        let long_default = LimitsError::HandlerTimeoutTooShort {
            handler_ms: 65_000,
            longest_ms: 90_000,
        };
        assert_eq!(l.check(secs(90)), Err(long_default));
        assert_eq!(l.check(secs(60)), Ok(()));
    }

    /// review-shed33 M3: the per-address share follows the node-wide
    /// bounds (a quarter of each; none where they have none), so a fleet
    /// behind one proxy address is not capped at a fixed 512 requests.
    #[test]
    fn the_address_share_is_a_quarter_of_the_node_wide_bounds() {
        use crate::api::shed::ShareLimits;
        let share = |requests, bytes| {
            let mut l = ServerLimits::default();
            (l.admission.max_in_flight, l.client_bytes_in_flight) = (requests, bytes);
            l.client_share()
        };
        let (requests, bytes) = (512, 64 << 20);
        assert_eq!(
            ServerLimits::default().client_share(),
            ShareLimits { requests, bytes }
        );
        let (requests, bytes) = (2048, 256 << 20);
        assert_eq!(share(8192, 1 << 30), ShareLimits { requests, bytes });
        let none = ShareLimits {
            requests: 0,
            bytes: 0,
        };
        assert_eq!(share(0, 0), none, "no node-wide bound: no share");
        // Never 0 (none) from a small bound, never under one message.
        let message = (8 << 20) + 5;
        let (requests, bytes) = (1, message);
        assert_eq!(share(2, message), ShareLimits { requests, bytes });
        let mut l = ServerLimits::default();
        l.admission.max_in_flight = 0;
        l.client_share.requests = Some(7);
        l.client_share.bytes = Some(0);
        let (requests, bytes) = (7, 0);
        assert_eq!(
            l.client_share(),
            ShareLimits { requests, bytes },
            "the flags win"
        );
    }
}

#[cfg(test)]
#[path = "limits_tests.rs"]
mod socket_tests;
