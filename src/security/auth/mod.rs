//! Authentication and authorization of clients and administrators.
//!
//! - [`model`]: roles, permissions per keyspace and the replicated
//!   [`AuthState`] (pure; the decisions are property-tested); [`cells`]:
//!   its per-cell last-write-wins merge (a CRDT: no change answered OK is
//!   lost to a concurrent one elsewhere, `merge_tests.rs`); `format.rs`:
//!   its JSON (the old versioned form still loads).
//! - [`secret`]: the token format (`authorization: Bearer ROLE:SECRET`),
//!   argon2id hashing.
//! - [`cache`]: argon2 runs once per token and state in force.
//! - [`store`]: the state in `meta`; [`sync`]: every node converges on it.
//! - [`Auth`]: a node's handle: the state in force (lock-free reads), the
//!   only ways a new state gets in ([`Auth::install`], [`Auth::change`],
//!   `changes.rs`), and [`Auth::check`], which the client API and the
//!   admin port call.
//! - [`peer_clocks`]: the peers' clock offsets; a change made on a node
//!   whose clock is more than 60 s ahead of or behind most of them is
//!   refused before it is stamped.
//! - [`throttle`]: failed authentications per client address are limited
//!   (10 in a row, then 10 a minute); past that the address gets
//!   [`AuthError::Throttled`] before any secret is verified.
//!
//! Whether a node *enforces* is its `--auth` flag ([`Auth::enabled`]); the
//! state replicates either way. A credential is a bearer token or a client
//! certificate whose identity (`geokv://client/NAME`) names a role.
//!
//! Must not: know gRPC or HTTP (callers map [`AuthError`] to
//! `UNAUTHENTICATED` / `PERMISSION_DENIED` or 401 / 403).

pub mod cache;
pub mod cells;
mod changes;
mod check;
mod errors;
mod format;
mod legacy;
pub mod model;
pub mod peer_clocks;
pub mod secret;
pub mod spread;
pub mod store;
pub mod sync;
pub mod throttle;
pub mod verify;

#[cfg(test)]
mod attempt_tests;
#[cfg(test)]
mod burst_tests;
#[cfg(test)]
mod clock_tests;
#[cfg(test)]
mod crdt_tests;
#[cfg(test)]
mod merge_tests;
#[cfg(test)]
mod mixed_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod upgrade_tests;

pub use cells::Stamp;
pub use changes::{now_ms, CHANGES_REFUSED};
pub use errors::{AuthError, AuthStateError, InstallError, MAX_OFFSET_MS};
pub use model::{AuthState, ChangeError, Decision, Draft, Perm, Role, ANY_KEYSPACE};
pub use secret::{Token, AUTHORIZATION};

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use crate::engine::Engine;
use cache::{TokenCache, Verified};

/// Counted per refusal, by `reason`.
pub const DENIED_METRIC: &str = "geokv_auth_denied_total";

/// Tokens remembered per state version.
const CACHE_CAPACITY: usize = 4096;

/// A node's auth settings (`geokv node --auth --admin-token-file ...`).
#[derive(Clone, Debug, Default)]
pub struct AuthConfig {
    /// Enforce: client calls need a credential, admin routes other than
    /// `/health` (and `/metrics` with `open_metrics`) need the admin
    /// credential. The CLI turns it on by default with TLS.
    pub enabled: bool,
    /// Creates this role (admin on `*`) on a first start ([`Auth::bootstrap`]).
    pub admin_token: Option<Token>,
    /// `/metrics` and the status page stay open while enforcing.
    pub open_metrics: bool,
}

/// What a request presented.
#[derive(Debug, Clone)]
pub enum Credential {
    None,
    /// An `authorization` value that is not `Bearer ROLE:SECRET`.
    Malformed,
    Bearer(Token),
    /// The role a verified client certificate names.
    Certificate(String),
}

/// Pushes a state changed here to peers: starts the pushes when called
/// (they run on if the answer is dropped); the answer resolves, by the
/// hook's deadline, to how far the state has spread.
pub type PushHook = Arc<dyn Fn(Arc<AuthState>) -> Spreading + Send + Sync>;

/// The ids of the cluster's other members now (the layout view): the
/// peers whose clocks a change is decided on (`peer_clocks`).
pub type MembersHook = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

/// The verdicts of a push ([`PushHook`]), once in or at the deadline.
pub type Spreading = std::pin::Pin<Box<dyn std::future::Future<Output = spread::Spread> + Send>>;

