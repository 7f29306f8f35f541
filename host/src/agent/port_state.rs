//! One logical port's state, and the pure transition that decides what to
//! do with it: the rules table of `docs/architecture.md`.
//!
//! [`step`] reads a [`PortRecord`] (what the agent remembers about the
//! port) and the [`Evidence`] gathered for it from both databases, and
//! returns the port's next [`Phase`] and an [`Intent`]. It opens no
//! socket, reads no clock and calls no provider, so every row of the table
//! is a unit test below. Carrying an intent out (provider calls, the
//! transaction) is `prepare`'s and `in_flight`'s job; their outcomes come
//! back as phases set by the port table.
//!
//! The rule that shapes it all: an interface we plugged is removed only on
//! proof from a complete, current Southbound view. Absence from a
//! conditional monitor is not proof; a confirmed lookup by `logical_port`
//! in a database ovn-northd has populated is.

use super::iface_diff::IfaceState;
use super::lport_options::LportOptions;
use super::placement::Placement;
use crate::ovsdb::Uuid;
use std::fmt;
use std::time::Instant;

/// Why the Southbound view cannot prove an unplug right now.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Doubt {
    /// Not connected to any Southbound member.
    Disconnected,
    /// Connected, but the monitor has not delivered the contents yet.
    Loading,
    /// The server has not acknowledged the condition on our chassis yet.
    ConditionPending,
    /// Our Chassis row is not in the Southbound: deleted, re-created under
    /// a new UUID, or not registered by ovn-controller yet.
    NoChassis(String),
    /// The database has not been populated by ovn-northd (a new or reset
    /// Southbound): `SB_Global` has no `options:northd_internal_version`.
    NotPopulated,
    /// The lookup of this logical port by name is not acknowledged yet.
    LookupPending,
    /// The database was already populated when the monitor started: its
    /// contents may predate ovn-northd's (a restarted member, or a database
    /// restored from an older copy, which ovn-northd brings up to date
    /// within seconds). Unplugs wait for the settle time to pass.
    Settling,
}

impl Doubt {
    /// A few words for a status line (`systemctl status`); the log and
    /// `vif-plug/show` give the whole reason.
    pub fn brief(&self) -> String {
        match self {
            Doubt::Disconnected => "the Southbound is not connected".into(),
            Doubt::Loading => "the Southbound is loading".into(),
            Doubt::ConditionPending => "the Southbound condition is not acknowledged".into(),
            Doubt::NoChassis(name) => format!("no Chassis row {name:?} in the Southbound"),
            Doubt::NotPopulated => "the Southbound is not populated by ovn-northd".into(),
            Doubt::LookupPending => "a lookup is pending".into(),
            Doubt::Settling => "waiting --unplug-settle after a first look".into(),
        }
    }
}

impl fmt::Display for Doubt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Doubt::Disconnected => f.write_str("the Southbound is not connected"),
            Doubt::Loading => f.write_str("the Southbound monitor has not delivered its contents yet"),
            Doubt::ConditionPending => {
                f.write_str("the Southbound has not acknowledged the condition on our chassis yet")
            }
            Doubt::NoChassis(name) => write!(
                f,
                "our Chassis row {name:?} is not in the Southbound (deleted or re-created; waiting for ovn-controller to register it)"
            ),
            Doubt::NotPopulated => f.write_str(
                "the Southbound has not been populated by ovn-northd (SB_Global has no options:northd_internal_version)",
            ),
            Doubt::LookupPending => {
                f.write_str("the Southbound has not answered the lookup of this logical port yet")
            }
            Doubt::Settling => f.write_str(
                "the Southbound held data at the first look (as at every start, and after a fail-over, a restored copy or a chassis rename), and that copy may be behind: waiting --unplug-settle before unplugging",
            ),
        }
    }
}

/// A binding in view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The binding's `type` (`""` for a VIF, the only kind plugged).
    pub ptype: String,
    /// Where it may be bound, seen from here.
    pub placement: Placement,
    /// Its options.
    pub options: LportOptions,
    /// Its MAC addresses, for providers (see [`super::lport_macs`]).
    pub macs: Vec<String>,
}

/// What the Southbound says about a logical port's binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindingView {
    /// The binding is in view.
    Present(Binding),
    /// The binding does not exist: the current, populated Southbound
    /// answered a lookup by `logical_port` with nothing.
    Absent,
    /// Not in view, and not proven absent.
    Unknown(Doubt),
}

