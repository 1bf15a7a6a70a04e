//! A decommission's gainers make what they took durable before its switch,
//! and are pushed to again when they lost it (issue 11).
//!
//! Owns [`Synced`], the check-in before a push ([`check_in`]) and the
//! confirmation after it ([`settle`]). Once the leave switches, the
//! leaver, the strict source of its ranges, is gone, so the switch must
//! not rest on pages in a gainer's unsynced WAL tail (review-elastic28
//! M1): every gainer syncs after its last page. A gainer that crashed
//! mid-push lost its unsynced tail although the leaver's cursors are past
//! it (review-elastic29 H1); it restarts under a new engine incarnation
//! (`engine::incarnation`), which each sync tells. So the incarnation the
//! pages went into is recorded with the gainer's cursors; a different one
//! (or none recorded with cursors: a leave begun on an older build,
//! review-elastic29 M1) forgets them and the gainer is pushed to again
//! from the start (pages are idempotent merges), at most
//! `cfg.max_rounds` rounds, then [`StreamError::GainerRestarted`]: the
//! leave runs again and its switch waits. A gainer that cannot tell (an
//! older build: no `SyncWal`, or no incarnation in its answer) holds the
//! switch too, [`StreamError::GainerTooOld`], as Cassandra refuses
//! streaming between mixed versions (review-final30 M1); with the
//! operator's override (`StreamConfig::allow_old_gainers`) it is passed
//! with a warning, recorded as such so a re-run resumes it. Must not push
//! pages itself ([`super::push`] does).

use super::cursor::{self, Incarnation};
use super::push::{blocking, stream_id, RangeSink, Run};
use super::rate::Rates;
use super::stream::{StreamConfig, StreamError};
use crate::engine::WriteBatch;

/// How a gainer answered [`RangeSink::sync`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Synced {
    /// What it took is durable if it took it under `incarnation` (its
    /// engine's; 0: not told, a build from before the field).
    Durable { incarnation: u64 },
    /// Its build predates the request (UNIMPLEMENTED): its pages become
    /// durable with its own periodic sync.
    Unsupported,
}

impl Synced {
    fn incarnation(self) -> Incarnation {
        match self {
            Synced::Durable { incarnation: 0 } | Synced::Unsupported => Incarnation::Unknown,
            Synced::Durable { incarnation } => Incarnation::Known(incarnation),
        }
    }
}

/// Before the push to `gainer`: syncs it and learns its incarnation; unless
/// its cursors were recorded with that one, forgets them and records it.
pub(super) async fn check_in<S: RangeSink>(
    run: &Run<'_, S>,
    gainer: &str,
) -> Result<Incarnation, StreamError> {
    let now = learn(run.sink, gainer, run.cfg).await?;
    let (e, id) = (run.engine.clone(), stream_id(run.me, gainer));
    let recorded = blocking(move || Ok(cursor::load_incarnation(&*e, &id)?)).await?;
    if recorded != Some(now) {
        if recorded.is_some() {
            tracing::warn!(
                gainer,
                ?recorded,
                ?now,
                "the gainer restarted since it took pages: pushing to it again from the start"
            );
        }
        start_over(run, gainer, now).await?;
    }
    Ok(now)
}

/// After the last page to `gainer`, which took its pages into `at`: done
/// once a sync tells the same incarnation (or, from a gainer that cannot
/// tell, passed by the operator's override, `Unknown` both times: synced,
/// passed with a warning); otherwise
/// it is pushed to again from the start. Nothing `moved` in this run: the
/// check-in's sync came after every page.
pub(super) async fn settle<S: RangeSink>(
    run: &Run<'_, S>,
    gainer: &str,
    mut at: Incarnation,
    moved: bool,
    rates: &mut Rates,
) -> Result<(), StreamError> {
    let cfg = run.cfg;
    for round in 1..=cfg.max_rounds {
        if !moved && round == 1 {
            return Ok(());
        }
        // Synced after the last page whatever the gainer can tell: one
        // that cannot tell its incarnation (a build from before the
        // field) still makes its pages durable here (review-elastic30 M1).
        let now = learn(run.sink, gainer, cfg).await?;
        if now == at {
            if at == Incarnation::Unknown {
                tracing::warn!(
                    gainer,
                    "the gainer's build cannot tell its incarnation (older), passed by --allow-old-gainers: a crash of it during the push is not detected (and one that cannot sync on request makes its pages durable at its next periodic sync)"
                );
            }
            return Ok(());
        }
        tracing::warn!(gainer, round, "the gainer restarted during the push (a new incarnation): pushing to it again from the start");
        start_over(run, gainer, now).await?;
        if round == cfg.max_rounds {
            break;
        }
        at = now;
        tokio::time::sleep(cfg.round_backoff).await;
        run.push_to(gainer, rates.of(gainer)).await?;
    }
    Err(StreamError::GainerRestarted {
        node: gainer.into(),
        rounds: cfg.max_rounds,
    })
}

/// Forgets `gainer`'s cursors and records `into` as the incarnation its
/// next pages go into, in one batch (the deletion first: the incarnation
/// key is under the forgotten prefix; review-cancel33 L5).
async fn start_over<S: RangeSink>(
    run: &Run<'_, S>,
    gainer: &str,
    into: Incarnation,
) -> Result<(), StreamError> {
    let (e, id) = (run.engine.clone(), stream_id(run.me, gainer));
    blocking(move || {
        let mut batch = WriteBatch::new();
        cursor::forget_in(&mut batch, &id);
        cursor::save_incarnation(&mut batch, &id, into);
        Ok(e.write(batch)?)
    })
    .await
}

/// Asks `gainer` to sync, retried `cfg.max_rounds` times, then
/// [`StreamError::NotSynced`]; its incarnation after the sync.
/// [`StreamError::GainerTooOld`] when it cannot tell it, unless
/// `cfg.allow_old_gainers`.
async fn learn<S: RangeSink>(
    sink: &S,
    gainer: &str,
    cfg: &StreamConfig,
) -> Result<Incarnation, StreamError> {
    let mut last = String::new();
    for round in 0..cfg.max_rounds {
        if round > 0 {
            tokio::time::sleep(cfg.round_backoff).await;
        }
        if !sink.is_up(gainer) {
            last = format!("{gainer}: believed down");
            continue;
        }
        match sink.sync(gainer).await {
            Ok(synced)
                if synced.incarnation() == Incarnation::Unknown && !cfg.allow_old_gainers =>
            {
                return Err(StreamError::GainerTooOld {
                    node: gainer.into(),
                })
            }
            Ok(synced) => return Ok(synced.incarnation()),
            Err(e) => {
                tracing::warn!(error = %e, gainer, "sync of the gainer failed; retrying");
                last = e.to_string();
            }
        }
    }
    Err(StreamError::NotSynced {
        node: gainer.into(),
        rounds: cfg.max_rounds,
        last,
    })
}
