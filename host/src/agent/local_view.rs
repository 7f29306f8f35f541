//! The local Open vSwitch database as the agent sees it: the monitored
//! tables, and indices kept up to date from each batch of row changes, so
//! that a wake-up costs work in proportion to what changed.

use super::iface_diff::{IfaceState, IFACE_ID};
use crate::ovsdb::replica::{col, ChangeKind, Replica, Row, RowChange};
use crate::ovsdb::{Schema, Uuid};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap, HashSet};

/// Columns monitored, per table.
pub const MONITORED: &[(&str, &[&str])] = &[
    ("Open_vSwitch", &["external_ids", "dpdk_initialized"]),
    ("Bridge", &["name", "datapath_type", "ports"]),
    ("Port", &["name", "interfaces"]),
    (
        "Interface",
        &["name", "type", "options", "external_ids", "mtu_request"],
    ),
];

/// The `monitor_cond` request (all rows: the local database is small).
pub fn monitor_params(schema: &Schema, monitor_id: &Value) -> Value {
    let mut tables = serde_json::Map::new();
    for (table, columns) in MONITORED {
        let cols: Vec<&str> = columns
            .iter()
            .copied()
            .filter(|c| schema.kind(table, c).is_some())
            .collect();
        tables.insert((*table).into(), json!([{ "columns": cols }]));
    }
    json!(["Open_vSwitch", monitor_id, tables])
}

/// Settings read from the `Open_vSwitch` row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OvsConfig {
    /// `external_ids:system-id`.
    pub system_id: Option<String>,
    /// `external_ids:ovn-remote`.
    pub ovn_remote: Option<String>,
    /// `external_ids:ovn-bridge`.
    pub ovn_bridge: Option<String>,
    /// `dpdk_initialized`.
    pub dpdk_initialized: bool,
}

/// The local database and its indices.
#[derive(Debug, Default)]
pub struct LocalView {
    /// The rows.
    pub replica: Replica,
    ifaces_by_lport: HashMap<String, BTreeSet<Uuid>>,
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
}

fn iface_id(row: &Row) -> Option<&str> {
    col(row, "external_ids").map_get(IFACE_ID)
}

impl LocalView {
    /// Updates the indices for `changes` (already applied to the replica)
    /// and reports what they affect.
    pub fn index(&mut self, changes: &[RowChange]) -> Affected {
        let mut a = Affected::default();
        for ch in changes {
            let new = self.replica.get(&ch.table, &ch.uuid).cloned();
            let new = if ch.kind == ChangeKind::Delete {
                None
            } else {
                new
            };
            match ch.table.as_str() {
                "Open_vSwitch" => a.config = true,
                "Interface" => {
                    let old_name = ch.old.as_ref().and_then(|r| col(r, "name").as_str());
                    let new_name = new.as_ref().and_then(|r| col(r, "name").as_str());
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
                    for (row, add) in [(ch.old.as_ref(), false), (new.as_ref(), true)] {
                        let Some(lport) = row.and_then(iface_id) else {
                            continue;
                        };
                        a.lports.insert(lport.to_owned());
                        let set = self.ifaces_by_lport.entry(lport.to_owned()).or_default();
                        if add {
                            set.insert(ch.uuid);
                        } else {
                            set.remove(&ch.uuid);
                            if set.is_empty() {
                                self.ifaces_by_lport.remove(lport);
                            }
                        }
                    }
                }
                "Port" => {
                    if let Some(old) = &ch.old {
                        for i in col(old, "interfaces").uuids() {
                            if self.port_of_iface.get(&i) == Some(&ch.uuid) {
                                self.port_of_iface.remove(&i);
                            }
                            self.note_iface(i, &mut a);
                        }
                        if let Some(n) = col(old, "name").as_str() {
                            if self.port_by_name.get(n) == Some(&ch.uuid) {
                                self.port_by_name.remove(n);
                            }
                            let renamed_or_gone = new
                                .as_ref()
                                .is_none_or(|r| col(r, "name").as_str() != Some(n));
                            a.names_freed |= renamed_or_gone;
                        }
                    }
                    if let Some(row) = &new {
                        for i in col(row, "interfaces").uuids() {
                            self.port_of_iface.insert(i, ch.uuid);
                            self.note_iface(i, &mut a);
                        }
                        if let Some(n) = col(row, "name").as_str() {
                            self.port_by_name.insert(n.to_owned(), ch.uuid);
                        }
                    }
                }
                "Bridge" => {
                    let facts = |r: Option<&Row>| {
                        r.map(|r| (col(r, "name").clone(), col(r, "datapath_type").clone()))
                    };
                    if facts(ch.old.as_ref()) != facts(new.as_ref()) {
                        a.bridges.insert(ch.uuid);
                    }
                    if let Some(old) = &ch.old {
                        for p in col(old, "ports").uuids() {
                            if self.bridge_of_port.get(&p) == Some(&ch.uuid) {
                                self.bridge_of_port.remove(&p);
                            }
                            self.note_port(p, &mut a);
                        }
                        if let Some(n) = col(old, "name").as_str() {
                            if self.bridge_by_name.get(n) == Some(&ch.uuid) {
                                self.bridge_by_name.remove(n);
                            }
                        }
                    }
                    if let Some(row) = &new {
                        for p in col(row, "ports").uuids() {
                            self.bridge_of_port.insert(p, ch.uuid);
                            self.note_port(p, &mut a);
                        }
                        if let Some(n) = col(row, "name").as_str() {
                            self.bridge_by_name.insert(n.to_owned(), ch.uuid);
                        }
                    }
                }
                _ => {}
            }
        }
        a
    }

