//! The stream throughput cap's tests (`throughput`): the bucket's waits,
//! a cap changed while streams sleep, the bounds on the cap. Test-only.

use super::*;
use proptest::prelude::*;

#[test]
fn no_cap_never_waits() {
    let mut b = Bucket::new(0.0);
    let t = Instant::now();
    assert_eq!(b.take(u64::MAX / 2, t), Duration::ZERO);
}

#[test]
fn a_burst_passes_then_the_debt_is_waited_off() {
    let mut b = Bucket::new(1000.0);
    let t = Instant::now();
    assert_eq!(b.take(1000, t), Duration::ZERO);
    assert_eq!(b.take(500, t), Duration::from_millis(500));
}

#[test]
fn a_lower_rate_applies_to_what_follows() {
    let mut b = Bucket::new(1000.0);
    let t = Instant::now();
    b.take(1000, t);
    b.set_rate(100.0);
    assert_eq!(b.take(100, t), Duration::from_secs(1));
}

proptest! {
    /// Whatever the page sizes, a caller that waits as told never moves
    /// more than one burst above rate x elapsed time.
    #[test]
    fn waiting_as_told_keeps_the_average_under_the_rate(
        rate in 1_000u64..10_000_000,
        pages in proptest::collection::vec(1u64..5_000_000, 1..60),
    ) {
        let mut b = Bucket::new(rate as f64);
        let start = Instant::now();
        let (mut now, mut moved) = (start, 0u64);
        for p in pages {
            let wait = b.take(p, now);
            moved += p;
            now += wait;
            let allowed = rate as f64 * (now - start).as_secs_f64() + rate as f64;
            prop_assert!(moved as f64 <= allowed + 1.0, "{moved} > {allowed}");
        }
    }
}

/// A raised or removed cap reaches a streamer already asleep on the
/// old one within one slice (review-lead25 M1: it slept the old debt out).
#[tokio::test(start_paused = true)]
async fn a_raised_cap_ends_a_wait_in_progress_within_one_slice() {
    for raised in [0.0, 1000.0] {
        let cap = std::sync::Arc::new(Throughput::new(1.0)); // 1 MiB/s
        let began = Instant::now();
        let page = {
            let cap = cap.clone();
            // 1 MiB burst, then 63 MiB of debt: 63 s at the old cap.
            tokio::spawn(async move { cap.moved(64 * MIB as u64).await })
        };
        tokio::time::sleep(Duration::from_millis(2500)).await;
        cap.set_mib_per_sec(raised).unwrap();
        page.await.unwrap();
        let took = began.elapsed();
        assert!(took <= Duration::from_millis(3500), "{raised}: {took:?}");
    }
}

/// A lowered cap stretches what is left of the wait, re-read each slice.
#[tokio::test(start_paused = true)]
async fn a_lowered_cap_stretches_the_rest_of_the_wait() {
    let cap = std::sync::Arc::new(Throughput::new(2.0));
    let began = Instant::now();
    let page = {
        let cap = cap.clone();
        // 2 MiB burst, 4 MiB of debt: 2 s at 2 MiB/s.
        tokio::spawn(async move { cap.moved(6 * MIB as u64).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    // 3 MiB left: 3 s at 1 MiB/s, seen at the end of the first slice.
    cap.set_mib_per_sec(1.0).unwrap();
    page.await.unwrap();
    let took = began.elapsed();
    assert!(
        took >= Duration::from_millis(2900) && took <= Duration::from_millis(3600),
        "{took:?}"
    );
}

#[test]
fn a_cap_between_zero_and_the_floor_is_refused() {
    for bad in [1e-300, 0.001, 0.0099, -1.0, f64::NAN, f64::INFINITY] {
        assert!(valid_mib_per_sec(bad).is_err(), "{bad}");
    }
    for good in [0.0, MIN_MIB_PER_SEC, 24.0, 1e6] {
        assert_eq!(valid_mib_per_sec(good).unwrap(), good);
    }
    let cap = Throughput::new(24.0);
    let e = cap.set_mib_per_sec(1e-300).unwrap_err();
    assert!(e.to_string().contains("at least 0.01 MiB/s"), "{e}");
    assert_eq!(cap.mib_per_sec(), 24.0, "a refused cap changes nothing");
}

/// A tiny positive rate used to make the wait infinite, and
/// `Duration::from_secs_f64` panicked in the movement task.
#[test]
fn a_tiny_rate_does_not_panic() {
    let mut b = Bucket::new(1e-300 * MIB);
    let t = Instant::now();
    assert!(b.take(4 << 20, t) <= MAX_WAIT);
}

proptest! {
    /// Whatever the numbers, the bucket answers a bounded wait.
    #[test]
    fn no_rate_or_page_panics(
        rate in proptest::num::f64::ANY,
        lowered in proptest::num::f64::ANY,
        pages in proptest::collection::vec((any::<u64>(), 0u64..10_000_000), 1..8),
    ) {
        let mut b = Bucket::new(rate);
        let mut now = Instant::now();
        for (i, (bytes, gap_ms)) in pages.into_iter().enumerate() {
            if i == 3 {
                b.set_rate(lowered);
            }
            now += Duration::from_millis(gap_ms);
            prop_assert!(b.take(bytes, now) <= MAX_WAIT);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn streamers_sharing_a_cap_share_its_rate() {
    let cap = std::sync::Arc::new(Throughput::new(1.0)); // 1 MiB/s
    let began = Instant::now();
    let a = {
        let cap = cap.clone();
        tokio::spawn(async move {
            for _ in 0..4 {
                cap.moved(MIB as u64 / 2).await;
            }
        })
    };
    for _ in 0..4 {
        cap.moved(MIB as u64 / 2).await;
    }
    a.await.unwrap();
    // 4 MiB through a 1 MiB/s cap with a 1 MiB burst: 3 s.
    let took = began.elapsed();
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_millis(3100),
        "{took:?}"
    );
}
