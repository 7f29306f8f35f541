//! OVSDB values (RFC 7047 §5.1): atoms, and datums (sets and maps of atoms),
//! with their JSON wire forms.

use serde::ser::{Serialize, SerializeSeq, Serializer};
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

/// A row UUID, kept as 128 bits: cheap to hash and compare.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uuid(pub u128);

impl FromStr for Uuid {
    type Err = String;
    /// Parses the 8-4-4-4-12 hex form. Every row of every update carries
    /// one, so this allocates nothing.
    fn from_str(s: &str) -> Result<Self, String> {
        let b = s.as_bytes();
        let bad = || format!("{s:?} is not a UUID");
        if b.len() != 36 {
            return Err(bad());
        }
        let mut v: u128 = 0;
        for (i, &c) in b.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if c != b'-' {
                    return Err(bad());
                }
                continue;
            }
            let d = (c as char).to_digit(16).ok_or_else(bad)?;
            v = (v << 4) | u128::from(d);
        }
        Ok(Uuid(v))
    }
}

impl Uuid {
    /// The 36-byte text form, without allocating.
    fn to_bytes(self) -> [u8; 36] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'-'; 36];
        let mut nibble = 0;
        for (i, o) in out.iter_mut().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                continue;
            }
            *o = HEX[((self.0 >> (124 - 4 * nibble)) & 0xf) as usize];
            nibble += 1;
        }
        out
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.to_bytes();
        // Only ASCII hex digits and dashes were written.
        f.write_str(std::str::from_utf8(&bytes).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One OVSDB atom.
#[derive(Debug, Clone, PartialEq)]
pub enum Atom {
    /// `integer`.
    Integer(i64),
    /// `real`.
    Real(f64),
    /// `boolean`.
    Boolean(bool),
    /// `string`.
    String(String),
    /// `uuid`: a reference to a row.
    Uuid(Uuid),
    /// `["named-uuid", name]`: a row inserted earlier in the same transaction.
    NamedUuid(String),
}

impl Eq for Atom {}

impl PartialOrd for Atom {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Atom {
    /// A total order, so atoms can key sets and maps (reals by total_cmp).
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        use Atom::*;
        let rank = |a: &Atom| match a {
            Integer(_) => 0,
            Real(_) => 1,
            Boolean(_) => 2,
            String(_) => 3,
            Uuid(_) => 4,
            NamedUuid(_) => 5,
        };
        match (self, other) {
            (Integer(a), Integer(b)) => a.cmp(b),
            (Real(a), Real(b)) => a.total_cmp(b),
            (Boolean(a), Boolean(b)) => a.cmp(b),
            (String(a), String(b)) => a.cmp(b),
            (Uuid(a), Uuid(b)) => a.cmp(b),
            (NamedUuid(a), NamedUuid(b)) => a.cmp(b),
            _ => rank(self).cmp(&rank(other)),
        }
    }
}

impl Atom {
    /// Parses the JSON form of an atom.
    pub fn from_json(v: &Value) -> Result<Atom, String> {
        match v {
            Value::String(s) => Ok(Atom::String(s.clone())),
            Value::Bool(b) => Ok(Atom::Boolean(*b)),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Ok(Atom::Integer(i)),
                None => n
                    .as_f64()
                    .map(Atom::Real)
                    .ok_or_else(|| format!("bad number {n}")),
            },
            Value::Array(a) if a.len() == 2 => match (a[0].as_str(), a[1].as_str()) {
                (Some("uuid"), Some(u)) => u.parse().map(Atom::Uuid),
                (Some("named-uuid"), Some(n)) => Ok(Atom::NamedUuid(n.to_owned())),
                _ => Err(format!("{v} is not an atom")),
            },
            _ => Err(format!("{v} is not an atom")),
        }
    }

    /// The string, if this is a string atom.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Atom::String(s) => Some(s),
            _ => None,
        }
    }

    /// The UUID, if this is a UUID atom.
    pub fn as_uuid(&self) -> Option<Uuid> {
        match self {
            Atom::Uuid(u) => Some(*u),
            _ => None,
        }
    }
}

