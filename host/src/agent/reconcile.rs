//! Deciding, for one logical port, whether to plug, update or unplug it, and
//! turning the decisions of an iteration into one transaction.

use super::iface_diff::{self, Desired, IfaceState, IfaceUpdate, OVN_PLUGGED};
use super::local_view::{iface_state, LocalView};
use super::sb_view::SbView;
use crate::ovsdb::replica::col;
use crate::ovsdb::txn::Txn;
use crate::ovsdb::{Atom, Datum, Uuid};
use crate::provider::{
    BridgeInfo, ExistingIface, PortRequest, PrepareError, PreparedCreate, PreparedRemove,
};
use crate::registry::Registry;
use std::collections::{HashMap, HashSet};

/// Logical port option naming the provider.
pub const VIF_PLUG_TYPE: &str = "vif-plug-type";
/// Logical port option giving the interface MTU.
pub const VIF_PLUG_MTU_REQUEST: &str = "vif-plug-mtu-request";

/// One change to the local database, with the provider operation that
/// prepared it (finished once the transaction commits).
pub enum Plan {
    /// A new Port and Interface on the integration bridge.
    Create {
        /// Logical port.
        lport: String,
        /// Integration bridge.
        bridge: Uuid,
        /// The provider's answer.
        op: PreparedCreate,
        /// `mtu_request` to set.
        mtu_request: Option<i64>,
        /// Southbound options it was computed from.
        lport_options: Vec<(String, String)>,
    },
    /// Changes to an Interface we plugged.
    Update {
        /// Logical port.
        lport: String,
        /// The Interface.
        iface: Uuid,
        /// The provider's answer.
        op: PreparedCreate,
        /// What to change.
        update: Box<IfaceUpdate>,
        /// The Interface as it will be.
        expected: Box<IfaceState>,
        /// Southbound options it was computed from.
        lport_options: Vec<(String, String)>,
    },
    /// Removal of a Port we plugged.
    Remove {
        /// Logical port.
        lport: String,
        /// Bridge holding the port.
        bridge: Uuid,
        /// The Port.
        port: Uuid,
        /// Interface name, for the log.
        iface_name: String,
        /// The provider's agreement.
        op: PreparedRemove,
    },
}

impl Plan {
    /// The logical port.
    pub fn lport(&self) -> &str {
        match self {
            Plan::Create { lport, .. }
            | Plan::Update { lport, .. }
            | Plan::Remove { lport, .. } => lport,
        }
    }
}

/// What the agent last applied to a logical port: when the inputs are still
/// these, there is nothing to ask the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Southbound options.
    pub lport_options: Vec<(String, String)>,
    /// The Interface as left.
    pub iface: IfaceState,
}

/// Everything `decide` reads.
pub struct Inputs<'a> {
    /// Local database.
    pub local: &'a LocalView,
    /// Southbound database.
    pub sb: &'a SbView,
    /// Providers.
    pub registry: &'a Registry,
    /// Our chassis, once known.
    pub chassis: Option<Uuid>,
    /// The integration bridge, if it exists.
    pub bridge: Option<IntegrationBridge>,
    /// Its name.
    pub bridge_name: &'a str,
    /// `Open_vSwitch.dpdk_initialized`.
    pub dpdk_initialized: bool,
    /// Both databases have delivered their complete contents.
    pub can_unplug: bool,
    /// What was applied last, per logical port.
    pub applied: &'a HashMap<String, Applied>,
}

/// The integration bridge, looked up once per iteration.
#[derive(Debug, Clone)]
pub struct IntegrationBridge {
    /// Its row.
    pub uuid: Uuid,
    /// Its name.
    pub name: String,
    /// Its `datapath_type`.
    pub datapath_type: String,
}

impl IntegrationBridge {
    /// The bridge called `name` in `local`, if any.
    pub fn find(local: &LocalView, name: &str) -> Option<IntegrationBridge> {
        let (uuid, row) = local.bridge(name)?;
        Some(IntegrationBridge {
            uuid,
            name: name.to_owned(),
            datapath_type: col(row, "datapath_type").as_str().unwrap_or("").to_owned(),
        })
    }
}

/// Warnings given once per logical port and cause, until the cause changes.
#[derive(Debug, Default)]
pub struct Warned(HashSet<(String, String)>);

impl Warned {
    /// Logs `message` unless it was logged for `lport` already.
    pub fn once(&mut self, lport: &str, message: String) {
        if self.0.insert((lport.to_owned(), message.clone())) {
            log::warn!("{message}");
        }
    }

