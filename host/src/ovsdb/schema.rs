//! The part of a database schema the client needs: how each column's
//! `update2` diffs apply, and the atom types its values must have.

use super::datum::{Atom, ColumnKind, Datum};
use serde_json::Value;
use std::collections::HashMap;

/// Column kinds by table and column.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// The database name.
    pub name: String,
    /// The schema version (`"20.27.0"`), if the server gave one.
    pub version: Option<String>,
    tables: HashMap<String, HashMap<String, ColumnType>>,
}

/// The type of an atom, as a schema names it (RFC 7047 section 3.2,
/// `<atomic-type>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtomType {
    /// `integer`.
    Integer,
    /// `real` (an integer is a real too, as JSON writes whole numbers).
    Real,
    /// `boolean`.
    Boolean,
    /// `string`.
    String,
    /// `uuid`.
    Uuid,
}

impl AtomType {
    fn parse(name: &str) -> Option<AtomType> {
        Some(match name {
            "integer" => AtomType::Integer,
            "real" => AtomType::Real,
            "boolean" => AtomType::Boolean,
            "string" => AtomType::String,
            "uuid" => AtomType::Uuid,
            _ => return None,
        })
    }

    fn admits(self, atom: &Atom) -> bool {
        matches!(
            (self, atom),
            (AtomType::Integer, Atom::Integer(_))
                | (AtomType::Real, Atom::Real(_) | Atom::Integer(_))
                | (AtomType::Boolean, Atom::Boolean(_))
                | (AtomType::String, Atom::String(_))
                | (AtomType::Uuid, Atom::Uuid(_) | Atom::NamedUuid(_))
        )
    }
}

/// One column's type: how diffs apply, and its key and value atom types
/// (`None`: a type this client does not know, not checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ColumnType {
    kind: ColumnKind,
    key: Option<AtomType>,
    value: Option<AtomType>,
}

impl ColumnType {
    /// Whether `datum` (a value, or an `update2` diff, which has the same
    /// shape) fits the column; why not, otherwise.
    fn check(&self, datum: &Datum) -> Result<(), String> {
        let bad_atom = |want: Option<AtomType>, a: &Atom| {
            want.filter(|t| !t.admits(a))
                .map(|t| format!("{a:?} where the schema says {t:?}"))
        };
        match datum {
            Datum::Map(pairs) => {
                if self.kind != ColumnKind::Map {
                    return Err("a map where the schema has no map".into());
                }
                for (k, v) in pairs {
                    if let Some(e) = bad_atom(self.key, k).or_else(|| bad_atom(self.value, v)) {
                        return Err(e);
                    }
                }
            }
            Datum::Set(atoms) => {
                match self.kind {
                    ColumnKind::Map if !atoms.is_empty() => {
                        return Err("a set where the schema has a map".into())
                    }
                    ColumnKind::Scalar if atoms.len() > 1 => {
                        return Err(format!(
                            "{} values where the schema allows one",
                            atoms.len()
                        ))
                    }
                    _ => {}
                }
                if let Some(e) = atoms.iter().find_map(|a| bad_atom(self.key, a)) {
                    return Err(e);
                }
            }
        }
        Ok(())
    }
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
                .map(|(c, spec)| (c.clone(), type_of(spec.get("type").unwrap_or(&Value::Null))))
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
        Some(self.tables.get(table)?.get(column)?.kind)
    }

    /// Checks that `datum`, a value or an `update2` diff of `table.column`,
    /// has the column's shape and atom types: a server (or anything posing
    /// as one) that sends an integer for a string column is refused with
    /// one error rather than read as something else. Columns the schema
    /// does not have are not checked.
    pub fn check(&self, table: &str, column: &str, datum: &Datum) -> Result<(), String> {
        match self.tables.get(table).and_then(|t| t.get(column)) {
            Some(t) => t.check(datum).map_err(|e| format!("{table}.{column}: {e}")),
            None => Ok(()),
        }
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

fn type_of(t: &Value) -> ColumnType {
    // `<base-type>`: a type name, or an object with one under "type".
    let atom = |b: Option<&Value>| {
        let b = b?;
        b.as_str()
            .or_else(|| b.get("type").and_then(Value::as_str))
            .and_then(AtomType::parse)
    };
    let Some(obj) = t.as_object() else {
        // A bare atomic type name: exactly one atom.
        return ColumnType {
            kind: ColumnKind::Scalar,
            key: atom(Some(t)),
            value: None,
        };
    };
    ColumnType {
        kind: kind_of(obj),
        key: atom(obj.get("key")),
        value: atom(obj.get("value")),
    }
}

fn kind_of(obj: &serde_json::Map<String, Value>) -> ColumnKind {
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
        let u = Atom::Uuid(super::super::Uuid(1));
        let str_ = |x: &str| Atom::String(x.into());
        // (column, datum, fits)
        let cases = [
            ("name", Datum::Set(vec![str_("a")]), true),
            ("name", Datum::Set(vec![]), true),
            ("name", Datum::Set(vec![Atom::Integer(7)]), false),
            ("name", Datum::Set(vec![str_("a"), str_("b")]), false),
            ("name", Datum::Map(vec![(str_("a"), str_("b"))]), false),
            ("ref", Datum::Set(vec![u.clone()]), true),
            ("ref", Datum::Set(vec![str_("x")]), false),
            ("refs", Datum::Set(vec![u.clone(), u.clone()]), true),
            ("opts", Datum::Map(vec![(str_("a"), str_("b"))]), true),
            (
                "opts",
                Datum::Map(vec![(str_("a"), Atom::Integer(1))]),
                false,
            ),
            ("opts", Datum::Set(vec![]), true),
            ("opts", Datum::Set(vec![str_("a")]), false),
            ("n", Datum::Set(vec![Atom::Integer(1)]), true),
            ("n", Datum::Set(vec![Atom::Boolean(true)]), false),
            ("nope", Datum::Set(vec![Atom::Boolean(true)]), true),
        ];
        for (column, datum, fits) in cases {
            assert_eq!(
                s.check("T", column, &datum).is_ok(),
                fits,
                "{column} {datum:?}"
            );
        }
        assert!(!s.has("T", &["name", "nope"]));
    }
}
