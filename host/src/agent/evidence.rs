//! Gathering the [`Evidence`] about one logical port from both databases
//! and the registry: the only place where the views are read for a
//! decision, so that `port_state::step` can stay pure.

use super::local_view::{iface_state, LocalView};
use super::lport_options;
use super::placement::{placement, Request};
use super::port_state::{Binding, BindingView, Evidence, OurBridge, OurIface};
use super::sb_session::SbSession;
use crate::dispatch::Providers;
use crate::ovsdb::Uuid;
use std::collections::BTreeSet;

/// The integration bridge by name, and the bridges that were the
/// integration bridge earlier in this run (their interfaces are still
/// ours, to be moved).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgeNames {
    /// The integration bridge.
    pub current: String,
    /// Former integration bridges.
    pub former: BTreeSet<String>,
}

impl BridgeNames {
    /// Makes `name` the integration bridge; returns whether it changed.
    pub fn set(&mut self, name: String) -> bool {
        if name == self.current {
            return false;
        }
        let old = std::mem::replace(&mut self.current, name);
        self.former.remove(&self.current);
        if !old.is_empty() {
            self.former.insert(old);
        }
        true
    }
}

/// What evidence is read from.
pub struct Sources<'a> {
    /// The local database.
    pub local: &'a LocalView,
    /// The Southbound session.
    pub sb: &'a SbSession,
    /// Providers.
    pub providers: &'a Providers,
    /// Which bridges are ours.
    pub bridges: &'a BridgeNames,
    /// The time of the decision.
    pub now: std::time::Instant,
}

/// The evidence about `lport`.
pub fn gather(s: &Sources<'_>, lport: &str) -> Evidence {
    let doubt = s.sb.doubt(s.now);
    let binding = match s.sb.binding(lport) {
        Some(pb) => {
            let options = lport_options::parse(pb.options());
            let additional: Vec<Uuid> = pb.requested_additional_chassis().collect();
            let req = Request {
                main: pb.requested_chassis(),
                additional: &additional,
                names: &options.requested_chassis,
            };
            BindingView::Present(Binding {
                ptype: pb.ptype().to_owned(),
                placement: placement(&req, &s.sb.our_chassis()),
                options,
                macs: super::lport_macs::from_mac_column(pb.macs()),
            })
        }
        None => match &doubt {
            Some(d) => BindingView::Unknown(d.clone()),
            None if !s.sb.lookup_confirmed(lport) => {
                BindingView::Unknown(super::port_state::Doubt::LookupPending)
            }
            None => BindingView::Absent,
        },
    };
    let plug_type_loaded = match &binding {
        BindingView::Present(b) => b
            .options
            .plug_type
            .as_deref()
            .is_some_and(|t| s.providers.is_loaded(t)),
        _ => false,
    };
    let mut ours: Option<OurIface> = None;
    let mut foreign = None;
    let mut elsewhere = Vec::new();
    for (uuid, iface) in s.local.ifaces_of(lport) {
        let Some(provider) = iface.plugged_by() else {
            foreign.get_or_insert_with(|| iface.name().to_owned());
            continue;
        };
        // An interface outside any bridge is about to be garbage-collected.
        let Some(at) = s.local.location(uuid) else {
            continue;
        };
        let bridge = if at.bridge_name == s.bridges.current {
            OurBridge::Integration
        } else if match iface.plugged_on() {
            // Plugged by the agent when that bridge was the integration
            // bridge (in this run or before a restart).
            Some(on) => on == at.bridge_name,
            // Plugged before interfaces recorded their bridge: the
            // integration bridge earlier in this run.
            None => s.bridges.former.contains(&at.bridge_name),
        } {
            OurBridge::Former(at.bridge_name.clone())
        } else {
            elsewhere.push((iface.name().to_owned(), at.bridge_name.clone()));
            continue;
        };
        // One per port: the one on the integration bridge first.
        if ours
            .as_ref()
            .is_some_and(|o| o.bridge == OurBridge::Integration)
        {
            continue;
        }
        ours = Some(OurIface {
            uuid,
            name: iface.name().to_owned(),
            provider: provider.to_owned(),
            provider_loaded: s.providers.is_loaded(provider),
            bridge,
            at,
            state: iface_state(iface),
        });
    }
    Evidence {
        binding,
        doubt,
        ours,
        foreign,
        elsewhere,
        bridge_exists: s.local.bridge(&s.bridges.current).is_some(),
        plug_type_loaded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_integration_bridge_remembers_the_former_one() {
        let mut b = BridgeNames::default();
        assert!(b.set("br-int".into()));
        assert!(b.former.is_empty());
        assert!(!b.set("br-int".into()));
        assert!(b.set("br-new".into()));
        assert_eq!(b.former, ["br-int".to_owned()].into());
        // Back again: br-int is current, br-new former.
        assert!(b.set("br-int".into()));
        assert_eq!(b.former, ["br-new".to_owned()].into());
    }
}
