//! Building a `vif_plug_map` from Rust strings: the one place both sides of
//! the boundary turn owned pairs into C pairs.

use crate::map::{vif_plug_kv, vif_plug_map};
use std::ffi::CString;

/// Key/value pairs as C strings, and the `vif_plug_kv` array pointing into
/// them. Moving an `OwnedMap` keeps [`OwnedMap::as_map`]'s pointers valid:
/// they point into heap buffers that do not move with it.
#[derive(Debug, Default)]
pub struct OwnedMap {
    _strings: Vec<CString>,
    pairs: Vec<vif_plug_kv>,
}

impl OwnedMap {
    /// Converts `pairs`; fails naming the first string that holds a NUL byte.
    pub fn new<K: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, String> {
        let mut strings = Vec::new();
        for (k, v) in pairs {
            strings.push(c_string("key", k.as_ref())?);
            strings.push(c_string("value", v.as_ref())?);
        }
        let pairs = strings
            .chunks_exact(2)
            .map(|kv| vif_plug_kv {
                key: kv[0].as_ptr(),
                value: kv[1].as_ptr(),
            })
            .collect();
        Ok(OwnedMap {
            _strings: strings,
            pairs,
        })
    }

    /// The C view, valid while `self` lives.
    pub fn as_map(&self) -> vif_plug_map {
        if self.pairs.is_empty() {
            vif_plug_map::EMPTY
        } else {
            vif_plug_map {
                entries: self.pairs.as_ptr(),
                n_entries: self.pairs.len(),
            }
        }
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// A C string, or an error naming `what` and the value if it holds a NUL.
pub fn c_string(what: &str, s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("{what} {s:?} contains a NUL byte"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn pairs_survive_a_move_and_empty_maps_have_no_array() {
        let owned = OwnedMap::new([("a", "1"), ("b", "")]).unwrap();
        let moved = owned;
        let map = moved.as_map();
        assert_eq!(map.n_entries, 2);
        // SAFETY: `moved` is alive; the map points into it.
        let second = unsafe { &*map.entries.add(1) };
        assert_eq!(unsafe { CStr::from_ptr(second.key) }, c"b");
        assert_eq!(unsafe { CStr::from_ptr(second.value) }, c"");
        assert!(OwnedMap::new(Vec::<(&str, &str)>::new())
            .unwrap()
            .as_map()
            .entries
            .is_null());
    }

    #[test]
    fn nul_bytes_are_refused_by_name() {
        let e = OwnedMap::new([("k", "a\0b")]).unwrap_err();
        assert_eq!(e, "value \"a\\0b\" contains a NUL byte");
    }
}
