//! How many anti-entropy records a node that has left still holds, kept as
//! a count instead of rescanning them (review Low of stop 22: the drain
//! scanned up to 1000 record keys every 200 ms, and counted raw keys, so
//! one key that is not a record held the leave forever).
//!
//! The hand-over task (`records::run`) counts the records once, when it
//! first hands any over, and takes away what each adopter took; every
//! record written meanwhile adds one ([`Tally::written`], called by the
//! store as it records one). A sweep that finds no record from the first
//! key on, with nothing written since it began reading, sets the count to
//! zero, which also corrects a count left too high (records a repair pass
//! deleted, a batch that failed after counting). A count of zero is
//! checked against the store by the one who asks (`Hints::left_to_hand_over`
//! reads one key), since a record is counted before its batch commits.
//!
//! Must not: read or write the store.

use parking_lot::Mutex;

/// The count of records left, and how many were written so far.
#[derive(Debug, Default)]
pub struct Tally {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Records written since the node started (a generation).
    written: u64,
    /// Records left; `None` until the hand-over first counted them.
    left: Option<u64>,
}

impl Tally {
    /// A record was (or is about to be) written.
    pub fn written(&self) {
        let mut i = self.inner.lock();
        i.written += 1;
        i.left = i.left.map(|n| n + 1);
    }

    /// The generation to pass to [`Tally::counted`] or [`Tally::none_left`]
    /// for a read that begins now.
    pub fn begin(&self) -> u64 {
        self.inner.lock().written
    }

    /// A count of every record, by a read begun at generation `at`: the
    /// records written since are added (they may or may not be in it; too
    /// high is corrected by the next empty sweep).
    pub fn counted(&self, at: u64, n: u64) {
        let mut i = self.inner.lock();
        i.left = Some(n + (i.written - at));
    }

    /// `n` records left the node (an adopter took them).
    pub fn handed(&self, n: u64) {
        let mut i = self.inner.lock();
        i.left = i.left.map(|l| l.saturating_sub(n));
    }

    /// A read begun at generation `at` found no record at all: none is
    /// left unless one was written since.
    pub fn none_left(&self, at: u64) {
        let mut i = self.inner.lock();
        if i.written == at {
            i.left = Some(0);
        }
    }

    /// Records left, as far as this knows; `None` before the first count.
    pub fn left(&self) -> Option<u64> {
        self.inner.lock().left
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_follows_writes_and_hand_overs_and_an_empty_sweep_settles_it() {
        let t = Tally::default();
        assert_eq!(t.left(), None, "not counted yet");
        t.written();
        let at = t.begin();
        t.written(); // during the count
        t.counted(at, 10);
        assert_eq!(t.left(), Some(11));
        t.handed(4);
        t.written();
        assert_eq!(t.left(), Some(8));
        // An empty sweep during which a record was written proves nothing.
        let at = t.begin();
        t.written();
        t.none_left(at);
        assert_eq!(t.left(), Some(9));
        // One with nothing written since it began settles a count too high.
        let at = t.begin();
        t.none_left(at);
        assert_eq!(t.left(), Some(0));
        t.handed(5);
        assert_eq!(t.left(), Some(0), "never below zero");
    }
}
