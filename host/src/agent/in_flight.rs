//! The transaction in flight on the local database, and what its outcome
//! means for each port: on commit, `port_finish` for every operation and
//! the committed state recorded; on failure, `port_ctx_destroy` only (by
//! dropping the operations), and the ports decided again, the one that made
//! it fail held back.
//!
//! One transaction at a time: a port in it is not decided again until it
//! ends.

use super::plan::{build_txn, Action, Plan};
use super::port_state::OpKind;
use super::port_table::{backoff, PortTable};
use crate::coverage::{self, Counter};
use crate::ovsdb::client::Client;
use crate::ovsdb::txn::{check_result, failed_op};
use serde_json::Value;
use std::time::{Duration, Instant};

struct Sent {
    id: u64,
    /// The integration bridge when it was sent, for the log.
    bridge: String,
    plans: Vec<Plan>,
    /// The plan each operation of the transaction belongs to.
    owners: Vec<Option<usize>>,
    /// When it was sent.
    at: Instant,
    /// Whether its slowness was logged.
    warned: bool,
}

/// A transaction unanswered this long is logged as such, once: a local
/// ovsdb-server that is stopped or swamped is otherwise silent.
pub const SLOW_TXN: Duration = Duration::from_secs(5);

/// At most this many logical ports are named in one line.
const NAMED: usize = 8;

impl Sent {
    /// What it does, briefly: "plugging lsp1, unplugging lsp2 and 3 more".
    fn summary(&self) -> String {
        let mut parts: Vec<String> = self
            .plans
            .iter()
            .take(NAMED)
            .map(|p| format!("{} {}", p.verb(), p.lport))
            .collect();
        if self.plans.len() > NAMED {
            parts.push(format!("{} more", self.plans.len() - NAMED));
        }
        parts.join(", ")
    }
}

/// The local database writer.
pub struct Writer {
    sent: Option<Sent>,
    /// No transaction before this (after a failure no port explains).
    not_before: Instant,
    /// Consecutive failures no port explains.
    global_failures: u32,
}

impl Default for Writer {
    fn default() -> Self {
        Writer {
            sent: None,
            not_before: Instant::now(),
            global_failures: 0,
        }
    }
}

impl Writer {
    /// Whether a transaction is in flight.
    pub fn busy(&self) -> bool {
        self.sent.is_some()
    }

    /// When the next transaction may be sent.
    pub fn not_before(&self) -> Instant {
        self.not_before
    }

    /// Whether `id` is the transaction in flight.
    pub fn is_ours(&self, id: u64) -> bool {
        self.sent.as_ref().is_some_and(|s| s.id == id)
    }

    /// Sends `plans` as one transaction asserting `lock`, and marks their
    /// ports in flight. If it cannot be sent (not connected), the
    /// operations are dropped (`port_ctx_destroy`, no `port_finish`) and
    /// the ports decided again once reconnected.
    pub fn send(
        &mut self,
        client: &mut Client,
        plans: Vec<Plan>,
        lock: &str,
        bridge: &str,
        ports: &mut PortTable,
    ) {
        let (txn, owners) = build_txn(&plans, Some(lock));
        match client.request_json("transact", &txn.params_json()) {
            Some(id) => {
                coverage::inc(Counter::Transaction);
                // Logged after sending, so that logging adds no latency.
                log::debug!("transaction of {} operation(s) sent", plans.len());
                for p in &plans {
                    log::debug!("sent: {}", describe(p, bridge, false));
                    ports.sent(&p.lport, p.kind());
                }
                self.sent = Some(Sent {
                    id,
                    plans,
                    owners,
                    bridge: bridge.to_owned(),
                    at: Instant::now(),
                    warned: false,
                });
            }
            None => {
                for p in &plans {
                    ports.not_committed(&p.lport);
                }
            }
        }
    }

