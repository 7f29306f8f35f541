//! The local Open vSwitch database as the agent sees it: the monitored
//! tables, and indices kept up to date from each batch of row changes, so
//! that a wake-up costs work in proportion to what changed.

use super::iface_diff::IfaceState;
use super::port_state::Location;
use super::rows::{self, Bridge, Interface, OpenVswitch, Port, Table};
use crate::ovsdb::replica::{ChangeKind, Replica, Row, RowChange};
use crate::ovsdb::{Schema, Uuid};
use serde_json::{json, Value};
use smallvec::SmallVec;
use std::collections::{BTreeSet, HashMap, HashSet};

/// The `monitor_cond` request (all rows: the local database is small).
pub fn monitor_params(schema: &Schema, monitor_id: &Value) -> Value {
    let s = Some(schema);
    json!(["Open_vSwitch", monitor_id, {
        (OpenVswitch::TABLE): [{"columns": rows::monitored_columns::<OpenVswitch>(s)}],
        (Bridge::TABLE): [{"columns": rows::monitored_columns::<Bridge>(s)}],
        (Port::TABLE): [{"columns": rows::monitored_columns::<Port>(s)}],
        (Interface::TABLE): [{"columns": rows::monitored_columns::<Interface>(s)}],
    }])
}

/// Settings read from the `Open_vSwitch` row. As ovn-controller reads them
/// (`get_chassis_external_id_value` in OVN's `lib/ovn-util.c`), a key
/// suffixed with `-<chassis name>` (`ovn-bridge-hv1`) takes precedence over
/// the plain key, so that several chassis can share one database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OvsConfig {
    /// `external_ids:system-id`.
    pub system_id: Option<String>,
    /// `external_ids:ovn-remote`.
    pub ovn_remote: Option<String>,
    /// `external_ids:ovn-bridge`.
    pub ovn_bridge: Option<String>,
    /// `external_ids:hostname`, which ovn-controller registers as the
    /// chassis hostname instead of the system's.
    pub hostname: Option<String>,
    /// `external_ids:ovn-remote-probe-interval`: the key that was set
    /// (plain or per-chassis) and its value.
    pub remote_probe_interval: Option<(String, String)>,
    /// `dpdk_initialized`.
    pub dpdk_initialized: bool,
}

/// The local database and its indices.
#[derive(Debug, Default)]
pub struct LocalView {
    /// The rows.
    pub replica: Replica,
    /// Sorted; nearly always one (a tree set per port cost 200 bytes).
    ifaces_by_lport: HashMap<String, SmallVec<[Uuid; 1]>>,
    /// Logical ports with an interface carrying `ovn-plugged`.
    plugged: BTreeSet<String>,
    port_of_iface: HashMap<Uuid, Uuid>,
    bridge_of_port: HashMap<Uuid, Uuid>,
    bridge_by_name: HashMap<String, Uuid>,
    port_by_name: HashMap<String, Uuid>,
    iface_by_name: HashMap<String, Uuid>,
}

/// What a batch of changes affected.
#[derive(Debug, Default)]
pub struct Affected {
    /// Logical ports whose interface (or its port) changed.
    pub lports: HashSet<String>,
    /// Bridges added, removed, renamed or whose datapath type changed (not
    /// mere port changes, which every plug makes).
    pub bridges: HashSet<Uuid>,
    /// The Open_vSwitch row changed.
    pub config: bool,
    /// A Port or Interface was deleted or renamed, freeing its name.
    pub names_freed: bool,
    /// The set of logical ports with an interface we plugged changed.
    pub plugged_changed: bool,
}

impl LocalView {
    /// Updates the indices for `changes` (already applied to the replica)
    /// and reports what they affect.
    pub fn index(&mut self, changes: &[RowChange]) -> Affected {
        let mut a = Affected::default();
        for ch in changes {
            let new = if ch.kind == ChangeKind::Delete {
                None
            } else {
                self.replica.get(&ch.table, &ch.uuid).cloned()
            };
            match ch.table.as_str() {
                OpenVswitch::TABLE => a.config = true,
                Interface::TABLE => self.index_iface(ch, new.as_ref(), &mut a),
                Port::TABLE => self.index_port(ch, new.as_ref(), &mut a),
                Bridge::TABLE => self.index_bridge(ch, new.as_ref(), &mut a),
                _ => {}
            }
        }
        for lport in &a.lports {
            let plugged = self.ifaces_of(lport).any(|(_, i)| i.plugged_by().is_some());
            let changed = if plugged {
                self.plugged.insert(lport.clone())
            } else {
                self.plugged.remove(lport)
            };
            a.plugged_changed |= changed;
        }
        a
    }

