//! Every logical port the agent knows, each with one [`PortRecord`], and
//! which of them need a fresh decision.
//!
//! The table is where phases change, so it is also where they are told:
//! each change of phase is logged once, with its reason, and changes that
//! share a reason in one iteration share one line (a chassis re-created
//! under 100 plugged ports is one line naming them, not 100).

use super::lport_options::Problem;
use super::placement::Placement;
use super::port_state::{Applied, OpKind, Phase, PortRecord};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

/// After a failed transaction, the first hold-back.
const FIRST_HOLD: Duration = Duration::from_millis(500);
/// The longest hold-back.
const MAX_HOLD: Duration = Duration::from_secs(30);
/// Port names quoted in one aggregated log line.
const NAMES_PER_LINE: usize = 5;

/// How long to hold back after the `n`th consecutive failure: 0.5 s,
/// doubling, at most 30 s.
pub fn backoff(n: u32) -> Duration {
    (FIRST_HOLD * 2u32.saturating_pow(n.saturating_sub(1).min(6))).min(MAX_HOLD)
}

/// Up to [`NAMES_PER_LINE`] of `names`, then how many more.
fn names_line(names: &[String]) -> String {
    let shown: Vec<&str> = names
        .iter()
        .take(NAMES_PER_LINE)
        .map(String::as_str)
        .collect();
    match names.len() - shown.len() {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

#[derive(Debug, Default)]
struct Entry {
    rec: PortRecord,
    /// Complaints already logged: topic → the value complained about.
    warned: BTreeMap<String, String>,
    /// Whether the end of its current quarantine was logged.
    release_said: bool,
}

/// The ports and their pending decisions.
#[derive(Debug, Default)]
pub struct PortTable {
    ports: HashMap<String, Entry>,
    dirty: HashSet<String>,
    /// Phase changes of this iteration to log: (level, message) → ports.
    pending_log: BTreeMap<(log::Level, String), Vec<String>>,
}

static IDLE: PortRecord = PortRecord {
    phase: Phase::Idle,
    applied: None,
    failures: 0,
    suspect: false,
};

/// How a change of phase from `old` to `new` is logged, if it is.
fn describe(old: &Phase, new: &Phase) -> Option<(log::Level, String)> {
    use log::Level::{Info, Warn};
    Some(match new {
        Phase::Kept(k) => (Info, k.to_string()),
        Phase::Standby(Placement::Additional) => (
            Info,
            "requested here as an additional chassis (live migration): only the main chassis plugs, nothing plugged here".into(),
        ),
        Phase::Standby(Placement::Listed) => (
            Info,
            "requested-chassis names this chassis but requested_chassis does not yet: nothing plugged until ovn-northd resolves it".into(),
        ),
        Phase::Standby(p) => (
            Info,
            format!("placement {p}: only a main chassis plugs, nothing plugged here"),
        ),
        Phase::Deferred(what, doubt) => (Info, format!("{what}, but {doubt}: not yet")),
        Phase::Refused(r) => (Warn, r.to_string()),
        Phase::Declined { provider, reason } => (Info, format!("provider {provider}: {reason}")),
        Phase::WaitingForName {
            name,
            holder,
            replacing,
        } => (
            Warn,
            format!(
                "the name {name:?} is taken by {holder}: {} until it is free",
                if *replacing {
                    "its interface is not replaced"
                } else {
                    "not plugged"
                }
            ),
        ),
        // Coming back from a held state is news; the rest is logged when
        // transactions commit.
        Phase::Plugged if matches!(old, Phase::Kept(_) | Phase::Deferred(..)) => (
            Info,
            "binding in view and requested here: the interface kept stays in place".into(),
        ),
        Phase::Plugged if matches!(old, Phase::Refused(_) | Phase::Declined { .. }) => {
            (Info, "requested here again as main chassis: interface in place".into())
        }
        Phase::Idle | Phase::Plugged | Phase::Quarantined { .. } | Phase::InFlight(_) => {
            return None
        }
    })
}

impl PortTable {
    /// The record of `lport` (an idle one if unknown).
    pub fn record(&self, lport: &str) -> &PortRecord {
        self.ports.get(lport).map_or(&IDLE, |e| &e.rec)
    }

    fn entry(&mut self, lport: &str) -> &mut Entry {
        if !self.ports.contains_key(lport) {
            self.ports.insert(lport.to_owned(), Entry::default());
        }
        self.ports.get_mut(lport).expect("inserted above")
    }

    /// Asks for a fresh decision about `lport`.
    pub fn mark(&mut self, lport: &str) {
        if !self.dirty.contains(lport) {
            self.dirty.insert(lport.to_owned());
        }
    }

    /// Asks for a fresh decision about each of `lports`.
    pub fn mark_many(&mut self, lports: impl IntoIterator<Item = String>) {
        self.dirty.extend(lports);
    }

    /// Asks for a fresh decision about every port with a record.
    pub fn mark_known(&mut self) {
        self.dirty.extend(self.ports.keys().cloned());
    }

    /// Forgets what was applied to every port, so that the providers are
    /// asked again (a provider's `run` reported a change; the integration
    /// bridge or DPDK changed), and marks them all.
    pub fn forget_applied(&mut self) {
        for e in self.ports.values_mut() {
            e.rec.applied = None;
        }
        self.mark_known();
    }

    /// Forgets what was applied through the providers of `types` (their
    /// worker restarted: what it held is gone, so those interfaces are
    /// checked again), and marks every known port.
    pub fn forget_applied_of(&mut self, types: &[String]) {
        for e in self.ports.values_mut() {
            let through = e.rec.applied.as_ref().and_then(|a| {
                a.external_ids
                    .iter()
                    .find(|(k, _)| *k == super::rows::OVN_PLUGGED)
                    .and_then(|(_, v)| v.clone())
            });
            if through.is_some_and(|t| types.contains(&t)) {
                e.rec.applied = None;
            }
        }
        self.mark_known();
    }

    /// Marks the ports waiting for a name: one was freed.
    pub fn mark_waiting_for_name(&mut self) {
        let waiting: Vec<String> = self
            .ports
            .iter()
            .filter(|(_, e)| matches!(e.rec.phase, Phase::WaitingForName { .. }))
            .map(|(l, _)| l.clone())
            .collect();
        self.dirty.extend(waiting);
    }

    /// Marks the quarantined ports whose time has come; returns when the
    /// next one is due.
    pub fn release_quarantine(&mut self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut released = Vec::new();
        for (lport, e) in &mut self.ports {
            if let Phase::Quarantined { until } = e.rec.phase {
                if until <= now {
                    self.dirty.insert(lport.clone());
                    if !e.release_said {
                        e.release_said = true;
                        released.push(lport.clone());
                    }
                } else {
                    next = Some(next.map_or(until, |n| n.min(until)));
                }
            }
        }
        if !released.is_empty() {
            released.sort();
            log::info!(
                "released from quarantine: {}; deciding again",
                names_line(&released)
            );
        }
        next
    }

    /// Whether a marked port can be decided now.
    pub fn has_due(&self, now: Instant) -> bool {
        self.dirty.iter().any(|l| self.record(l).phase.is_due(now))
    }

    /// Takes the marked ports that can be decided now: one suspect alone,
    /// if there is one (isolating a failure), else all of them. Marks on
    /// ports in flight or held back are dropped: a commit or the end of the
    /// hold marks them again.
    pub fn take_due(&mut self, now: Instant) -> Vec<String> {
        let suspect = self
            .dirty
            .iter()
            .find(|l| self.record(l).suspect && self.record(l).phase.is_due(now))
            .cloned();
        if let Some(s) = suspect {
            self.dirty.remove(&s);
            self.entry(&s).rec.suspect = false;
            return vec![s];
        }
        let dirty = std::mem::take(&mut self.dirty);
        dirty
            .into_iter()
            .filter(|l| self.record(l).phase.is_due(now))
            .collect()
    }

    /// Records the phase `step` (or carrying out its intent) arrived at,
    /// and logs the change if it is one.
    pub fn set_phase(&mut self, lport: &str, phase: Phase) {
        if self.record(lport).phase == phase {
            return;
        }
        if let Some(key) = describe(&self.record(lport).phase, &phase) {
            self.pending_log
                .entry(key)
                .or_default()
                .push(lport.to_owned());
        }
        self.entry(lport).rec.phase = phase;
    }

    /// Records what is in place for `lport` (a re-check found nothing to
    /// change).
    pub fn set_applied(&mut self, lport: &str, applied: Applied) {
        self.entry(lport).rec.applied = Some(applied);
    }

    /// `lport` is part of the transaction now sent.
    pub fn sent(&mut self, lport: &str, kind: OpKind) {
        self.entry(lport).rec.phase = Phase::InFlight(kind);
    }

    /// `lport`'s operation committed: `applied` is in place (`None` after
    /// a removal). It is decided again, against the committed state.
    pub fn committed(&mut self, lport: &str, applied: Option<Applied>) {
        let e = self.entry(lport);
        e.rec.phase = if applied.is_some() {
            Phase::Plugged
        } else {
            Phase::Idle
        };
        e.rec.applied = applied;
        e.rec.failures = 0;
        self.mark(lport);
    }

    /// `lport`'s operation did not commit, through no fault of its own: it
    /// is decided again from fresh state.
    pub fn not_committed(&mut self, lport: &str) {
        let e = self.entry(lport);
        e.rec.phase = Phase::Idle;
        e.rec.applied = None;
        self.mark(lport);
    }

    /// `lport` made a transaction fail: it is held back, longer after each
    /// consecutive failure. Returns for how long.
    pub fn quarantine(&mut self, lport: &str, now: Instant) -> Duration {
        let e = self.entry(lport);
        e.rec.failures += 1;
        e.rec.applied = None;
        let hold = backoff(e.rec.failures);
        e.rec.phase = Phase::Quarantined { until: now + hold };
        e.release_said = false;
        hold
    }

    /// `lport` (quarantined) is decided alone when its hold ends.
    pub fn suspect_when_released(&mut self, lport: &str) {
        self.entry(lport).rec.suspect = true;
    }

    /// `lport` was in a failed batch whose error named no port: it is
    /// decided alone next time.
    pub fn suspect(&mut self, lport: &str) {
        self.entry(lport).rec.suspect = true;
        self.not_committed(lport);
    }

    /// Logs each of `problems` once per logical port and value; a problem
    /// that went away may be logged again if it comes back.
    pub fn note_problems(&mut self, lport: &str, problems: &[Problem]) {
        if problems.is_empty() && !self.ports.contains_key(lport) {
            return;
        }
        let e = self.entry(lport);
        // A problem that went away is forgotten, to be told again if it
        // comes back.
        e.warned
            .retain(|topic, _| match topic.strip_prefix("option:") {
                Some(option) => problems.iter().any(|p| p.option == option),
                None => true,
            });
        for p in problems {
            let topic = format!("option:{}", p.option);
            if e.warned.get(&topic) != Some(&p.value) {
                log::warn!("logical port {lport}: {}", p.message);
                e.warned.insert(topic, p.value.clone());
            }
        }
    }

    /// Logs once about each interface we plugged for `lport` on a bridge
    /// that is not ours.
    pub fn note_elsewhere(&mut self, lport: &str, elsewhere: &[(String, String)]) {
        if elsewhere.is_empty() && !self.ports.contains_key(lport) {
            return;
        }
        let e = self.entry(lport);
        for (iface, bridge) in elsewhere {
            let topic = format!("elsewhere:{iface}");
            if e.warned.get(&topic) != Some(bridge) {
                log::warn!(
                    "interface {iface} (logical port {lport}) carries external_ids:ovn-plugged but stands on bridge {bridge}, which is not the integration bridge and was not when the agent plugged it: left alone"
                );
                e.warned.insert(topic, bridge.clone());
            }
        }
    }

    /// Writes the phase changes of this iteration, one line per reason,
    /// and forgets ports that have nothing left to remember.
    pub fn end_iteration(&mut self) {
        for ((level, message), mut lports) in std::mem::take(&mut self.pending_log) {
            lports.sort();
            if lports.len() == 1 {
                log::log!(level, "logical port {}: {message}", lports[0]);
                continue;
            }
            log::log!(
                level,
                "{} logical ports ({}): {message}",
                lports.len(),
                names_line(&lports)
            );
        }
        let dirty = &self.dirty;
        self.ports.retain(|lport, e| {
            e.rec != IDLE
                || dirty.contains(lport)
                || e.warned.keys().any(|t| t.starts_with("elsewhere:"))
        });
    }

    /// The logical ports with a record.
    pub fn lports(&self) -> impl Iterator<Item = &String> {
        self.ports.keys()
    }

    /// Number of ports with a record.
    pub fn len(&self) -> usize {
        self.ports.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.ports.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::port_state::Keep;

    #[test]
    fn a_restarted_provider_forgets_only_its_own_ports() {
        use crate::agent::iface_diff::IfaceState;
        let mut t = PortTable::default();
        for (lport, provider) in [("a", "faulty"), ("b", "dummy"), ("c", "faulty")] {
            let iface = IfaceState {
                external_ids: [("ovn-plugged".to_owned(), provider.to_owned())].into(),
                ..IfaceState::default()
            };
            t.set_applied(lport, Applied::new(Vec::new(), &iface, &[]));
        }
        t.forget_applied_of(&["faulty".to_owned()]);
        let kept: Vec<bool> = ["a", "b", "c"]
            .iter()
            .map(|l| t.record(l).applied.is_some())
            .collect();
        assert_eq!(kept, [false, true, false]);
    }

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(7), Duration::from_secs(30));
        assert_eq!(backoff(100), Duration::from_secs(30));
    }

    #[test]
    fn in_flight_and_held_back_ports_are_not_taken_until_due() {
        let now = Instant::now();
        let mut t = PortTable::default();
        t.mark("a");
        t.mark("b");
        t.mark("c");
        t.sent("a", OpKind::Create);
        let hold = t.quarantine("b", now);
        let mut due = t.take_due(now);
        due.sort();
        assert_eq!(due, ["c"]);
        // The commit marks "a" again; the end of the hold marks "b".
        t.committed("a", None);
        assert_eq!(t.release_quarantine(now), Some(now + hold));
        assert_eq!(t.take_due(now), ["a"]);
        assert_eq!(t.release_quarantine(now + hold), None);
        assert_eq!(t.take_due(now + hold), ["b"]);
    }

    #[test]
    fn a_suspect_is_taken_alone() {
        let now = Instant::now();
        let mut t = PortTable::default();
        t.suspect("s");
        t.mark("x");
        assert_eq!(t.take_due(now), ["s"]);
        assert_eq!(t.take_due(now), ["x"]);
    }

    #[test]
    fn forgetting_applied_marks_every_known_port() {
        let mut t = PortTable::default();
        t.committed(
            "a",
            Some(Applied::new(Vec::new(), &Default::default(), &[])),
        );
        t.take_due(Instant::now());
        t.forget_applied();
        assert_eq!(t.record("a").applied, None);
        assert_eq!(t.take_due(Instant::now()), ["a"]);
    }

    #[test]
    fn idle_ports_are_forgotten_and_kept_ones_remembered() {
        let mut t = PortTable::default();
        t.set_phase("kept", Phase::Kept(Keep::Placement(Placement::Listed)));
        t.set_phase(
            "idle",
            Phase::Refused(super::super::port_state::Refusal::NoBridge),
        );
        t.set_phase("idle", Phase::Idle);
        t.take_due(Instant::now());
        t.end_iteration();
        assert_eq!(t.len(), 1);
        assert!(matches!(t.record("kept").phase, Phase::Kept(_)));
    }
}