/// A column value: a set of atoms, or a map from atoms to atoms. A scalar
/// column is a set of exactly one atom; an optional one, of zero or one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datum {
    /// A set (sorted, no duplicates).
    Set(Vec<Atom>),
    /// A map: pairs sorted by key, keys unique. A sorted vector rather
    /// than a `BTreeMap`, whose every node reserves room for eleven pairs:
    /// the maps here hold a handful, and thousands of rows hold a few each.
    Map(Vec<(Atom, Atom)>),
}

impl Default for Datum {
    fn default() -> Self {
        Datum::Set(Vec::new())
    }
}

impl Datum {
    /// A one-atom set.
    pub fn scalar(a: Atom) -> Datum {
        Datum::Set(vec![a])
    }

    /// A string scalar.
    pub fn string(s: impl Into<String>) -> Datum {
        Datum::scalar(Atom::String(s.into()))
    }

    /// A set of atoms.
    pub fn set(atoms: impl IntoIterator<Item = Atom>) -> Datum {
        let mut v: Vec<Atom> = atoms.into_iter().collect();
        v.sort();
        v.dedup();
        Datum::Set(v)
    }

    /// A string-to-string map.
    pub fn str_map<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Datum {
        Datum::map(
            pairs
                .into_iter()
                .map(|(k, v)| (Atom::String(k.to_owned()), Atom::String(v.to_owned()))),
        )
    }

    /// A map of `pairs`; of pairs with equal keys, the last counts.
    pub fn map(pairs: impl IntoIterator<Item = (Atom, Atom)>) -> Datum {
        let mut v: Vec<(Atom, Atom)> = pairs.into_iter().collect();
        // Stable: equal keys stay in input order, and the last one's value
        // is kept.
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.dedup_by(|next, kept| {
            let same = next.0 == kept.0;
            if same {
                std::mem::swap(&mut next.1, &mut kept.1);
            }
            same
        });
        v.shrink_to_fit();
        Datum::Map(v)
    }

    /// Parses the JSON form: an atom, `["set", [...]]` or `["map", [[k, v], ...]]`.
    pub fn from_json(v: &Value) -> Result<Datum, String> {
        if let Value::Array(a) = v {
            if a.len() == 2 {
                match (a[0].as_str(), &a[1]) {
                    (Some("set"), Value::Array(items)) => {
                        return items
                            .iter()
                            .map(Atom::from_json)
                            .collect::<Result<Vec<_>, _>>()
                            .map(Datum::set);
                    }
                    (Some("map"), Value::Array(pairs)) => {
                        let mut m = Vec::with_capacity(pairs.len());
                        for p in pairs {
                            match p {
                                Value::Array(kv) if kv.len() == 2 => {
                                    m.push((Atom::from_json(&kv[0])?, Atom::from_json(&kv[1])?));
                                }
                                _ => return Err(format!("{p} is not a map pair")),
                            }
                        }
                        return Ok(Datum::map(m));
                    }
                    _ => {}
                }
            }
        }
        Atom::from_json(v).map(Datum::scalar)
    }

    /// The atoms of a set (empty for a map).
    pub fn atoms(&self) -> &[Atom] {
        match self {
            Datum::Set(v) => v,
            Datum::Map(_) => &[],
        }
    }

    /// The single string of a scalar or optional string column.
    pub fn as_str(&self) -> Option<&str> {
        self.atoms().first().and_then(Atom::as_str)
    }

    /// The single UUID of a scalar or optional reference column.
    pub fn as_uuid(&self) -> Option<Uuid> {
        self.atoms().first().and_then(Atom::as_uuid)
    }

    /// The single integer of a scalar or optional integer column.
    pub fn as_int(&self) -> Option<i64> {
        match self.atoms().first() {
            Some(Atom::Integer(i)) => Some(*i),
            _ => None,
        }
    }

    /// The single boolean of a scalar or optional boolean column.
    pub fn as_bool(&self) -> Option<bool> {
        match self.atoms().first() {
            Some(Atom::Boolean(b)) => Some(*b),
            _ => None,
        }
    }

