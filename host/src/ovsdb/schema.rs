//! The part of a database schema the client needs: how each column's
//! `update2` diffs apply.

use super::datum::ColumnKind;
use serde_json::Value;
use std::collections::HashMap;

/// Column kinds by table and column.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// The database name.
    pub name: String,
    /// The schema version (`"20.27.0"`), if the server gave one.
    pub version: Option<String>,
    tables: HashMap<String, HashMap<String, ColumnKind>>,
}

impl Schema {
    /// Parses a `get_schema` result.
    pub fn from_json(v: &Value) -> Result<Schema, String> {
        let name = v
            .get("name")
            .and_then(Value::as_str)
            .ok_or("schema has no name")?
            .to_owned();
        let tables = v
            .get("tables")
            .and_then(Value::as_object)
            .ok_or("schema has no tables")?;
        let mut out = HashMap::new();
        for (table, t) in tables {
            let columns = t
                .get("columns")
                .and_then(Value::as_object)
                .ok_or_else(|| format!("table {table} has no columns"))?;
            let kinds = columns
                .iter()
                .map(|(c, spec)| (c.clone(), kind_of(spec.get("type").unwrap_or(&Value::Null))))
                .collect();
            out.insert(table.clone(), kinds);
        }
        let version = v.get("version").and_then(Value::as_str).map(str::to_owned);
        Ok(Schema {
            name,
            version,
            tables: out,
        })
    }

    /// The kind of `table.column`, if the schema has it.
    pub fn kind(&self, table: &str, column: &str) -> Option<ColumnKind> {
        self.tables.get(table)?.get(column).copied()
    }

    /// Which of `required` the schema lacks.
    pub fn missing<'a>(&self, required: &'a [Required]) -> Vec<&'a Required> {
        required
            .iter()
            .filter(|r| self.kind(r.table, r.column).is_none())
            .collect()
    }

    /// Whether the schema has `table` with every one of `columns`.
    pub fn has(&self, table: &str, columns: &[&str]) -> bool {
        self.tables
            .get(table)
            .is_some_and(|t| columns.iter().all(|c| t.contains_key(*c)))
    }
}

/// A column a client cannot work without, and the release that brought it,
/// for the message when a server lacks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Required {
    /// The table.
    pub table: &'static str,
    /// The column.
    pub column: &'static str,
    /// The release that has it, e.g. "OVN 21.12".
    pub since: &'static str,
}

fn kind_of(t: &Value) -> ColumnKind {
    let Some(obj) = t.as_object() else {
        // A bare atomic type name: exactly one atom.
        return ColumnKind::Scalar;
    };
    if obj.contains_key("value") {
        return ColumnKind::Map;
    }
    // ovsdb-server diffs only composite columns (max > 1) as sets; a column
    // of at most one value, optional or not, gets its new value.
    let max = match obj.get("max") {
        None => Some(1),
        Some(m) => m.as_u64(), // "unlimited" -> None
    };
    if max == Some(1) {
        ColumnKind::Scalar
    } else {
        ColumnKind::Set
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_follow_the_column_types() {
        let s = Schema::from_json(&json!({
            "name": "Test",
            "tables": {"T": {"columns": {
                "name": {"type": "string"},
                "ref": {"type": {"key": {"type": "uuid", "refTable": "T"}, "min": 0, "max": 1}},
                "refs": {"type": {"key": "uuid", "min": 0, "max": "unlimited"}},
                "opts": {"type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}},
                "n": {"type": {"key": "integer"}}
            }}}
        }))
        .unwrap();
        assert_eq!(s.kind("T", "name"), Some(ColumnKind::Scalar));
        assert_eq!(
            s.kind("T", "ref"),
            Some(ColumnKind::Scalar),
            "optional: replaced"
        );
        assert_eq!(s.kind("T", "refs"), Some(ColumnKind::Set));
        assert_eq!(s.kind("T", "opts"), Some(ColumnKind::Map));
        assert_eq!(s.kind("T", "n"), Some(ColumnKind::Scalar));
        assert_eq!(s.kind("T", "nope"), None);
        assert!(s.has("T", &["name", "opts"]));
        assert!(!s.has("T", &["name", "nope"]));
    }
}
