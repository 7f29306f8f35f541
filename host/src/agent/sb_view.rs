//! The OVN Southbound database as the agent sees it: our Chassis, and only
//! the Port_Bindings whose `requested_chassis` is that chassis (conditional
//! monitoring), so memory and traffic grow with local ports, not with the
//! cloud.

use crate::ovsdb::replica::{col, ChangeKind, Replica, Row, RowChange};
use crate::ovsdb::Uuid;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

/// Port_Binding columns monitored.
pub const PB_COLUMNS: &[&str] = &["logical_port", "type", "options", "requested_chassis"];

/// The Port_Binding condition: bindings requested for `chassis`, or none
/// until the chassis is known.
pub fn pb_condition(chassis: Option<Uuid>) -> Value {
    match chassis {
        Some(c) => json!([["requested_chassis", "==", ["uuid", c.to_string()]]]),
        None => json!([false]),
    }
}

/// The `monitor_cond` request.
pub fn monitor_params(monitor_id: &Value, chassis_name: &str, chassis: Option<Uuid>) -> Value {
    json!(["OVN_Southbound", monitor_id, {
        "Chassis": [{"columns": ["name"], "where": [["name", "==", chassis_name]]}],
        "Port_Binding": [{"columns": PB_COLUMNS, "where": pb_condition(chassis)}]
    }])
}

/// The plain `monitor` request, for servers without `monitor_cond`: every
/// row, filtered by the agent itself (see [`SbView::binding`]).
pub fn monitor_plain_params(monitor_id: &Value) -> Value {
    json!(["OVN_Southbound", monitor_id, {
        "Chassis": {"columns": ["name"]},
        "Port_Binding": {"columns": PB_COLUMNS}
    }])
}

/// The `monitor_cond_change` request that follows our chassis.
pub fn condition_change_params(
    monitor_id: &Value,
    chassis_name: &str,
    chassis: Option<Uuid>,
) -> Value {
    json!([monitor_id, monitor_id, {
        "Chassis": [{"where": [["name", "==", chassis_name]]}],
        "Port_Binding": [{"where": pb_condition(chassis)}]
    }])
}

/// The Southbound rows and their index.
#[derive(Debug, Default)]
pub struct SbView {
    /// The rows.
    pub replica: Replica,
    pb_by_lport: HashMap<String, Uuid>,
}

fn lport_of(row: &Row) -> Option<&str> {
    col(row, "logical_port").as_str()
}

impl SbView {
    /// Updates the index; returns the logical ports affected.
    pub fn index(&mut self, changes: &[RowChange]) -> HashSet<String> {
        let mut lports = HashSet::new();
        for ch in changes.iter().filter(|c| c.table == "Port_Binding") {
            if let Some(l) = ch.old.as_ref().and_then(lport_of) {
                lports.insert(l.to_owned());
                if self.pb_by_lport.get(l) == Some(&ch.uuid) {
                    self.pb_by_lport.remove(l);
                }
            }
            if ch.kind != ChangeKind::Delete {
                if let Some(l) = self
                    .replica
                    .get("Port_Binding", &ch.uuid)
                    .and_then(lport_of)
                {
                    lports.insert(l.to_owned());
                    self.pb_by_lport.insert(l.to_owned(), ch.uuid);
                }
            }
        }
        lports
    }

    /// Forgets everything (before a fresh monitor's initial contents).
    pub fn reset(&mut self) -> Vec<RowChange> {
        self.pb_by_lport.clear();
        self.replica.clear()
    }

    /// Our chassis, if it exists.
    pub fn chassis(&self, name: &str) -> Option<Uuid> {
        self.replica
            .rows("Chassis")
            .find(|(_, r)| col(r, "name").as_str() == Some(name))
            .map(|(u, _)| *u)
    }

    /// The binding of `lport`, if it is requested for `chassis`.
    pub fn binding(&self, lport: &str, chassis: Uuid) -> Option<&Row> {
        let row = self
            .replica
            .get("Port_Binding", self.pb_by_lport.get(lport)?)?;
        (col(row, "requested_chassis").as_uuid() == Some(chassis)).then_some(row)
    }

    /// Every logical port with a binding in view.
    pub fn lports(&self) -> impl Iterator<Item = &String> {
        self.pb_by_lport.keys()
    }
}
