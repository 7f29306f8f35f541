//! Reading OVSDB's JSON forms (RFC 7047 §5.1, and the `update2` extension
//! of `monitor_cond`) straight into typed values, without a
//! `serde_json::Value` tree in between: atoms, data, rows, and the table
//! updates of `monitor` and `monitor_cond`.

use super::datum::{Atom, Datum, Uuid};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// An atom: a string, number or boolean, or `["uuid", U]` /
/// `["named-uuid", N]`.
impl<'de> Deserialize<'de> for Atom {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Atom, D::Error> {
        d.deserialize_any(AtomVisitor)
    }
}

struct AtomVisitor;

impl<'de> Visitor<'de> for AtomVisitor {
    type Value = Atom;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an OVSDB atom")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Atom, E> {
        Ok(Atom::String(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Atom, E> {
        Ok(Atom::String(s))
    }

    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Atom, E> {
        Ok(Atom::Integer(i))
    }

    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Atom, E> {
        i64::try_from(u)
            .map(Atom::Integer)
            .map_err(|_| E::custom(format!("integer {u} out of range")))
    }

    fn visit_f64<E: de::Error>(self, r: f64) -> Result<Atom, E> {
        Ok(Atom::Real(r))
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Atom, E> {
        Ok(Atom::Boolean(b))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Atom, A::Error> {
        let tag: String = seq
            .next_element()?
            .ok_or_else(|| de::Error::custom("empty array is not an atom"))?;
        let atom = tagged_atom(&tag, &mut seq)?;
        end(seq)?;
        Ok(atom)
    }
}

/// The atom after a `uuid` or `named-uuid` tag.
fn tagged_atom<'de, A: SeqAccess<'de>>(tag: &str, seq: &mut A) -> Result<Atom, A::Error> {
    let text: String = seq
        .next_element()?
        .ok_or_else(|| de::Error::custom(format!("[\"{tag}\"] lacks its value")))?;
    match tag {
        "uuid" => text
            .parse::<Uuid>()
            .map(Atom::Uuid)
            .map_err(de::Error::custom),
        "named-uuid" => Ok(Atom::NamedUuid(text)),
        other => Err(de::Error::custom(format!("unknown atom tag {other:?}"))),
    }
}

/// Fails unless the array has no more elements.
fn end<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    match seq.next_element::<IgnoredAny>()? {
        None => Ok(()),
        Some(_) => Err(de::Error::custom("too many elements")),
    }
}

/// A datum: an atom, `["set", [atoms]]` or `["map", [[k, v], ...]]`.
impl<'de> Deserialize<'de> for Datum {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Datum, D::Error> {
        d.deserialize_any(DatumVisitor)
    }
}

struct DatumVisitor;

impl<'de> Visitor<'de> for DatumVisitor {
    type Value = Datum;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an OVSDB datum")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Datum, E> {
        AtomVisitor.visit_str(s).map(Datum::scalar)
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Datum, E> {
        AtomVisitor.visit_string(s).map(Datum::scalar)
    }

    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Datum, E> {
        AtomVisitor.visit_i64(i).map(Datum::scalar)
    }

    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Datum, E> {
        AtomVisitor.visit_u64(u).map(Datum::scalar)
    }

    fn visit_f64<E: de::Error>(self, r: f64) -> Result<Datum, E> {
        AtomVisitor.visit_f64(r).map(Datum::scalar)
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Datum, E> {
        AtomVisitor.visit_bool(b).map(Datum::scalar)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Datum, A::Error> {
        let tag: String = seq
            .next_element()?
            .ok_or_else(|| de::Error::custom("empty array is not a datum"))?;
        let datum = match tag.as_str() {
            "set" => {
                let atoms: Vec<Atom> = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("[\"set\"] lacks its atoms"))?;
                Datum::set(atoms)
            }
            "map" => {
                let pairs: Vec<(Atom, Atom)> = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("[\"map\"] lacks its pairs"))?;
                Datum::map(pairs)
            }
            other => Datum::scalar(tagged_atom(other, &mut seq)?),
        };
        end(seq)?;
        Ok(datum)
    }
}

/// Where [`read_updates2`] and [`read_updates`] deliver rows, as they are
/// read: no tree of the whole update is ever built, so a monitor's initial
/// contents cost little more than the rows they leave behind.
pub trait UpdateSink {
    /// The shared name of a column (so rows do not each own a copy).
    fn column_name(&mut self, name: &str) -> Arc<str>;
    /// A row inserted (or part of the initial contents, or the whole new
    /// row of a plain `monitor`).
    fn put(&mut self, table: &str, uuid: Uuid, cols: Vec<(Arc<str>, Datum)>) -> Result<(), String>;
    /// An `update2` "modify": the columns are diffs.
    fn modify(
        &mut self,
        table: &str,
        uuid: Uuid,
        diffs: Vec<(Arc<str>, Datum)>,
    ) -> Result<(), String>;
    /// A row deleted.
    fn delete(&mut self, table: &str, uuid: Uuid) -> Result<(), String>;
}

/// Reads `<table-updates2>` (`monitor_cond`'s `update2`, RFC 7047 as
/// extended by OVSDB) from `text` into `sink`, row by row.
pub fn read_updates2(text: &str, sink: &mut dyn UpdateSink) -> Result<(), String> {
    read(text, sink, true)
}

/// Reads `<table-updates>` (plain `monitor`, RFC 7047 §4.1.6) from `text`
/// into `sink`: "new" is the whole row, its absence a deletion.
pub fn read_updates(text: &str, sink: &mut dyn UpdateSink) -> Result<(), String> {
    read(text, sink, false)
}

fn read(text: &str, sink: &mut dyn UpdateSink, v2: bool) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_str(text);
    de::DeserializeSeed::deserialize(Tables { sink, v2 }, &mut de)
        .and_then(|()| de.end())
        .map_err(|e| format!("table updates: {e}"))
}

/// A string key, borrowed from the text when it has no escapes.
fn key<'de, A: MapAccess<'de>>(m: &mut A) -> Result<Option<Cow<'de, str>>, A::Error> {
    struct K;
    impl<'de> de::DeserializeSeed<'de> for K {
        type Value = Cow<'de, str>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
            d.deserialize_str(K)
        }
    }
    impl<'de> Visitor<'de> for K {
        type Value = Cow<'de, str>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Cow<'de, str>, E> {
            Ok(Cow::Borrowed(s))
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Cow<'de, str>, E> {
            Ok(Cow::Owned(s.to_owned()))
        }
    }
    m.next_key_seed(K)
}

