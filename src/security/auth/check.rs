//! The checks the client API and the admin port call ([`Auth::check`],
//! [`Auth::check_from`]) and how a request's address is throttled: an
//! address with too many failed authentications is refused before its
//! secret is verified, and every argon2 run for it counts **before** it
//! runs, settled when its verdict is good (review-lead27 H1): a caller
//! that gives up while argon2 runs (its own `grpc-timeout`, a reset
//! stream) has spent one of its attempts, so one address cannot start
//! more runs than its burst by never waiting for the verdicts.
//!
//! Must not: verify secrets (`verify`) or cache verdicts (`Auth::verify`).

use super::{throttle::Throttle, Auth, AuthError, Credential, Perm, Verified, DENIED_METRIC};
use parking_lot::Mutex;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The refusal of a throttled address that may try again after `wait`.
fn throttled(addr: IpAddr, wait: Duration) -> AuthError {
    AuthError::Throttled {
        addr,
        retry_after_secs: wait.as_secs_f64().ceil() as u64,
    }
}

/// Gives back the attempt of a run that ended good, or without a verdict
/// (called by the task that finishes a verdict, which outlives its caller).
pub(super) fn settle_in(throttle: &Mutex<Throttle>, from: Option<IpAddr>) {
    if let Some(addr) = from {
        throttle.lock().refund(addr, Instant::now());
    }
}

impl Auth {
    /// Authenticates `cred` and, with `need = Some((keyspace, perm))`,
    /// authorizes it; counts a refusal in [`DENIED_METRIC`]. Always `Ok`
    /// (with an empty role) when this node does not enforce.
    pub async fn check(
        &self,
        cred: &Credential,
        need: Option<(&str, Perm)>,
    ) -> Result<String, AuthError> {
        self.check_from(cred, need, None).await
    }

    /// [`Auth::check`] for a request from `from`: an address with too many
    /// failed authentications ([`super::throttle`]) is refused with
    /// [`AuthError::Throttled`] before its secret is verified, unless its
    /// token is already known good; wrong secrets, unknown roles and
    /// argon2 runs whose caller gave up count.
    pub async fn check_from(
        &self,
        cred: &Credential,
        need: Option<(&str, Perm)>,
        from: Option<IpAddr>,
    ) -> Result<String, AuthError> {
        if !self.enabled {
            return Ok(String::new());
        }
        if let Some(addr) = from.filter(|_| !self.known_good(cred)) {
            if let Some(wait) = self.throttle.lock().check(addr, Instant::now()) {
                let e = throttled(addr, wait);
                metrics::counter!(DENIED_METRIC, "reason" => e.reason()).increment(1);
                return Err(e);
            }
        }
        let res = match self.authenticate_from(cred, from).await {
            Ok(role) => match need {
                Some((ks, perm)) => self.authorize(&role, ks, perm).map(|_| role),
                None => Ok(role),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = &res {
            metrics::counter!(DENIED_METRIC, "reason" => e.reason()).increment(1);
        }
        res
    }

    /// A certificate (verified by TLS), or a token verified good under the
    /// state in force.
    fn known_good(&self, cred: &Credential) -> bool {
        match cred {
            Credential::Certificate(_) => true,
            Credential::Bearer(t) => matches!(
                self.cache.lock().get(self.snapshot().0, &t.render()),
                Some(Verified::Role(_))
            ),
            _ => false,
        }
    }

    /// Counts an attempt from `from` before argon2 runs for it: refused if
    /// the address has none left (other attempts took them meanwhile).
    pub(super) fn attempt(&self, from: Option<IpAddr>) -> Result<(), AuthError> {
        let Some(addr) = from else { return Ok(()) };
        match self.throttle.lock().take(addr, Instant::now()) {
            None => Ok(()),
            Some(wait) => Err(throttled(addr, wait)),
        }
    }

    /// Counts a failure from `from` that ran no argon2 (an unknown role, a
    /// role without a secret, a token already known bad).
    pub(super) fn failed(&self, from: Option<IpAddr>) {
        if let Some(addr) = from {
            self.throttle.lock().failed(addr, Instant::now());
        }
    }
}