    /// Forgets `lport`'s warnings (its inputs changed).
    pub fn forget(&mut self, lport: &str) {
        self.0.retain(|(l, _)| l != lport);
    }
}

/// The outcome of deciding one logical port.
#[derive(Default)]
pub struct Decision {
    /// Changes to make.
    pub plans: Vec<Plan>,
    /// The provider declined: retry when it reports a change.
    pub declined: bool,
    /// Inputs already match what was applied (nothing asked).
    pub settled: Option<Applied>,
    /// The interface name is taken: retry when a name is freed.
    pub blocked: bool,
    /// An unplug is due but waits until both views are complete.
    pub unplug_deferred: bool,
    /// Neither a binding nor an interface exists: forget the port.
    pub gone: bool,
}

fn sorted_pairs(d: &Datum) -> Vec<(String, String)> {
    d.str_pairs()
}

/// Decides what to do with `lport`.
pub fn decide(inp: &Inputs<'_>, lport: &str, warned: &mut Warned) -> Decision {
    let mut out = Decision::default();
    let binding = inp
        .chassis
        .and_then(|c| inp.sb.binding(lport, c))
        .filter(|pb| col(pb, "type").as_str().unwrap_or("").is_empty());
    let (ours, foreign): (Vec<_>, Vec<_>) = inp
        .local
        .ifaces_of(lport)
        .partition(|(_, row)| col(row, "external_ids").map_get(OVN_PLUGGED).is_some());

    let Some(pb) = binding else {
        out.gone = ours.is_empty() && foreign.is_empty();
        if !inp.can_unplug {
            out.unplug_deferred = !ours.is_empty();
            return out;
        }
        for (uuid, row) in ours {
            if let Some(plan) = unplug(inp, lport, uuid, row, warned) {
                out.plans.push(plan);
            }
        }
        return out;
    };

    let options = col(pb, "options");
    let Some(ptype) = options.map_get(VIF_PLUG_TYPE) else {
        // Not for plugging; an interface we plugged earlier stays as long
        // as the port is requested here, as in the reference.
        return out;
    };
    let Some(provider) = inp.registry.get(ptype) else {
        warned.once(
            lport,
            format!("logical port {lport}: no provider for vif-plug-type {ptype:?} is loaded; not plugging it"),
        );
        return out;
    };
    if ours.is_empty() {
        if let Some((uuid, _)) = foreign.first() {
            warned.once(
                lport,
                format!(
                    "logical port {lport}: the CMS asked to plug it, but interface {uuid} already has iface-id={lport} and was not plugged by us; leaving it alone"
                ),
            );
            return out;
        }
    }
    let lport_options = sorted_pairs(options);
    let mtu_request = match iface_diff::parse_mtu(options.map_get(VIF_PLUG_MTU_REQUEST)) {
        Ok(m) => m,
        Err(e) => {
            warned.once(lport, format!("logical port {lport}: {e}"));
            None
        }
    };
    let Some(integration) = &inp.bridge else {
        warned.once(
            lport,
            format!(
                "logical port {lport}: integration bridge {} does not exist; not plugging it",
                inp.bridge_name
            ),
        );
        return out;
    };
    let bridge_uuid = integration.uuid;
    let bridge = BridgeInfo {
        name: integration.name.clone(),
        datapath_type: integration.datapath_type.clone(),
        dpdk_initialized: inp.dpdk_initialized,
    };
    let existing = ours.first().map(|(uuid, row)| {
        (
            *uuid,
            iface_state(row),
            col(row, "name").as_str().unwrap_or("").to_owned(),
        )
    });

    if let Some((_, state, _)) = &existing {
        let now = Applied {
            lport_options: lport_options.clone(),
            iface: state.clone(),
        };
        if inp.applied.get(lport) == Some(&now) {
            out.settled = Some(now);
            return out;
        }
    }

    let request = PortRequest {
        lport_name: lport.to_owned(),
        lport_options: lport_options.clone(),
        iface: existing.as_ref().map(|(_, s, name)| ExistingIface {
            name: name.clone(),
            iface_type: s.iface_type.clone(),
            options: s
                .options
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }),
        bridge,
    };
    let op = match provider.prepare_create(&request) {
        Ok(op) => op,
        Err(PrepareError::Declined) => {
            log::debug!("logical port {lport}: provider {ptype} declined for now");
            out.declined = true;
            return out;
        }
        Err(e) => {
            warned.once(
                lport,
                format!("logical port {lport}: provider {ptype}: {e}"),
            );
            out.declined = true;
            return out;
        }
    };
    let answer = op.output();
    let desired = Desired {
        iface_type: answer.iface_type.as_deref().unwrap_or(""),
        options: &answer.options,
        maintained: provider.maintained_options(),
        lport,
        provider_type: ptype,
        mtu_request,
    };
    match existing {
        Some((iface, state, name)) => {
            if answer.name != name {
                warned.once(
                    lport,
                    format!(
                        "logical port {lport}: provider {ptype} now names its interface {:?} instead of {name:?}; an interface cannot be renamed, recreate the port",
                        answer.name
                    ),
                );
                return out;
            }
            let update = iface_diff::diff(&state, &desired);
            if update.is_empty() {
                out.settled = Some(Applied {
                    lport_options,
                    iface: state,
                });
                return out;
            }
            let expected = Box::new(iface_diff::apply(&state, &update));
            out.plans.push(Plan::Update {
                lport: lport.to_owned(),
                iface,
                op,
                update: Box::new(update),
                expected,
                lport_options,
            });
        }
        None => {
            let taken = inp
                .local
                .port_named(&answer.name)
                .map(|u| ("port", u))
                .or_else(|| {
                    inp.local
                        .iface_named(&answer.name)
                        .map(|u| ("interface", u))
                });
            if let Some((what, uuid)) = taken {
                warned.once(
                    lport,
                    format!(
                        "logical port {lport}: {what} {uuid} is already named {:?}; not plugging it until that name is free",
                        answer.name
                    ),
                );
                out.blocked = true;
                return out;
            }
            out.plans.push(Plan::Create {
                lport: lport.to_owned(),
                bridge: bridge_uuid,
                op,
                mtu_request,
                lport_options,
            });
        }
    }
    out
}