/// `{table: {uuid: change}}`.
struct Tables<'s> {
    sink: &'s mut dyn UpdateSink,
    v2: bool,
}

impl<'de> de::DeserializeSeed<'de> for Tables<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Tables<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("table updates (an object of tables)")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<(), A::Error> {
        while let Some(table) = key(&mut m)? {
            m.next_value_seed(Rows {
                sink: &mut *self.sink,
                v2: self.v2,
                table: &table,
            })?;
        }
        Ok(())
    }
}

/// `{uuid: change}` of one table.
struct Rows<'s, 't> {
    sink: &'s mut dyn UpdateSink,
    v2: bool,
    table: &'t str,
}

impl<'de> de::DeserializeSeed<'de> for Rows<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Rows<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "the row updates of table {} (an object)", self.table)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<(), A::Error> {
        while let Some(uuid) = key(&mut m)? {
            let uuid: Uuid = uuid.parse().map_err(de::Error::custom)?;
            m.next_value_seed(Change {
                sink: &mut *self.sink,
                v2: self.v2,
                table: self.table,
                uuid,
            })?;
        }
        Ok(())
    }
}

/// One row's change: `{"initial"|"insert"|"modify": row}` or
/// `{"delete": null}` (`update2`), or `{"old": row, "new": row}` (plain).
struct Change<'s, 't> {
    sink: &'s mut dyn UpdateSink,
    v2: bool,
    table: &'t str,
    uuid: Uuid,
}

impl<'de> de::DeserializeSeed<'de> for Change<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Change<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "the update of {} row {} (an object)",
            self.table, self.uuid
        )
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<(), A::Error> {
        let (table, uuid) = (self.table, self.uuid);
        let mut seen = false;
        let mut new = None;
        while let Some(op) = key(&mut m)? {
            let fail = |e: String| de::Error::custom(format!("{table} row {uuid}: {e}"));
            match (self.v2, &*op) {
                (true, _) if seen => return Err(fail("more than one operation".into())),
                (true, "initial" | "insert") => {
                    let cols = m.next_value_seed(Cols(&mut *self.sink))?;
                    self.sink.put(table, uuid, cols).map_err(fail)?;
                }
                (true, "modify") => {
                    let diffs = m.next_value_seed(Cols(&mut *self.sink))?;
                    self.sink.modify(table, uuid, diffs).map_err(fail)?;
                }
                (true, "delete") => {
                    m.next_value::<IgnoredAny>()?;
                    self.sink.delete(table, uuid).map_err(fail)?;
                }
                (true, other) => {
                    return Err(fail(format!("unknown update2 operation {other:?}")));
                }
                (false, "new") => new = Some(m.next_value_seed(Cols(&mut *self.sink))?),
                (false, _) => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
            seen = true;
        }
        if self.v2 {
            if !seen {
                return Err(de::Error::custom(format!(
                    "empty update of {table} row {uuid}"
                )));
            }
            return Ok(());
        }
        let done = match new {
            Some(cols) => self.sink.put(table, uuid, cols),
            None => self.sink.delete(table, uuid),
        };
        done.map_err(|e| de::Error::custom(format!("{table} row {uuid}: {e}")))
    }
}

/// A row's columns, read into the vector that becomes the row: names
/// shared through the sink, sorted by name.
struct Cols<'s>(&'s mut dyn UpdateSink);

