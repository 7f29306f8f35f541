//! The logical ports whose provider call was in flight when a worker died
//! or hung: each is held back for a while before it is offered to the
//! provider again, so that one port that crashes its provider costs that
//! port, not the provider's other ports. The hold doubles with each
//! failure of the same port, up to a cap, and is forgotten once a call for
//! the port succeeds. Pure: the caller passes the time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The ports held back, by logical port name.
#[derive(Debug)]
pub struct Quarantine {
    base: Duration,
    cap: Duration,
    ports: BTreeMap<String, Held>,
}

#[derive(Debug, Clone, Copy)]
struct Held {
    until: Instant,
    failures: u32,
    /// Whether its release was already reported.
    released: bool,
}

impl Quarantine {
    /// A quarantine whose first hold is `base`, doubling up to `cap`.
    pub fn new(base: Duration, cap: Duration) -> Quarantine {
        Quarantine {
            base,
            cap,
            ports: BTreeMap::new(),
        }
    }

    /// Records a failure of a call for `lport` at `now`; returns how long
    /// it is held back.
    pub fn failed(&mut self, lport: &str, now: Instant) -> Duration {
        let failures = self.ports.get(lport).map_or(0, |h| h.failures) + 1;
        let hold = self
            .base
            .saturating_mul(1 << (failures - 1).min(20))
            .min(self.cap);
        self.ports.insert(
            lport.to_owned(),
            Held {
                until: now + hold,
                failures,
                released: false,
            },
        );
        hold
    }

    /// Until when `lport` is held back, if it is at `now`.
    pub fn held_until(&self, lport: &str, now: Instant) -> Option<Instant> {
        self.ports
            .get(lport)
            .filter(|h| h.until > now)
            .map(|h| h.until)
    }

    /// The ports whose hold ended by `now` and were not reported yet, in
    /// name order (for one log line); their failure counts are kept until
    /// [`Quarantine::succeeded`].
    pub fn released(&mut self, now: Instant) -> Vec<String> {
        let mut out = Vec::new();
        for (name, h) in &mut self.ports {
            if !h.released && h.until <= now {
                h.released = true;
                out.push(name.clone());
            }
        }
        out
    }

    /// A call for `lport` succeeded: its next failure starts from `base`.
    pub fn succeeded(&mut self, lport: &str) {
        self.ports.remove(lport);
    }

    /// The earliest end of a hold still to be reported, for the caller's
    /// timer.
    pub fn next_release(&self) -> Option<Instant> {
        self.ports
            .values()
            .filter(|h| !h.released)
            .map(|h| h.until)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn holds_double_up_to_the_cap_and_start_over_after_a_success() {
        let t0 = Instant::now();
        let mut q = Quarantine::new(S, 8 * S);
        // failure n -> hold
        let table = [(1, 1), (2, 2), (3, 4), (4, 8), (5, 8), (40, 8)];
        let mut n = 0;
        for (failure, secs) in table {
            let mut hold = Duration::ZERO;
            while n < failure {
                hold = q.failed("lsp1", t0);
                n += 1;
            }
            assert_eq!(hold, secs * S, "failure {failure}");
        }
        q.succeeded("lsp1");
        assert_eq!(q.failed("lsp1", t0), S);
    }

    #[test]
    fn a_port_is_held_until_its_time_and_its_release_said_once() {
        let t0 = Instant::now();
        let mut q = Quarantine::new(S, 8 * S);
        q.failed("b", t0);
        q.failed("a", t0);
        q.failed("a", t0); // 2 s
        assert_eq!(q.held_until("a", t0), Some(t0 + 2 * S));
        assert_eq!(q.held_until("other", t0), None);
        assert_eq!(q.next_release(), Some(t0 + S));
        assert!(q.released(t0).is_empty());
        assert_eq!(q.released(t0 + S), ["b"]);
        assert_eq!(q.held_until("b", t0 + S), None);
        assert_eq!(q.next_release(), Some(t0 + 2 * S));
        assert_eq!(q.released(t0 + 3 * S), ["a"]);
        assert!(q.released(t0 + 4 * S).is_empty(), "said once");
        assert_eq!(q.next_release(), None);
        // Failing again after release: the count was kept.
        assert_eq!(q.failed("a", t0 + 4 * S), 4 * S);
    }
}
