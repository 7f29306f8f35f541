//! The agent's answers to the control socket's commands (see
//! [`crate::unixctl`]): each is computed in the event loop, between two
//! iterations, from the same state the agent decides with.

use super::iface_health::Health;
use super::port_state::{Phase, PortRecord};
use super::Agent;
use crate::dispatch::ProviderInfo;
use crate::unixctl::Control;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Instant;

/// One line of `vif-plug/show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortLine {
    /// The logical port.
    pub lport: String,
    /// Its state in a word or two ("plugged", "declined", ...).
    pub state: &'static str,
    /// Why, where the state has a reason.
    pub reason: Option<String>,
    /// The provider that plugged it or is asked.
    pub provider: Option<String>,
    /// Our interface.
    pub iface: Option<String>,
    /// What ovs-vswitchd says of it.
    pub health: Option<Health>,
}

/// The state word and reason of a phase (`now` for quarantines).
pub fn state_of(phase: &Phase, now: Instant) -> (&'static str, Option<String>) {
    match phase {
        Phase::Idle => ("not decided", None),
        Phase::Plugged => ("plugged", None),
        Phase::Kept(k) => ("kept", Some(k.to_string())),
        Phase::Standby(p) => (
            "standby",
            Some(format!("placement {p}: only a main chassis plugs")),
        ),
        Phase::Deferred(what, doubt) => ("deferred", Some(format!("{what}, but {doubt}"))),
        Phase::Refused(r) => ("refused", Some(r.to_string())),
        Phase::Declined { reason, .. } => ("declined", Some(reason.clone())),
        Phase::WaitingForName { name, holder, .. } => (
            "waiting for a name",
            Some(format!("{name:?} is taken by {holder}")),
        ),
        Phase::Quarantined { until } => (
            "quarantined",
            Some(format!(
                "a transaction failed because of it; decided again in {} ms",
                until.saturating_duration_since(now).as_millis()
            )),
        ),
        Phase::InFlight(kind) => ("in flight", Some(format!("{kind} being committed"))),
    }
}

impl PortLine {
    /// The state as shown everywhere (text, JSON, the systemd status):
    /// a plugged port whose interface ovs-vswitchd reports an error for
    /// is "plugged but NOT WORKING", never just "plugged".
    pub fn shown_state(&self) -> &'static str {
        match (&self.health, self.state) {
            (Some(Health::Failed(_)), "plugged") => "plugged but NOT WORKING",
            (_, s) => s,
        }
    }

    /// The line as `ovs-appctl vif-plug/show` prints it. Names and reasons
    /// come from the CMS and from providers: their line breaks and other
    /// control characters are escaped, so none can forge a line.
    pub fn text(&self) -> String {
        crate::provider::one_line(&self.raw_text()).into_owned()
    }

    fn raw_text(&self) -> String {
        let state = self.shown_state();
        let mut details = Vec::new();
        if let Some(p) = &self.provider {
            details.push(format!("provider {p}"));
        }
        if let Some(i) = &self.iface {
            details.push(format!("interface {i}"));
        }
        if let Some(h) = &self.health {
            details.push(h.to_string());
        }
        let mut line = format!("{}: {state}", self.lport);
        if !details.is_empty() {
            line += &format!(" ({})", details.join(", "));
        }
        if let Some(r) = &self.reason {
            line += &format!(": {r}");
        }
        line
    }

    /// The line as `--format json` gives it.
    pub fn json(&self) -> Value {
        let (ofport, error) = match &self.health {
            Some(Health::Up(n)) => (Some(*n), None),
            Some(Health::Failed(e)) => (None, Some(e.clone())),
            _ => (None, None),
        };
        json!({
            "lport": self.lport,
            "state": self.shown_state(),
            "reason": self.reason,
            "provider": self.provider,
            "interface": self.iface,
            "ofport": ofport,
            "error": error,
        })
    }
}

/// `vif-plug/list-providers`: one line per type.
pub fn list_providers(info: &[ProviderInfo], unregistered: &[std::path::PathBuf]) -> String {
    let mut out = String::new();
    for p in info {
        out += &format!(
            "{}: {} (ABI 1.{}), maintains {}",
            p.type_name,
            p.file.display(),
            p.abi_minor,
            if p.maintained.is_empty() {
                "no interface option".to_owned()
            } else {
                p.maintained.join(",")
            }
        );
        match p.worker {
            Some((0, restarts)) => out += &format!(", worker down, {restarts} restart(s)"),
            Some((pid, restarts)) => out += &format!(", worker pid {pid}, {restarts} restart(s)"),
            None => out += ", in process",
        }
        if !p.loaded {
            out += ", given up (see the log)";
        }
        out += "\n";
    }
    for f in unregistered {
        out += &format!(
            "{}: not registered (refused, or its init failed, at start: the log says why; `vif-plug-host check {}` shows it)\n",
            f.display(),
            f.display()
        );
    }
    if out.is_empty() {
        out += "no provider is registered\n";
    }
    out
}

