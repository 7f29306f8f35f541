//! Event counters, as OVS daemons keep them (`lib/coverage.c`) and show
//! them with `ovs-appctl coverage/show`: how often the agent plugged,
//! unplugged, replaced, was declined, sent a transaction, saw one fail,
//! called a provider, and restarted a worker, since it started.

use std::sync::atomic::{AtomicU64, Ordering};

/// A counted event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// A logical port plugged (a committed CREATE).
    Plug,
    /// A logical port unplugged (a committed REMOVE).
    Unplug,
    /// An interface replaced by another (a committed replacement).
    Replace,
    /// An interface updated in place.
    Update,
    /// A provider declined a port.
    Decline,
    /// A transaction sent to the local database.
    Transaction,
    /// A transaction that failed.
    TransactionFailure,
    /// A provider callback called (`run`, `port_prepare`).
    ProviderCall,
    /// A provider worker restarted.
    WorkerRestart,
}

const ALL: [(Counter, &str); 9] = [
    (Counter::Plug, "plug"),
    (Counter::Unplug, "unplug"),
    (Counter::Replace, "replace"),
    (Counter::Update, "update"),
    (Counter::Decline, "decline"),
    (Counter::Transaction, "txn"),
    (Counter::TransactionFailure, "txn_failure"),
    (Counter::ProviderCall, "provider_call"),
    (Counter::WorkerRestart, "worker_restart"),
];

static COUNTS: [AtomicU64; 9] = [const { AtomicU64::new(0) }; 9];

/// Counts one `c`.
pub fn inc(c: Counter) {
    add(c, 1);
}

/// Counts `n` of `c`.
pub fn add(c: Counter, n: u64) {
    COUNTS[c as usize].fetch_add(n, Ordering::Relaxed);
}

/// How many `c` so far.
pub fn get(c: Counter) -> u64 {
    COUNTS[c as usize].load(Ordering::Relaxed)
}

/// The text of `coverage/show`: one line per counter, `name total: N`.
pub fn show() -> String {
    let mut out = String::from("Event coverage since start:\n");
    for (c, name) in ALL {
        out += &format!("{name:<20} total: {}\n", get(c));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_distinct_and_shown() {
        for (i, (c, _)) in ALL.iter().enumerate() {
            assert_eq!(*c as usize, i);
        }
        let before = get(Counter::Decline);
        add(Counter::Decline, 2);
        assert_eq!(get(Counter::Decline), before + 2);
        assert!(show().contains("decline "));
    }
}
