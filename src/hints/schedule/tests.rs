//! Tests of the scheduler's decisions, without sockets, engines or clocks:
//! windows, AIMD, floors and rescans, expiry, back-off, the urgent lane,
//! target choice, and what an acknowledgement means.

use super::*;
use crate::hints::testing::loaded;
use crate::proto::v1::internode::StreamAck;

const HOUR: Duration = Duration::from_secs(3600);

fn dc() -> Dest {
    Dest::Dc("dc2".into())
}

fn node() -> Dest {
    Dest::Node("dc1-n2".into())
}

/// A page of entries `seqs` in `lane` of `dest`, created at `created_ms`.
fn page(dest: &Dest, lane: Lane, seqs: &[u64], created_ms: u64) -> Page {
    let entries: Vec<Loaded> = seqs
        .iter()
        .map(|&s| Loaded {
            key: dest.key(lane, s),
            ..loaded(s, created_ms)
        })
        .collect();
    Page {
        range: (entries.first().zip(entries.last())).map(|(a, b)| (a.key.clone(), b.key.clone())),
        entries,
        held: 0,
        clear_to: None,
    }
}

fn ack(batch_id: u64, entries: &[(u64, bool, bool)]) -> StreamAck {
    StreamAck {
        batch_id,
        entries: entries
            .iter()
            .map(|&(seq, durable, refused)| EntryAck {
                seq,
                replicas: durable as u32 * 2,
                durable,
                refused,
                elsewhere_layout: None,
            })
            .collect(),
    }
}

/// Runs a fill to its end, answering every load with `pages`; returns the
/// actions other than loads, and the loads made.
fn fill(
    s: &mut Scheduler,
    now: Instant,
    rewind: Option<u64>,
    mut pages: impl FnMut(&Load) -> Page,
) -> (Vec<Action>, Vec<Load>) {
    let mut todo: Vec<Action> = s.on(Event::Fill { now, rewind });
    let (mut out, mut loads) = (Vec::new(), Vec::new());
    while !todo.is_empty() {
        let a = todo.remove(0);
        match a {
            Action::Load(load) => {
                let page = pages(&load);
                loads.push(load.clone());
                let now_ms = 10 * HOUR.as_millis() as u64;
                let mut next = s.on(Event::Loaded {
                    load,
                    page,
                    now,
                    now_ms,
                });
                next.append(&mut todo);
                todo = next;
            }
            other => out.push(other),
        }
    }
    (out, loads)
}

fn sends(actions: &[Action]) -> Vec<(u64, Lane, Vec<u64>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send {
                batch_id,
                lane,
                entries,
            } => Some((*batch_id, *lane, entries.iter().map(|e| e.seq).collect())),
            _ => None,
        })
        .collect()
}

/// A queue that always has more: a page of `n` fresh entries per load.
fn endless(dest: Dest) -> impl FnMut(&Load) -> Page {
    let mut next = 1u64;
    move |l: &Load| {
        let seqs: Vec<u64> = (next..next + 4).collect();
        next += 4;
        page(&dest, l.lane, &seqs, 10 * HOUR.as_millis() as u64)
    }
}

#[test]
fn the_urgent_lane_goes_first_and_never_waits_behind_the_backlog() {
    let mut s = Scheduler::new(dc(), 4096, HOUR, 0);
    let now = Instant::now();
    let (out, loads) = fill(&mut s, now, None, endless(dc()));
    assert_eq!(loads[0].lane, Lane::Urgent, "urgent is read first");
    let sent = sends(&out);
    let urgent = sent.iter().filter(|b| b.1 == Lane::Urgent).count();
    let backlog = sent.iter().filter(|b| b.1 == Lane::Backlog).count();
    assert_eq!(
        (urgent, backlog),
        (URGENT_WINDOW, BACKLOG_WINDOW),
        "each lane fills its own window"
    );
    // Urgent acknowledged: room for urgent again although the backlog is full.
    let first_urgent = sent.iter().find(|b| b.1 == Lane::Urgent).expect("urgent");
    let entries: Vec<_> = first_urgent.2.iter().map(|&q| (q, true, false)).collect();
    s.on(Event::Acked {
        ack: ack(first_urgent.0, &entries),
        now,
    });
    assert!(s.has_room(Lane::Urgent) && !s.has_room(Lane::Backlog));
    let (out, loads) = fill(&mut s, now, None, endless(dc()));
    assert_eq!(
        loads.iter().map(|l| l.lane).collect::<Vec<_>>(),
        vec![Lane::Urgent]
    );
    assert_eq!(sends(&out).len(), 1);
}