impl Agent {
    /// Answers one command from the control socket.
    pub(super) fn on_control(&mut self, c: Control) {
        let outcome = match c.command {
            "exit" => {
                if self.stopping.is_none() {
                    log::info!("exit requested through the control socket: stopping");
                    self.stopping = Some(Instant::now());
                }
                Ok(String::new())
            }
            "vif-plug/show" => self.show(&c.args),
            "vif-plug/list-providers" => Ok(list_providers(
                &self.providers.info(),
                self.providers.unregistered(),
            )),
            "vif-plug/describe" => self.describe(&c.args[0]),
            "memory/show" => Ok(self.memory_show()),
            "coverage/show" => Ok(crate::coverage::show()),
            "vlog/list" => Ok(crate::vlog::list()),
            "vlog/set" => crate::vlog::set(&c.args),
            other => Err(format!("{other}: not a command of this agent")),
        };
        c.answer(outcome);
    }

    /// Every logical port requested here or plugged by us.
    pub(super) fn port_lines(&self) -> Vec<PortLine> {
        let now = Instant::now();
        let view = self.local.view();
        let mut lports: BTreeSet<&String> = view.plugged_lports().iter().collect();
        lports.extend(self.ports.lports());
        lports
            .into_iter()
            .filter_map(|lport| {
                let rec: &PortRecord = self.ports.record(lport);
                let ours = view.ifaces_of(lport).find_map(|(_, i)| {
                    Some((
                        i.name().to_owned(),
                        i.plugged_by()?.to_owned(),
                        Health::of(i.error(), i.ofport()),
                    ))
                });
                if matches!(rec.phase, Phase::Idle) && ours.is_none() {
                    return None;
                }
                let (state, mut reason) = state_of(&rec.phase, now);
                if matches!(rec.phase, Phase::Idle) {
                    reason = Some(if self.local.is_standby() {
                        "another client holds the lock on the local database: this agent decides and writes nothing".into()
                    } else {
                        "the databases are being read".into()
                    });
                }
                let provider = match &rec.phase {
                    Phase::Declined { provider, .. } => Some(provider.clone()),
                    _ => ours.as_ref().map(|o| o.1.clone()),
                };
                Some(PortLine {
                    lport: lport.clone(),
                    state,
                    reason,
                    provider,
                    iface: ours.as_ref().map(|o| o.0.clone()),
                    health: ours.map(|o| o.2),
                })
            })
            .collect()
    }

    fn show(&self, args: &[String]) -> Result<String, String> {
        let json = match args {
            [] => false,
            [f, v] if f == "--format" && v == "text" => false,
            [f, v] if f == "--format" && v == "json" => true,
            _ => return Err("usage: vif-plug/show [--format text|json]".into()),
        };
        let lines = self.port_lines();
        if json {
            let all: Vec<Value> = lines.iter().map(PortLine::json).collect();
            return Ok(format!("{}\n", Value::Array(all)));
        }
        // What the lines cannot be trusted for, first.
        let mut out = String::new();
        if !self.local.is_complete() {
            out += "the local Open vSwitch database is not read (not connected yet, or lost: see the log): interfaces are not known\n";
        } else if self.local.is_standby() {
            out += "standby: another client (a second vif-plug-host?) holds the lock on the local database; this agent writes nothing until it is released\n";
        }
        if !self.sb.has_remote() {
            out += "no Southbound remote (external_ids:ovn-remote or --ovnsb-remote): requests are not known\n";
        }
        if lines.is_empty() {
            out += "no logical port is requested on this chassis or plugged by this agent\n";
        }
        out.extend(lines.iter().map(|l| l.text() + "\n"));
        Ok(out)
    }

    fn describe(&self, t: &str) -> Result<String, String> {
        match self.providers.describe(t)? {
            None => Ok(format!(
                "provider {t:?} has no inventory to show (no describe callback: NULL, or built for ABI 1.0)\n"
            )),
            Some(lines) if lines.is_empty() => Ok(format!(
                "provider {t:?} described no inventory (its describe callback wrote no line)\n"
            )),
            Some(lines) => Ok(lines.iter().map(|l| format!("{l}\n")).collect()),
        }
    }

    fn memory_show(&self) -> String {
        let plugged = self.local.view().plugged_lports().len();
        let rss = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    l.strip_prefix("VmRSS:")
                        .map(|v| v.trim().trim_end_matches(" kB").to_owned())
                })
            })
            .unwrap_or_else(|| "?".into());
        format!(
            "lports:{} plugged:{plugged} providers:{} rss-kib:{rss}\n",
            self.ports.len(),
            self.providers.types().len()
        )
    }
}

#[cfg(test)]
mod state_tests {
    use super::*;
    use crate::agent::port_state::OpKind;

    /// What is in flight reads as words, as every `vif-plug/show` reason.
    #[test]
    fn an_operation_in_flight_reads_as_text() {
        let cases = [
            (OpKind::Create, "its creation being committed"),
            (OpKind::Update, "an update of its interface being committed"),
            (OpKind::Remove, "its removal being committed"),
            (
                OpKind::Replace,
                "the replacement of its interface being committed",
            ),
        ];
        for (kind, said) in cases {
            let (state, reason) = state_of(&Phase::InFlight(kind), Instant::now());
            assert_eq!((state, reason.as_deref()), ("in flight", Some(said)));
        }
    }
}
