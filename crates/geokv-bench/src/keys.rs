//! Key choice: YCSB's zipfian generator (constant 0.99, Gray et al.'s
//! "Quickly generating billion-record synthetic databases"), its scrambled
//! variant (the zipfian rank hashed with FNV-1a so the hot keys are spread
//! over the key space instead of being the first ones), the "latest"
//! distribution of workload D (zipfian over the distance from the newest key)
//! and uniform choice; and the key naming shared by every phase.
//!
//! Pure: the caller passes the random number (`u` in `[0, 1)`), so every
//! generator is deterministic under test. Must not do I/O.

/// YCSB's default zipfian constant.
pub const ZIPFIAN_CONSTANT: f64 = 0.99;

/// The key of record `n` (`user` + 12 digits, YCSB-like).
pub fn key_name(n: u64) -> String {
    format!("user{n:012}")
}

/// FNV-1a over the little-endian bytes of `v` (what YCSB's `fnvhash64` does).
pub fn fnv1a64(v: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in v.to_le_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Zipfian ranks in `[0, n)`: rank 0 is the most popular. `n` may grow
/// (workload D); ζ(n) is then extended incrementally, as YCSB does.
#[derive(Debug, Clone)]
pub struct Zipfian {
    theta: f64,
    alpha: f64,
    zeta2: f64,
    /// Items ζ was computed for.
    n: u64,
    zetan: f64,
    eta: f64,
}

impl Zipfian {
    /// A generator over `n` items (at least 1) with constant `theta` in (0, 1).
    pub fn new(n: u64, theta: f64) -> Self {
        let n = n.max(1);
        let zeta2 = zeta_range(0, 2, theta);
        let mut z = Zipfian {
            theta,
            alpha: 1.0 / (1.0 - theta),
            zeta2,
            n: 0,
            zetan: 0.0,
            eta: 0.0,
        };
        z.grow_to(n);
        z
    }

    /// Items currently covered.
    pub fn items(&self) -> u64 {
        self.n
    }

    /// Extends ζ to `n` items (no-op when `n` is not larger).
    pub fn grow_to(&mut self, n: u64) {
        if n <= self.n {
            return;
        }
        self.zetan += zeta_range(self.n, n, self.theta);
        self.n = n;
        let n = n as f64;
        self.eta = (1.0 - (2.0 / n).powf(1.0 - self.theta)) / (1.0 - self.zeta2 / self.zetan);
    }

    /// The rank for the uniform draw `u` in `[0, 1)`.
    pub fn rank(&self, u: f64) -> u64 {
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1.min(self.n - 1);
        }
        let r = (self.n as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        r.min(self.n - 1)
    }
}

/// Σ_{i=from+1..=to} 1/i^θ.
fn zeta_range(from: u64, to: u64, theta: f64) -> f64 {
    (from + 1..=to).map(|i| 1.0 / (i as f64).powf(theta)).sum()
}

/// How a workload picks an existing key.
#[derive(Debug, Clone)]
pub enum KeyChooser {
    /// Every key in `[0, n)` equally likely.
    Uniform,
    /// Zipfian ranks scrambled over `[0, n)` by FNV-1a (YCSB's
    /// `ScrambledZipfianGenerator`; hashing can map two hot ranks to one key).
    ScrambledZipfian(Zipfian),
    /// Zipfian over the distance from the newest key (YCSB's
    /// `SkewedLatestGenerator`, workload D).
    Latest(Zipfian),
}

impl KeyChooser {
    /// Picks a key in `[0, n)` from the uniform draw `u` in `[0, 1)`; `n` is
    /// the number of keys that exist now (it grows as inserts happen).
    pub fn choose(&mut self, n: u64, u: f64) -> u64 {
        let n = n.max(1);
        match self {
            KeyChooser::Uniform => ((u * n as f64) as u64).min(n - 1),
            KeyChooser::ScrambledZipfian(z) => {
                z.grow_to(n);
                fnv1a64(z.rank(u)) % n
            }
            KeyChooser::Latest(z) => {
                z.grow_to(n);
                n - 1 - z.rank(u).min(n - 1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    fn ranks(z: &Zipfian, draws: usize) -> Vec<u64> {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut counts = vec![0u64; z.items() as usize];
        for _ in 0..draws {
            counts[z.rank(rng.random::<f64>()) as usize] += 1;
        }
        counts
    }

    #[test]
    fn zipfian_shape_follows_the_power_law() {
        let n = 1000;
        let z = Zipfian::new(n, ZIPFIAN_CONSTANT);
        let draws = 400_000;
        let counts = ranks(&z, draws);
        let zeta: f64 = (1..=n).map(|i| 1.0 / (i as f64).powf(0.99)).sum();
        // Ranks 0 and 1 are exact in Gray's method: their analytical share
        // within 5 %. Beyond them it approximates the power law, so compare
        // the mass of whole decades of ranks (within 15 %).
        let share = |from: u64, to: u64| -> f64 {
            (from..to)
                .map(|i| 1.0 / ((i + 1) as f64).powf(0.99))
                .sum::<f64>()
                / zeta
        };
        let seen =
            |from: usize, to: usize| counts[from..to].iter().sum::<u64>() as f64 / draws as f64;
        for (from, to, tolerance) in [
            (0, 1, 0.05),
            (1, 2, 0.05),
            (10, 100, 0.15),
            (100, 1000, 0.15),
        ] {
            let ratio = seen(from, to) / share(from as u64, to as u64);
            assert!(
                (1.0 - tolerance..1.0 + tolerance).contains(&ratio),
                "ranks {from}..{to}: {ratio:.3}"
            );
        }
        // Heavily skewed: the top 1 % of ranks takes far more than 1 % of draws.
        let top: u64 = counts[..10].iter().sum();
        assert!(top as f64 > 0.3 * draws as f64, "top 10 ranks got {top}");
        // Every rank stays in range and the tail is reached.
        assert!(counts[500..].iter().sum::<u64>() > 0);
    }

    #[test]
    fn growing_matches_building_at_the_final_size() {
        let mut grown = Zipfian::new(10, ZIPFIAN_CONSTANT);
        grown.grow_to(5000);
        let direct = Zipfian::new(5000, ZIPFIAN_CONSTANT);
        assert!((grown.zetan - direct.zetan).abs() < 1e-9);
        for u in [0.0, 0.1, 0.5, 0.9, 0.999_999] {
            assert_eq!(grown.rank(u), direct.rank(u));
        }
    }

    #[test]
    fn choosers_stay_in_range_and_skew_as_named() {
        let mut rng = SmallRng::seed_from_u64(3);
        let n = 10_000;
        let mut latest = KeyChooser::Latest(Zipfian::new(1, ZIPFIAN_CONSTANT));
        let mut scrambled = KeyChooser::ScrambledZipfian(Zipfian::new(1, ZIPFIAN_CONSTANT));
        let mut uniform = KeyChooser::Uniform;
        let (mut newest_tenth, mut first_tenth_scrambled, mut first_tenth_uniform) = (0, 0, 0);
        let draws = 50_000;
        for _ in 0..draws {
            let l = latest.choose(n, rng.random());
            let s = scrambled.choose(n, rng.random());
            let u = uniform.choose(n, rng.random());
            assert!(l < n && s < n && u < n);
            newest_tenth += u64::from(l >= n - n / 10);
            first_tenth_scrambled += u64::from(s < n / 10);
            first_tenth_uniform += u64::from(u < n / 10);
        }
        // Latest favours the newest keys.
        assert!(newest_tenth > draws * 6 / 10, "{newest_tenth}");
        // Unscrambled, the first tenth of the key space would take about 75 %
        // of the draws; scrambling spreads the hot ranks over the space.
        assert!(first_tenth_scrambled < draws / 2, "{first_tenth_scrambled}");
        assert!((draws / 20..draws / 5).contains(&first_tenth_uniform));
    }

    #[test]
    fn one_item_always_gives_zero() {
        let mut c = KeyChooser::ScrambledZipfian(Zipfian::new(1, ZIPFIAN_CONSTANT));
        assert_eq!(c.choose(1, 0.99), 0);
        let mut l = KeyChooser::Latest(Zipfian::new(1, ZIPFIAN_CONSTANT));
        assert_eq!(l.choose(1, 0.5), 0);
        assert_eq!(key_name(42), "user000000000042");
    }
}
