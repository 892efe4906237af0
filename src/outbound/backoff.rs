//! Retry timing for outbox items (SPEC §7.2): exponential backoff with jitter, and the
//! point after which a transiently failing item is given up.
//!
//! Pure: the caller passes the clock and the randomness.

use crate::config::RetryConfig;

/// The largest share of the delay that jitter adds (+25 %).
const JITTER_SHARE: f64 = 0.25;

/// Delay in milliseconds before the next attempt, after `attempts` failed attempts.
///
/// The first retry waits `retry.initial_secs` (1 min by default); each further failure
/// doubles the wait up to `retry.max_secs` (6 h by default). `jitter` (0..1, drawn by the
/// caller) adds up to 25 % on top so that items that failed together do not retry in
/// lockstep; it is added after the cap, so the longest wait is 1.25 × `max_secs`.
/// `attempts` 0 is treated as 1. Values of `jitter` outside 0..1 (or NaN) are clamped.
pub fn next_delay_ms(attempts: u32, retry: &RetryConfig, jitter: f64) -> i64 {
    let initial_ms = retry.initial_secs.saturating_mul(1000);
    let max_ms = retry.max_secs.saturating_mul(1000);
    let doublings = attempts.saturating_sub(1);
    let base = if doublings >= 63 {
        max_ms
    } else {
        initial_ms.saturating_mul(1u64 << doublings).min(max_ms)
    };
    let jitter = if jitter.is_nan() {
        0.0
    } else {
        jitter.clamp(0.0, 1.0)
    };
    // Exact for delays below 2^53 ms; larger ones saturate, which is harmless here.
    let extra = (base as f64 * JITTER_SHARE * jitter) as u64;
    i64::try_from(base.saturating_add(extra)).unwrap_or(i64::MAX)
}

/// Whether an item created at `created_at_ms` has been retried long enough at `now_ms`
/// (`retry.give_up_secs`, 5 days by default) and is to be marked `dead`.
pub fn gives_up(created_at_ms: i64, now_ms: i64, retry: &RetryConfig) -> bool {
    let limit_ms = i64::try_from(retry.give_up_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    now_ms.saturating_sub(created_at_ms) >= limit_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;

    fn defaults() -> RetryConfig {
        RetryConfig {
            initial_secs: 60,
            max_secs: 21_600,
            give_up_secs: 432_000,
        }
    }

    #[test]
    fn doubles_from_one_minute() {
        let r = defaults();
        assert_eq!(next_delay_ms(1, &r, 0.0), MIN);
        assert_eq!(next_delay_ms(2, &r, 0.0), 2 * MIN);
        assert_eq!(next_delay_ms(3, &r, 0.0), 4 * MIN);
        assert_eq!(next_delay_ms(9, &r, 0.0), 256 * MIN);
    }

    #[test]
    fn zero_attempts_is_the_first_retry() {
        assert_eq!(next_delay_ms(0, &defaults(), 0.0), MIN);
    }

    #[test]
    fn caps_at_six_hours() {
        let r = defaults();
        assert_eq!(next_delay_ms(10, &r, 0.0), 6 * HOUR);
        assert_eq!(next_delay_ms(64, &r, 0.0), 6 * HOUR);
        assert_eq!(next_delay_ms(u32::MAX, &r, 0.0), 6 * HOUR);
    }

    #[test]
    fn jitter_adds_up_to_a_quarter() {
        let r = defaults();
        assert_eq!(next_delay_ms(1, &r, 0.5), MIN + MIN / 8);
        assert_eq!(next_delay_ms(1, &r, 1.0), MIN + MIN / 4);
        assert_eq!(next_delay_ms(u32::MAX, &r, 1.0), 6 * HOUR + 6 * HOUR / 4);
    }

    #[test]
    fn jitter_out_of_range_is_clamped() {
        let r = defaults();
        assert_eq!(next_delay_ms(1, &r, -3.0), MIN);
        assert_eq!(next_delay_ms(1, &r, 7.0), MIN + MIN / 4);
        assert_eq!(next_delay_ms(1, &r, f64::NAN), MIN);
    }

    #[test]
    fn huge_settings_do_not_overflow() {
        let r = RetryConfig {
            initial_secs: u64::MAX,
            max_secs: u64::MAX,
            give_up_secs: u64::MAX,
        };
        assert_eq!(next_delay_ms(40, &r, 1.0), i64::MAX);
        assert!(!gives_up(0, i64::MAX - 1, &r));
    }

    #[test]
    fn gives_up_after_five_days() {
        let r = defaults();
        let created = 1_000_000;
        assert!(!gives_up(created, created + 120 * HOUR - 1, &r));
        assert!(gives_up(created, created + 120 * HOUR, &r));
        assert!(!gives_up(created, created - HOUR, &r));
    }

    proptest::proptest! {
        #[test]
        fn delay_is_monotonic_and_bounded(a in 0u32..200, j in 0.0f64..1.0) {
            let r = defaults();
            let d = next_delay_ms(a, &r, j);
            proptest::prop_assert!((MIN..=6 * HOUR + 6 * HOUR / 4).contains(&d));
            proptest::prop_assert!(next_delay_ms(a + 1, &r, 0.0) >= next_delay_ms(a, &r, 0.0));
        }
    }
}