    fn index_iface(&mut self, ch: &RowChange, new: Option<&Row>, a: &mut Affected) {
        let old_name = ch.old.as_ref().map(|r| Interface(r).name());
        let new_name = new.map(|r| Interface(r).name());
        if old_name != new_name {
            if let Some(n) = old_name {
                if self.iface_by_name.get(n) == Some(&ch.uuid) {
                    self.iface_by_name.remove(n);
                }
                a.names_freed = true;
            }
            if let Some(n) = new_name {
                self.iface_by_name.insert(n.to_owned(), ch.uuid);
            }
        }
        for (row, add) in [(ch.old.as_ref(), false), (new, true)] {
            let Some(lport) = row.and_then(|r| Interface(r).iface_id()) else {
                continue;
            };
            a.lports.insert(lport.to_owned());
            let set = self.ifaces_by_lport.entry(lport.to_owned()).or_default();
            match (add, set.binary_search(&ch.uuid)) {
                (true, Err(i)) => set.insert(i, ch.uuid),
                (false, Ok(i)) => {
                    set.remove(i);
                }
                _ => {}
            }
            if set.is_empty() {
                self.ifaces_by_lport.remove(lport);
            }
        }
    }

    fn index_port(&mut self, ch: &RowChange, new: Option<&Row>, a: &mut Affected) {
        if let Some(old) = &ch.old {
            for i in Port(old).interfaces() {
                if self.port_of_iface.get(&i) == Some(&ch.uuid) {
                    self.port_of_iface.remove(&i);
                }
                self.note_iface(i, a);
            }
            let n = Port(old).name();
            if self.port_by_name.get(n) == Some(&ch.uuid) {
                self.port_by_name.remove(n);
            }
            a.names_freed |= new.is_none_or(|r| Port(r).name() != n);
        }
        if let Some(row) = new {
            for i in Port(row).interfaces() {
                self.port_of_iface.insert(i, ch.uuid);
                self.note_iface(i, a);
            }
            self.port_by_name
                .insert(Port(row).name().to_owned(), ch.uuid);
        }
    }

    fn index_bridge(&mut self, ch: &RowChange, new: Option<&Row>, a: &mut Affected) {
        fn identity(r: Option<&Row>) -> Option<(&str, &str)> {
            r.map(|r| Bridge(r).identity())
        }
        fn ports(r: Option<&Row>) -> HashSet<Uuid> {
            r.map(|r| Bridge(r).ports().collect()).unwrap_or_default()
        }
        let renamed = identity(ch.old.as_ref()) != identity(new);
        if renamed {
            a.bridges.insert(ch.uuid);
        }
        let (before, after) = (ports(ch.old.as_ref()), ports(new));
        // Every plug and unplug mutates Bridge.ports: only the ports that
        // joined or left are affected, unless the bridge itself changed.
        for p in &before {
            if !after.contains(p) {
                if self.bridge_of_port.get(p) == Some(&ch.uuid) {
                    self.bridge_of_port.remove(p);
                }
                self.note_port(*p, a);
            } else if renamed {
                self.note_port(*p, a);
            }
        }
        for p in after.difference(&before) {
            self.bridge_of_port.insert(*p, ch.uuid);
            self.note_port(*p, a);
        }
        if let Some(old) = &ch.old {
            let n = Bridge(old).name();
            if self.bridge_by_name.get(n) == Some(&ch.uuid) {
                self.bridge_by_name.remove(n);
            }
        }
        if let Some(row) = new {
            self.bridge_by_name
                .insert(Bridge(row).name().to_owned(), ch.uuid);
        }
    }

    fn note_iface(&self, iface: Uuid, a: &mut Affected) {
        if let Some(l) = self
            .replica
            .get(Interface::TABLE, &iface)
            .and_then(|r| Interface(r).iface_id())
        {
            a.lports.insert(l.to_owned());
        }
    }

