//! The YCSB core workloads as operation mixes and key distributions, and the
//! per-worker generator that draws the next operation.
//!
//! Pure: a seeded RNG and the current key count in, an [`Op`] out. Must not
//! talk to the cluster (that is `runner.rs`).
use std::fmt;
use std::str::FromStr;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::keys::{KeyChooser, Zipfian, ZIPFIAN_CONSTANT};

/// A YCSB core workload (or pure inserts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// 50 % reads, 50 % updates, zipfian.
    A,
    /// 95 % reads, 5 % updates, zipfian.
    B,
    /// Reads only, zipfian.
    C,
    /// 95 % reads, 5 % inserts; reads skewed to the newest keys.
    D,
    /// 50 % reads, 50 % read-modify-writes (read, then write back with the
    /// read's causal context), zipfian.
    F,
    /// Inserts only (new keys).
    Insert,
}

impl Workload {
    /// The operation mix.
    pub fn mix(self) -> Mix {
        let m = |read, update, insert, rmw| Mix {
            read,
            update,
            insert,
            rmw,
        };
        match self {
            Workload::A => m(0.5, 0.5, 0.0, 0.0),
            Workload::B => m(0.95, 0.05, 0.0, 0.0),
            Workload::C => m(1.0, 0.0, 0.0, 0.0),
            Workload::D => m(0.95, 0.0, 0.05, 0.0),
            Workload::F => m(0.5, 0.0, 0.0, 0.5),
            Workload::Insert => m(0.0, 0.0, 1.0, 0.0),
        }
    }

    /// The short name (`a` … `f`, `insert`).
    pub fn name(self) -> &'static str {
        match self {
            Workload::A => "a",
            Workload::B => "b",
            Workload::C => "c",
            Workload::D => "d",
            Workload::F => "f",
            Workload::Insert => "insert",
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown workload or distribution name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} '{name}' (expected one of: {expected})")]
pub struct ParseNameError {
    what: &'static str,
    name: String,
    expected: &'static str,
}

impl FromStr for Workload {
    type Err = ParseNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "a" => Workload::A,
            "b" => Workload::B,
            "c" => Workload::C,
            "d" => Workload::D,
            "f" => Workload::F,
            "insert" => Workload::Insert,
            _ => {
                return Err(ParseNameError {
                    what: "workload",
                    name: s.to_string(),
                    expected: "a, b, c, d, f, insert",
                })
            }
        })
    }
}

/// How existing keys are chosen (workload D always uses "latest").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    Uniform,
    Zipfian,
}

impl FromStr for Distribution {
    type Err = ParseNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "uniform" => Ok(Distribution::Uniform),
            "zipfian" => Ok(Distribution::Zipfian),
            _ => Err(ParseNameError {
                what: "distribution",
                name: s.to_string(),
                expected: "uniform, zipfian",
            }),
        }
    }
}

/// Operation proportions; they sum to 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mix {
    pub read: f64,
    pub update: f64,
    pub insert: f64,
    pub rmw: f64,
}

/// The kind of an operation, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum OpKind {
    #[serde(rename = "READ")]
    Read,
    #[serde(rename = "UPDATE")]
    Update,
    #[serde(rename = "INSERT")]
    Insert,
    #[serde(rename = "READ-MODIFY-WRITE")]
    ReadModifyWrite,
}

impl OpKind {
    /// Every kind, in report order.
    pub const ALL: [OpKind; 4] = [
        OpKind::Read,
        OpKind::Update,
        OpKind::Insert,
        OpKind::ReadModifyWrite,
    ];

    /// The report name (YCSB's).
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Read => "READ",
            OpKind::Update => "UPDATE",
            OpKind::Insert => "INSERT",
            OpKind::ReadModifyWrite => "READ-MODIFY-WRITE",
        }
    }
}

/// One operation to run: its kind and the record number of its key. For an
/// insert the record number is assigned by the runner (the next new key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    pub kind: OpKind,
    pub record: u64,
}

