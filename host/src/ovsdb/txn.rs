//! Building `transact` requests and reading their results (RFC 7047 §5.2).

use super::datum::{Datum, Uuid};
use serde_json::{json, Value};

/// A transaction under construction.
#[derive(Debug, Clone)]
pub struct Txn {
    database: String,
    ops: Vec<Value>,
}

fn row_json(columns: &[(&str, Datum)]) -> Value {
    Value::Object(
        columns
            .iter()
            .map(|(c, d)| ((*c).to_owned(), d.to_json()))
            .collect(),
    )
}

fn by_uuid(uuid: Uuid) -> Value {
    json!([["_uuid", "==", ["uuid", uuid.to_string()]]])
}

impl Txn {
    /// An empty transaction on `database`.
    pub fn new(database: &str) -> Txn {
        Txn {
            database: database.to_owned(),
            ops: Vec::new(),
        }
    }

    /// True if it has no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Inserts a row, naming it `uuid_name` for references later in the
    /// same transaction (`Atom::NamedUuid`).
    pub fn insert(&mut self, table: &str, uuid_name: &str, columns: &[(&str, Datum)]) {
        self.ops.push(json!({
            "op": "insert", "table": table, "uuid-name": uuid_name, "row": row_json(columns)
        }));
    }

    /// Sets columns of one row.
    pub fn update(&mut self, table: &str, uuid: Uuid, columns: &[(&str, Datum)]) {
        self.ops.push(json!({
            "op": "update", "table": table, "where": by_uuid(uuid), "row": row_json(columns)
        }));
    }

    /// Mutates columns of one row: `(column, mutator, value)` with mutators
    /// such as "insert" and "delete" for sets and maps.
    pub fn mutate(&mut self, table: &str, uuid: Uuid, mutations: &[(&str, &str, Datum)]) {
        let m: Vec<Value> = mutations
            .iter()
            .map(|(c, op, d)| json!([c, op, d.to_json()]))
            .collect();
        self.ops.push(json!({
            "op": "mutate", "table": table, "where": by_uuid(uuid), "mutations": m
        }));
    }

    /// Deletes one row.
    pub fn delete(&mut self, table: &str, uuid: Uuid) {
        self.ops
            .push(json!({"op": "delete", "table": table, "where": by_uuid(uuid)}));
    }

    /// Aborts the transaction unless row `uuid` of `table` still has these
    /// column values.
    pub fn wait_equal(&mut self, table: &str, uuid: Uuid, columns: &[(&str, Datum)]) {
        let names: Vec<&str> = columns.iter().map(|(c, _)| *c).collect();
        self.ops.push(json!({
            "op": "wait", "table": table, "where": by_uuid(uuid), "timeout": 0,
            "columns": names, "until": "==", "rows": [row_json(columns)]
        }));
    }

    /// Adds a comment, which ovsdb-server logs.
    pub fn comment(&mut self, text: &str) {
        self.ops.push(json!({"op": "comment", "comment": text}));
    }

    /// The `transact` parameters.
    pub fn params(&self) -> Value {
        self.clone().into_params()
    }

    /// The `transact` parameters, without copying the operations.
    pub fn into_params(self) -> Value {
        let mut p = Vec::with_capacity(self.ops.len() + 1);
        p.push(json!(self.database));
        p.extend(self.ops);
        Value::Array(p)
    }
}

/// Checks a `transact` reply: every operation succeeded. Returns the
/// reasons otherwise (the first failing operation, and any commit error).
pub fn check_result(result: &Value) -> Result<(), String> {
    let results = result
        .as_array()
        .ok_or_else(|| format!("transaction result {result} is not an array"))?;
    let errors: Vec<String> = results
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let e = r.get("error")?.as_str()?;
            let details = r.get("details").and_then(Value::as_str).unwrap_or("");
            Some(format!(
                "operation {i}: {e}{}{details}",
                if details.is_empty() { "" } else { ": " }
            ))
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// The index of the first failed operation in a `transact` reply, if one
/// failed (a commit failure is reported after the last operation).
pub fn failed_op(result: &Value) -> Option<usize> {
    result
        .as_array()?
        .iter()
        .position(|r| r.get("error").is_some_and(|e| !e.is_null()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ovsdb::datum::Atom;

    #[test]
    fn builds_rfc7047_operations() {
        let u: Uuid = "36c3d7a4-49a7-4c2c-a7e8-8e1fbbc3b5e0".parse().unwrap();
        let mut t = Txn::new("Open_vSwitch");
        t.insert("Interface", "iface", &[("name", Datum::string("vif1"))]);
        t.insert(
            "Port",
            "port",
            &[("interfaces", Datum::scalar(Atom::NamedUuid("iface".into())))],
        );
        t.mutate(
            "Bridge",
            u,
            &[(
                "ports",
                "insert",
                Datum::set([Atom::NamedUuid("port".into())]),
            )],
        );
        t.delete("Port", u);
        let p = t.params();
        assert_eq!(p[0], "Open_vSwitch");
        assert_eq!(p[2]["row"]["interfaces"], json!(["named-uuid", "iface"]));
        assert_eq!(
            p[3]["mutations"],
            json!([["ports", "insert", ["named-uuid", "port"]]])
        );
        assert_eq!(
            p[4]["where"],
            json!([[
                "_uuid",
                "==",
                ["uuid", "36c3d7a4-49a7-4c2c-a7e8-8e1fbbc3b5e0"]
            ]])
        );
    }

    #[test]
    fn results_report_the_failing_operation() {
        assert!(check_result(&json!([{}, {"uuid": ["uuid", "x"]}])).is_ok());
        let e = check_result(&json!([{}, {"error": "constraint violation", "details": "dup"}]))
            .unwrap_err();
        assert_eq!(e, "operation 1: constraint violation: dup");
        assert_eq!(failed_op(&json!([{}, {"error": "x"}])), Some(1));
        assert_eq!(failed_op(&json!([{}, {}])), None);
        assert!(check_result(&json!({})).is_err());
    }
}
