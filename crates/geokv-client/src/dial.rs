//! How a client reaches nodes: [`Dialer`] opens the lazy channels (with the
//! builder's TLS and connect timeout), and [`Refresher`] is a client's
//! refresh state (its schedule, seeds, and the wake-up a failed connection
//! sends), which the attempt loop (`core.rs`) and the refresh task
//! (`discovery.rs`) share.
//!
//! Must not: send requests or run tasks.
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::sync::Mutex;
use tonic::transport::{Channel, Endpoint};

use crate::endpoints::NodeAddr;
use crate::refresh::Schedule;
use crate::tls::scheme_for;
use crate::{ClientError, TlsOptions};

/// Opens lazy channels to nodes with the builder's TLS and connect timeout.
#[derive(Debug, Clone)]
pub(crate) struct Dialer {
    pub tls: Option<TlsOptions>,
    pub connect_timeout: Duration,
}

impl Dialer {
    /// A lazy channel to `url` (connects on first use, reconnects by itself).
    pub fn channel(&self, url: &str) -> Result<Channel, ClientError> {
        let url = scheme_for(url, self.tls.is_some());
        let mut endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| ClientError::invalid(format!("bad endpoint {url:?}: {e}")))?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true);
        // An https endpoint without TLS settings trusts the system roots.
        let system = match &self.tls {
            None if url.starts_with("https://") => Some(TlsOptions::system_roots()?),
            _ => None,
        };
        if let Some(tls) = self.tls.as_ref().or(system.as_ref()) {
            endpoint = endpoint
                .tls_config(tls.config()?)
                .map_err(|e| ClientError::invalid(format!("TLS settings: {e}")))?;
        }
        Ok(endpoint.connect_lazy())
    }
}

/// A client's refresh state: its schedule, the seeds it falls back to, and
/// the wake-up its task waits on.
#[derive(Debug)]
pub(crate) struct Refresher {
    pub schedule: Mutex<Schedule>,
    /// Wakes the refresh task early (a connection failed).
    pub wake: Arc<tokio::sync::Notify>,
    /// Asked when no known node answers.
    pub seeds: Vec<NodeAddr>,
    pub dialer: Dialer,
}

impl Refresher {
    pub fn new(interval: Duration, seeds: Vec<NodeAddr>, dialer: Dialer) -> Self {
        Refresher {
            schedule: Mutex::new(Schedule::new(interval, Instant::now())),
            wake: Arc::new(tokio::sync::Notify::new()),
            seeds,
            dialer,
        }
    }

    /// A call could not reach a node: refresh soon.
    pub fn connection_failed(&self) {
        self.schedule.lock().connection_failed();
        self.wake.notify_one();
    }
}
