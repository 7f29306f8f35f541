//! What the agent tells its service manager (systemd's `sd_notify`
//! protocol, `sd_notify(3)`): `READY=1` once, when both databases have
//! delivered their complete contents, and a `STATUS=` line that says what
//! it waits for or how its ports stand, as `systemctl status` shows it.
//!
//! The decisions here are pure; [`crate::agent::Agent`] gathers the inputs
//! and sends what [`Readiness::step`] returns through [`super::notify`].

use super::control::PortLine;
use super::port_state::Doubt;
use std::time::{Duration, Instant};

/// The least time between two `STATUS=` lines: a burst of port changes
/// gives one line a second, not one per change.
pub const STATUS_EVERY: Duration = Duration::from_secs(1);

/// Where the agent stands in reading its databases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// The local `Open_vSwitch` database is not read in full yet.
    LocalLoading,
    /// No Southbound remote is known: neither `--ovnsb-remote` nor
    /// `external_ids:ovn-remote` is set.
    NoSouthbound,
    /// The Southbound monitor has not delivered its complete contents
    /// (or its connection is down before it first did).
    SouthboundLoading,
    /// Both are read (or were, once: see [`stage`]); `doubt` says why
    /// unplugs are held, if they are (see
    /// [`super::sb_session::SbSession::doubt`]).
    Running {
        /// Why the databases cannot prove an unplug now.
        doubt: Option<String>,
        /// Another client holds the lock on the local database: this agent
        /// decides and writes nothing.
        standby: bool,
    },
}

/// What [`stage`] is worked out from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageInputs {
    /// `READY=1` was sent already.
    pub ready_sent: bool,
    /// The local database's contents are in view on a live connection.
    pub local_complete: bool,
    /// A Southbound remote is known.
    pub sb_remote: bool,
    /// The Southbound monitor's contents are in view on a live connection.
    pub sb_complete: bool,
    /// Why the Southbound view cannot prove an unplug, if it cannot.
    pub sb_doubt: Option<Doubt>,
    /// Another client holds the local database's lock.
    pub standby: bool,
}

/// Where the agent stands. Before `READY=1`, the Southbound counts as read
/// only once the server has acknowledged the condition on our chassis (its
/// bindings are in view), not at the monitor's first reply. After it,
/// never back to a loading stage: systemd has no "not ready" state, so a
/// database lost later is told as why unplugs are held, with the counts.
pub fn stage(i: &StageInputs) -> Stage {
    let sb_read = i.sb_complete
        && !matches!(
            i.sb_doubt,
            Some(Doubt::Disconnected | Doubt::Loading | Doubt::ConditionPending)
        );
    if !i.ready_sent {
        if !i.local_complete {
            return Stage::LocalLoading;
        }
        if !i.sb_remote {
            return Stage::NoSouthbound;
        }
        if !sb_read {
            return Stage::SouthboundLoading;
        }
    }
    let doubt = if !i.local_complete {
        Some("the local Open vSwitch database is not connected".to_owned())
    } else if !i.sb_remote {
        Some("no Southbound remote".to_owned())
    } else {
        i.sb_doubt.as_ref().map(Doubt::brief)
    };
    Stage::Running {
        doubt,
        standby: i.standby,
    }
}

/// One message to the service manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// `READY=1`.
    Ready,
    /// `STATUS=<text>`.
    Status(String),
}

/// The `STATUS=` text for `stage` and the ports of `vif-plug/show`.
///
/// Before both databases are read it says what is awaited; after, the
/// count of ports in each state of `vif-plug/show` that has any (plugged
/// always), then why unplugs are held, if they are. For example
/// `"3 plugged, 1 declined; unplugs held: the Southbound view is loading"`.
pub fn status_line(stage: &Stage, ports: &[PortLine]) -> String {
    let doubt = match stage {
        Stage::LocalLoading => return "reading the local Open vSwitch database".into(),
        Stage::NoSouthbound => {
            return "waiting for a Southbound remote (external_ids:ovn-remote or --ovnsb-remote)"
                .into()
        }
        Stage::SouthboundLoading => return "reading the OVN Southbound database".into(),
        Stage::Running { standby: true, .. } => {
            return "standby: another client (a second vif-plug-host?) holds the lock on the local database; this agent writes nothing until it is released".into()
        }
        Stage::Running { doubt, .. } => doubt,
    };
    // The states in the order an operator reads them: what works, what
    // does not, what is pending.
    const ORDER: &[&str] = &[
        "plugged",
        "plugged but NOT WORKING",
        "declined",
        "refused",
        "waiting for a name",
        "quarantined",
        "in flight",
        "deferred",
        "kept",
        "standby",
        "not decided",
    ];
    let word = PortLine::shown_state;
    let mut parts = Vec::new();
    for state in ORDER {
        let n = ports.iter().filter(|l| word(l) == *state).count();
        if n > 0 || *state == "plugged" {
            parts.push(format!("{n} {state}"));
        }
    }
    let mut line = parts.join(", ");
    if let Some(d) = doubt {
        line += &format!("; unplugs held: {d}");
    }
    line
}