/// The state in force and its generation on this node (+ 1 on every swap:
/// the token cache's key, so a verdict never outlives the state it was
/// reached under, whatever order changes arrive in).
struct InForce {
    generation: u64,
    state: Arc<AuthState>,
}

/// A node's handle on the auth state. Cheap to share in an `Arc`.
pub struct Auth {
    enabled: bool,
    in_force: ArcSwap<InForce>,
    /// The writer id in this node's change stamps (random per process; the
    /// stamps' tie-break, [`Stamp`]).
    writer: u64,
    /// Shared with the tasks that finish verdicts ([`Auth::verify`]).
    cache: Arc<Mutex<TokenCache>>,
    engine: Option<Arc<dyn Engine>>,
    /// Serialises merge → persist → swap.
    install: Mutex<()>,
    push: OnceLock<PushHook>,
    /// The other members (unset: every peer heard counts).
    members: OnceLock<MembersHook>,
    /// Failed authentications per client address.
    throttle: Arc<Mutex<throttle::Throttle>>,
    /// The bounded argon2 runs (each ~19 MiB and tens of ms of CPU).
    verifier: verify::Verifier,
    /// Wall time (ms) of the last "clock ahead" refusal logged (0: none).
    clock_warned: std::sync::atomic::AtomicU64,
    /// Each peer's clock offset as last measured (`SyncAuth`).
    clocks: Mutex<peer_clocks::PeerClocks>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("enabled", &self.enabled)
            .field("clock", &self.state().clock())
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// A handle on `state` (persisted already), persisting later changes in
    /// `engine`; enforcing when `enabled`.
    pub fn new(enabled: bool, state: AuthState, engine: Option<Arc<dyn Engine>>) -> Auth {
        metrics::gauge!("geokv_auth_version").set(state.version() as f64);
        Auth {
            enabled,
            in_force: ArcSwap::from_pointee(InForce {
                generation: 1,
                state: Arc::new(state),
            }),
            writer: rand::random(),
            cache: Arc::new(Mutex::new(TokenCache::new(CACHE_CAPACITY))),
            engine,
            install: Mutex::new(()),
            push: OnceLock::new(),
            members: OnceLock::new(),
            throttle: Arc::new(Mutex::new(throttle::Throttle::new(Default::default()))),
            verifier: Default::default(),
            clock_warned: Default::default(),
            clocks: Default::default(),
        }
    }

    /// Loads the state persisted in `engine` (empty on a first start).
    pub fn open(enabled: bool, engine: Arc<dyn Engine>) -> Result<Auth, store::StoreError> {
        let state = store::load(&*engine)?;
        let auth = Auth::new(enabled, state, Some(engine));
        // Named in a `superseded` answer: which process made a change.
        let writer = format!("{:016x}", auth.writer);
        tracing::info!(%writer, "auth: this process stamps its changes as writer {writer}");
        Ok(auth)
    }

    /// Whether this node enforces authentication (`--auth`).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The state in force.
    pub fn state(&self) -> Arc<AuthState> {
        self.in_force.load().state.clone()
    }

    /// The state in force and its generation (the token cache's key).
    fn snapshot(&self) -> (u64, Arc<AuthState>) {
        let f = self.in_force.load();
        (f.generation, f.state.clone())
    }

    /// Sets the hook [`Auth::change`] pushes new states with (once).
    pub fn set_push(&self, hook: PushHook) {
        let _ = self.push.set(hook);
    }

    /// Sets the hook naming the other members (once): only their clock
    /// offsets decide whether a change is refused (review-clock34b M1).
    pub fn set_members(&self, hook: MembersHook) {
        let _ = self.members.set(hook);
    }

    /// The role `cred` proves, verifying a token's secret once per state
    /// version (argon2 runs on the blocking pool).
    pub async fn authenticate(&self, cred: &Credential) -> Result<String, AuthError> {
        self.authenticate_from(cred, None).await
    }

