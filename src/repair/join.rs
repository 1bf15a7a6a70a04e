//! The streaming step of a session as a sans-I/O state machine: a merge join
//! of two replicas' rows of one token sub-range, fed page by page.
//!
//! Both sides return rows in ascending `(token, key)` order (the engine's
//! data-key order, also on wrapped ranges). A row can be decided once both
//! sides have loaded everything up to it: the *frontier* is the smaller of
//! the two sides' last loaded rows (a finished side imposes none). Rows at
//! or below it are joined: a key only one side holds goes to the other; a key
//! both hold with different records becomes their merge, sent to each side
//! it changes. At most two pages are buffered.
//!
//! ```text
//! loop { while let Some((side, after)) = join.wants() { feed(side, scan(side, after)) }
//!        send(join.decide()); if join.finished() { break } }
//! ```
//!
//! Must not: do I/O or hold more than the pages it was fed.

use crate::ring::token_of;
use crate::version::SiblingSet;
use std::collections::VecDeque;

/// One stored key and its record.
pub type Row = (Vec<u8>, SiblingSet);

/// One side of a pairwise comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    A,
    B,
}

#[derive(Default)]
struct Cursor {
    /// Loaded, undecided rows with their tokens, ascending.
    buf: VecDeque<(u64, Row)>,
    /// No more pages.
    done: bool,
    /// The last row loaded: the resume point and this side's frontier.
    last: Option<(u64, Vec<u8>)>,
}

impl Cursor {
    fn frontier(&self) -> Option<(u64, &[u8])> {
        if self.done {
            return None;
        }
        self.last.as_ref().map(|(t, k)| (*t, k.as_slice()))
    }

    fn head_within(&self, frontier: Option<(u64, &[u8])>) -> Option<(u64, &[u8])> {
        let (t, (k, _)) = self.buf.front()?;
        let head = (*t, k.as_slice());
        match frontier {
            Some(f) if head > f => None,
            _ => Some(head),
        }
    }
}

/// Rows to merge into each side.
#[derive(Debug, Default)]
pub struct Transfers {
    pub to_a: Vec<Row>,
    pub to_b: Vec<Row>,
}

impl Transfers {
    pub fn is_empty(&self) -> bool {
        self.to_a.is_empty() && self.to_b.is_empty()
    }
}

/// The merge join of two sides' rows. See the module docs.
#[derive(Default)]
pub struct Join {
    a: Cursor,
    b: Cursor,
}

impl Join {
    pub fn new() -> Self {
        Self::default()
    }

    fn side(&self, w: Which) -> &Cursor {
        match w {
            Which::A => &self.a,
            Which::B => &self.b,
        }
    }

    /// The side whose next page is needed before anything more can be
    /// decided, with the key to resume after (`None`: from the start).
    pub fn wants(&self) -> Option<(Which, Option<&[u8]>)> {
        [Which::A, Which::B].into_iter().find_map(|w| {
            let c = self.side(w);
            (c.buf.is_empty() && !c.done).then(|| (w, c.last.as_ref().map(|l| l.1.as_slice())))
        })
    }

    /// Adds the next page of side `w`; `more` says whether another follows.
    pub fn feed(&mut self, w: Which, rows: Vec<Row>, more: bool) {
        let c = match w {
            Which::A => &mut self.a,
            Which::B => &mut self.b,
        };
        if let Some((k, _)) = rows.last() {
            c.last = Some((token_of(k), k.clone()));
        }
        c.done = !more || rows.is_empty();
        c.buf
            .extend(rows.into_iter().map(|row| (token_of(&row.0), row)));
    }

    /// True once both sides are exhausted and every row was decided.
    pub fn finished(&self) -> bool {
        self.a.done && self.b.done && self.a.buf.is_empty() && self.b.buf.is_empty()
    }

