//! The OVN Southbound database as the agent sees it, and the conditions it
//! monitors it with.
//!
//! The agent receives our Chassis row, `SB_Global`, and only these
//! Port_Bindings (conditional monitoring, so memory and traffic grow with
//! local ports, not with the cloud):
//!
//! - those whose `requested_chassis` is our chassis (the ports to plug);
//! - those whose `requested_additional_chassis` holds it (live migration);
//! - every binding named by a *lookup*: one `logical_port == NAME` clause
//!   per logical port that has an interface we plugged. A lookup is what
//!   turns "not in view" into proof: once the server has acknowledged a
//!   condition holding the clause, a binding of that name that is not in
//!   view does not exist. Absence from the chassis clauses alone proves
//!   nothing: a re-created chassis row or a repopulated database empties
//!   them while every binding still stands.

use super::rows::{self, Chassis, PortBinding, SbGlobal, Table};
use crate::ovsdb::replica::{ChangeKind, Replica, RowChange};
use crate::ovsdb::{Schema, Uuid};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// What the agent asks the server to select.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Our chassis name: the Chassis row selected.
    pub chassis_name: String,
    /// Our Chassis row, once known: the bindings requested for it.
    pub chassis: Option<Uuid>,
    /// Logical ports looked up by name.
    pub lookups: Arc<BTreeSet<String>>,
}

/// Whether the server has answered a lookup of `lport`, so that a binding
/// of that name not in view does not exist.
///
/// `selected` is the condition the server last acknowledged; `in_flight`
/// the `monitor_cond_change` sent but not yet answered. Both must hold the
/// lookup: a change that drops it may already be in force on the server
/// (it sends the rows leaving the view before its reply, per
/// `ovsdb/jsonrpc-server.c`), so a delete that arrives meanwhile may mean
/// "no longer selected" rather than "gone".
pub fn lookup_answered(
    selected: Option<&Selection>,
    in_flight: Option<&Selection>,
    lport: &str,
) -> bool {
    let holds = |s: &Selection| s.lookups.contains(lport);
    selected.is_some_and(holds) && in_flight.is_none_or(holds)
}

/// The Port_Binding condition for `sel`: a disjunction of its clauses, or
/// nothing at all while it has none.
fn pb_condition(sel: &Selection, schema: Option<&Schema>) -> Value {
    let mut clauses = Vec::new();
    if let Some(c) = sel.chassis {
        let c = json!(["uuid", c.to_string()]);
        clauses.push(json!(["requested_chassis", "==", c]));
        let has_additional = schema.is_none_or(|s| {
            s.kind(PortBinding::TABLE, "requested_additional_chassis")
                .is_some()
        });
        if has_additional {
            clauses.push(json!(["requested_additional_chassis", "includes", c]));
        }
    }
    clauses.extend(sel.lookups.iter().map(|l| json!(["logical_port", "==", l])));
    if clauses.is_empty() {
        clauses.push(json!(false));
    }
    Value::Array(clauses)
}

fn chassis_condition(sel: &Selection) -> Value {
    json!([[Chassis::NAME, "==", sel.chassis_name]])
}

/// The `monitor_cond` request for `sel`.
pub fn monitor_params(schema: Option<&Schema>, monitor_id: &Value, sel: &Selection) -> Value {
    json!(["OVN_Southbound", monitor_id, {
        (Chassis::TABLE): [{
            "columns": rows::monitored_columns::<Chassis>(schema),
            "where": chassis_condition(sel),
        }],
        (PortBinding::TABLE): [{
            "columns": rows::monitored_columns::<PortBinding>(schema),
            "where": pb_condition(sel, schema),
        }],
        (SbGlobal::TABLE): [{"columns": rows::monitored_columns::<SbGlobal>(schema)}],
    }])
}

/// The plain `monitor` request, for servers without `monitor_cond`: every
/// row (so every lookup is answered by the contents themselves).
pub fn monitor_plain_params(schema: Option<&Schema>, monitor_id: &Value) -> Value {
    json!(["OVN_Southbound", monitor_id, {
        (Chassis::TABLE): {"columns": rows::monitored_columns::<Chassis>(schema)},
        (PortBinding::TABLE): {"columns": rows::monitored_columns::<PortBinding>(schema)},
        (SbGlobal::TABLE): {"columns": rows::monitored_columns::<SbGlobal>(schema)},
    }])
}

/// The `monitor_cond_change` request that moves the monitor to `sel`.
pub fn condition_change_params(
    schema: Option<&Schema>,
    monitor_id: &Value,
    sel: &Selection,
) -> Value {
    json!([monitor_id, monitor_id, {
        (Chassis::TABLE): [{"where": chassis_condition(sel)}],
        (PortBinding::TABLE): [{"where": pb_condition(sel, schema)}],
    }])
}