/// Where an interface we plugged stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OurBridge {
    /// On the integration bridge.
    Integration,
    /// On a bridge that was the integration bridge earlier in this run
    /// (`external_ids:ovn-bridge` changed): still ours, to be moved.
    Former(String),
}

/// Where an interface stands in the local database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// Its Port row.
    pub port: Uuid,
    /// The Bridge row holding that port.
    pub bridge: Uuid,
    /// The bridge's name.
    pub bridge_name: String,
    /// The bridge's `datapath_type`.
    pub datapath_type: String,
    /// How many interfaces the Port holds: more than one when another
    /// program bonded interfaces of its own into it.
    pub port_ifaces: usize,
}

/// An interface we plugged (it carries `external_ids:ovn-plugged`) for the
/// logical port, on a bridge that is ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OurIface {
    /// The Interface row.
    pub uuid: Uuid,
    /// Its name.
    pub name: String,
    /// The provider type in `ovn-plugged`.
    pub provider: String,
    /// Whether that provider is loaded.
    pub provider_loaded: bool,
    /// Its bridge: the integration bridge or a former one.
    pub bridge: OurBridge,
    /// Where it stands in the local database.
    pub at: Location,
    /// The columns the agent manages, as they are now.
    pub state: IfaceState,
}

/// Everything [`step`] reads about one logical port, gathered from both
/// databases and the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The binding.
    pub binding: BindingView,
    /// Why the Southbound cannot prove an unplug now (`None`: it can).
    pub doubt: Option<Doubt>,
    /// Our interface for the port, if any.
    pub ours: Option<OurIface>,
    /// An interface for the port (`external_ids:iface-id`) that we did not
    /// plug (its name): never touched, and a reason not to plug.
    pub foreign: Option<String>,
    /// Interfaces we plugged for the port on bridges that are not ours
    /// (name, bridge): never touched; the port table warns once about each.
    pub elsewhere: Vec<(String, String)>,
    /// The integration bridge exists.
    pub bridge_exists: bool,
    /// The binding's `vif-plug-type` names a loaded provider.
    pub plug_type_loaded: bool,
}

/// What the agent last applied to a port: while the binding's options and
/// the parts of the interface the agent manages are still these, the
/// provider is not asked again. Keys other programs write (ovn-controller's
/// `external_ids:ovn-installed`, an operator's option) do not count.
///
/// Only the managed parts are kept (not the whole interface): one of these
/// stays in memory for every plugged port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The binding's options.
    pub lport_options: Vec<(String, String)>,
    /// The binding's MACs (`Port_Binding.mac`, as passed to providers
    /// under ABI 1.1): a provider may act on them, e.g. the devlink
    /// provider sets a VF's MAC, so a change asks it again.
    pub lport_macs: Vec<String>,
    /// The interface's `type` as left.
    pub iface_type: String,
    /// Its `mtu_request` as left.
    pub mtu_request: Option<i64>,
    /// The option keys the agent manages on it (the provider's answer and
    /// the keys it maintains), with their values as left (`None`: absent).
    pub options: Vec<(String, Option<String>)>,
    /// Our `external_ids` keys (see [`super::rows::OUR_EXTERNAL_IDS`]),
    /// with their values as left.
    pub external_ids: Vec<(&'static str, Option<String>)>,
}

impl Applied {
    /// What is in place when the interface is `iface`, `option_keys` being
    /// the option keys the agent manages on it.
    pub fn new(
        lport_options: Vec<(String, String)>,
        iface: &IfaceState,
        option_keys: &[String],
    ) -> Applied {
        Applied {
            lport_options,
            lport_macs: Vec::new(),
            iface_type: iface.iface_type.clone(),
            mtu_request: iface.mtu_request,
            options: option_keys
                .iter()
                .map(|k| (k.clone(), iface.options.get(k).cloned()))
                .collect(),
            external_ids: super::rows::OUR_EXTERNAL_IDS
                .iter()
                .map(|k| (*k, iface.external_ids.get(*k).cloned()))
                .collect(),
        }
    }

    /// The same, computed from a binding with MACs `macs`.
    pub fn with_macs(mut self, macs: Vec<String>) -> Applied {
        self.lport_macs = macs;
        self
    }

    /// Whether `state` still holds what was applied, in the parts the agent
    /// manages.
    pub fn holds(&self, state: &IfaceState) -> bool {
        self.iface_type == state.iface_type
            && self.mtu_request == state.mtu_request
            && self
                .options
                .iter()
                .all(|(k, v)| state.options.get(k) == v.as_ref())
            && self
                .external_ids
                .iter()
                .all(|(k, v)| state.external_ids.get(*k) == v.as_ref())
    }
}