fn unplug(
    inp: &Inputs<'_>,
    lport: &str,
    iface: Uuid,
    row: &crate::ovsdb::replica::Row,
    warned: &mut Warned,
) -> Option<Plan> {
    let ptype = col(row, "external_ids").map_get(OVN_PLUGGED)?;
    let iface_name = col(row, "name").as_str().unwrap_or("").to_owned();
    let Some(provider) = inp.registry.get(ptype) else {
        warned.once(
            lport,
            format!("interface {iface_name} (logical port {lport}) was plugged by provider {ptype:?}, which is not loaded; not unplugging it"),
        );
        return None;
    };
    let (port, bridge) = inp.local.port_and_bridge(iface)?;
    let bridge = bridge?;
    let bridge_row = inp.local.replica.get("Bridge", &bridge)?;
    let state = iface_state(row);
    let request = PortRequest {
        lport_name: lport.to_owned(),
        lport_options: Vec::new(),
        iface: Some(ExistingIface {
            name: iface_name.clone(),
            iface_type: state.iface_type,
            options: state.options.into_iter().collect(),
        }),
        bridge: BridgeInfo {
            name: col(bridge_row, "name").as_str().unwrap_or("").to_owned(),
            datapath_type: col(bridge_row, "datapath_type")
                .as_str()
                .unwrap_or("")
                .to_owned(),
            dpdk_initialized: inp.dpdk_initialized,
        },
    };
    match provider.prepare_remove(&request) {
        Ok(op) => Some(Plan::Remove {
            lport: lport.to_owned(),
            bridge,
            port,
            iface_name,
            op,
        }),
        Err(e) => {
            log::info!("not unplugging interface {iface_name} (logical port {lport}): {e}");
            None
        }
    }
}