/// What a batch of Southbound changes affected.
#[derive(Debug, Default)]
pub struct SbChanges {
    /// Logical ports whose binding changed.
    pub lports: HashSet<String>,
    /// A Chassis or SB_Global row changed: the view's certainty may have.
    pub global: bool,
}

/// The Southbound rows and their index.
#[derive(Debug, Default)]
pub struct SbView {
    /// The rows.
    pub replica: Replica,
    pb_by_lport: HashMap<String, Uuid>,
}

impl SbView {
    /// Updates the index for `changes` (already applied to the replica).
    pub fn index(&mut self, changes: &[RowChange]) -> SbChanges {
        let mut out = SbChanges::default();
        for ch in changes {
            if ch.table != PortBinding::TABLE {
                out.global |= ch.table == Chassis::TABLE || ch.table == SbGlobal::TABLE;
                continue;
            }
            if let Some(old) = &ch.old {
                let l = PortBinding(old).logical_port();
                out.lports.insert(l.to_owned());
                if self.pb_by_lport.get(l) == Some(&ch.uuid) {
                    self.pb_by_lport.remove(l);
                }
            }
            if ch.kind != ChangeKind::Delete {
                if let Some(row) = self.replica.get(PortBinding::TABLE, &ch.uuid) {
                    let l = PortBinding(row).logical_port();
                    out.lports.insert(l.to_owned());
                    self.pb_by_lport.insert(l.to_owned(), ch.uuid);
                }
            }
        }
        out
    }

    /// Forgets everything (before a fresh monitor's initial contents).
    pub fn reset(&mut self) -> Vec<RowChange> {
        self.pb_by_lport.clear();
        self.replica.clear()
    }

    /// Our Chassis row, by name.
    pub fn chassis(&self, name: &str) -> Option<(Uuid, Chassis<'_>)> {
        self.replica
            .rows(Chassis::TABLE)
            .map(|(u, r)| (*u, Chassis(r)))
            .find(|(_, c)| c.name() == name)
    }

    /// The `SB_Global` row, if any.
    pub fn sb_global(&self) -> Option<Uuid> {
        self.replica.rows(SbGlobal::TABLE).map(|(u, _)| *u).next()
    }

    /// Whether ovn-northd has populated the database (see
    /// [`SbGlobal::northd_internal_version`]).
    pub fn populated(&self) -> bool {
        self.replica
            .rows(SbGlobal::TABLE)
            .any(|(_, r)| SbGlobal(r).northd_internal_version().is_some())
    }

    /// The binding of `lport`, if in view.
    pub fn binding(&self, lport: &str) -> Option<PortBinding<'_>> {
        let uuid = self.pb_by_lport.get(lport)?;
        self.replica.get(PortBinding::TABLE, uuid).map(PortBinding)
    }

    /// Every logical port with a binding in view.
    pub fn lports(&self) -> impl Iterator<Item = &String> {
        self.pb_by_lport.keys()
    }

    /// Number of bindings in view.
    pub fn len(&self) -> usize {
        self.pb_by_lport.len()
    }

    /// Whether no binding is in view.
    pub fn is_empty(&self) -> bool {
        self.pb_by_lport.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binding_condition_is_a_disjunction_of_chassis_and_lookups() {
        let none = Selection::default();
        assert_eq!(pb_condition(&none, None), json!([false]));
        let sel = Selection {
            chassis_name: "hv1".into(),
            chassis: Some(Uuid(1)),
            lookups: Arc::new(["lsp1".to_owned(), "lsp2".to_owned()].into()),
        };
        let u = json!(["uuid", Uuid(1).to_string()]);
        assert_eq!(
            pb_condition(&sel, None),
            json!([
                ["requested_chassis", "==", u],
                ["requested_additional_chassis", "includes", u],
                ["logical_port", "==", "lsp1"],
                ["logical_port", "==", "lsp2"]
            ])
        );
        let p = monitor_params(None, &json!("id"), &sel);
        assert_eq!(p[2]["Chassis"][0]["where"], json!([["name", "==", "hv1"]]));
        assert_eq!(p[2]["SB_Global"][0]["columns"], json!(["options"]));
    }

    #[test]
    fn a_lookup_is_answered_only_while_no_change_in_flight_drops_it() {
        let with = Selection {
            lookups: Arc::new(["lsp1".to_owned()].into()),
            ..Selection::default()
        };
        let without = Selection::default();
        // (acknowledged, in flight, answered)
        let table = [
            (None, None, false),
            (None, Some(&with), false),
            (Some(&without), None, false),
            (Some(&without), Some(&with), false),
            (Some(&with), None, true),
            (Some(&with), Some(&with), true),
            // The race found by trying to break it: the change dropping
            // the lookup may be in force already.
            (Some(&with), Some(&without), false),
        ];
        for (selected, in_flight, answered) in table {
            assert_eq!(
                lookup_answered(selected, in_flight, "lsp1"),
                answered,
                "selected {selected:?}, in flight {in_flight:?}"
            );
        }
    }
}
