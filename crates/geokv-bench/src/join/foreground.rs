//! The join scenario's foreground load: an open loop at a fixed rate of
//! LOCAL_QUORUM operations, alternately a read of a loaded key (uniform) and
//! a put of a fresh key, each timed from the instant it was due (so a stall
//! counts against every operation it delayed). Runs until told to stop and
//! returns every [`Sample`]; the scenario cuts them into windows.
//!
//! Must not decide the windows or start the cluster.
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use tokio::sync::{watch, Semaphore};

use super::math::Sample;
use crate::keys::key_name;
use geokv::client::Client;
use geokv::consistency::ConsistencyLevel;

/// Operations in flight beyond which a due operation is counted as failed
/// (the cluster has stalled; queueing more would only hide it).
const MAX_IN_FLIGHT: usize = 512;

/// Bytes of each foreground put.
const PUT_SIZE: usize = 100;

/// Runs until `stop` turns true; the samples in order of due time.
pub async fn run(
    client: Client,
    rate: f64,
    keys: u64,
    started: Instant,
    mut stop: watch::Receiver<bool>,
) -> Vec<Sample> {
    let samples = Arc::new(Mutex::new(Vec::new()));
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0u64.. {
        let due = interval.mul_f64(i as f64);
        tokio::select! {
            _ = tokio::time::sleep_until((started + due).into()) => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            samples.lock().push(Sample {
                due,
                latency_us: 0,
                ok: false,
            });
            continue;
        };
        let (client, samples) = (client.clone(), samples.clone());
        let record = rng.random_range(0..keys.max(1));
        tasks.spawn(async move {
            let ok = one(&client, i, record).await;
            let latency_us = (started + due).elapsed().as_micros() as u64;
            samples.lock().push(Sample {
                due,
                latency_us,
                ok,
            });
            drop(slot);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let mut out = std::mem::take(&mut *samples.lock());
    out.sort_by_key(|s| s.due);
    out
}

/// Operation `i`: a read of `record` when even, a put of a fresh key when odd.
async fn one(client: &Client, i: u64, record: u64) -> bool {
    let level = ConsistencyLevel::LocalQuorum;
    if i % 2 == 0 {
        client
            .get(key_name(record))
            .consistency(level)
            .await
            .is_ok()
    } else {
        client
            .put(format!("fg{i:012}"), vec![b'f'; PUT_SIZE])
            .consistency(level)
            .await
            .is_ok()
    }
}