/// Why an interface we plugged is left exactly as it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Keep {
    /// The binding is requested here as additional, listed or anywhere.
    Placement(Placement),
    /// The binding is not a VIF (its `type`).
    NotVif(String),
    /// The binding is not in view, and its absence is not proven.
    Unknown(Doubt),
    /// The provider that plugged it is not loaded: nobody can unplug it.
    ProviderNotLoaded(String),
}

impl fmt::Display for Keep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Keep::Placement(Placement::Additional) => f.write_str(
                "requested here as an additional chassis (live migration): interface left as it is",
            ),
            Keep::Placement(Placement::Listed) => f.write_str(
                "requested-chassis names this chassis but requested_chassis does not (our chassis row was deleted, re-created or renamed, and ovn-northd has not resolved it yet): interface left as it is",
            ),
            Keep::Placement(Placement::Anywhere) => {
                f.write_str("no chassis is requested: interface left as it is")
            }
            Keep::Placement(p) => write!(f, "placement {p}: interface left as it is"),
            Keep::NotVif(t) => write!(f, "binding of type {t:?}, not a VIF: interface left as it is"),
            Keep::Unknown(d) => write!(f, "binding not in view, and {d}: interface kept"),
            Keep::ProviderNotLoaded(t) => {
                write!(f, "plugged by provider {t:?}, which is not loaded: interface kept")
            }
        }
    }
}

/// Why the agent will not plug a port the CMS asked for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// `vif-plug-type` names no loaded provider.
    NoProvider(String),
    /// An interface we did not plug (its name) already stands for the port.
    Foreign(String),
    /// The integration bridge does not exist.
    NoBridge,
    /// An interface we plugged for the port (its name) stands on another
    /// bridge (named): never touched, and plugging a second one would give
    /// the port two.
    Elsewhere(String, String),
    /// Our interface must be replaced through another provider, but the
    /// one that plugged it is not loaded.
    OldProviderNotLoaded(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NoProvider(t) => write!(
                f,
                "no provider for vif-plug-type {t:?} is loaded: nothing plugged, and an interface plugged earlier is left as it is"
            ),
            Refusal::Foreign(name) => write!(
                f,
                "the CMS asks to plug it, but interface {name:?}, not plugged by us, already stands for it: left alone"
            ),
            Refusal::NoBridge => f.write_str(
                "the integration bridge does not exist: nothing plugged, and an interface plugged earlier is left as it is",
            ),
            Refusal::Elsewhere(name, bridge) => write!(
                f,
                "interface {name:?}, plugged for it, stands on bridge {bridge}, outside the integration bridge: left alone, and no second one plugged"
            ),
            Refusal::OldProviderNotLoaded(t) => write!(
                f,
                "to be plugged by another provider, but provider {t:?}, which plugged it, is not loaded to unplug it: interface left as it is"
            ),
        }
    }
}

/// Why an interface is to be removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnplugWhy {
    /// The binding is requested on other chassis only.
    NotHere,
    /// The binding does not exist.
    Deleted,
    /// The CMS removed `vif-plug-type` from the binding.
    Withdrawn,
}

impl fmt::Display for UnplugWhy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnplugWhy::NotHere => "it is requested on another chassis",
            UnplugWhy::Deleted => "its binding no longer exists in the Southbound",
            UnplugWhy::Withdrawn => "the CMS removed vif-plug-type from it",
        })
    }
}

/// Why an interface is replaced by a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplaceWhy {
    /// `vif-plug-type` names another provider than the one that plugged it.
    Provider {
        /// The provider that plugged it.
        from: String,
    },
    /// It stands on a former integration bridge.
    Bridge {
        /// That bridge.
        from: String,
    },
    /// The provider now names another interface (new VF, renamed netdev).
    Name {
        /// The interface's name.
        from: String,
        /// The provider's new answer.
        to: String,
    },
}

impl fmt::Display for ReplaceWhy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplaceWhy::Provider { from } => write!(f, "vif-plug-type no longer names {from:?}"),
            ReplaceWhy::Bridge { from } => {
                write!(
                    f,
                    "it stands on {from}, which is no longer the integration bridge"
                )
            }
            ReplaceWhy::Name { from, to } => {
                write!(
                    f,
                    "the provider now names interface {to:?} instead of {from:?}"
                )
            }
        }
    }
}

/// A change that removes an interface, and so waits for proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// Removing it.
    Unplug(UnplugWhy),
    /// Replacing it by another.
    Replace(ReplaceWhy),
}

