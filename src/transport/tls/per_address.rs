//! Counts per remote address of one port (connections open, handshakes in
//! progress) under a cap, so that one host cannot take every place of the
//! port and stall other clients' and peers' new connections (note27 "Left
//! (issue 12)"). A count is held by a guard and given back when it drops;
//! an address whose count is back to zero is forgotten, so the table holds
//! only addresses with something open.
//!
//! A connection's [`Place`] (under the port's cap and its address's) and
//! how a refusal at accept is counted ([`refuse`]) live here too.
//!
//! Must not: decide when to refuse (the acceptor does, and closes it).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use super::incoming::{CAP_REFUSED_METRIC, OPEN_METRIC};
use super::Port;
use std::net::SocketAddr;

/// How many of something each address holds, each at most `cap`.
#[derive(Debug, Clone)]
pub(super) struct PerAddress {
    cap: usize,
    held: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One held by `ip` until dropped.
#[derive(Debug)]
pub(super) struct Held {
    of: PerAddress,
    ip: IpAddr,
}

impl PerAddress {
    /// At most `cap` per address (at least one).
    pub(super) fn new(cap: usize) -> PerAddress {
        PerAddress {
            cap: cap.max(1),
            held: Arc::default(),
        }
    }

    /// One more for `ip`, unless it holds its cap.
    pub(super) fn take(&self, ip: IpAddr) -> Option<Held> {
        let mut held = self.held.lock();
        let n = held.entry(ip).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(Held {
            of: self.clone(),
            ip,
        })
    }

    /// What `ip` holds now (tests).
    #[cfg(test)]
    pub(super) fn of(&self, ip: IpAddr) -> usize {
        self.held.lock().get(&ip).copied().unwrap_or(0)
    }

    /// Addresses holding something (tests).
    #[cfg(test)]
    pub(super) fn addresses(&self) -> usize {
        self.held.lock().len()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut held = self.of.held.lock();
        if let Some(n) = held.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

/// Closes a connection refused at accept, counting it by `reason`.
pub(super) fn refuse(port: Port, reason: &'static str, remote: SocketAddr) {
    metrics::counter!(CAP_REFUSED_METRIC, "port" => port.name(), "reason" => reason).increment(1);
    tracing::debug!(port = port.name(), %remote, reason, "connection closed at accept: a cap is reached");
}

/// A connection's place under its port's cap, counted in [`OPEN_METRIC`].
pub(super) struct Place {
    _permit: tokio::sync::OwnedSemaphorePermit,
    _mine: Held,
    port: &'static str,
}

impl Place {
    /// A place among `open` and among those of `remote`'s address in
    /// `per_address`, or why there is none.
    pub(super) fn take(
        open: &Arc<tokio::sync::Semaphore>,
        per_address: &PerAddress,
        remote: SocketAddr,
        port: Port,
    ) -> Result<Place, &'static str> {
        let mine = per_address
            .take(remote.ip())
            .ok_or("connections_per_address")?;
        let permit = open
            .clone()
            .try_acquire_owned()
            .map_err(|_| "connections")?;
        metrics::gauge!(OPEN_METRIC, "port" => port.name()).increment(1.0);
        Ok(Place {
            _permit: permit,
            _mine: mine,
            port: port.name(),
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        metrics::gauge!(OPEN_METRIC, "port" => self.port).decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_holds_at_most_its_cap_and_gives_back_on_drop() {
        let per = PerAddress::new(2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = per.take(a).expect("one");
        let second = per.take(a).expect("two");
        assert!(per.take(a).is_none(), "a third from one address");
        let other = per.take(b).expect("another address is not held up");
        drop(first);
        assert_eq!(per.of(a), 1);
        let again = per.take(a).expect("a place given back is taken again");
        drop((second, again, other));
        assert_eq!(
            per.addresses(),
            0,
            "addresses with nothing open are forgotten"
        );
    }
}
