//! Counts per remote address of one port (connections open, handshakes in
//! progress) under a cap, so that one host cannot take every place of the
//! port and stall other clients' and peers' new connections (note27 "Left
//! (issue 12)"). A count is held by a guard and given back when it drops;
//! an address whose count is back to zero is forgotten, so the table holds
//! only addresses with something open.
//!
//! Must not: decide what a refusal means for the connection (the acceptor
//! closes it and counts it).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

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
