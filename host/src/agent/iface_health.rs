//! What ovs-vswitchd says of the interfaces the agent plugged: an
//! `Interface.error` or `ofport` -1 means the port is in the database but
//! not in the datapath (a representor that vanished, a wrong name). Such a
//! port is never reported as simply "plugged": one WARN when the error
//! appears or changes, one INFO when it clears, and `vif-plug/show` says
//! it.

use super::Agent;
use std::collections::HashMap;

/// Where an interface stands in ovs-vswitchd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// In the datapath, with this OpenFlow port.
    Up(i64),
    /// Not looked at yet (no `ofport`).
    Pending,
    /// Not in the datapath, and why.
    Failed(String),
}

impl Health {
    /// From the `error` and `ofport` columns (`vswitchd/vswitch.xml`:
    /// `ofport` -1 means the interface could not be created or opened).
    pub fn of(error: Option<&str>, ofport: Option<i64>) -> Health {
        match (error, ofport) {
            (Some(e), _) => Health::Failed(e.to_owned()),
            (None, Some(-1)) => Health::Failed("ofport -1: ovs-vswitchd could not add it".into()),
            (None, Some(n)) => Health::Up(n),
            (None, None) => Health::Pending,
        }
    }
}

impl std::fmt::Display for Health {
    /// "ofport 5", "no ofport yet", "error: ...".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Health::Up(n) => write!(f, "ofport {n}"),
            Health::Pending => f.write_str("no ofport yet"),
            Health::Failed(e) => write!(f, "error: {e}"),
        }
    }
}

/// The errors already said, per logical port and interface name.
#[derive(Debug, Default)]
pub struct HealthWatch {
    said: HashMap<(String, String), String>,
}

impl HealthWatch {
    /// The line to log, if any, now that interface `iface` of logical port
    /// `lport` stands at `health`: a new or changed error, or its end.
    pub fn observe(
        &mut self,
        lport: &str,
        iface: &str,
        health: &Health,
    ) -> Option<(log::Level, String)> {
        match health {
            Health::Failed(e) => {
                let key = (lport.to_owned(), iface.to_owned());
                if self.said.get(&key) == Some(e) {
                    return None;
                }
                self.said.insert(key, e.clone());
                Some((
                    log::Level::Warn,
                    format!("logical port {lport}: ovs-vswitchd reports interface {iface} as not working ({e}); the port is in the database but not in the datapath"),
                ))
            }
            Health::Up(n) => self
                .said
                .remove(&(lport.to_owned(), iface.to_owned()))
                .map(|_| {
                    (
                        log::Level::Info,
                        format!("logical port {lport}: interface {iface} works again (ofport {n})"),
                    )
                }),
            Health::Pending => None,
        }
    }

    /// Forgets the interfaces of a logical port we no longer have one for.
    pub fn forget_lport(&mut self, lport: &str) {
        self.said.retain(|(l, _), _| l != lport);
    }
}

impl Agent {
    /// Says what changed in ovs-vswitchd's view of the interfaces we
    /// plugged for `lports` (their rows just changed).
    pub(super) fn watch_health<'a>(&mut self, lports: impl IntoIterator<Item = &'a String>) {
        let view = self.local.view();
        for lport in lports {
            let mut seen = false;
            for (_, iface) in view.ifaces_of(lport) {
                if iface.plugged_by().is_none() {
                    continue;
                }
                seen = true;
                let health = Health::of(iface.error(), iface.ofport());
                if let Some((level, line)) = self.health.observe(lport, iface.name(), &health) {
                    log::log!(level, "{line}");
                }
            }
            if !seen {
                self.health.forget_lport(lport);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use log::Level::{Info, Warn};

    #[test]
    fn health_from_the_columns() {
        assert_eq!(Health::of(None, Some(3)), Health::Up(3));
        assert_eq!(Health::of(None, None), Health::Pending);
        assert!(matches!(Health::of(None, Some(-1)), Health::Failed(e) if e.contains("ofport -1")));
        assert_eq!(
            Health::of(
                Some("could not open network device x (No such device)"),
                Some(-1)
            ),
            Health::Failed("could not open network device x (No such device)".into())
        );
    }

    #[test]
    fn an_error_is_said_once_per_value_and_its_end_once() {
        let mut w = HealthWatch::default();
        let bad = Health::Failed("no such device".into());
        let steps: Vec<(Health, Option<log::Level>)> = vec![
            (Health::Pending, None),
            (bad.clone(), Some(Warn)),
            (bad.clone(), None),
            (Health::Failed("other".into()), Some(Warn)),
            (Health::Up(4), Some(Info)),
            (Health::Up(4), None),
        ];
        for (i, (h, want)) in steps.into_iter().enumerate() {
            assert_eq!(
                w.observe("vm1", "rep1", &h).map(|(l, _)| l),
                want,
                "step {i}"
            );
        }
    }
}