impl<'de> de::DeserializeSeed<'de> for Cols<'_> {
    type Value = Vec<(Arc<str>, Datum)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Cols<'_> {
    type Value = Vec<(Arc<str>, Datum)>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a row (an object of columns)")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let mut cols = Vec::with_capacity(m.size_hint().unwrap_or(0));
        while let Some(name) = key(&mut m)? {
            let datum: Datum = m.next_value()?;
            cols.push((self.0.column_name(&name), datum));
        }
        cols.sort_by(|a, b| a.0.cmp(&b.0));
        // JSON allows a name twice in an object; a row does not.
        if let Some(w) = cols.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(de::Error::custom(format!("column {} given twice", w[0].0)));
        }
        cols.shrink_to_fit();
        Ok(cols)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: &str = "36c3d7a4-49a7-4c2c-a7e8-8e1fbbc3b5e0";

    #[test]
    fn atoms_and_data_read_as_from_json_reads_them() {
        let cases = [
            r#""x""#,
            "7",
            "-3",
            "1.5",
            "true",
            &format!(r#"["uuid", "{U}"]"#),
            r#"["named-uuid", "row1"]"#,
            r#"["set", []]"#,
            r#"["set", [3, 1, 2, 1]]"#,
            r#"["map", [["b", "2"], ["a", "1"]]]"#,
            &format!(r#"["set", [["uuid", "{U}"]]]"#),
        ];
        for text in cases {
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            let direct: Datum = serde_json::from_str(text).unwrap();
            assert_eq!(direct, Datum::from_json(&value).unwrap(), "{text}");
        }
    }

    #[test]
    fn malformed_forms_are_errors() {
        for text in [
            "[]",
            r#"["uuid"]"#,
            r#"["uuid", "not-a-uuid"]"#,
            r#"["bogus", 1]"#,
            r#"["set", [1], 2]"#,
            r#"["map", [["a"]]]"#,
            "null",
            "{}",
            "18446744073709551615",
        ] {
            assert!(serde_json::from_str::<Datum>(text).is_err(), "{text}");
        }
    }

    /// Records what it is given.
    #[derive(Default)]
    struct Log(Vec<String>);

    impl UpdateSink for Log {
        fn column_name(&mut self, name: &str) -> Arc<str> {
            name.into()
        }
        fn put(&mut self, t: &str, u: Uuid, cols: Vec<(Arc<str>, Datum)>) -> Result<(), String> {
            let names: Vec<&str> = cols.iter().map(|(c, _)| &**c).collect();
            self.0.push(format!("put {t} {u} {names:?}"));
            Ok(())
        }
        fn modify(&mut self, t: &str, u: Uuid, d: Vec<(Arc<str>, Datum)>) -> Result<(), String> {
            self.0.push(format!("modify {t} {u} {:?}", d[0].1));
            Ok(())
        }
        fn delete(&mut self, t: &str, u: Uuid) -> Result<(), String> {
            self.0.push(format!("delete {t} {u}"));
            Ok(())
        }
    }

    #[test]
    fn updates_are_delivered_row_by_row() {
        let text = format!(
            r#"{{"Interface": {{"{U}": {{"modify": {{"mtu_request": 1400}}}}}},
                "Port": {{"{U}": {{"delete": null}}}},
                "Bridge": {{"{U}": {{"initial": {{"name": "br0", "datapath_type": "netdev"}}}}}}}}"#
        );
        let mut log = Log::default();
        read_updates2(&text, &mut log).unwrap();
        assert_eq!(
            log.0,
            vec![
                format!("modify Interface {U} Set([Integer(1400)])"),
                format!("delete Port {U}"),
                format!("put Bridge {U} [\"datapath_type\", \"name\"]"),
            ]
        );
        let mut log = Log::default();
        read_updates(
            &format!(r#"{{"Port": {{"{U}": {{"old": {{"name": "a"}}}}, "{U}": {{"new": {{"name": "b"}}}}}}}}"#),
            &mut log,
        )
        .unwrap();
        assert_eq!(
            log.0,
            vec![
                format!("delete Port {U}"),
                format!("put Port {U} [\"name\"]")
            ]
        );
        for bad in [
            "[1]".to_owned(),
            format!(r#"{{"Port": {{"{U}": {{"bogus": {{}}}}}}}}"#),
            format!(r#"{{"Port": {{"{U}": {{}}}}}}"#),
            format!(r#"{{"Port": {{"{U}": {{"insert": {{}}, "delete": null}}}}}}"#),
            r#"{"Port": {"not-a-uuid": {"delete": null}}}"#.to_owned(),
            format!(r#"{{"Port": {{"{U}": {{"insert": {{"name": ["bogus", 1]}}}}}}}}"#),
            r#"{"Port": {}} trailing"#.to_owned(),
            // Found by trying to break it: applied twice before.
            format!(r#"{{"Port": {{"{U}": {{"modify": {{"tag": 1, "tag": 1}}}}}}}}"#),
        ] {
            assert!(read_updates2(&bad, &mut Log::default()).is_err(), "{bad}");
        }
    }
}
