//! Delays between attempts: capped exponential backoff with the AWS jitter formulas.
//!
//! The seed retried after 2s, 4s, 8s, 16s, 30s (doubling, capped). Jitter spreads the retries
//! of many clients so they do not hammer a recovering service in step. The formulas follow
//! AWS's "Exponential Backoff And Jitter", with the retry counted from 0:
//! `t = min(max, base·2^n)`; none `t`; full `rand(0, t)`; equal `t/2 + rand(0, t/2)`;
//! decorrelated `min(max, rand(base, previous·3))`. Every step saturates, so no retry index,
//! however large, overflows. The random numbers come from a small xorshift generator: jitter
//! needs spread, not cryptographic quality, and it keeps the library free of a `rand` crate.

use std::fmt;
use std::time::Duration;

/// How the delay is randomised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Jitter {
    /// The exact capped exponential: `min(max, base·2^n)`.
    #[default]
    None,
    /// `rand(0, t)`.
    Full,
    /// `t/2 + rand(0, t/2)`.
    Equal,
    /// `min(max, rand(base, previous·3))`.
    Decorrelated,
}

impl Jitter {
    /// The names `--jitter` accepts.
    pub const NAMES: [&'static str; 4] = ["none", "full", "equal", "decorrelated"];

    /// Parse `none`, `full`, `equal` or `decorrelated`.
    pub fn parse(text: &str) -> Result<Jitter, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Jitter::None),
            "full" => Ok(Jitter::Full),
            "equal" => Ok(Jitter::Equal),
            "decorrelated" => Ok(Jitter::Decorrelated),
            _ => Err(format!(
                "unknown jitter `{text}`; use one of {}",
                Jitter::NAMES.join(", ")
            )),
        }
    }

    /// The name, as [`Jitter::parse`] reads it.
    pub fn as_str(self) -> &'static str {
        match self {
            Jitter::None => "none",
            Jitter::Full => "full",
            Jitter::Equal => "equal",
            Jitter::Decorrelated => "decorrelated",
        }
    }
}

impl fmt::Display for Jitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A backoff policy: the first delay, the cap, and the jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay before the first retry (and `base` of the formulas).
    pub base: Duration,
    /// The cap on any one delay.
    pub max: Duration,
    /// How the delay is randomised.
    pub jitter: Jitter,
}

impl Default for Backoff {
    /// The seed's policy: 2s doubling, capped at 30s, no jitter.
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(2),
            max: Duration::from_secs(30),
            jitter: Jitter::None,
        }
    }
}

impl Backoff {
    /// `min(max, base·2^n)`, saturating: the ceiling every jitter draws under.
    pub fn ceiling(&self, retry_index: u32) -> Duration {
        let doubled = 2u32
            .checked_pow(retry_index)
            .and_then(|factor| self.base.checked_mul(factor));
        match doubled {
            Some(delay) => delay.min(self.max),
            // 2^n overflowed: only a zero base stays under any cap.
            None if self.base.is_zero() => Duration::ZERO,
            None => self.max,
        }
    }

    /// The delay before retry `retry_index` (0 = the delay after the first attempt).
    ///
    /// `previous` is the delay used before the previous retry (pass `base` for the first);
    /// only the decorrelated jitter uses it.
    pub fn delay(&self, retry_index: u32, previous: Duration, rng: &mut Rng) -> Duration {
        match self.jitter {
            Jitter::None => self.ceiling(retry_index),
            Jitter::Full => rng.between(Duration::ZERO, self.ceiling(retry_index)),
            Jitter::Equal => {
                let half = self.ceiling(retry_index) / 2;
                half.saturating_add(rng.between(Duration::ZERO, half))
            }
            Jitter::Decorrelated => {
                let high = previous.saturating_mul(3).max(self.base);
                rng.between(self.base, high).min(self.max)
            }
        }
    }
}

