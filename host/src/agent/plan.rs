//! Changes to the local database, each with the provider operations that
//! prepared it, and the one transaction an iteration's changes become.

use super::iface_diff::our_external_ids;
use super::iface_diff::{IfaceState, IfaceUpdate};
use super::port_state::{Applied, OpKind};
use super::rows::{Bridge, Interface, Port, Table};
use crate::dispatch::{CreateOp, RemoveOp};
use crate::ovsdb::txn::Txn;
use crate::ovsdb::{Atom, Datum, Uuid};
use std::collections::BTreeMap;

/// A new Port and Interface on the integration bridge.
pub struct Creation {
    /// The integration bridge.
    pub bridge: Uuid,
    /// The provider's answer.
    pub op: CreateOp,
    /// `mtu_request` to set.
    pub mtu_request: Option<i64>,
    /// `external_ids:iface-id-ver` to set.
    pub iface_id_ver: Option<String>,
    /// The integration bridge's name (`external_ids:vif-plug-bridge`).
    pub bridge_name: String,
}

/// A row that holds a name: Port and Interface names are unique indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameRow {
    /// A Port.
    Port(Uuid),
    /// An Interface.
    Iface(Uuid),
}

/// The removal of an Interface we plugged, with its Port unless another
/// program put interfaces of its own into that Port (a bond), which then
/// stays.
pub struct Removal {
    /// The bridge holding the port.
    pub bridge: Uuid,
    /// The Port.
    pub port: Uuid,
    /// The Interface.
    pub iface: Uuid,
    /// Whether the Port goes too (it holds only our interface).
    pub whole_port: bool,
    /// The interface's name, for the log.
    pub iface_name: String,
    /// The provider's agreement.
    pub op: RemoveOp,
}

impl Removal {
    /// The rows whose names this removal frees.
    pub fn frees(&self) -> Vec<NameRow> {
        let mut rows = vec![NameRow::Iface(self.iface)];
        if self.whole_port {
            rows.push(NameRow::Port(self.port));
        }
        rows
    }
}

/// What a plan does.
pub enum Action {
    /// Create the interface.
    Create(Creation),
    /// Change our interface in place.
    Update {
        /// The Interface.
        iface: Uuid,
        /// Its name, for the log.
        iface_name: String,
        /// The provider's answer.
        op: CreateOp,
        /// What to change.
        update: Box<IfaceUpdate>,
        /// The Interface as it will be.
        expected: Box<IfaceState>,
    },
    /// Remove our interface.
    Remove(Removal),
    /// Remove our interface and create another, in the same transaction.
    Replace(Removal, Creation),
}

/// One logical port's change.
pub struct Plan {
    /// The logical port.
    pub lport: String,
    /// The binding's options it was computed from (empty for a removal).
    pub lport_options: Vec<(String, String)>,
    /// The binding's MACs it was computed from (empty for a removal).
    pub lport_macs: Vec<String>,
    /// Why, for the log (removals and replacements).
    pub why: Option<String>,
    /// The interface option keys the agent manages once it commits (see
    /// [`Applied::option_keys`]).
    pub option_keys: Vec<String>,
    /// The change.
    pub action: Action,
}

impl Plan {
    /// The rows whose names this plan frees.
    pub fn frees(&self) -> Vec<NameRow> {
        match &self.action {
            Action::Remove(r) | Action::Replace(r, _) => r.frees(),
            Action::Create(_) | Action::Update { .. } => Vec::new(),
        }
    }