impl fmt::Display for Removal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Removal::Unplug(why) => write!(f, "due to be unplugged because {why}"),
            Removal::Replace(why) => write!(f, "interface due to be replaced because {why}"),
        }
    }
}

/// The kind of operation in flight for a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// Creating its interface.
    Create,
    /// Updating its interface in place.
    Update,
    /// Removing its interface.
    Remove,
    /// Removing its interface and creating another.
    Replace,
}

impl std::fmt::Display for OpKind {
    /// What `vif-plug/show` says is being committed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OpKind::Create => "its creation",
            OpKind::Update => "an update of its interface",
            OpKind::Remove => "its removal",
            OpKind::Replace => "the replacement of its interface",
        })
    }
}

/// Where a logical port stands. One per port: a port cannot be in two
/// contradictory states at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Nothing of ours is plugged for it, and nothing is to be done.
    Idle,
    /// Our interface stands, matching what was last applied.
    Plugged,
    /// Our interface stands and is left as it is.
    Kept(Keep),
    /// Requested here, but not as the main chassis: only a main chassis
    /// plugs, so nothing is plugged here.
    Standby(Placement),
    /// An unplug or a replacement is due, but the Southbound cannot prove
    /// it yet: the interface stays as it is.
    Deferred(Removal, Doubt),
    /// The CMS asked to plug it and the agent will not.
    Refused(Refusal),
    /// The provider declined; asked again when the port's inputs change or
    /// a provider's `run` reports a change.
    Declined {
        /// The provider.
        provider: String,
        /// What it said, or what was wrong with its answer.
        reason: String,
    },
    /// The interface name the provider gave is taken; asked again when a
    /// port or interface name is freed.
    WaitingForName {
        /// The name.
        name: String,
        /// What holds it.
        holder: String,
        /// The port has an interface, which stays until it can be replaced.
        replacing: bool,
    },
    /// A transaction failed because of this port: held back until then.
    Quarantined {
        /// When it is decided again.
        until: Instant,
    },
    /// Part of the transaction in flight.
    InFlight(OpKind),
}

impl Phase {
    /// Whether the port may be decided now (not in flight, not held back).
    pub fn is_due(&self, now: Instant) -> bool {
        match self {
            Phase::InFlight(_) => false,
            Phase::Quarantined { until } => *until <= now,
            _ => true,
        }
    }
}

/// What the agent remembers about one logical port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRecord {
    /// Where it stands.
    pub phase: Phase,
    /// What was last applied, if it is known to be in place.
    pub applied: Option<Applied>,
    /// Consecutive failed transactions it caused.
    pub failures: u32,
    /// It was in a failed batch whose error named no port: decide it alone
    /// next time, so that a new failure is attributable.
    pub suspect: bool,
}

impl Default for PortRecord {
    fn default() -> Self {
        PortRecord {
            phase: Phase::Idle,
            applied: None,
            failures: 0,
            suspect: false,
        }
    }
}

/// What to do about a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// Nothing: the phase says why.
    None,
    /// Ask `provider` for a new interface (CREATE without an interface).
    Plug {
        /// The provider type.
        provider: String,
    },
    /// Ask `provider` again about our interface (CREATE with the
    /// interface): update it, leave it, or replace it if it names another.
    Check {
        /// The provider type.
        provider: String,
    },
    /// Remove our interface and create a new one through `provider`, in
    /// one transaction.
    Replace {
        /// The provider type of the new interface.
        provider: String,
        /// Why.
        why: ReplaceWhy,
    },
    /// Remove our interface.
    Unplug {
        /// Why (proven).
        why: UnplugWhy,
    },
}

/// The outcome of [`step`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The port's phase, unless carrying out the intent changes it.
    pub phase: Phase,
    /// What to do.
    pub intent: Intent,
}

impl Decision {
    fn rest(phase: Phase) -> Decision {
        Decision {
            phase,
            intent: Intent::None,
        }
    }

    fn act(phase: Phase, intent: Intent) -> Decision {
        Decision { phase, intent }
    }
}

/// The phase of a port that `provider` declined for `reason`, after
/// `old`: a provider that gave its reason once and then declines without a
/// word (many say a repeated reason only at debug level, or not at all)
/// keeps the reason it gave, so `vif-plug/show` goes on showing the
/// provider's last reason and the log does not flip between the two.
pub fn declined(old: &Phase, provider: String, reason: String) -> Phase {
    match old {
        Phase::Declined {
            provider: p,
            reason: r,
        } if *p == provider && reason == crate::provider::DECLINED_SILENTLY => Phase::Declined {
            provider,
            reason: r.clone(),
        },
        _ => Phase::Declined { provider, reason },
    }
}