    /// All UUIDs of a set of references.
    pub fn uuids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.atoms().iter().filter_map(Atom::as_uuid)
    }

    /// Looks a string key up in a string map.
    pub fn map_get(&self, key: &str) -> Option<&str> {
        match self {
            // Maps here hold a handful of pairs: a scan beats allocating a
            // key to look up.
            Datum::Map(m) => m
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .and_then(|(_, v)| v.as_str()),
            Datum::Set(_) => None,
        }
    }

    /// The string pairs of a string map, in key order.
    pub fn str_pairs(&self) -> Vec<(String, String)> {
        match self {
            Datum::Map(m) => m
                .iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.as_str()?.to_owned())))
                .collect(),
            Datum::Set(_) => Vec::new(),
        }
    }

    /// Applies an `update2` "modify" diff for a column of `kind`: a scalar
    /// takes the new value; a set toggles each atom in the diff; a map
    /// removes pairs present with the same value, and adds or replaces the
    /// others.
    pub fn apply_diff(&mut self, kind: ColumnKind, diff: Datum) -> Result<(), String> {
        match kind {
            ColumnKind::Scalar => {
                *self = diff;
                Ok(())
            }
            ColumnKind::Set => {
                let Datum::Set(cur) = self else {
                    return Err("set diff on a map".into());
                };
                for a in diff.atoms() {
                    match cur.binary_search(a) {
                        Ok(i) => {
                            cur.remove(i);
                        }
                        Err(i) => cur.insert(i, a.clone()),
                    }
                }
                Ok(())
            }
            ColumnKind::Map => {
                if let Datum::Set(v) = self {
                    if !v.is_empty() {
                        return Err("map diff on a set".into());
                    }
                    *self = Datum::Map(Vec::new());
                }
                let (Datum::Map(cur), Datum::Map(d)) = (self, diff) else {
                    return Err("map diff is not a map".into());
                };
                for (k, v) in d {
                    match cur.binary_search_by(|(ck, _)| ck.cmp(&k)) {
                        Ok(i) if cur[i].1 == v => {
                            cur.remove(i);
                        }
                        Ok(i) => cur[i].1 = v,
                        Err(i) => cur.insert(i, (k, v)),
                    }
                }
                Ok(())
            }
        }
    }
}

impl Serialize for Atom {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Atom::Integer(i) => serializer.serialize_i64(*i),
            Atom::Real(r) => serializer.serialize_f64(*r),
            Atom::Boolean(b) => serializer.serialize_bool(*b),
            Atom::String(s) => serializer.serialize_str(s),
            Atom::Uuid(u) => {
                let bytes = u.to_bytes();
                let text = std::str::from_utf8(&bytes).map_err(serde::ser::Error::custom)?;
                ("uuid", text).serialize(serializer)
            }
            Atom::NamedUuid(n) => ("named-uuid", n).serialize(serializer),
        }
    }
}

/// The `[k, v]` pairs of a map's wire form.
struct Pairs<'a>(&'a [(Atom, Atom)]);

impl Serialize for Pairs<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for (k, v) in self.0 {
            seq.serialize_element(&(k, v))?;
        }
        seq.end()
    }
}

/// The wire form, written without building a `Value` first; single-atom
/// sets are written as the bare atom.
impl Serialize for Datum {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Datum::Set(v) if v.len() == 1 => v[0].serialize(serializer),
            Datum::Set(v) => ("set", v).serialize(serializer),
            Datum::Map(m) => ("map", Pairs(m)).serialize(serializer),
        }
    }
}