/// A small xorshift64* generator: fast, seedable, good enough for jitter.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator with a fixed seed (tests; reproducible draws).
    pub fn seeded(seed: u64) -> Rng {
        // splitmix64 turns any seed (even 0) into a well-mixed non-zero state.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng {
            state: if z == 0 { 0x2545_F491_4F6C_DD1D } else { z },
        }
    }

    /// A generator seeded from the time and the process id, so parallel processes differ.
    pub fn from_entropy() -> Rng {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        // Truncation is fine: only the low, fast-changing bits matter for a seed.
        #[allow(clippy::cast_possible_truncation)]
        let seed = (nanos as u64) ^ (u64::from(std::process::id()) << 32);
        Rng::seeded(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number drawn from `0..n` (0 when `n` is 0): shuffles and picks in property tests.
    pub fn below(&mut self, n: usize) -> usize {
        let n = u64::try_from(n).unwrap_or(u64::MAX).max(1);
        usize::try_from(self.next_u64() % n).unwrap_or(0)
    }

    /// A duration drawn uniformly from `low..=high` (at nanosecond resolution).
    pub fn between(&mut self, low: Duration, high: Duration) -> Duration {
        if high <= low {
            return low;
        }
        let span = (high - low).as_nanos();
        let wide = (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64());
        let offset = wide % (span + 1);
        low.saturating_add(nanos_to_duration(offset))
    }
}

/// Nanoseconds (u128) to a duration, saturating.
fn nanos_to_duration(nanos: u128) -> Duration {
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    let sub = u32::try_from(nanos % 1_000_000_000).unwrap_or(0);
    Duration::new(secs, sub)
}

/// A delay as the seed's messages print it: `2s`, `30s`, `500ms`, `2.5s`.
pub fn format_delay(delay: Duration) -> String {
    crate::duration::format(delay, crate::duration::Spelling::Exact)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DRAWS: usize = 20_000;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn the_seeds_sequence_is_exact() {
        let backoff = Backoff::default();
        let mut rng = Rng::seeded(1);
        let delays: Vec<u64> = (0..7)
            .map(|n| backoff.delay(n, Duration::ZERO, &mut rng).as_secs())
            .collect();
        assert_eq!(delays, [2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn no_overflow_for_any_index() {
        let mut rng = Rng::seeded(7);
        for jitter in [
            Jitter::None,
            Jitter::Full,
            Jitter::Equal,
            Jitter::Decorrelated,
        ] {
            for base in [
                Duration::ZERO,
                Duration::from_millis(1),
                secs(2),
                Duration::MAX,
            ] {
                let backoff = Backoff {
                    base,
                    max: secs(30),
                    jitter,
                };
                let mut previous = base;
                for n in (0..=100).chain([u32::MAX - 1, u32::MAX]) {
                    let delay = backoff.delay(n, previous, &mut rng);
                    assert!(delay <= secs(30), "{jitter} base {base:?} n {n}: {delay:?}");
                    previous = delay;
                }
            }
        }
        let huge = Backoff {
            base: Duration::MAX,
            max: Duration::MAX,
            jitter: Jitter::Decorrelated,
        };
        assert_eq!(huge.delay(100, Duration::MAX, &mut rng), Duration::MAX);
    }

    #[test]
    fn full_jitter_stays_in_zero_to_ceiling_and_spreads() {
        let backoff = Backoff {
            jitter: Jitter::Full,
            ..Backoff::default()
        };
        let mut rng = Rng::seeded(11);
        for n in 0..8 {
            let ceiling = backoff.ceiling(n);
            let draws: Vec<Duration> = (0..DRAWS)
                .map(|_| backoff.delay(n, Duration::ZERO, &mut rng))
                .collect();
            assert!(draws.iter().all(|d| *d <= ceiling), "n {n}");
            // Both halves of the range are reached: the draws are spread, not constant.
            assert!(draws.iter().any(|d| *d < ceiling / 4), "n {n}");
            assert!(draws.iter().any(|d| *d > ceiling * 3 / 4), "n {n}");
        }
    }

    #[test]
    fn equal_jitter_stays_in_half_to_ceiling() {
        let backoff = Backoff {
            jitter: Jitter::Equal,
            ..Backoff::default()
        };
        let mut rng = Rng::seeded(13);
        for n in 0..8 {
            let ceiling = backoff.ceiling(n);
            let draws: Vec<Duration> = (0..DRAWS)
                .map(|_| backoff.delay(n, Duration::ZERO, &mut rng))
                .collect();
            assert!(
                draws.iter().all(|d| *d >= ceiling / 2 && *d <= ceiling),
                "n {n}"
            );
            assert!(draws.iter().any(|d| *d < ceiling * 5 / 8), "n {n}");
            assert!(draws.iter().any(|d| *d > ceiling * 7 / 8), "n {n}");
        }
    }

    #[test]
    fn decorrelated_jitter_stays_in_base_to_three_times_previous_capped() {
        let backoff = Backoff {
            jitter: Jitter::Decorrelated,
            ..Backoff::default()
        };
        let mut rng = Rng::seeded(17);
        let mut previous = backoff.base;
        let mut reached_cap = false;
        for n in 0..DRAWS {
            let n = u32::try_from(n).unwrap();
            let delay = backoff.delay(n, previous, &mut rng);
            let high = (previous * 3).min(backoff.max);
            assert!(delay >= backoff.base, "{delay:?} < base");
            assert!(delay <= high, "{delay:?} > min(max, 3·{previous:?})");
            reached_cap |= delay == backoff.max;
            previous = delay;
        }
        assert!(reached_cap, "the cap is reachable");
    }

    #[test]
    fn jitter_names_round_trip() {
        for name in Jitter::NAMES {
            assert_eq!(Jitter::parse(name).unwrap().as_str(), name);
        }
        assert!(
            Jitter::parse("random")
                .unwrap_err()
                .contains("decorrelated")
        );
    }

    #[test]
    fn rng_between_is_inclusive_and_degenerate_safe() {
        let mut rng = Rng::seeded(0);
        assert_eq!(rng.between(secs(3), secs(1)), secs(3));
        let low = Duration::from_nanos(5);
        let high = Duration::from_nanos(7);
        let mut seen = [false; 3];
        for _ in 0..1000 {
            let d = rng.between(low, high);
            seen[usize::try_from(d.as_nanos() - 5).unwrap()] = true;
        }
        assert_eq!(seen, [true; 3]);
        assert_ne!(Rng::seeded(1).next_u64(), Rng::seeded(2).next_u64());
    }

    #[test]
    fn delays_print_like_the_seed() {
        assert_eq!(format_delay(secs(2)), "2s");
        assert_eq!(format_delay(secs(30)), "30s");
        assert_eq!(format_delay(Duration::from_millis(500)), "500ms");
        assert_eq!(format_delay(Duration::from_millis(2500)), "2.5s");
        assert_eq!(format_delay(Duration::ZERO), "0s");
    }
}
