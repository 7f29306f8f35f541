//! What the agent tells its service manager (systemd's `sd_notify`
//! protocol, `sd_notify(3)`): `READY=1` once, when both databases have
//! delivered their complete contents, and a `STATUS=` line that says what
//! it waits for or how its ports stand, as `systemctl status` shows it.
//!
//! The decisions here are pure; [`crate::agent::Agent`] gathers the inputs
//! and sends what [`Readiness::step`] returns with the `sd-notify` crate.

use super::control::PortLine;
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
    /// Both are read; `doubt` says why unplugs are held, if they are
    /// (see [`super::sb_session::SbSession::doubt`]).
    Running {
        /// Why the Southbound view cannot prove an unplug now.
        doubt: Option<String>,
    },
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
        Stage::Running { doubt } => doubt,
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
    ];
    let word = |l: &PortLine| -> &'static str {
        match (l.state, &l.health) {
            ("plugged", Some(super::iface_health::Health::Failed(_))) => "plugged but NOT WORKING",
            (s, _) => s,
        }
    };
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
    /// walks every port).
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
        let running = Stage::Running { doubt: None };
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
}