    /// [`Auth::authenticate`] of a request from `from`, whose failures and
    /// argon2 runs count towards its throttle (`check.rs`).
    async fn authenticate_from(
        &self,
        cred: &Credential,
        from: Option<IpAddr>,
    ) -> Result<String, AuthError> {
        let token = match cred {
            Credential::None => return Err(AuthError::Missing),
            Credential::Malformed => return Err(AuthError::Malformed),
            Credential::Certificate(role) => {
                if self.state().roles().contains_key(role) {
                    return Ok(role.clone());
                }
                self.failed(from);
                return Err(AuthError::UnknownRole(role.clone()));
            }
            Credential::Bearer(t) => t,
        };
        let rendered = token.render();
        let (generation, _) = self.snapshot();
        let cached = self.cache.lock().get(generation, &rendered);
        let verdict = match cached {
            Some(v) => self.known(v, from),
            None => self.verify(token, &rendered, from).await?,
        };
        match verdict {
            Verified::Role(role) => Ok(role),
            Verified::Rejected => Err(AuthError::BadToken(token.role.clone())),
        }
    }

    /// A cached verdict; a rejection counts as a failure of `from`.
    fn known(&self, v: Verified, from: Option<IpAddr>) -> Verified {
        if v == Verified::Rejected {
            self.failed(from);
        }
        v
    }

    /// Verifies `token` (not in the cache when asked) under one of the
    /// verifier's places, then caches the verdict. The state and the cache
    /// are read again once a place is free: a run before may have cached
    /// the verdict, or the state changed meanwhile (review-lead27 M1). A
    /// role unknown or without a secret takes no place. The run counts as
    /// an attempt of `from` before it starts (check.rs); a run without a
    /// verdict is not cached. The verdict is settled and cached by a task
    /// of its own, which the caller awaits: a caller that gives up mid-run
    /// does not leave a good token uncached and its attempt spent
    /// (review-conn28 M2, review-final27 L2).
    async fn verify(
        &self,
        token: &secret::Token,
        rendered: &str,
        from: Option<IpAddr>,
    ) -> Result<Verified, AuthError> {
        let secret_of = |s: &AuthState| s.roles().get(&token.role).and_then(|r| r.secret.clone());
        let (mut generation, mut state) = self.snapshot();
        let mut place = None;
        if secret_of(&state).is_some() {
            place = self.verifier.place().await;
            (generation, state) = self.snapshot();
            let cached = self.cache.lock().get(generation, rendered);
            if let Some(v) = cached {
                return Ok(self.known(v, from));
            }
        }
        match (secret_of(&state), place) {
            (Some(phc), Some(place)) => {
                self.attempt(from)?;
                let run = self.verifier.start(place, token.secret.clone(), phc);
                let (cache, throttle) = (self.cache.clone(), self.throttle.clone());
                let (version, key, role) = (generation, rendered.to_string(), token.role.clone());
                let finish = tokio::spawn(async move {
                    let Ok((good, place)) = run.await else {
                        check::settle_in(&throttle, from);
                        return None;
                    };
                    let verdict = match good {
                        true => {
                            check::settle_in(&throttle, from);
                            Verified::Role(role)
                        }
                        false => Verified::Rejected,
                    };
                    // Cached before the place is freed (a call waiting for it reads it).
                    cache.lock().put(version, &key, verdict.clone());
                    drop(place);
                    Some(verdict)
                });
                finish.await.ok().flatten().ok_or(AuthError::Unverified)
            }
            // A role unknown or without a secret (now): a place taken
            // before the secret went is held until the verdict is cached
            // too (review-final27 L3).
            (_, place) => {
                self.failed(from);
                self.cache
                    .lock()
                    .put(generation, rendered, Verified::Rejected);
                drop(place);
                Ok(Verified::Rejected)
            }
        }
    }

    /// Whether `role` may do `perm` in `keyspace` under the state in force.
    pub fn authorize(&self, role: &str, keyspace: &str, perm: Perm) -> Result<(), AuthError> {
        match self.state().decide(role, keyspace, perm) {
            Decision::Allow => Ok(()),
            Decision::UnknownRole => Err(AuthError::UnknownRole(role.to_string())),
            Decision::Deny => Err(AuthError::Denied {
                role: role.to_string(),
                keyspace: keyspace.to_string(),
                perm,
            }),
        }
    }

    /// [`Auth::authorize`] of a role authenticated earlier (the client
    /// port's layer), counting a refusal in [`DENIED_METRIC`]; always `Ok`
    /// when this node does not enforce.
    pub fn permit(&self, role: &str, keyspace: &str, perm: Perm) -> Result<(), AuthError> {
        let res = match self.enabled {
            true => self.authorize(role, keyspace, perm),
            false => Ok(()),
        };
        if let Err(e) = &res {
            metrics::counter!(DENIED_METRIC, "reason" => e.reason()).increment(1);
        }
        res
    }
}
