//! When to try connecting again, as OVS's `lib/reconnect.c` decides it: a
//! connection that fails, even after it became ready, is a failure; the
//! back-off doubles after each full round of the remotes, up to a cap; it
//! goes back to the minimum only once a connection stayed up longer than
//! the back-off it had; and each wait is jittered, so that many agents
//! that lost one server do not come back in step.
//!
//! Pure: the caller passes the clock and the random bits.

use std::time::{Duration, Instant};

/// The first back-off.
pub const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// The longest back-off (reconnect.c's default `max_backoff`).
pub const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// The back-off state of one session over its remotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the next full round of failures.
    current: Duration,
    /// Failures in the current round (one try of each remote).
    failures_in_round: usize,
    /// When the connection in use became ready.
    ready_since: Option<Instant>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            current: MIN_BACKOFF,
            failures_in_round: 0,
            ready_since: None,
        }
    }
}

impl Backoff {
    /// A connection became ready at `now`.
    pub fn ready(&mut self, now: Instant) {
        self.ready_since = Some(now);
    }

    /// The connection in use failed at `now`, or an attempt on one of
    /// `remotes` failed. Returns how long to wait before the next attempt
    /// (on the next remote); `jitter` is a random value in `0..=u32::MAX`.
    pub fn failed(&mut self, now: Instant, remotes: usize, jitter: u32) -> Duration {
        if let Some(since) = self.ready_since.take() {
            // A connection that stayed up longer than the back-off it had
            // was healthy: start over, and try again at once.
            if now.duration_since(since) > self.current {
                *self = Backoff::default();
                return Duration::ZERO;
            }
        }
        self.failures_in_round += 1;
        if self.failures_in_round < remotes.max(1) {
            return Duration::ZERO; // other remotes are still untried
        }
        self.failures_in_round = 0;
        let wait = self.current;
        self.current = (self.current * 2).min(MAX_BACKOFF);
        jittered(wait, jitter)
    }

    /// Waits the longest back-off after a round (a server that will not
    /// change soon, such as one with too old a schema).
    pub fn failed_for_long(&mut self, remotes: usize, jitter: u32) -> Duration {
        self.ready_since = None;
        self.failures_in_round += 1;
        if self.failures_in_round < remotes.max(1) {
            return Duration::ZERO;
        }
        self.failures_in_round = 0;
        jittered(MAX_BACKOFF, jitter)
    }

    /// The remotes changed: start over.
    pub fn reset(&mut self) {
        *self = Backoff::default();
    }
}

/// `wait` scaled by a factor between 0.75 and 1.25 drawn from `jitter`.
fn jittered(wait: Duration, jitter: u32) -> Duration {
    let factor = 0.75 + 0.5 * (f64::from(jitter) / f64::from(u32::MAX));
    wait.mul_f64(factor)
}

/// A cheap source of jitter: xorshift, seeded from the clock and the
/// process id, so that agents started together still spread out.
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Default for Jitter {
    fn default() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Jitter(nanos ^ (u64::from(std::process::id()) << 32) | 1)
    }
}

impl Jitter {
    /// Draws the next 32 random bits.
    pub fn draw(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 32) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MID: u32 = u32::MAX / 2;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_round_of_failures_waits_and_doubles_up_to_the_cap() {
        let mut b = Backoff::default();
        let now = Instant::now();
        // Three remotes: the first two failures of a round wait nothing.
        let mut waits = Vec::new();
        for _ in 0..24 {
            waits.push(b.failed(now, 3, MID));
        }
        let rounds: Vec<Duration> = waits.chunks(3).map(|c| c[2]).collect();
        assert!(waits.chunks(3).all(|c| c[0].is_zero() && c[1].is_zero()));
        let expected = [250, 500, 1000, 2000, 4000, 8000, 8000, 8000];
        for (got, want) in rounds.iter().zip(expected) {
            assert!(got.abs_diff(ms(want)) <= ms(1), "{got:?} vs {want} ms");
        }
    }

    #[test]
    fn failing_soon_after_becoming_ready_counts_as_a_failure() {
        // Three servers that accept, are ready, and then refuse the
        // monitor at once: the back-off must grow, not reset.
        let mut b = Backoff::default();
        let mut now = Instant::now();
        let mut slept = Duration::ZERO;
        let mut attempts = 0;
        while slept < Duration::from_secs(60) {
            attempts += 1;
            b.ready(now);
            now += ms(5); // refused 5 ms after becoming ready
            let wait = b.failed(now, 3, MID);
            now += wait;
            slept += wait + ms(5);
        }
        assert!(attempts <= 40, "{attempts} attempts in a minute");
    }

    #[test]
    fn a_connection_healthy_for_longer_than_the_back_off_starts_over() {
        let mut b = Backoff::default();
        let now = Instant::now();
        for _ in 0..12 {
            b.failed(now, 1, MID);
        }
        b.ready(now);
        // Up for 3 s while the back-off is 8 s: not healthy long enough.
        assert!(b.failed(now + Duration::from_secs(3), 1, MID) >= ms(6000));
        b.ready(now);
        // Up for 9 s: reset, and retried at once.
        assert_eq!(
            b.failed(now + Duration::from_secs(9), 1, MID),
            Duration::ZERO
        );
        assert!(b.failed(now, 1, MID) <= ms(313));
    }

    #[test]
    fn jitter_stays_within_a_quarter() {
        assert_eq!(jittered(ms(1000), 0), ms(750));
        assert_eq!(jittered(ms(1000), u32::MAX), ms(1250));
        let mut j = Jitter::default();
        let draws: Vec<u32> = (0..100).map(|_| j.draw()).collect();
        assert!(draws.windows(2).any(|w| w[0] != w[1]));
    }
}