/// How a column's `update2` diffs apply, from its schema type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// At most one atom (`max` = 1, optional or not): a diff is the new
    /// value, possibly empty.
    Scalar,
    /// A set that can hold several atoms (`max` > 1).
    Set,
    /// A map.
    Map,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_are_sorted_with_the_last_of_equal_keys() {
        let m = Datum::str_map([("b", "1"), ("a", "2"), ("b", "3")]);
        assert_eq!(
            m.str_pairs(),
            vec![("a".into(), "2".into()), ("b".into(), "3".into())]
        );
        let mut m = m;
        m.apply_diff(
            ColumnKind::Map,
            Datum::str_map([("a", "2"), ("b", "4"), ("c", "5")]),
        )
        .unwrap();
        // Same pair: removed; new value: replaced; new key: added, in order.
        assert_eq!(
            m.str_pairs(),
            vec![("b".into(), "4".into()), ("c".into(), "5".into())]
        );
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!(["map", [["b", "4"], ["c", "5"]]])
        );
    }

    #[test]
    fn uuids_round_trip() {
        let s = "36c3d7a4-49a7-4c2c-a7e8-8e1fbbc3b5e0";
        let u: Uuid = s.parse().unwrap();
        assert_eq!(u.to_string(), s);
        assert!("36c3d7a4".parse::<Uuid>().is_err());
        assert!("36c3d7a4-49a7-4c2c-a7e8-8e1fbbc3b5e0x"
            .parse::<Uuid>()
            .is_err());
        assert!("36c3d7a4-49a74c2c-a7e8-8e1fbbc3b5e0-"
            .parse::<Uuid>()
            .is_err());
        assert!("+6c3d7a4-49a7-4c2c-a7e8-8e1fbbc3b5e0"
            .parse::<Uuid>()
            .is_err());
        let upper: Uuid = s.to_uppercase().parse().unwrap();
        assert_eq!(upper, u);
        assert_eq!(Uuid(0).to_string(), "00000000-0000-0000-0000-000000000000");
        assert_eq!(
            Uuid(u128::MAX).to_string(),
            "ffffffff-ffff-ffff-ffff-ffffffffffff"
        );
        assert!("zzc3d7a4-49a7-4c2c-a7e8-8e1fbbc3b5e0"
            .parse::<Uuid>()
            .is_err());
    }

    #[test]
    fn datums_parse_and_print() {
        let set = json!(["set", [["uuid", "36c3d7a4-49a7-4c2c-a7e8-8e1fbbc3b5e0"]]]);
        let d = Datum::from_json(&set).unwrap();
        assert_eq!(
            d.as_uuid().unwrap().to_string(),
            "36c3d7a4-49a7-4c2c-a7e8-8e1fbbc3b5e0"
        );
        // One-atom sets are written bare.
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            json!(["uuid", "36c3d7a4-49a7-4c2c-a7e8-8e1fbbc3b5e0"])
        );
        assert_eq!(
            Datum::from_json(&json!(["set", []])).unwrap(),
            Datum::Set(vec![])
        );
        let m = Datum::from_json(&json!(["map", [["a", "1"], ["b", "2"]]])).unwrap();
        assert_eq!(m.map_get("b"), Some("2"));
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!(["map", [["a", "1"], ["b", "2"]]])
        );
        assert_eq!(Datum::from_json(&json!(1500)).unwrap().as_int(), Some(1500));
        assert_eq!(
            Datum::from_json(&json!(true)).unwrap().as_bool(),
            Some(true)
        );
        assert!(Datum::from_json(&json!({"x": 1})).is_err());
    }

    #[test]
    fn set_diffs_toggle_atoms() {
        let a = Atom::String("a".into());
        let b = Atom::String("b".into());
        let mut d = Datum::set([a.clone()]);
        d.apply_diff(ColumnKind::Set, Datum::set([a.clone(), b.clone()]))
            .unwrap();
        assert_eq!(d, Datum::set([b.clone()]));
        // An optional column is replaced, including by the empty set.
        let mut o = Datum::set([a.clone()]);
        o.apply_diff(ColumnKind::Scalar, Datum::set([b])).unwrap();
        assert_eq!(o.atoms().len(), 1);
        o.apply_diff(ColumnKind::Scalar, Datum::Set(vec![]))
            .unwrap();
        assert_eq!(o, Datum::Set(vec![]));
    }

    #[test]
    fn map_diffs_add_replace_and_remove() {
        let mut d = Datum::str_map([("keep", "1"), ("drop", "x"), ("change", "old")]);
        d.apply_diff(
            ColumnKind::Map,
            Datum::str_map([("drop", "x"), ("change", "new"), ("add", "y")]),
        )
        .unwrap();
        assert_eq!(
            d,
            Datum::str_map([("keep", "1"), ("change", "new"), ("add", "y")])
        );
        // A map column omitted as default starts empty.
        let mut e = Datum::default();
        e.apply_diff(ColumnKind::Map, Datum::str_map([("k", "v")]))
            .unwrap();
        assert_eq!(e.map_get("k"), Some("v"));
    }

    #[test]
    fn scalar_diffs_replace() {
        let mut d = Datum::string("old");
        d.apply_diff(ColumnKind::Scalar, Datum::string("new"))
            .unwrap();
        assert_eq!(d.as_str(), Some("new"));
    }
}