fn str_map(pairs: &[(String, String)]) -> Datum {
    Datum::str_map(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

fn key_set(keys: &[String]) -> Datum {
    Datum::set(keys.iter().map(|k| Atom::String(k.clone())))
}

fn mtu_datum(m: Option<i64>) -> Datum {
    Datum::set(m.map(Atom::Integer))
}

/// Adds the operations of `plans` to one transaction. Bridge membership is
/// changed with one `mutate` per bridge (all inserts and deletes together),
/// never by rewriting `Bridge.ports`, and interface maps with key deletes and
/// inserts, so concurrent writers are not undone.
/// Returns the transaction and, for each of its operations, the index of
/// the plan it belongs to (`None` for operations shared by several plans).
pub fn build_txn(plans: &[Plan]) -> (Txn, Vec<Option<usize>>) {
    let mut txn = Txn::new("Open_vSwitch");
    let mut owners = Vec::new();
    let (mut n_create, mut n_update, mut n_remove) = (0, 0, 0);
    // Per bridge: ports to add (named rows) and ports to remove.
    let mut ports: std::collections::BTreeMap<Uuid, (Vec<Atom>, Vec<Atom>)> = Default::default();
    for (i, plan) in plans.iter().enumerate() {
        let first_op = txn.len();
        match plan {
            Plan::Create {
                lport,
                bridge,
                op,
                mtu_request,
                ..
            } => {
                n_create += 1;
                let out = op.output();
                let iface = format!("iface{i}");
                let port = format!("port{i}");
                let ids = [
                    (iface_diff::IFACE_ID.to_owned(), lport.clone()),
                    (OVN_PLUGGED.to_owned(), op.type_name().to_owned()),
                ];
                // Columns left at their defaults are omitted: less to send
                // and parse for thousands of ports.
                let mut columns = vec![
                    ("name", Datum::string(&out.name)),
                    ("external_ids", str_map(&ids)),
                ];
                if let Some(t) = &out.iface_type {
                    columns.push(("type", Datum::string(t)));
                }
                if !out.options.is_empty() {
                    columns.push(("options", str_map(&out.options)));
                }
                if mtu_request.is_some() {
                    columns.push(("mtu_request", mtu_datum(*mtu_request)));
                }
                txn.insert("Interface", &iface, &columns);
                txn.insert(
                    "Port",
                    &port,
                    &[
                        ("name", Datum::string(&out.name)),
                        ("interfaces", Datum::scalar(Atom::NamedUuid(iface))),
                    ],
                );
                ports
                    .entry(*bridge)
                    .or_default()
                    .0
                    .push(Atom::NamedUuid(port));
            }
            Plan::Update { iface, update, .. } => {
                n_update += 1;
                let mut columns = Vec::new();
                if let Some(t) = &update.set_type {
                    columns.push(("type", Datum::string(t)));
                }
                if let Some(m) = update.set_mtu_request {
                    columns.push(("mtu_request", mtu_datum(m)));
                }
                if !columns.is_empty() {
                    txn.update("Interface", *iface, &columns);
                }
                let mut mutations = Vec::new();
                if !update.options_delete.is_empty() {
                    mutations.push(("options", "delete", key_set(&update.options_delete)));
                }
                if !update.options_insert.is_empty() {
                    mutations.push(("options", "insert", str_map(&update.options_insert)));
                }
                if !update.external_ids_delete.is_empty() {
                    mutations.push((
                        "external_ids",
                        "delete",
                        key_set(&update.external_ids_delete),
                    ));
                }
                if !update.external_ids_insert.is_empty() {
                    mutations.push((
                        "external_ids",
                        "insert",
                        str_map(&update.external_ids_insert),
                    ));
                }
                if !mutations.is_empty() {
                    txn.mutate("Interface", *iface, &mutations);
                }
            }
            Plan::Remove { bridge, port, .. } => {
                n_remove += 1;
                ports.entry(*bridge).or_default().1.push(Atom::Uuid(*port));
            }
        }
        owners.resize(first_op, None);
        owners.resize(txn.len(), Some(i));
    }
    for (bridge, (add, remove)) in ports {
        let mut mutations = Vec::new();
        if !remove.is_empty() {
            mutations.push(("ports", "delete", Datum::set(remove)));
        }
        if !add.is_empty() {
            mutations.push(("ports", "insert", Datum::set(add)));
        }
        txn.mutate("Bridge", bridge, &mutations);
    }
    txn.comment(&format!(
        "vif-plug-host: plug {n_create}, update {n_update}, unplug {n_remove}"
    ));
    owners.resize(txn.len(), None);
    (txn, owners)
}

/// The state a created interface will have.
pub fn created_state(plan: &Plan) -> Option<Applied> {
    let Plan::Create {
        lport,
        op,
        mtu_request,
        lport_options,
        ..
    } = plan
    else {
        return None;
    };
    let out = op.output();
    Some(Applied {
        lport_options: lport_options.clone(),
        iface: IfaceState {
            iface_type: out.iface_type.clone().unwrap_or_default(),
            options: out.options.iter().cloned().collect(),
            external_ids: [
                (iface_diff::IFACE_ID.to_owned(), lport.clone()),
                (OVN_PLUGGED.to_owned(), op.type_name().to_owned()),
            ]
            .into_iter()
            .collect(),
            mtu_request: *mtu_request,
        },
    })
}
