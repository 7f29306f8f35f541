//! The client's copy of the monitored rows, kept current by applying the
//! `update2` (and, for servers without `monitor_cond`, `update`) messages.

use super::datum::{ColumnKind, Datum, Uuid};
use super::schema::Schema;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A row: the monitored columns that differ from their default, sorted by
/// column name. A missing column reads as its default (empty set or map).
///
/// Column names are shared by every row of a replica (see [`Names`]), and
/// the columns sit in one small vector: an agent holding 5,000 ports holds
/// some 15,000 rows, where a hash map and a name string per column cost
/// more than the values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    cols: Vec<(Arc<str>, Datum)>,
}

impl Row {
    /// Column `column`, if set.
    pub fn get(&self, column: &str) -> Option<&Datum> {
        self.find(column).ok().map(|i| &self.cols[i].1)
    }

    /// The columns set, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Datum)> {
        self.cols.iter().map(|(c, d)| (&**c, d))
    }

    /// Column `column`, added with its default if not set.
    fn entry(&mut self, column: Arc<str>) -> &mut Datum {
        let i = match self.find(&column) {
            Ok(i) => i,
            Err(i) => {
                self.cols.insert(i, (column, Datum::default()));
                i
            }
        };
        &mut self.cols[i].1
    }

    fn find(&self, column: &str) -> Result<usize, usize> {
        self.cols.binary_search_by(|(c, _)| (**c).cmp(column))
    }
}

/// The column names of a replica, each stored once.
#[derive(Debug, Default)]
struct Names(HashSet<Arc<str>>);

impl Names {
    fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(n) = self.0.get(name) {
            return n.clone();
        }
        let n: Arc<str> = name.into();
        self.0.insert(n.clone());
        n
    }
}

static EMPTY: Datum = Datum::Set(Vec::new());

/// A column of a row, or the empty default.
pub fn col<'a>(row: &'a Row, column: &str) -> &'a Datum {
    row.get(column).unwrap_or(&EMPTY)
}

/// What happened to one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    /// Inserted (or part of the initial contents).
    Insert,
    /// Modified.
    Modify,
    /// Deleted.
    Delete,
}

/// One row change, with the row as it was before, so that the owner can tell
/// what the change affects.
#[derive(Debug, Clone)]
pub struct RowChange {
    /// Table.
    pub table: String,
    /// Row.
    pub uuid: Uuid,
    /// Kind.
    pub kind: ChangeKind,
    /// The row before the change (`None` for an insert).
    pub old: Option<Row>,
}

/// Monitored tables, by name.
#[derive(Debug, Default)]
pub struct Replica {
    tables: HashMap<String, HashMap<Uuid, Row>>,
    names: Names,
}

/// The columns of a row's JSON form, parsed, sorted by name.
fn parse_columns(names: &mut Names, v: &Value) -> Result<Vec<(Arc<str>, Datum)>, String> {
    let obj = v.as_object().ok_or_else(|| format!("{v} is not a row"))?;
    let mut cols = obj
        .iter()
        .map(|(c, d)| Ok((names.get(c), Datum::from_json(d)?)))
        .collect::<Result<Vec<_>, String>>()?;
    cols.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(cols)
}

fn parse_row(names: &mut Names, v: &Value) -> Result<Row, String> {
    Ok(Row {
        cols: parse_columns(names, v)?,
    })
}

/// Stores a whole row; an insert, or a modify if it was there.
fn put(t: &mut HashMap<Uuid, Row>, table: &str, uuid: Uuid, row: Row) -> RowChange {
    let old = t.insert(uuid, row);
    RowChange {
        table: table.to_owned(),
        uuid,
        kind: if old.is_some() {
            ChangeKind::Modify
        } else {
            ChangeKind::Insert
        },
        old,
    }
}