    /// Decides every row up to the frontier and returns what each side lacks.
    pub fn decide(&mut self) -> Transfers {
        let frontier = match (self.a.frontier(), self.b.frontier()) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        }
        .map(|(t, k)| (t, k.to_vec()));
        let f = frontier.as_ref().map(|(t, k)| (*t, k.as_slice()));
        let mut out = Transfers::default();
        loop {
            let order = match (self.a.head_within(f), self.b.head_within(f)) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(x), Some(y)) => x.cmp(&y),
            };
            match order {
                std::cmp::Ordering::Less => {
                    let (_, row) = self.a.buf.pop_front().expect("head exists");
                    out.to_b.push(row);
                }
                std::cmp::Ordering::Greater => {
                    let (_, row) = self.b.buf.pop_front().expect("head exists");
                    out.to_a.push(row);
                }
                std::cmp::Ordering::Equal => {
                    let (_, (key, a)) = self.a.buf.pop_front().expect("head exists");
                    let (_, (_, b)) = self.b.buf.pop_front().expect("head exists");
                    if a == b {
                        continue;
                    }
                    let mut merged = a.clone();
                    merged.merge(&b);
                    if merged != b {
                        out.to_b.push((key.clone(), merged.clone()));
                    }
                    if merged != a {
                        out.to_a.push((key, merged));
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::{ActorId, CausalContext};
    use std::collections::BTreeMap;

    fn set(v: &str, actor: &str) -> SiblingSet {
        let mut s = SiblingSet::new();
        s.update(
            ActorId::from_node_id(actor),
            &CausalContext::new(),
            Some(bytes::Bytes::copy_from_slice(v.as_bytes())),
            1,
            16,
        )
        .unwrap();
        s
    }

    /// Rows sorted like the engine returns them.
    fn sorted(m: &BTreeMap<Vec<u8>, SiblingSet>) -> Vec<Row> {
        let mut v: Vec<Row> = m.iter().map(|(k, s)| (k.clone(), s.clone())).collect();
        v.sort_by_key(|(k, _)| (token_of(k), k.clone()));
        v
    }

    /// Drives a join over in-memory sides with pages of `page` rows.
    fn run(
        a: &BTreeMap<Vec<u8>, SiblingSet>,
        b: &BTreeMap<Vec<u8>, SiblingSet>,
        page: usize,
    ) -> Transfers {
        let (ra, rb) = (sorted(a), sorted(b));
        let mut join = Join::new();
        let mut all = Transfers::default();
        loop {
            while let Some((w, after)) = join.wants() {
                let rows = if w == Which::A { &ra } else { &rb };
                let from = after.map_or(0, |k| rows.iter().position(|r| r.0 == k).unwrap() + 1);
                let chunk: Vec<Row> = rows[from..].iter().take(page).cloned().collect();
                let more = from + chunk.len() < rows.len();
                join.feed(w, chunk, more);
            }
            let t = join.decide();
            all.to_a.extend(t.to_a);
            all.to_b.extend(t.to_b);
            if join.finished() {
                return all;
            }
        }
    }

    fn keys(t: &[Row]) -> Vec<String> {
        let mut v: Vec<String> = t
            .iter()
            .map(|r| String::from_utf8_lossy(&r.0).into())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn each_side_gets_what_it_lacks_for_every_page_size() {
        let mut a = BTreeMap::new();
        let mut b = BTreeMap::new();
        for i in 0..200 {
            let k = format!("k{i}").into_bytes();
            match i % 4 {
                0 => {
                    a.insert(k, set("same", "n1"));
                    b.insert(format!("k{i}").into_bytes(), set("same", "n1"));
                }
                1 => {
                    a.insert(k, set("only-a", "n1"));
                }
                2 => {
                    b.insert(k, set("only-b", "n1"));
                }
                _ => {
                    a.insert(k, set("x", "n1"));
                    b.insert(format!("k{i}").into_bytes(), set("y", "n2"));
                }
            }
        }
        for page in [1, 2, 7, 50, 1000] {
            let t = run(&a, &b, page);
            let want_a: Vec<String> = (0..200)
                .filter(|i| i % 4 >= 2)
                .map(|i| format!("k{i}"))
                .collect();
            let want_b: Vec<String> = (0..200)
                .filter(|i| i % 4 == 1 || i % 4 == 3)
                .map(|i| format!("k{i}"))
                .collect();
            let (mut wa, mut wb) = (want_a, want_b);
            wa.sort();
            wb.sort();
            assert_eq!(keys(&t.to_a), wa, "page {page}");
            assert_eq!(keys(&t.to_b), wb, "page {page}");
            // Concurrent writes become both siblings on both sides.
            let k3 = t.to_a.iter().find(|r| r.0 == b"k3").unwrap();
            assert_eq!(k3.1.len(), 2);
        }
    }

    #[test]
    fn a_dominated_record_is_sent_one_way_only() {
        let old = set("v1", "n1");
        let mut new = old.clone();
        new.update(
            ActorId::from_node_id("n1"),
            &old.context(),
            Some("v2".into()),
            2,
            16,
        )
        .unwrap();
        let a = BTreeMap::from([(b"k".to_vec(), new.clone())]);
        let b = BTreeMap::from([(b"k".to_vec(), old)]);
        let t = run(&a, &b, 1);
        assert!(t.to_a.is_empty());
        assert_eq!(t.to_b, vec![(b"k".to_vec(), new)]);
    }

    #[test]
    fn empty_sides() {
        let a = BTreeMap::from([(b"k".to_vec(), set("v", "n1"))]);
        let none = BTreeMap::new();
        assert!(run(&none, &none, 3).is_empty());
        assert_eq!(keys(&run(&a, &none, 3).to_b), vec!["k"]);
        assert_eq!(keys(&run(&none, &a, 3).to_a), vec!["k"]);
    }
}