/// Whether and what to tell the service manager, step by step.
#[derive(Debug, Default)]
pub struct Readiness {
    ready_sent: bool,
    last_status: Option<String>,
    last_sent: Option<Instant>,
    /// Something may have changed since the last line was worked out.
    dirty: bool,
}

impl Readiness {
    /// Notes that ports or databases may have changed.
    pub fn touch(&mut self) {
        self.dirty = true;
    }

    /// Whether a status line is due at `now` (work it out only then: it
    /// walks every port). `READY=1` is not held back by this: see
    /// [`Readiness::step`].
    pub fn due(&self, now: Instant) -> bool {
        self.dirty && self.last_sent.is_none_or(|t| now >= t + STATUS_EVERY)
    }

    /// When a pending line becomes due, for the event loop's deadline.
    pub fn next_due(&self) -> Option<Instant> {
        self.dirty
            .then(|| self.last_sent.map(|t| t + STATUS_EVERY))
            .flatten()
    }

    /// What to send, given the current `stage` and its `status` line
    /// (call when [`Readiness::due`]): `READY=1` the first time the stage
    /// is [`Stage::Running`], and the line when it differs from the last
    /// one sent. `READY=1` is never taken back: losing a database later is
    /// told in the line, as systemd has no "not ready" state.
    pub fn step(&mut self, now: Instant, stage: &Stage, status: String) -> Vec<Notice> {
        self.dirty = false;
        let mut out = Vec::new();
        if !self.ready_sent && matches!(stage, Stage::Running { .. }) {
            self.ready_sent = true;
            out.push(Notice::Ready);
        }
        if self.last_status.as_deref() != Some(status.as_str()) {
            self.last_status = Some(status.clone());
            out.push(Notice::Status(status));
        }
        if !out.is_empty() {
            self.last_sent = Some(now);
        }
        out
    }

    /// `notices` (from [`Readiness::step`]) did not reach the manager:
    /// they are sent again at the next step.
    pub fn unsent(&mut self, notices: &[Notice]) {
        for n in notices {
            match n {
                Notice::Ready => self.ready_sent = false,
                Notice::Status(_) => self.last_status = None,
            }
        }
        self.dirty = true;
    }

    /// Whether `READY=1` was sent.
    pub fn is_ready(&self) -> bool {
        self.ready_sent
    }
}

#[cfg(test)]
mod tests {
    use super::super::iface_health::Health;
    use super::*;

    fn port(lport: &str, state: &'static str, health: Option<Health>) -> PortLine {
        PortLine {
            lport: lport.into(),
            state,
            reason: None,
            provider: None,
            iface: None,
            health,
        }
    }

    #[test]
    fn status_lines_say_what_is_awaited_then_how_ports_stand() {
        let running = |doubt: Option<&str>| Stage::Running {
            doubt: doubt.map(str::to_owned),
            standby: false,
        };
        let ports = [
            port("a", "plugged", Some(Health::Up(3))),
            port(
                "b",
                "plugged",
                Some(Health::Failed("no such device".into())),
            ),
            port("c", "declined", None),
            port("d", "plugged", None),
            port("e", "deferred", None),
        ];
        let cases: &[(Stage, &[PortLine], &str)] = &[
            (
                Stage::LocalLoading,
                &ports,
                "reading the local Open vSwitch database",
            ),
            (
                Stage::NoSouthbound,
                &[],
                "waiting for a Southbound remote (external_ids:ovn-remote or --ovnsb-remote)",
            ),
            (
                Stage::SouthboundLoading,
                &[],
                "reading the OVN Southbound database",
            ),
            (running(None), &[], "0 plugged"),
            (
                running(None),
                &ports,
                "2 plugged, 1 plugged but NOT WORKING, 1 declined, 1 deferred",
            ),
            (
                running(Some("the settle time is running")),
                &ports[..1],
                "1 plugged; unplugs held: the settle time is running",
            ),
            (
                Stage::Running {
                    doubt: None,
                    standby: true,
                },
                &ports,
                "standby: another client (a second vif-plug-host?) holds the lock on the local database; this agent writes nothing until it is released",
            ),
        ];
        for (stage, ports, want) in cases {
            assert_eq!(status_line(stage, ports), *want, "{stage:?}");
        }
    }