    fn note_iface(&self, iface: Uuid, a: &mut Affected) {
        if let Some(l) = self.replica.get("Interface", &iface).and_then(iface_id) {
            a.lports.insert(l.to_owned());
        }
    }

    fn note_port(&self, port: Uuid, a: &mut Affected) {
        if let Some(row) = self.replica.get("Port", &port) {
            for i in col(row, "interfaces").uuids() {
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

    /// The settings in the `Open_vSwitch` row.
    pub fn config(&self) -> OvsConfig {
        let Some((_, row)) = self.replica.rows("Open_vSwitch").next() else {
            return OvsConfig::default();
        };
        let ids = col(row, "external_ids");
        let get = |k: &str| ids.map_get(k).filter(|v| !v.is_empty()).map(str::to_owned);
        OvsConfig {
            system_id: get("system-id"),
            ovn_remote: get("ovn-remote"),
            ovn_bridge: get("ovn-bridge"),
            dpdk_initialized: col(row, "dpdk_initialized").as_bool().unwrap_or(false),
        }
    }

    /// The bridge named `name`.
    pub fn bridge(&self, name: &str) -> Option<(Uuid, &Row)> {
        let uuid = *self.bridge_by_name.get(name)?;
        Some((uuid, self.replica.get("Bridge", &uuid)?))
    }

    /// The interfaces whose `external_ids:iface-id` is `lport`.
    pub fn ifaces_of(&self, lport: &str) -> impl Iterator<Item = (Uuid, &Row)> {
        self.ifaces_by_lport
            .get(lport)
            .into_iter()
            .flatten()
            .filter_map(|u| Some((*u, self.replica.get("Interface", u)?)))
    }

    /// The port holding `iface`, and the bridge holding that port.
    pub fn port_and_bridge(&self, iface: Uuid) -> Option<(Uuid, Option<Uuid>)> {
        let port = *self.port_of_iface.get(&iface)?;
        Some((port, self.bridge_of_port.get(&port).copied()))
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
}

/// The managed state of an Interface row.
pub fn iface_state(row: &Row) -> IfaceState {
    let map = |c: &str| col(row, c).str_pairs().into_iter().collect();
    IfaceState {
        iface_type: col(row, "type").as_str().unwrap_or("").to_owned(),
        options: map("options"),
        external_ids: map("external_ids"),
        mtu_request: col(row, "mtu_request").as_int(),
    }
}