/// Draws operations for one worker.
#[derive(Debug, Clone)]
pub struct OpGenerator {
    mix: Mix,
    keys: KeyChooser,
    rng: SmallRng,
}

impl OpGenerator {
    /// A generator for `workload` seeded with `seed`.
    pub fn new(workload: Workload, distribution: Distribution, seed: u64) -> Self {
        let keys = match (workload, distribution) {
            (Workload::D, _) => KeyChooser::Latest(Zipfian::new(1, ZIPFIAN_CONSTANT)),
            (_, Distribution::Uniform) => KeyChooser::Uniform,
            (_, Distribution::Zipfian) => {
                KeyChooser::ScrambledZipfian(Zipfian::new(1, ZIPFIAN_CONSTANT))
            }
        };
        OpGenerator {
            mix: workload.mix(),
            keys,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// The next operation when `existing` keys exist (`record` is 0 for inserts).
    pub fn next_op(&mut self, existing: u64) -> Op {
        let u: f64 = self.rng.random();
        let m = self.mix;
        let kind = if u < m.read {
            OpKind::Read
        } else if u < m.read + m.update {
            OpKind::Update
        } else if u < m.read + m.update + m.insert {
            OpKind::Insert
        } else {
            OpKind::ReadModifyWrite
        };
        let record = match kind {
            OpKind::Insert => 0,
            _ => self.keys.choose(existing, self.rng.random()),
        };
        Op { kind, record }
    }

    /// `len` printable random bytes (a value payload).
    pub fn value(&mut self, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| self.rng.random_range(b' '..=b'~'))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn proportions(w: Workload, draws: usize) -> BTreeMap<OpKind, f64> {
        let mut g = OpGenerator::new(w, Distribution::Zipfian, 11);
        let mut counts = BTreeMap::new();
        for _ in 0..draws {
            let op = g.next_op(1000);
            assert!(op.record < 1000);
            *counts.entry(op.kind).or_insert(0usize) += 1;
        }
        counts
            .into_iter()
            .map(|(k, c)| (k, c as f64 / draws as f64))
            .collect()
    }

    #[test]
    fn mixes_sum_to_one() {
        for w in [
            Workload::A,
            Workload::B,
            Workload::C,
            Workload::D,
            Workload::F,
            Workload::Insert,
        ] {
            let m = w.mix();
            assert!(
                (m.read + m.update + m.insert + m.rmw - 1.0).abs() < 1e-9,
                "{w}"
            );
            assert_eq!(w.name().parse::<Workload>().unwrap(), w);
        }
    }

    #[test]
    fn drawn_proportions_match_the_mix() {
        let close =
            |got: Option<&f64>, want: f64| (got.copied().unwrap_or(0.0) - want).abs() < 0.01;
        let a = proportions(Workload::A, 100_000);
        assert!(close(a.get(&OpKind::Read), 0.5) && close(a.get(&OpKind::Update), 0.5));
        let b = proportions(Workload::B, 100_000);
        assert!(close(b.get(&OpKind::Read), 0.95) && close(b.get(&OpKind::Update), 0.05));
        let c = proportions(Workload::C, 10_000);
        assert_eq!(c.len(), 1);
        let d = proportions(Workload::D, 100_000);
        assert!(close(d.get(&OpKind::Insert), 0.05));
        let f = proportions(Workload::F, 100_000);
        assert!(close(f.get(&OpKind::ReadModifyWrite), 0.5));
        let i = proportions(Workload::Insert, 1000);
        assert_eq!(i.get(&OpKind::Insert), Some(&1.0));
    }

    #[test]
    fn names_parse_and_reject() {
        assert_eq!("A".parse::<Workload>().unwrap(), Workload::A);
        assert!("e".parse::<Workload>().is_err());
        assert_eq!(
            "Uniform".parse::<Distribution>().unwrap(),
            Distribution::Uniform
        );
        assert!("pareto".parse::<Distribution>().is_err());
    }
}
