//! Building `transact` requests and reading their results (RFC 7047 §5.2).

use super::datum::{Datum, Uuid};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::Value;

/// A transaction under construction. Operations are kept as JSON text,
/// written as they are added: a transaction can hold tens of thousands of
/// operations, and building a `Value` tree for each only to serialise it
/// again was most of the cost of sending one.
#[derive(Debug, Clone)]
pub struct Txn {
    database: String,
    /// The operations, comma-separated.
    ops: Vec<u8>,
    len: usize,
}

/// `{"column": datum, ...}`.
struct Columns<'a>(&'a [(&'a str, Datum)]);

impl Serialize for Columns<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut m = serializer.serialize_map(Some(self.0.len()))?;
        for (c, d) in self.0 {
            m.serialize_entry(c, d)?;
        }
        m.end()
    }
}

/// `[["_uuid", "==", ["uuid", "..."]]]`.
struct ByUuid(Uuid);

impl Serialize for ByUuid {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let row = super::datum::Atom::Uuid(self.0);
        [("_uuid", "==", row)].serialize(serializer)
    }
}

/// One operation, serialised as `{"op": "<kind>", ...}`.
#[derive(Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Op<'a> {
    Insert {
        table: &'a str,
        #[serde(rename = "uuid-name")]
        uuid_name: &'a str,
        row: Columns<'a>,
    },
    Update {
        table: &'a str,
        #[serde(rename = "where")]
        where_: ByUuid,
        row: Columns<'a>,
    },
    Mutate {
        table: &'a str,
        #[serde(rename = "where")]
        where_: ByUuid,
        mutations: &'a [(&'a str, &'a str, Datum)],
    },
    Delete {
        table: &'a str,
        #[serde(rename = "where")]
        where_: ByUuid,
    },
    Wait {
        table: &'a str,
        #[serde(rename = "where")]
        where_: ByUuid,
        timeout: u32,
        columns: Vec<&'a str>,
        until: &'a str,
        rows: [Columns<'a>; 1],
    },
    Comment {
        comment: &'a str,
    },
    Assert {
        lock: &'a str,
    },
}

impl Txn {
    /// An empty transaction on `database`.
    pub fn new(database: &str) -> Txn {
        Txn {
            database: database.to_owned(),
            ops: Vec::new(),
            len: 0,
        }
    }

    /// True if it has no operation.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.len
    }

    fn push(&mut self, op: Op<'_>) {
        if self.len > 0 {
            self.ops.push(b',');
        }
        // Strings, integers and arrays written to memory cannot fail.
        serde_json::to_writer(&mut self.ops, &op).expect("serialising an operation to memory");
        self.len += 1;
    }

    /// Inserts a row, naming it `uuid_name` for references later in the
    /// same transaction (`Atom::NamedUuid`).
    pub fn insert(&mut self, table: &str, uuid_name: &str, columns: &[(&str, Datum)]) {
        self.push(Op::Insert {
            table,
            uuid_name,
            row: Columns(columns),
        });
    }

    /// Sets columns of one row.
    pub fn update(&mut self, table: &str, uuid: Uuid, columns: &[(&str, Datum)]) {
        self.push(Op::Update {
            table,
            where_: ByUuid(uuid),
            row: Columns(columns),
        });
    }

    /// Mutates columns of one row: `(column, mutator, value)` with mutators
    /// such as "insert" and "delete" for sets and maps.
    pub fn mutate(&mut self, table: &str, uuid: Uuid, mutations: &[(&str, &str, Datum)]) {
        self.push(Op::Mutate {
            table,
            where_: ByUuid(uuid),
            mutations,
        });
    }

    /// Deletes one row.
    pub fn delete(&mut self, table: &str, uuid: Uuid) {
        self.push(Op::Delete {
            table,
            where_: ByUuid(uuid),
        });
    }

    /// Aborts the transaction unless row `uuid` of `table` still has these
    /// column values.
    pub fn wait_equal(&mut self, table: &str, uuid: Uuid, columns: &[(&str, Datum)]) {
        self.push(Op::Wait {
            table,
            where_: ByUuid(uuid),
            timeout: 0,
            columns: columns.iter().map(|(c, _)| *c).collect(),
            until: "==",
            rows: [Columns(columns)],
        });
    }

    /// Fails the transaction with `not owner` unless this session holds
    /// `lock` (RFC 7047 §5.2.10).
    pub fn assert_lock(&mut self, lock: &str) {
        self.push(Op::Assert { lock });
    }

    /// Adds a comment, which ovsdb-server logs.
    pub fn comment(&mut self, text: &str) {
        self.push(Op::Comment { comment: text });
    }

    /// The `transact` parameters as JSON text: `[database, op, ...]`.
    pub fn params_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.ops.len() + self.database.len() + 8);
        out.push(b'[');
        serde_json::to_writer(&mut out, &self.database).expect("serialising a string to memory");
        if self.len > 0 {
            out.push(b',');
            out.extend_from_slice(&self.ops);
        }
        out.push(b']');
        out
    }

    /// The `transact` parameters as a `Value`.
    pub fn params(&self) -> Value {
        serde_json::from_slice(&self.params_json()).expect("a transaction is valid JSON")
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
    use serde_json::json;

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
    fn every_operation_has_its_exact_wire_text() {
        let u: Uuid = "36c3d7a4-49a7-4c2c-a7e8-8e1fbbc3b5e0".parse().unwrap();
        let w = r#"[["_uuid","==",["uuid","36c3d7a4-49a7-4c2c-a7e8-8e1fbbc3b5e0"]]]"#;
        let mut t = Txn::new("Open_vSwitch");
        assert_eq!(t.params_json(), br#"["Open_vSwitch"]"#);
        t.insert(
            "Interface",
            "i0",
            &[
                ("name", Datum::string("vif\"1")),
                ("options", Datum::str_map([("b", "2"), ("a", "1")])),
                ("mtu_request", Datum::scalar(Atom::Integer(1400))),
            ],
        );
        t.update("Interface", u, &[("type", Datum::set([]))]);
        t.mutate(
            "Bridge",
            u,
            &[("ports", "delete", Datum::set([Atom::Uuid(u)]))],
        );
        t.delete("Port", u);
        t.wait_equal("Bridge", u, &[("name", Datum::string("br0"))]);
        t.comment("why");
        t.assert_lock("vif-plug-host");
        let expected = [
            r#"["Open_vSwitch""#.to_owned(),
            r#"{"op":"insert","table":"Interface","uuid-name":"i0","row":{"name":"vif\"1","options":["map",[["a","1"],["b","2"]]],"mtu_request":1400}}"#.to_owned(),
            format!(r#"{{"op":"update","table":"Interface","where":{w},"row":{{"type":["set",[]]}}}}"#),
            format!(r#"{{"op":"mutate","table":"Bridge","where":{w},"mutations":[["ports","delete",["uuid","36c3d7a4-49a7-4c2c-a7e8-8e1fbbc3b5e0"]]]}}"#),
            format!(r#"{{"op":"delete","table":"Port","where":{w}}}"#),
            format!(r#"{{"op":"wait","table":"Bridge","where":{w},"timeout":0,"columns":["name"],"until":"==","rows":[{{"name":"br0"}}]}}"#),
            r#"{"op":"comment","comment":"why"}"#.to_owned(),
            r#"{"op":"assert","lock":"vif-plug-host"}]"#.to_owned(),
        ]
        .join(",");
        assert_eq!(String::from_utf8(t.params_json()).unwrap(), expected);
        assert_eq!(t.len(), 7);
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
