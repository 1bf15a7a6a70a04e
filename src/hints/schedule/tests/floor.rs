//! A lane's floor: where a load starts between rescans, how it moves up
//! (to the lowest live key found, or past the deleted entries when a page
//! finds nothing), and the rescan from the lane's start.

use super::*;

#[test]
fn the_floor_moves_up_and_a_rescan_starts_from_the_lane_start() {
    let d = node();
    let mut s = Scheduler::new(d.clone(), 4096, HOUR, 0);
    let t0 = Instant::now();
    let p = |seqs: &[u64]| page(&d, Lane::Backlog, seqs, 10 * HOUR.as_millis() as u64);
    let (out, loads) = fill(&mut s, t0, None, |_| p(&[]));
    assert!(loads[0].full && loads[0].from == d.prefix(Lane::Backlog));
    assert_eq!(out, vec![Action::Oldest(None)]);
    // Entries 5..6 found: they become the floor; 5 is sent.
    let mut answers = vec![p(&[5, 6]), p(&[])];
    let (out, _) = fill(&mut s, t0, None, |_| answers.remove(0));
    let sent = sends(&out);
    assert_eq!(sent[0].2, vec![5, 6]);
    s.on(Event::Acked {
        ack: ack(sent[0].0, &[(5, true, false), (6, true, false)]),
        now: t0,
    });
    // Within RESCAN the next load starts at the floor, not the lane start.
    let (_, loads) = fill(&mut s, t0 + RESCAN / 2, None, |_| p(&[]));
    assert!(!loads[0].full);
    assert_eq!(loads[0].from, d.key(Lane::Backlog, 5));
    // After RESCAN it starts from the lane's start again.
    let (_, loads) = fill(&mut s, t0 + RESCAN * 2, None, |_| p(&[]));
    assert!(loads[0].full && loads[0].from == d.prefix(Lane::Backlog));
}

/// Answers every load with an empty page clear up to `seq`.
fn clear(d: &Dest, seq: u64) -> impl FnMut(&Load) -> Page + '_ {
    move |l: &Load| Page {
        clear_to: Some(d.key(l.lane, seq)),
        ..Page::default()
    }
}

/// The backlog lane's load among `loads`.
fn backlog(loads: Vec<Load>) -> Load {
    (loads.into_iter().find(|l| l.lane == Lane::Backlog)).expect("a backlog load")
}

/// Sends entries 5 and 6 of the backlog lane and acknowledges them, at
/// `t0` (a full scan then: the floor is at 5).
fn five_and_six_delivered(s: &mut Scheduler, d: &Dest, t0: Instant) {
    let p = |seqs: &[u64]| page(d, Lane::Backlog, seqs, 10 * HOUR.as_millis() as u64);
    let mut answers = vec![p(&[5, 6]), p(&[])];
    let (out, _) = fill(s, t0, None, |_| answers.remove(0));
    let sent = sends(&out);
    assert_eq!(sent[0].2, vec![5, 6]);
    s.on(Event::Acked {
        ack: ack(sent[0].0, &[(5, true, false), (6, true, false)]),
        now: t0,
    });
}

/// issue 14: a page that found nothing notes where the lane is clear up
/// to; once that is CLEAR_AFTER old and a later page finds nothing either,
/// the floor moves up to it (never down), so later loads seek past the
/// entries delivered since instead of stepping over their tombstones at
/// every idle poll. An entry whose commit was still under way at the first
/// page is found by the loads in between, from the old floor. The rescan
/// still starts from the lane's start.
#[test]
fn an_empty_page_moves_the_floor_up_once_a_later_one_finds_nothing_either() {
    let d = node();
    let mut s = Scheduler::new(d.clone(), 4096, HOUR, 0);
    let t0 = Instant::now();
    five_and_six_delivered(&mut s, &d, t0);
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let (_, loads) = fill(&mut s, ms(100), None, clear(&d, 9));
    assert_eq!(backlog(loads).from, d.key(Lane::Backlog, 5), "the floor");
    // Too soon: 8, say, may still be committing; the floor stays.
    let (_, loads) = fill(&mut s, ms(100) + CLEAR_AFTER / 2, None, clear(&d, 12));
    assert_eq!(backlog(loads).from, d.key(Lane::Backlog, 5));
    let (_, loads) = fill(&mut s, ms(100) + CLEAR_AFTER, None, clear(&d, 12));
    assert_eq!(backlog(loads).from, d.key(Lane::Backlog, 5));
    let (_, loads) = fill(&mut s, ms(400), None, clear(&d, 3));
    let load = backlog(loads);
    assert!(!load.full);
    assert_eq!(load.from, d.key(Lane::Backlog, 9), "past 5 and 6");
    // 12, noted at 300 ms, is old enough at 700: the floor moves there
    // after this load, and a note below it (3) never moves it down.
    let (_, loads) = fill(&mut s, ms(700), None, clear(&d, 3));
    assert_eq!(backlog(loads).from, d.key(Lane::Backlog, 9));
    let (_, loads) = fill(&mut s, ms(900), None, clear(&d, 3));
    let next = d.key(Lane::Backlog, 12);
    assert_eq!(backlog(loads).from, next, "the next note");
    let (_, loads) = fill(&mut s, ms(950), None, clear(&d, 3));
    assert_eq!(backlog(loads).from, next, "never down");
    let (_, loads) = fill(&mut s, t0 + RESCAN * 2, None, clear(&d, 3));
    let load = backlog(loads);
    assert!(load.full && load.from == d.prefix(Lane::Backlog));
}

/// review-me36 M2: while a batch is in flight, empty pages never move the
/// floor above it, however old their notes: a stream lost with the batch
/// unacknowledged finds its entries again from the floor.
#[test]
fn a_batch_in_flight_keeps_the_floor_under_it() {
    let d = node();
    let mut s = Scheduler::new(d.clone(), 4096, HOUR, 0);
    let t0 = Instant::now();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let mut answers = vec![
        page(&d, Lane::Backlog, &[5, 6], 10 * HOUR.as_millis() as u64),
        Page::default(),
    ];
    let (out, _) = fill(&mut s, t0, None, |_| answers.remove(0));
    assert_eq!(
        sends(&out)[0].2,
        vec![5, 6],
        "in flight, never acknowledged"
    );
    for at in [100, 400, 700] {
        let (_, loads) = fill(&mut s, ms(at), None, clear(&d, 9));
        assert_eq!(backlog(loads).from, d.key(Lane::Backlog, 5), "at {at} ms");
    }
    s.on(Event::Lost);
    let (_, loads) = fill(&mut s, ms(800), None, clear(&d, 9));
    let load = backlog(loads);
    assert_eq!(load.from, d.key(Lane::Backlog, 5), "5 and 6 read again");
    assert!(load.skip.is_empty());
}

/// review-write36 L1: a load that failed (answered as an empty page
/// without `clear_to`) scanned nothing, so it never moves the floor up to
/// an earlier note, however old; it drops the note instead.
#[test]
fn a_failed_load_does_not_move_the_floor() {
    let d = node();
    let mut s = Scheduler::new(d.clone(), 4096, HOUR, 0);
    let t0 = Instant::now();
    five_and_six_delivered(&mut s, &d, t0);
    let ms = |n: u64| t0 + Duration::from_millis(n);
    fill(&mut s, ms(100), None, clear(&d, 9));
    fill(&mut s, ms(400), None, |_| Page::default());
    let (_, loads) = fill(&mut s, ms(500), None, clear(&d, 12));
    assert_eq!(backlog(loads).from, d.key(Lane::Backlog, 5), "not past 5");
}