    /// What it does, as a verb for the logs ("plugging").
    pub fn verb(&self) -> &'static str {
        match self.action {
            Action::Create(_) => "plugging",
            Action::Update { .. } => "updating",
            Action::Remove(_) => "unplugging",
            Action::Replace(..) => "replacing",
        }
    }

    /// The kind of operation.
    pub fn kind(&self) -> OpKind {
        match self.action {
            Action::Create(_) => OpKind::Create,
            Action::Update { .. } => OpKind::Update,
            Action::Remove(_) => OpKind::Remove,
            Action::Replace(..) => OpKind::Replace,
        }
    }

    /// What will be in place once the plan commits (`None` after a
    /// removal).
    pub fn applied(&self) -> Option<Applied> {
        let iface = match &self.action {
            Action::Create(c) | Action::Replace(_, c) => created_state(&self.lport, c),
            Action::Update { expected, .. } => (**expected).clone(),
            Action::Remove(_) => return None,
        };
        Some(
            Applied::new(self.lport_options.clone(), &iface, &self.option_keys)
                .with_macs(self.lport_macs.clone()),
        )
    }

    /// Reports the commit to the provider(s): `port_finish` for each
    /// operation (the REMOVE of a replacement first), then
    /// `port_ctx_destroy` for each CREATE.
    pub fn finish(self) {
        match self.action {
            Action::Create(c) => c.op.finish(),
            Action::Update { op, .. } => op.finish(),
            Action::Remove(r) => r.op.finish(),
            Action::Replace(r, c) => {
                r.op.finish();
                c.op.finish();
            }
        }
    }
}

fn created_ids(lport: &str, c: &Creation) -> Vec<(String, String)> {
    our_external_ids(
        lport,
        c.op.type_name(),
        &c.bridge_name,
        c.iface_id_ver.as_deref(),
    )
}