#[test]
fn a_node_queue_has_no_urgent_lane() {
    let mut s = Scheduler::new(node(), 4096, HOUR, 0);
    assert!(!s.has_room(Lane::Urgent));
    let (_, loads) = fill(&mut s, Instant::now(), None, endless(node()));
    assert!(loads.iter().all(|l| l.lane == Lane::Backlog));
}

#[test]
fn an_urgent_rewind_reads_below_the_floor_at_once() {
    let d = dc();
    let mut s = Scheduler::new(d.clone(), 4096, HOUR, 0);
    let t0 = Instant::now();
    let mut answers = vec![page(&d, Lane::Urgent, &[50], 0)];
    let (out, _) = fill(&mut s, t0, None, |_| answers.pop().unwrap_or_default());
    let b = sends(&out)[0].0;
    s.on(Event::Acked {
        ack: ack(b, &[(50, true, false)]),
        now: t0,
    });
    let (_, loads) = fill(&mut s, t0, Some(7), |_| Page::default());
    let urgent: Vec<_> = loads.iter().filter(|l| l.lane == Lane::Urgent).collect();
    assert_eq!(
        urgent[0].from,
        d.key(Lane::Urgent, 7),
        "rewound below floor 50"
    );
    // Nothing found there: the floor is where the rewind looked, so no
    // entry committed since can be stepped over.
    let (_, loads) = fill(&mut s, t0, None, |_| Page::default());
    assert_eq!(loads[0].from, d.key(Lane::Urgent, 7));
}

/// A rewind that arrives while the urgent window is full is kept until the
/// next urgent load (a backlog acknowledgement's fill must not drop it,
/// leaving the late entry to the rescan while its client waits).
#[test]
fn a_rewind_waits_for_room_in_the_urgent_window() {
    let d = dc();
    let mut s = Scheduler::new(d.clone(), 4096, HOUR, 0);
    let t0 = Instant::now();
    let mut next = 100u64; // every entry above the rewinds below
    let pages = |l: &Load| {
        next += 4;
        page(
            &d,
            l.lane,
            &[next - 4, next - 1],
            10 * HOUR.as_millis() as u64,
        )
    };
    let (out, _) = fill(&mut s, t0, None, pages);
    let sent = sends(&out);
    assert!(!s.has_room(Lane::Urgent));
    // A backlog batch acknowledged; its fill carries the rewind to 7.
    let backlog = sent.iter().find(|b| b.1 == Lane::Backlog).expect("backlog");
    let entries: Vec<_> = backlog.2.iter().map(|&q| (q, true, false)).collect();
    s.on(Event::Acked {
        ack: ack(backlog.0, &entries),
        now: t0,
    });
    let (_, loads) = fill(&mut s, t0, Some(7), |_| Page::default());
    assert!(loads.iter().all(|l| l.lane == Lane::Backlog), "urgent full");
    // An urgent batch acknowledged: the next urgent load reads from 7 (the
    // lower of the rewinds seen meanwhile).
    let urgent = sent.iter().find(|b| b.1 == Lane::Urgent).expect("urgent");
    let entries: Vec<_> = urgent.2.iter().map(|&q| (q, true, false)).collect();
    s.on(Event::Acked {
        ack: ack(urgent.0, &entries),
        now: t0,
    });
    let (_, loads) = fill(&mut s, t0, Some(9), |_| Page::default());
    assert_eq!(loads[0].lane, Lane::Urgent);
    assert_eq!(loads[0].from, d.key(Lane::Urgent, 7), "the kept rewind");
}

#[test]
fn node_hints_past_the_window_are_expired_not_sent() {
    let d = node();
    let mut s = Scheduler::new(d.clone(), 4096, HOUR, 0);
    let now_ms = 10 * HOUR.as_millis() as u64;
    let mut p = page(&d, Lane::Backlog, &[1, 2], now_ms);
    p.entries[0].created_ms = now_ms - 2 * HOUR.as_millis() as u64;
    let mut answers = vec![p];
    let (out, _) = fill(&mut s, Instant::now(), None, |_| {
        answers.pop().unwrap_or_default()
    });
    match &out[0] {
        Action::Expire(old) => {
            assert_eq!(old.iter().map(|l| l.entry.seq).collect::<Vec<_>>(), vec![1])
        }
        other => panic!("expected an expiry, got {other:?}"),
    }
    assert_eq!(sends(&out)[0].2, vec![2]);
}

