//! The client's copy of the monitored rows, kept current by applying the
//! `update2` (and, for servers without `monitor_cond`, `update`) messages.

use super::datum::{ColumnKind, Datum, Uuid};
use super::schema::Schema;
use super::wire::{read_updates, read_updates2, UpdateSink};
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

/// The replica as [`wire`](super::wire) delivers an update into it, with
/// the changes it made.
struct Sink<'r> {
    tables: &'r mut HashMap<String, HashMap<Uuid, Row>>,
    names: &'r mut Names,
    schema: Option<&'r Schema>,
    changes: &'r mut Vec<RowChange>,
}

impl Sink<'_> {
    fn table(&mut self, table: &str) -> &mut HashMap<Uuid, Row> {
        if !self.tables.contains_key(table) {
            self.tables.insert(table.to_owned(), HashMap::new());
        }
        self.tables.get_mut(table).expect("inserted above")
    }
}

impl Sink<'_> {
    /// Checks values against the schema (see [`Schema::check`]).
    fn check(&self, table: &str, cols: &[(Arc<str>, Datum)]) -> Result<(), String> {
        let Some(schema) = self.schema else {
            return Ok(());
        };
        cols.iter()
            .try_for_each(|(column, datum)| schema.check(table, column, datum))
    }
}

impl UpdateSink for Sink<'_> {
    fn column_name(&mut self, name: &str) -> Arc<str> {
        self.names.get(name)
    }

    fn put(&mut self, table: &str, uuid: Uuid, cols: Vec<(Arc<str>, Datum)>) -> Result<(), String> {
        self.check(table, &cols)?;
        let change = put(self.table(table), table, uuid, Row { cols });
        self.changes.push(change);
        Ok(())
    }

    fn modify(
        &mut self,
        table: &str,
        uuid: Uuid,
        diffs: Vec<(Arc<str>, Datum)>,
    ) -> Result<(), String> {
        self.check(table, &diffs)?;
        let schema = self.schema;
        let row = self
            .table(table)
            .get_mut(&uuid)
            .ok_or_else(|| format!("modify of unknown {table} row {uuid}"))?;
        let old = row.clone();
        for (column, diff) in diffs {
            let kind = schema
                .and_then(|s| s.kind(table, &column))
                .unwrap_or(ColumnKind::Scalar);
            row.entry(column.clone())
                .apply_diff(kind, diff)
                .map_err(|e| format!("{table}.{column}: {e}"))?;
        }
        self.changes.push(RowChange {
            table: table.to_owned(),
            uuid,
            kind: ChangeKind::Modify,
            old: Some(old),
        });
        Ok(())
    }

    fn delete(&mut self, table: &str, uuid: Uuid) -> Result<(), String> {
        let change = remove(self.table(table), table, uuid);
        self.changes.extend(change);
        Ok(())
    }
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
    /// `monitor_cond`), given as JSON text: "initial"/"insert" rows,
    /// "modify" diffs and "delete"s, read straight into rows (see
    /// [`super::wire`]). On an error the replica may hold part of the
    /// update: the caller starts afresh.
    pub fn apply_update2(
        &mut self,
        schema: &Schema,
        updates: &str,
    ) -> Result<Vec<RowChange>, String> {
        let mut changes = Vec::new();
        read_updates2(updates, &mut self.sink(Some(schema), &mut changes))?;
        Ok(changes)
    }

    /// Applies `<table-updates>` (plain `monitor`), given as JSON text:
    /// "new" is the whole row, its absence a deletion. Values are checked
    /// against `schema` if given.
    pub fn apply_update(
        &mut self,
        schema: Option<&Schema>,
        updates: &str,
    ) -> Result<Vec<RowChange>, String> {
        let mut changes = Vec::new();
        read_updates(updates, &mut self.sink(schema, &mut changes))?;
        Ok(changes)
    }

    fn sink<'r>(
        &'r mut self,
        schema: Option<&'r Schema>,
        changes: &'r mut Vec<RowChange>,
    ) -> Sink<'r> {
        Sink {
            tables: &mut self.tables,
            names: &mut self.names,
            schema,
            changes,
        }
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
                }}}})
                .to_string(),
            )
            .unwrap();
        assert_eq!(c[0].kind, ChangeKind::Insert);
        let uuid: Uuid = U.parse().unwrap();
        let c = r
            .apply_update2(
                &s,
                &json!({"Interface": {U: {"modify": {
                    "options": ["map", [["a", "1"], ["b", "2"]]], "mtu_request": 1400
                }}}})
                .to_string(),
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
            &json!({"Interface": {U: {"modify": {"mtu_request": 1300}}}}).to_string(),
        )
        .unwrap();
        assert_eq!(
            col(r.get("Interface", &uuid).unwrap(), "mtu_request").as_int(),
            Some(1300)
        );
        r.apply_update2(
            &s,
            &json!({"Interface": {U: {"modify": {"mtu_request": ["set", []]}}}}).to_string(),
        )
        .unwrap();
        assert_eq!(
            col(r.get("Interface", &uuid).unwrap(), "mtu_request").as_int(),
            None
        );
        let c = r
            .apply_update2(&s, &json!({"Interface": {U: {"delete": null}}}).to_string())
            .unwrap();
        assert_eq!(c[0].kind, ChangeKind::Delete);
        assert_eq!(r.len("Interface"), 0);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let s = schema();
        let mut r = Replica::default();
        for bad in [
            json!([1]),
            json!({"Interface": {"x": {"insert": {}}}}),
            json!({"Interface": {U: {"modify": {"name": "x"}}}}),
            json!({"Interface": {U: {"bogus": {}}}}),
        ] {
            assert!(r.apply_update2(&s, &bad.to_string()).is_err(), "{bad}");
        }
    }

    /// Found by trying to break it: such values were applied before.
    #[test]
    fn values_of_the_wrong_type_are_refused_with_the_column_named() {
        let s = schema();
        for (bad, column) in [
            (
                json!({"Interface": {U: {"insert": {"name": 7}}}}),
                "Interface.name",
            ),
            (
                json!({"Interface": {U: {"insert": {"options": ["set", ["a"]]}}}}),
                "Interface.options",
            ),
            (
                json!({"Interface": {U: {"insert": {"options": ["map", [["a", 1]]]}}}}),
                "Interface.options",
            ),
            (
                json!({"Interface": {U: {"insert": {"mtu_request": "1400"}}}}),
                "Interface.mtu_request",
            ),
        ] {
            let mut r = Replica::default();
            let e = r.apply_update2(&s, &bad.to_string()).unwrap_err();
            assert!(e.contains(column), "{bad}: {e}");
            let e = Replica::default()
                .apply_update(
                    Some(&s),
                    &json!({"Interface": {U: {"new": bad["Interface"][U]["insert"]}}}).to_string(),
                )
                .unwrap_err();
            assert!(e.contains(column), "{bad}: {e}");
        }
        let mut r = Replica::default();
        r.apply_update2(
            &s,
            &json!({"Interface": {U: {"insert": {"name": "a"}}}}).to_string(),
        )
        .unwrap();
        let e = r
            .apply_update2(
                &s,
                &json!({"Interface": {U: {"modify": {"mtu_request": true}}}}).to_string(),
            )
            .unwrap_err();
        assert!(e.contains("Interface.mtu_request"), "{e}");
    }

    #[test]
    fn plain_update_replaces_rows() {
        let mut r = Replica::default();
        r.apply_update(
            None,
            &json!({"Interface": {U: {"new": {"name": "a"}}}}).to_string(),
        )
        .unwrap();
        let c = r
            .apply_update(
                None,
                &json!({"Interface": {U: {"old": {"name": "a"}, "new": {"name": "b"}}}})
                    .to_string(),
            )
            .unwrap();
        assert_eq!(c[0].kind, ChangeKind::Modify);
        let c = r
            .apply_update(
                None,
                &json!({"Interface": {U: {"old": {"name": "b"}}}}).to_string(),
            )
            .unwrap();
        assert_eq!(c[0].kind, ChangeKind::Delete);
    }
}