/// Removes a row; nothing to report if it was not there.
fn remove(t: &mut HashMap<Uuid, Row>, table: &str, uuid: Uuid) -> Option<RowChange> {
    t.remove(&uuid).map(|old| RowChange {
        table: table.to_owned(),
        uuid,
        kind: ChangeKind::Delete,
        old: Some(old),
    })
}

fn table_updates(
    updates: &Value,
) -> Result<impl Iterator<Item = (&String, &serde_json::Map<String, Value>)>, String> {
    let tables = updates
        .as_object()
        .ok_or_else(|| format!("table updates {updates} is not an object"))?;
    tables
        .iter()
        .map(|(t, rows)| {
            rows.as_object()
                .map(|r| (t, r))
                .ok_or_else(|| format!("updates of table {t} are not an object"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Vec::into_iter)
}

impl Replica {
    /// The rows of `table`.
    pub fn rows(&self, table: &str) -> impl Iterator<Item = (&Uuid, &Row)> {
        self.tables.get(table).into_iter().flatten()
    }

    /// One row.
    pub fn get(&self, table: &str, uuid: &Uuid) -> Option<&Row> {
        self.tables.get(table)?.get(uuid)
    }

    /// Number of rows in `table`.
    pub fn len(&self, table: &str) -> usize {
        self.tables.get(table).map_or(0, HashMap::len)
    }

    /// Forgets every row (the connection was lost; a fresh monitor will
    /// deliver the contents again). Returns the deletions.
    pub fn clear(&mut self) -> Vec<RowChange> {
        let mut out = Vec::new();
        for (table, rows) in self.tables.drain() {
            for (uuid, row) in rows {
                out.push(RowChange {
                    table: table.clone(),
                    uuid,
                    kind: ChangeKind::Delete,
                    old: Some(row),
                });
            }
        }
        out
    }

    /// Applies `<table-updates2>` (RFC 7047 extension used by
    /// `monitor_cond`): "initial"/"insert" rows, "modify" diffs and
    /// "delete"s.
    pub fn apply_update2(
        &mut self,
        schema: &Schema,
        updates: &Value,
    ) -> Result<Vec<RowChange>, String> {
        let mut changes = Vec::new();
        for (table, rows) in table_updates(updates)? {
            let t = self.tables.entry(table.clone()).or_default();
            for (uuid, update) in rows {
                let uuid: Uuid = uuid.parse()?;
                let update = update
                    .as_object()
                    .ok_or_else(|| format!("update of {table} {uuid} is not an object"))?;
                let (op, body) = update
                    .iter()
                    .next()
                    .ok_or_else(|| format!("empty update of {table} {uuid}"))?;
                match op.as_str() {
                    "initial" | "insert" => {
                        changes.push(put(t, table, uuid, parse_row(&mut self.names, body)?))
                    }
                    "modify" => {
                        let row = t
                            .get_mut(&uuid)
                            .ok_or_else(|| format!("modify of unknown {table} row {uuid}"))?;
                        let old = row.clone();
                        for (column, diff) in parse_columns(&mut self.names, body)? {
                            let kind = schema.kind(table, &column).unwrap_or(ColumnKind::Scalar);
                            let cur = row.entry(column.clone());
                            cur.apply_diff(kind, diff)
                                .map_err(|e| format!("{table}.{column}: {e}"))?;
                        }
                        changes.push(RowChange {
                            table: table.clone(),
                            uuid,
                            kind: ChangeKind::Modify,
                            old: Some(old),
                        });
                    }
                    "delete" => changes.extend(remove(t, table, uuid)),
                    other => return Err(format!("unknown update2 operation {other:?}")),
                }
            }
        }
        Ok(changes)
    }

    /// Applies `<table-updates>` (plain `monitor`): "new" is the whole row,
    /// its absence a deletion.
    pub fn apply_update(&mut self, updates: &Value) -> Result<Vec<RowChange>, String> {
        let mut changes = Vec::new();
        for (table, rows) in table_updates(updates)? {
            let t = self.tables.entry(table.clone()).or_default();
            for (uuid, update) in rows {
                let uuid: Uuid = uuid.parse()?;
                match update.get("new") {
                    Some(new) => {
                        changes.push(put(t, table, uuid, parse_row(&mut self.names, new)?))
                    }
                    None => changes.extend(remove(t, table, uuid)),
                }
            }
        }
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Schema {
        Schema::from_json(&json!({"name": "T", "tables": {"Interface": {"columns": {
            "name": {"type": "string"},
            "options": {"type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}},
            "mtu_request": {"type": {"key": "integer", "min": 0, "max": 1}}
        }}}}))
        .unwrap()
    }

    const U: &str = "36c3d7a4-49a7-4c2c-a7e8-8e1fbbc3b5e0";

    #[test]
    fn initial_modify_delete() {
        let s = schema();
        let mut r = Replica::default();
        let c = r
            .apply_update2(
                &s,
                &json!({"Interface": {U: {"initial": {
                    "name": "vif1", "options": ["map", [["a", "1"]]]
                }}}}),
            )
            .unwrap();
        assert_eq!(c[0].kind, ChangeKind::Insert);
        let uuid: Uuid = U.parse().unwrap();
        let c = r
            .apply_update2(
                &s,
                &json!({"Interface": {U: {"modify": {
                    "options": ["map", [["a", "1"], ["b", "2"]]], "mtu_request": 1400
                }}}}),
            )
            .unwrap();
        assert_eq!(c[0].kind, ChangeKind::Modify);
        assert_eq!(
            col(c[0].old.as_ref().unwrap(), "options").map_get("a"),
            Some("1")
        );
        let row = r.get("Interface", &uuid).unwrap();
        assert_eq!(col(row, "options").map_get("a"), None);
        assert_eq!(col(row, "options").map_get("b"), Some("2"));
        assert_eq!(col(row, "mtu_request").as_int(), Some(1400));
        // Optional column changed, then cleared: the diff is the new value.
        r.apply_update2(
            &s,
            &json!({"Interface": {U: {"modify": {"mtu_request": 1300}}}}),
        )
        .unwrap();
        assert_eq!(
            col(r.get("Interface", &uuid).unwrap(), "mtu_request").as_int(),
            Some(1300)
        );
        r.apply_update2(
            &s,
            &json!({"Interface": {U: {"modify": {"mtu_request": ["set", []]}}}}),
        )
        .unwrap();
        assert_eq!(
            col(r.get("Interface", &uuid).unwrap(), "mtu_request").as_int(),
            None
        );
        let c = r
            .apply_update2(&s, &json!({"Interface": {U: {"delete": null}}}))
            .unwrap();
        assert_eq!(c[0].kind, ChangeKind::Delete);
        assert_eq!(r.len("Interface"), 0);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let s = schema();
        let mut r = Replica::default();
        assert!(r.apply_update2(&s, &json!([1])).is_err());
        assert!(r
            .apply_update2(&s, &json!({"Interface": {"x": {"insert": {}}}}))
            .is_err());
        assert!(r
            .apply_update2(&s, &json!({"Interface": {U: {"modify": {"name": "x"}}}}))
            .is_err());
        assert!(r
            .apply_update2(&s, &json!({"Interface": {U: {"bogus": {}}}}))
            .is_err());
    }

    #[test]
    fn plain_update_replaces_rows() {
        let mut r = Replica::default();
        r.apply_update(&json!({"Interface": {U: {"new": {"name": "a"}}}}))
            .unwrap();
        let c = r
            .apply_update(&json!({"Interface": {U: {"old": {"name": "a"}, "new": {"name": "b"}}}}))
            .unwrap();
        assert_eq!(c[0].kind, ChangeKind::Modify);
        let c = r
            .apply_update(&json!({"Interface": {U: {"old": {"name": "b"}}}}))
            .unwrap();
        assert_eq!(c[0].kind, ChangeKind::Delete);
    }
}