/// The state a created interface will have.
fn created_state(lport: &str, c: &Creation) -> IfaceState {
    let out = c.op.output();
    IfaceState {
        iface_type: out.iface_type.clone().unwrap_or_default(),
        options: out.options.iter().cloned().collect(),
        external_ids: created_ids(lport, c).into_iter().collect(),
        mtu_request: c.mtu_request,
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

/// Per bridge: ports to add (named rows) and ports to remove.
type Membership = BTreeMap<Uuid, (Vec<Atom>, Vec<Atom>)>;

fn insert_creation(txn: &mut Txn, ports: &mut Membership, i: usize, lport: &str, c: &Creation) {
    let out = c.op.output();
    let iface = format!("iface{i}");
    let port = format!("port{i}");
    // Columns left at their defaults are omitted: less to send and parse
    // for thousands of ports.
    let mut columns = vec![
        (Interface::NAME, Datum::string(&out.name)),
        (Interface::EXTERNAL_IDS, str_map(&created_ids(lport, c))),
    ];
    if let Some(t) = &out.iface_type {
        columns.push((Interface::TYPE, Datum::string(t)));
    }
    if !out.options.is_empty() {
        columns.push((Interface::OPTIONS, str_map(&out.options)));
    }
    if c.mtu_request.is_some() {
        columns.push((Interface::MTU_REQUEST, mtu_datum(c.mtu_request)));
    }
    txn.insert(Interface::TABLE, &iface, &columns);
    txn.insert(
        Port::TABLE,
        &port,
        &[
            (Port::NAME, Datum::string(&out.name)),
            (Port::INTERFACES, Datum::scalar(Atom::NamedUuid(iface))),
        ],
    );
    ports
        .entry(c.bridge)
        .or_default()
        .0
        .push(Atom::NamedUuid(port));
}

/// Takes our interface off the switch: its Port leaves the bridge, or, in a
/// Port shared with interfaces of others, only the interface leaves the
/// Port. Either way ovsdb-server garbage-collects what is no longer
/// referenced.
fn remove(txn: &mut Txn, ports: &mut Membership, r: &Removal) {
    if r.whole_port {
        // Only if the Port still holds our interface alone: another
        // program may have bonded one of its own into it since the view
        // was read. The transaction then fails, and the port is decided
        // again from fresh state.
        txn.wait_equal(
            Port::TABLE,
            r.port,
            &[(Port::INTERFACES, Datum::set([Atom::Uuid(r.iface)]))],
        );
        ports
            .entry(r.bridge)
            .or_default()
            .1
            .push(Atom::Uuid(r.port));
    } else {
        txn.mutate(
            Port::TABLE,
            r.port,
            &[(
                Port::INTERFACES,
                "delete",
                Datum::set([Atom::Uuid(r.iface)]),
            )],
        );
    }
}

fn update_iface(txn: &mut Txn, iface: Uuid, update: &IfaceUpdate) {
    let mut columns = Vec::new();
    if let Some(t) = &update.set_type {
        columns.push((Interface::TYPE, Datum::string(t)));
    }
    if let Some(m) = update.set_mtu_request {
        columns.push((Interface::MTU_REQUEST, mtu_datum(m)));
    }
    if !columns.is_empty() {
        txn.update(Interface::TABLE, iface, &columns);
    }
    let mut mutations = Vec::new();
    let (options, ids) = (Interface::OPTIONS, Interface::EXTERNAL_IDS);
    if !update.options_delete.is_empty() {
        mutations.push((options, "delete", key_set(&update.options_delete)));
    }
    if !update.options_insert.is_empty() {
        mutations.push((options, "insert", str_map(&update.options_insert)));
    }
    if !update.external_ids_delete.is_empty() {
        mutations.push((ids, "delete", key_set(&update.external_ids_delete)));
    }
    if !update.external_ids_insert.is_empty() {
        mutations.push((ids, "insert", str_map(&update.external_ids_insert)));
    }
    if !mutations.is_empty() {
        txn.mutate(Interface::TABLE, iface, &mutations);
    }
}

/// Adds the operations of `plans` to one transaction, after an `assert` of
/// `lock` if given (so that the transaction fails rather than writes if the
/// lock was lost). Bridge membership is changed with one `mutate` per
/// bridge (all inserts and deletes together), never by rewriting
/// `Bridge.ports`, and interface maps with key deletes and inserts, so
/// concurrent writers are not undone. A replacement deletes the old port
/// and inserts the new one in the same transaction: the old rows are
/// garbage-collected before the name indexes are checked, so the new
/// interface may even keep the old name (a move between bridges).
///
/// Returns the transaction and, for each of its operations, the index of
/// the plan it belongs to (`None` for operations shared by several plans).
pub fn build_txn(plans: &[Plan], lock: Option<&str>) -> (Txn, Vec<Option<usize>>) {
    let mut txn = Txn::new("Open_vSwitch");
    if let Some(lock) = lock {
        txn.assert_lock(lock);
    }
    let mut owners = Vec::new();
    let (mut n_create, mut n_update, mut n_remove, mut n_replace) = (0, 0, 0, 0);
    let mut ports = Membership::default();
    for (i, plan) in plans.iter().enumerate() {
        let first_op = txn.len();
        match &plan.action {
            Action::Create(c) => {
                n_create += 1;
                insert_creation(&mut txn, &mut ports, i, &plan.lport, c);
            }
            Action::Update { iface, update, .. } => {
                n_update += 1;
                update_iface(&mut txn, *iface, update);
            }
            Action::Remove(r) => {
                n_remove += 1;
                remove(&mut txn, &mut ports, r);
            }
            Action::Replace(r, c) => {
                n_replace += 1;
                remove(&mut txn, &mut ports, r);
                insert_creation(&mut txn, &mut ports, i, &plan.lport, c);
            }
        }
        owners.resize(first_op, None);
        owners.resize(txn.len(), Some(i));
    }
    for (bridge, (add, remove)) in ports {
        let mut mutations = Vec::new();
        if !remove.is_empty() {
            mutations.push((Bridge::PORTS, "delete", Datum::set(remove)));
        }
        if !add.is_empty() {
            mutations.push((Bridge::PORTS, "insert", Datum::set(add)));
        }
        txn.mutate(Bridge::TABLE, bridge, &mutations);
    }
    txn.comment(&format!(
        "vif-plug-host: plug {n_create}, update {n_update}, unplug {n_remove}, replace {n_replace}"
    ));
    owners.resize(txn.len(), None);
    (txn, owners)
}