    /// Settles the transaction in flight with its `result` (`Err` when the
    /// connection was lost before the reply).
    pub fn settle(&mut self, result: Result<Value, String>, ports: &mut PortTable) {
        let Some(sent) = self.sent.take() else {
            return;
        };
        let now = Instant::now();
        if sent.warned {
            log::info!(
                "local: the transaction is answered after {} ms",
                now.duration_since(sent.at).as_millis()
            );
        }
        let failed_at = result.as_ref().ok().and_then(failed_op);
        // The failed operation's plan; a lone plan is its own culprit.
        let culprit = failed_at
            .and_then(|i| sent.owners.get(i).copied().flatten())
            .or((sent.plans.len() == 1).then_some(0));
        let connection_lost = result.is_err();
        let outcome = result.and_then(|r| check_result(&r));
        let n = sent.plans.len();
        let e = match outcome {
            Ok(()) => {
                self.global_failures = 0;
                log::debug!("transaction of {n} operation(s) committed");
                for plan in sent.plans {
                    committed(plan, &sent.bridge, ports);
                }
                return;
            }
            Err(e) => e,
        };
        coverage::inc(Counter::TransactionFailure);
        for plan in &sent.plans {
            ports.not_committed(&plan.lport);
        }
        let lock_lost = e.contains("not owner");
        match culprit.map(|i| sent.plans[i].lport.clone()) {
            Some(lport) if !lock_lost => {
                // One port's operation failed: hold that port back (longer
                // each time) and retry the others right away.
                let hold = ports.quarantine(&lport, now);
                log::warn!(
                    "transaction of {n} operation(s) failed because of logical port {lport}: {e}; retrying the others now and {lport} in {} ms",
                    hold.as_millis()
                );
            }
            None if n > 1 && !connection_lost && !lock_lost => {
                log::warn!(
                    "transaction of {n} operation(s) failed: {e}; no single port is named, so its ports are retried one per transaction"
                );
                for plan in &sent.plans {
                    ports.suspect(&plan.lport);
                }
            }
            _ => {
                self.global_failures += 1;
                let hold: Duration = backoff(self.global_failures);
                log::warn!(
                    "transaction of {n} operation(s) failed: {e}; recomputing from fresh state in {} ms",
                    hold.as_millis()
                );
                self.not_before = now + hold;
            }
        }
        // Dropping the plans calls ctx_destroy for each CREATE, without
        // finish.
        drop(sent.plans);
    }

    /// Logs, once, a transaction unanswered for [`SLOW_TXN`]. Returns
    /// when to look again.
    pub fn check_slow(&mut self, now: Instant) -> Option<Instant> {
        let sent = self.sent.as_mut().filter(|s| !s.warned)?;
        let due = sent.at + SLOW_TXN;
        if now < due {
            return Some(due);
        }
        sent.warned = true;
        log::warn!(
            "local: no answer for {} ms to the transaction of {} operation(s) ({}): is ovsdb-server stopped or overloaded? Waiting for it; nothing else is written meanwhile",
            now.duration_since(sent.at).as_millis(),
            sent.plans.len(),
            sent.summary()
        );
        None
    }

    /// On shutdown: the transaction in flight is abandoned, its outcome
    /// unknown. Returns how many operations it held and what they did.
    pub fn abandon(&mut self) -> Option<(usize, String)> {
        self.sent.take().map(|s| (s.plans.len(), s.summary()))
    }
}

/// Finishes one committed plan, logs what it did, and records what it
/// applied.
fn committed(plan: Plan, bridge: &str, ports: &mut PortTable) {
    log::info!("{}", describe(&plan, bridge, true));
    coverage::inc(match plan.kind() {
        OpKind::Create => Counter::Plug,
        OpKind::Remove => Counter::Unplug,
        OpKind::Replace => Counter::Replace,
        OpKind::Update => Counter::Update,
    });
    let lport = plan.lport.clone();
    let applied = plan.applied();
    plan.finish();
    ports.committed(&lport, applied);
}

/// One line saying what `plan` does (`done`: did).
fn describe(plan: &Plan, bridge: &str, done: bool) -> String {
    let lport = &plan.lport;
    let because = plan
        .why
        .as_deref()
        .map(|w| format!(", because {w}"))
        .unwrap_or_default();
    let new = |c: &super::plan::Creation| {
        let out = c.op.output();
        format!(
            "{} (type {}) on {bridge}, provider {}",
            out.name,
            out.iface_type.as_deref().unwrap_or("system"),
            c.op.type_name()
        )
    };
    let verb = |did: &'static str, doing: &'static str| if done { did } else { doing };
    match &plan.action {
        Action::Create(c) => format!(
            "{} logical port {lport}: interface {}{because}",
            verb("plugged", "plugging"),
            new(c)
        ),
        Action::Update {
            iface_name, update, ..
        } => format!(
            "{} interface {iface_name} of logical port {lport}: {update}",
            verb("updated", "updating")
        ),
        Action::Remove(r) => format!(
            "{} logical port {lport}: {} interface {}{because}",
            verb("unplugged", "unplugging"),
            verb("removed", "removing"),
            r.iface_name
        ),
        Action::Replace(r, c) => format!(
            "{} interface {} of logical port {lport} by {}{because}",
            verb("replaced", "replacing"),
            r.iface_name,
            new(c)
        ),
    }
}
