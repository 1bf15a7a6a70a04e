//! Property tests of the scheduler: AIMD's bounds, what each kind of
//! acknowledgement does to an entry, and the urgent lane first whatever
//! the backlog does.

use super::*;
use proptest::prelude::*;

proptest! {
    /// AIMD stays within its bounds, doubles on a fast batch and halves on
    /// a slow one.
    #[test]
    fn aimd_stays_in_bounds(limit in MIN_BATCH..5000usize, ms in 0u64..10_000, max in MIN_BATCH..5000usize) {
        let limit = limit.min(max);
        let next = aimd(limit, Duration::from_millis(ms), max);
        prop_assert!((MIN_BATCH..=max).contains(&next));
        let took = Duration::from_millis(ms);
        if took < SLOW_BATCH / 4 { prop_assert_eq!(next, (limit * 2).min(max)); }
        if took > SLOW_BATCH { prop_assert_eq!(next, (limit / 2).max(MIN_BATCH)); }
    }

    /// Only durable acknowledgements delete and settle waits with a count;
    /// refusals delete (recorded for anti-entropy) and fail waits; anything
    /// else keeps the entry and stalls the queue so it is sent again.
    #[test]
    fn only_durable_acks_delete_or_settle(
        answers in prop::collection::vec(prop::option::of((any::<bool>(), any::<bool>())), 1..20),
        ms in 0u64..5000,
    ) {
        let d = dc();
        let mut s = Scheduler::new(d.clone(), 4096, HOUR, 0);
        let now = Instant::now();
        let seqs: Vec<u64> = (1..=answers.len() as u64).collect();
        let mut pages = vec![page(&d, Lane::Urgent, &seqs, 0)];
        let (out, _) = fill(&mut s, now, None, |l| if l.lane == Lane::Urgent { pages.pop().unwrap_or_default() } else { Page::default() });
        let b = sends(&out)[0].0;
        let acks: Vec<_> = seqs.iter().zip(&answers).filter_map(|(&q, a)| a.map(|(d, r)| (q, d, r))).collect();
        let actions = s.on(Event::Acked { ack: ack(b, &acks), now: now + Duration::from_millis(ms) });
        let answer = |q: u64| acks.iter().find(|a| a.0 == q).copied();
        let mut removed = Vec::new();
        let mut resolved = Vec::new();
        for a in &actions {
            match a {
                Action::Remove { done, refused, .. } => {
                    for l in done { prop_assert!(answer(l.entry.seq).is_some_and(|a| a.1)); removed.push(l.entry.seq); }
                    for l in refused { prop_assert!(answer(l.entry.seq).is_some_and(|a| !a.1 && a.2)); removed.push(l.entry.seq); }
                }
                Action::Resolve { seq, outcome } => {
                    let a = answer(*seq).expect("answered");
                    prop_assert_eq!(outcome.is_ok(), a.1);
                    resolved.push(*seq);
                }
                _ => {}
            }
        }
        let settled: Vec<u64> = acks.iter().filter(|a| a.1 || a.2).map(|a| a.0).collect();
        removed.sort_unstable();
        prop_assert_eq!(&removed, &settled);
        prop_assert_eq!(&resolved, &settled);
        let stalled = actions.contains(&Action::Reset);
        prop_assert_eq!(stalled, settled.len() < seqs.len());
    }

    /// Whatever the backlog does, a fill reads the urgent lane first while
    /// it has room.
    #[test]
    fn urgent_first_whatever_the_backlog(steps in prop::collection::vec(0u8..3, 0..30)) {
        let d = dc();
        let mut s = Scheduler::new(d.clone(), 4096, HOUR, 0);
        let now = Instant::now();
        let mut next = 1u64;
        for step in steps {
            let mut gen = |l: &Load| {
                let lane_ok = step != 1 || l.lane == Lane::Backlog;
                let p = if lane_ok { page(&d, l.lane, &[next], 0) } else { Page::default() };
                next += 1;
                p
            };
            let (out, loads) = fill(&mut s, now, None, &mut gen);
            if s.has_room(Lane::Urgent) || loads.iter().any(|l| l.lane == Lane::Urgent) {
                prop_assert_eq!(loads.first().map(|l| l.lane), Some(Lane::Urgent));
            }
            if step == 2 {
                for (b, _, seqs) in sends(&out) {
                    let e: Vec<_> = seqs.iter().map(|&q| (q, true, false)).collect();
                    s.on(Event::Acked { ack: ack(b, &e), now });
                }
            }
            prop_assert!(s.in_flight() <= URGENT_WINDOW + BACKLOG_WINDOW);
        }
    }
}