    #[test]
    fn ready_is_sent_once_when_both_databases_are_read_and_lines_only_when_they_change() {
        let t0 = Instant::now();
        let mut r = Readiness::default();
        assert!(!r.due(t0), "nothing happened yet");
        r.touch();
        assert!(r.due(t0));
        let line = |s: &str| s.to_owned();
        assert_eq!(
            r.step(t0, &Stage::LocalLoading, line("x")),
            vec![Notice::Status("x".into())]
        );
        // Within the second: not due; the deadline is the second's end.
        r.touch();
        assert!(!r.due(t0 + Duration::from_millis(500)));
        assert_eq!(r.next_due(), Some(t0 + STATUS_EVERY));
        let t1 = t0 + STATUS_EVERY;
        assert!(r.due(t1));
        // Same line: nothing sent, and nothing pending.
        assert_eq!(r.step(t1, &Stage::SouthboundLoading, line("x")), vec![]);
        assert_eq!(r.next_due(), None);
        r.touch();
        let running = Stage::Running {
            doubt: None,
            standby: false,
        };
        assert_eq!(
            r.step(t1, &running, line("0 plugged")),
            vec![Notice::Ready, Notice::Status("0 plugged".into())]
        );
        assert!(r.is_ready());
        // Losing the Southbound later: a line, never a second READY.
        r.touch();
        let t2 = t1 + STATUS_EVERY;
        assert_eq!(
            r.step(t2, &Stage::SouthboundLoading, line("reading")),
            vec![Notice::Status("reading".into())]
        );
        r.touch();
        let t3 = t2 + STATUS_EVERY;
        assert_eq!(
            r.step(t3, &running, line("0 plugged")),
            vec![Notice::Status("0 plugged".into())]
        );
    }

    #[test]
    fn what_did_not_reach_the_manager_is_sent_again() {
        let t0 = Instant::now();
        let mut r = Readiness::default();
        r.touch();
        let running = Stage::Running {
            doubt: None,
            standby: false,
        };
        let sent = r.step(t0, &running, "1 plugged".into());
        assert_eq!(
            sent,
            vec![Notice::Ready, Notice::Status("1 plugged".into())]
        );
        r.unsent(&sent);
        assert!(!r.is_ready());
        let t1 = t0 + STATUS_EVERY;
        assert!(r.due(t1));
        assert_eq!(r.step(t1, &running, "1 plugged".into()), sent);
        assert!(r.is_ready());
    }

    #[test]
    fn ready_waits_for_our_chassis_bindings_and_is_never_taken_back() {
        let base = StageInputs {
            ready_sent: false,
            local_complete: true,
            sb_remote: true,
            sb_complete: true,
            sb_doubt: None,
            standby: false,
        };
        let with = |f: &dyn Fn(&mut StageInputs)| {
            let mut i = base.clone();
            f(&mut i);
            i
        };
        let running = |doubt: Option<&str>| Stage::Running {
            doubt: doubt.map(str::to_owned),
            standby: false,
        };
        let cases: Vec<(&str, StageInputs, Stage)> = vec![
            ("all read", base.clone(), running(None)),
            (
                "local not read",
                with(&|i| i.local_complete = false),
                Stage::LocalLoading,
            ),
            (
                "no remote",
                with(&|i| i.sb_remote = false),
                Stage::NoSouthbound,
            ),
            (
                "first reply not in",
                with(&|i| i.sb_complete = false),
                Stage::SouthboundLoading,
            ),
            (
                "first reply in, our chassis' condition not acknowledged",
                with(&|i| i.sb_doubt = Some(Doubt::ConditionPending)),
                Stage::SouthboundLoading,
            ),
            (
                "read, settling: ready, unplugs held",
                with(&|i| i.sb_doubt = Some(Doubt::Settling)),
                running(Some("waiting --unplug-settle after a first look")),
            ),
            (
                "read, our chassis not registered: ready, unplugs held",
                with(&|i| i.sb_doubt = Some(Doubt::NoChassis("hv1".into()))),
                running(Some("no Chassis row \"hv1\" in the Southbound")),
            ),
            (
                "after READY, the Southbound lost: counts and why",
                with(&|i| {
                    i.ready_sent = true;
                    i.sb_complete = false;
                    i.sb_doubt = Some(Doubt::Disconnected);
                }),
                running(Some("the Southbound is not connected")),
            ),
            (
                "after READY, the local database lost",
                with(&|i| {
                    i.ready_sent = true;
                    i.local_complete = false;
                }),
                running(Some("the local Open vSwitch database is not connected")),
            ),
            (
                "a second agent waiting for the lock",
                with(&|i| i.standby = true),
                Stage::Running {
                    doubt: None,
                    standby: true,
                },
            ),
        ];
        for (what, inputs, want) in cases {
            assert_eq!(stage(&inputs), want, "{what}");
        }
    }
}
