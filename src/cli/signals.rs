//! The node process's signals, on a thread and a runtime of their own:
//! SIGINT or SIGTERM starts the graceful stop, a second one ends the
//! process at once with 128 + it, and a stop still running after
//! [`STOP_BOUND`] ends it with 1 (no clean-shutdown marker either way: the
//! next start recovers in full).
//!
//! Why not a task of the node's runtime: an engine write that runs inline
//! on an async worker (`--durability periodic`) and hangs (a hung disk, the
//! `stall-next-write` fault) parks that worker; if it had just taken over
//! from tokio's I/O driver while the other workers slept on their condvar,
//! nobody polls the driver any more, and no I/O, timer or signal of the
//! node's runtime is served until something outside the runtime wakes a
//! worker (found with gdb on the exit-path tests: one worker in the engine
//! call, the other in `park_condvar`, the SIGTERM never seen). So this
//! thread also wakes the node's runtime every [`NUDGE`] with an empty task:
//! a worker that has nothing to do then parks on the free driver again, and
//! the node serves (one worker short) until the write returns or the node
//! stops.
//!
//! Must not: stop the node itself (its `stop` receiver does that), touch
//! the engine, or run anything after `_exit`.

use std::time::Duration;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;

/// How long a graceful stop may take before the process ends with 1 all
/// the same: well above the drain, the replica close and the runtime's
/// stop together (5 + 1 + 3 + 2 s), below a supervisor's patience.
pub const STOP_BOUND: Duration = Duration::from_secs(30);

/// How often the node's runtime is woken from outside.
pub const NUDGE: Duration = Duration::from_secs(1);

/// SIGINT and SIGTERM, registered once.
struct Signals {
    int: Signal,
    term: Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    /// The next SIGINT or SIGTERM, by number.
    async fn next(&mut self) -> i32 {
        tokio::select! {
            _ = self.int.recv() => libc::SIGINT,
            _ = self.term.recv() => libc::SIGTERM,
        }
    }
}

/// Starts the signal thread: `stop` gets `true` on the first signal;
/// `node` (the node's runtime) is woken every [`NUDGE`]. Returns once the
/// handlers are in place.
pub fn watch(stop: watch::Sender<bool>, node: tokio::runtime::Handle) -> std::io::Result<()> {
    let (ready, installed) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("geokv-signals".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return drop(ready.send(Err(e))),
            };
            let signals = match rt.block_on(async { Signals::new() }) {
                Ok(s) => s,
                Err(e) => return drop(ready.send(Err(e))),
            };
            let _ = ready.send(Ok(()));
            rt.block_on(listen(signals, stop, node))
        })?;
    // A moment at start: the thread builds a runtime and two handlers.
    installed
        .recv()
        .map_err(|_| std::io::Error::other("the signal thread ended"))?
}

async fn listen(
    mut signals: Signals,
    stop: watch::Sender<bool>,
    node: tokio::runtime::Handle,
) -> ! {
    let mut nudge = tokio::time::interval(NUDGE);
    let first = loop {
        tokio::select! {
            s = signals.next() => break s,
            _ = nudge.tick() => drop(node.spawn(async {})),
        }
    };
    tracing::info!(
        signal = first,
        "stopping gracefully (a second signal stops at once)"
    );
    let _ = stop.send(true);
    let bound = tokio::time::sleep(STOP_BOUND);
    tokio::pin!(bound);
    loop {
        tokio::select! {
            second = signals.next() => {
                tracing::error!(
                    signal = second,
                    "second signal: exiting at once, without the graceful shutdown \
                     (no clean-shutdown marker: the next start is an unclean one)"
                );
                exit_now(128 + second)
            }
            _ = &mut bound => {
                tracing::error!(
                    bound_secs = STOP_BOUND.as_secs(),
                    "the graceful stop did not end within its bound: exiting with 1 \
                     (no clean-shutdown marker: the next start is an unclean one)"
                );
                exit_now(1)
            }
            _ = nudge.tick() => drop(node.spawn(async {})),
        }
    }
}

/// Ends the process at once, as `cli::node::leave` does: no destructors
/// beside RocksDB's threads.
fn exit_now(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` ends the process without running anything else.
    unsafe { libc::_exit(code) }
}