/// Decides one logical port: the rules table of `docs/architecture.md`.
pub fn step(rec: &PortRecord, ev: &Evidence) -> Decision {
    match &ev.binding {
        BindingView::Present(b) => match b.placement {
            Placement::Main if b.ptype.is_empty() => main_here(rec, ev, &b.options, &b.macs),
            Placement::Main => keep(ev, Keep::NotVif(b.ptype.clone())),
            Placement::NotHere => unplug(ev, UnplugWhy::NotHere),
            p => keep(ev, Keep::Placement(p)),
        },
        BindingView::Absent => unplug(ev, UnplugWhy::Deleted),
        BindingView::Unknown(d) => keep(ev, Keep::Unknown(d.clone())),
    }
}

/// A VIF binding requested on our chassis as its main chassis.
fn main_here(rec: &PortRecord, ev: &Evidence, opts: &LportOptions, macs: &[String]) -> Decision {
    let Some(ptype) = &opts.plug_type else {
        return unplug(ev, UnplugWhy::Withdrawn);
    };
    if !ev.plug_type_loaded {
        return Decision::rest(Phase::Refused(Refusal::NoProvider(ptype.clone())));
    }
    let provider = ptype.clone();
    let Some(ours) = &ev.ours else {
        if let Some(f) = &ev.foreign {
            return Decision::rest(Phase::Refused(Refusal::Foreign(f.clone())));
        }
        if let Some((name, bridge)) = ev.elsewhere.first() {
            let why = Refusal::Elsewhere(name.clone(), bridge.clone());
            return Decision::rest(Phase::Refused(why));
        }
        if !ev.bridge_exists {
            return Decision::rest(Phase::Refused(Refusal::NoBridge));
        }
        return Decision::act(Phase::Idle, Intent::Plug { provider });
    };
    if ours.provider != *ptype {
        if !ours.provider_loaded {
            return Decision::rest(Phase::Refused(Refusal::OldProviderNotLoaded(
                ours.provider.clone(),
            )));
        }
        if !ev.bridge_exists {
            return Decision::rest(Phase::Refused(Refusal::NoBridge));
        }
        let why = ReplaceWhy::Provider {
            from: ours.provider.clone(),
        };
        return replace(ev, provider, why);
    }
    if let OurBridge::Former(from) = &ours.bridge {
        if !ev.bridge_exists {
            return Decision::rest(Phase::Refused(Refusal::NoBridge));
        }
        let why = ReplaceWhy::Bridge { from: from.clone() };
        return replace(ev, provider, why);
    }
    let unchanged = rec.applied.as_ref().is_some_and(|a| {
        a.lport_options == opts.all && a.lport_macs == macs && a.holds(&ours.state)
    });
    if unchanged {
        Decision::rest(Phase::Plugged)
    } else {
        Decision::act(Phase::Plugged, Intent::Check { provider })
    }
}

/// Our interface is to be replaced, if the Southbound can prove the request
/// is current: a replacement removes an interface, so a stale view (a
/// restored database, say) must not drive one.
fn replace(ev: &Evidence, provider: String, why: ReplaceWhy) -> Decision {
    match &ev.doubt {
        Some(d) => Decision::rest(Phase::Deferred(Removal::Replace(why), d.clone())),
        None => Decision::act(Phase::Plugged, Intent::Replace { provider, why }),
    }
}

/// Our interface, if any, is left exactly as it is.
fn keep(ev: &Evidence, why: Keep) -> Decision {
    match (&ev.ours, why) {
        (Some(_), why) => Decision::rest(Phase::Kept(why)),
        (None, Keep::Placement(p)) => Decision::rest(Phase::Standby(p)),
        (None, _) => Decision::rest(Phase::Idle),
    }
}

/// Our interface, if any, is to be removed, if the Southbound can prove it.
fn unplug(ev: &Evidence, why: UnplugWhy) -> Decision {
    let Some(ours) = &ev.ours else {
        return Decision::rest(Phase::Idle);
    };
    if !ours.provider_loaded {
        return Decision::rest(Phase::Kept(Keep::ProviderNotLoaded(ours.provider.clone())));
    }
    match &ev.doubt {
        Some(d) => Decision::rest(Phase::Deferred(Removal::Unplug(why), d.clone())),
        None => Decision::act(Phase::Plugged, Intent::Unplug { why }),
    }
}

#[cfg(test)]
#[path = "tests/port_state.rs"]
mod tests;