    fn note_port(&self, port: Uuid, a: &mut Affected) {
        if let Some(row) = self.replica.get(Port::TABLE, &port) {
            for i in Port(row).interfaces() {
                self.note_iface(i, a);
            }
        }
    }

    /// Forgets everything (before a fresh monitor's initial contents).
    pub fn reset(&mut self) -> Vec<RowChange> {
        *self = LocalView {
            replica: std::mem::take(&mut self.replica),
            ..LocalView::default()
        };
        self.replica.clear()
    }

    /// The settings in the `Open_vSwitch` row, for chassis `chassis`
    /// (default: its `system-id`).
    pub fn config(&self, chassis: Option<&str>) -> OvsConfig {
        let Some((_, row)) = self.replica.rows(OpenVswitch::TABLE).next() else {
            return OvsConfig::default();
        };
        let o = OpenVswitch(row);
        let get = |k: &str| o.external_id(k).map(str::to_owned);
        let system_id = get("system-id");
        let name = chassis.or(system_id.as_deref()).unwrap_or_default();
        let keyed = |k: &str| {
            let specific = format!("{k}-{name}");
            match get(&specific) {
                Some(v) => Some((specific, v)),
                None => get(k).map(|v| (k.to_owned(), v)),
            }
        };
        let for_chassis = |k: &str| keyed(k).map(|(_, v)| v);
        OvsConfig {
            remote_probe_interval: keyed(super::probe::KEY),
            ovn_remote: for_chassis("ovn-remote"),
            ovn_bridge: for_chassis("ovn-bridge"),
            hostname: for_chassis("hostname"),
            system_id,
            dpdk_initialized: o.dpdk_initialized(),
        }
    }

    /// The bridge named `name`.
    pub fn bridge(&self, name: &str) -> Option<(Uuid, Bridge<'_>)> {
        let uuid = *self.bridge_by_name.get(name)?;
        Some((uuid, Bridge(self.replica.get(Bridge::TABLE, &uuid)?)))
    }

    /// The interfaces whose `external_ids:iface-id` is `lport`.
    pub fn ifaces_of(&self, lport: &str) -> impl Iterator<Item = (Uuid, Interface<'_>)> {
        self.ifaces_by_lport
            .get(lport)
            .into_iter()
            .flatten()
            .filter_map(|u| Some((*u, Interface(self.replica.get(Interface::TABLE, u)?))))
    }

    /// Interface `uuid`, if it exists.
    pub fn iface(&self, uuid: Uuid) -> Option<Interface<'_>> {
        self.replica.get(Interface::TABLE, &uuid).map(Interface)
    }

    /// Where interface `iface` stands: its port and that port's bridge.
    pub fn location(&self, iface: Uuid) -> Option<Location> {
        let port = *self.port_of_iface.get(&iface)?;
        let bridge = *self.bridge_of_port.get(&port)?;
        let row = Bridge(self.replica.get(Bridge::TABLE, &bridge)?);
        let port_ifaces = self
            .replica
            .get(Port::TABLE, &port)
            .map_or(1, |p| Port(p).interfaces().count());
        Some(Location {
            port,
            bridge,
            bridge_name: row.name().to_owned(),
            datapath_type: row.datapath_type().to_owned(),
            port_ifaces,
        })
    }

    /// The port named `name`, if any.
    pub fn port_named(&self, name: &str) -> Option<Uuid> {
        self.port_by_name.get(name).copied()
    }

    /// The interface named `name`, if any.
    pub fn iface_named(&self, name: &str) -> Option<Uuid> {
        self.iface_by_name.get(name).copied()
    }

    /// Every logical port that has an interface.
    pub fn lports(&self) -> impl Iterator<Item = &String> {
        self.ifaces_by_lport.keys()
    }

    /// The logical ports with an interface we plugged (`ovn-plugged`), on
    /// any bridge: the Southbound lookups.
    pub fn plugged_lports(&self) -> &BTreeSet<String> {
        &self.plugged
    }
}

/// The managed state of an Interface row.
pub fn iface_state(iface: Interface<'_>) -> IfaceState {
    IfaceState {
        iface_type: iface.itype().to_owned(),
        options: iface.options().str_pairs().into_iter().collect(),
        external_ids: iface.external_ids().str_pairs().into_iter().collect(),
        mtu_request: iface.mtu_request(),
    }
}
