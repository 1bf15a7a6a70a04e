//! A read-your-writes oracle across clients for the movement tests:
//! LOCAL_QUORUM writers that log each acknowledgement with its instant and
//! datacenter, and LOCAL_QUORUM readers in each datacenter that read keys
//! acknowledged in that datacenter *before the read started* and count a
//! read that does not return the key's value as a miss. A write that
//! failed or timed out is unknown (maybe applied): never logged, so never
//! read as if it must be there. A read that fails is counted apart, not as
//! a miss. Must not: decide what a test tolerates; it reports.

use super::kv::{get, values, write_until, Kv};
use geokv::proto::v1::Consistency;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// One acknowledged write: its datacenter, key and the instant the
/// acknowledgement came back.
#[derive(Clone, Debug)]
pub struct Ack {
    pub dc: String,
    pub key: String,
    pub at: Instant,
}

/// Every acknowledged write of the writers, in acknowledgement order.
#[derive(Default)]
pub struct Acks(Mutex<Vec<Ack>>);

impl Acks {
    /// Keys acknowledged so far (optionally only in `dc`).
    pub fn keys(&self, dc: Option<&str>) -> Vec<String> {
        let g = self.0.lock();
        let all = g.iter().filter(|a| dc.is_none_or(|d| a.dc == d));
        all.map(|a| a.key.clone()).collect()
    }

    /// A key acknowledged in `dc` before now: the newest one on even
    /// turns (the likeliest to be missed), an older one spread by `turn`
    /// on odd turns; with its acknowledgement instant.
    fn pick(&self, dc: &str, turn: usize) -> Option<Ack> {
        let g = self.0.lock();
        let mine: Vec<&Ack> = g.iter().rev().filter(|a| a.dc == dc).take(4096).collect();
        if mine.is_empty() {
            return None;
        }
        let i = if turn % 2 == 0 {
            0
        } else {
            turn.wrapping_mul(7919) % mine.len()
        };
        Some(mine[i].clone())
    }
}

/// What the readers of one datacenter saw.
#[derive(Debug, Default)]
pub struct ReadLog {
    pub reads: usize,
    /// Reads that failed (timeout, unavailable): no verdict.
    pub errors: usize,
    /// Reads that answered without a value acknowledged before they began:
    /// `key: what was read, ms between the ack and the read's start`.
    pub misses: Vec<String>,
}

/// Writes unique keys `{tag}-{i}` (value = key) at LOCAL_QUORUM through
/// `clients` in turn until `stop`, logging each acknowledgement in `acks`
/// under `dc`.
pub async fn logged_writer(
    clients: Vec<Kv>,
    dc: &str,
    tag: String,
    acks: Arc<Acks>,
    stop: Arc<AtomicBool>,
) {
    write_until(clients, &tag, &stop, |key| {
        let at = Instant::now();
        let dc = dc.to_string();
        acks.0.lock().push(Ack { dc, key, at });
    })
    .await;
}

/// Reads, at LOCAL_QUORUM through `clients` in turn until `stop`, keys
/// acknowledged in `dc` before each read starts.
pub async fn reader(
    mut clients: Vec<Kv>,
    dc: &str,
    acks: Arc<Acks>,
    stop: Arc<AtomicBool>,
) -> ReadLog {
    let mut log = ReadLog::default();
    let mut turn = 0usize;
    while !stop.load(Ordering::Relaxed) {
        turn += 1;
        let Some(ack) = acks.pick(dc, turn) else {
            tokio::task::yield_now().await;
            continue;
        };
        let began = Instant::now();
        let k = clients.len();
        log.reads += 1;
        match get(&mut clients[turn % k], &ack.key, Consistency::LocalQuorum).await {
            Err(_) => log.errors += 1,
            Ok(r) if values(&r) == vec![ack.key.clone()] => {}
            Ok(r) => {
                let gap = began.duration_since(ack.at).as_millis();
                log.misses.push(format!(
                    "{}: read {:?}, {gap} ms after its ack",
                    ack.key,
                    values(&r)
                ));
            }
        }
    }
    log
}