#[test]
fn held_back_intents_end_the_lane_for_this_fill() {
    let d = node();
    let mut s = Scheduler::new(d.clone(), 4096, HOUR, 0);
    let mut loads_made = 0;
    let (out, _) = fill(&mut s, Instant::now(), None, |_| {
        loads_made += 1;
        Page {
            range: Some((d.key(Lane::Backlog, 1), d.key(Lane::Backlog, 1))),
            entries: Vec::new(),
            held: 1,
            clear_to: None,
        }
    });
    assert_eq!(loads_made, 1, "not read again and again");
    assert!(sends(&out).is_empty());
}

#[test]
fn back_off_doubles_to_a_cap_and_resets_on_a_durable_ack() {
    let mut s = Scheduler::new(dc(), 4096, HOUR, 0);
    let mut seen = Vec::new();
    for _ in 0..8 {
        let a = s.on(Event::Stalled(Stall::Failed("x".into())));
        assert_eq!(a[0], Action::Reset);
        if let Some(Action::Backoff(d)) = a.last() {
            seen.push(d.as_millis());
        }
    }
    assert_eq!(seen, vec![50, 100, 200, 400, 800, 1600, 2000, 2000]);
    let now = Instant::now();
    let (out, _) = fill(&mut s, now, None, endless(dc()));
    let b = &sends(&out)[0];
    let entries: Vec<_> = b.2.iter().map(|&q| (q, true, false)).collect();
    s.on(Event::Acked {
        ack: ack(b.0, &entries),
        now,
    });
    let a = s.on(Event::Stalled(Stall::NoTarget));
    // (Led by the age of the batches still in flight, see below.)
    assert_eq!(
        a[a.len() - 3..],
        [
            Action::Reset,
            Action::FailWaits,
            Action::Backoff(BACKOFF_MIN)
        ]
    );
}

/// Review of stop 22: a fill whose send fails (the destination is down)
/// never reaches its end, where the oldest entry's age is reported; the
/// stall reports it instead, so `geokv_hint_oldest_age_seconds` does not
/// freeze at its pre-outage value for the whole outage.
#[test]
fn a_stall_reports_the_age_of_what_the_fill_found() {
    let mut s = Scheduler::new(dc(), 4096, HOUR, 0);
    let now = Instant::now();
    let now_ms = 10 * HOUR.as_millis() as u64;
    let first = s.on(Event::Fill { now, rewind: None });
    let Some(Action::Load(load)) = first.into_iter().find(|a| matches!(a, Action::Load(_))) else {
        panic!("a fill starts with a load");
    };
    let created = now_ms - 5_000;
    let p = page(&dc(), load.lane, &[1, 2], created);
    let after = s.on(Event::Loaded {
        load,
        page: p,
        now,
        now_ms,
    });
    assert!(!sends(&after).is_empty(), "the page is sent");
    let a = s.on(Event::Stalled(Stall::NoTarget));
    assert_eq!(a.first(), Some(&Action::Oldest(Some(created))));
    // Nothing found since: the gauge keeps its last value.
    let a = s.on(Event::Stalled(Stall::NoTarget));
    assert!(!a.iter().any(|x| matches!(x, Action::Oldest(_))));
}

#[test]
fn no_target_fails_waits_only_for_a_datacenter() {
    let mut s = Scheduler::new(node(), 4096, HOUR, 0);
    let a = s.on(Event::Stalled(Stall::NoTarget));
    assert!(!a.contains(&Action::FailWaits));
}

#[test]
fn targets_rotate_over_live_nodes() {
    let mut s = Scheduler::new(dc(), 4096, HOUR, 0);
    let live = ["dc2-n1", "dc2-n2", "dc2-n3"];
    let picks: Vec<_> = (0..3).filter_map(|_| s.pick_target(&live)).collect();
    assert_eq!(picks, vec!["dc2-n2", "dc2-n3", "dc2-n1"]);
    assert_eq!(s.pick_target::<&str>(&[]), None);
    let mut n = Scheduler::new(node(), 4096, HOUR, 0);
    assert_eq!(n.pick_target(&["dc1-n2"]), Some("dc1-n2"));
}

#[test]
fn a_late_ack_of_a_batch_given_up_is_ignored() {
    let mut s = Scheduler::new(dc(), 4096, HOUR, 0);
    let now = Instant::now();
    let (out, _) = fill(&mut s, now, None, endless(dc()));
    let b = sends(&out)[0].clone();
    assert_eq!(s.give_up_at(), Some(now + BATCH_TIMEOUT));
    s.on(Event::Stalled(Stall::Failed("timeout".into())));
    assert_eq!(s.give_up_at(), None);
    let entries: Vec<_> = b.2.iter().map(|&q| (q, true, false)).collect();
    assert!(s
        .on(Event::Acked {
            ack: ack(b.0, &entries),
            now
        })
        .is_empty());
}

mod elsewhere;
mod floor;
mod parked;
mod props;
