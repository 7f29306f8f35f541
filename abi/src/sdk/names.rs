//! The names a provider declares as `&str` ([`Provider::TYPE`] and
//! [`Provider::MAINTAINED_IFACE_OPTIONS`]), checked while the provider
//! compiles and turned into the NUL-terminated strings the C ABI wants.
//!
//! [`export_providers!`](crate::export_providers) evaluates these functions
//! in constants, so a name the host would refuse is a compile error that
//! says what is wrong with it, and a good one needs no `unsafe` and no
//! allocation: the type name is copied, with a NUL, into a constant array.
//!
//! [`Provider::TYPE`]: super::Provider::TYPE
//! [`Provider::MAINTAINED_IFACE_OPTIONS`]: super::Provider::MAINTAINED_IFACE_OPTIONS

use std::ffi::CStr;

/// Decodes the character of `s` that starts at byte `i`: its code point and
/// its length in bytes. `s` is valid UTF-8, being a `str`'s bytes.
const fn char_at(s: &[u8], i: usize) -> (u32, usize) {
    let b0 = s[i] as u32;
    if b0 < 0x80 {
        (b0, 1)
    } else if b0 < 0xe0 {
        (((b0 & 0x1f) << 6) | cont(s, i + 1), 2)
    } else if b0 < 0xf0 {
        (
            ((b0 & 0x0f) << 12) | (cont(s, i + 1) << 6) | cont(s, i + 2),
            3,
        )
    } else {
        (
            ((b0 & 0x07) << 18) | (cont(s, i + 1) << 12) | (cont(s, i + 2) << 6) | cont(s, i + 3),
            4,
        )
    }
}

/// The six bits a UTF-8 continuation byte carries.
const fn cont(s: &[u8], i: usize) -> u32 {
    (s[i] as u32) & 0x3f
}

/// `char::is_whitespace`: the Unicode `White_Space` property.
const fn is_whitespace(c: u32) -> bool {
    matches!(
        c,
        0x09..=0x0d
            | 0x20
            | 0x85
            | 0xa0
            | 0x1680
            | 0x2000..=0x200a
            | 0x2028
            | 0x2029
            | 0x202f
            | 0x205f
            | 0x3000
    )
}

/// `char::is_control`: the Unicode general category `Cc` (NUL included).
const fn is_control(c: u32) -> bool {
    matches!(c, 0x00..=0x1f | 0x7f..=0x9f)
}

/// What the host would refuse in `name` as a provider type, as the
/// message of a compile error; `None` if it is a good one. The host takes
/// a non-empty string without whitespace or control characters.
pub const fn type_problem(name: &str) -> Option<&'static str> {
    let s = name.as_bytes();
    if s.is_empty() {
        return Some("Provider::TYPE is empty; the host refuses an empty provider type");
    }
    let mut i = 0;
    while i < s.len() {
        let (c, len) = char_at(s, i);
        if is_whitespace(c) {
            return Some(
                "Provider::TYPE contains whitespace, which the host refuses in a provider type",
            );
        }
        if is_control(c) {
            return Some("Provider::TYPE contains a control character or a NUL byte, which the host refuses in a provider type");
        }
        i += len;
    }
    None
}

/// What is wrong with `key` as a maintained interface option key, as the
/// message of a compile error; `None` if nothing is. A key is non-empty
/// and holds no control character (no NUL byte in particular).
pub const fn option_key_problem(key: &str) -> Option<&'static str> {
    let s = key.as_bytes();
    if s.is_empty() {
        return Some("Provider::MAINTAINED_IFACE_OPTIONS has an empty key");
    }
    let mut i = 0;
    while i < s.len() {
        let (c, len) = char_at(s, i);
        if is_control(c) {
            return Some("Provider::MAINTAINED_IFACE_OPTIONS has a key with a control character or a NUL byte");
        }
        i += len;
    }
    None
}

/// `name` followed by a NUL byte, as an array of `N` bytes (`name.len() +
/// 1`), for a constant. Panics (a compile error, in a constant) if `name`
/// is no provider type the host accepts.
pub const fn type_with_nul<const N: usize>(name: &str) -> [u8; N] {
    if let Some(problem) = type_problem(name) {
        panic!("{}", problem);
    }
    let s = name.as_bytes();
    assert!(
        s.len() + 1 == N,
        "the array must be one byte longer than the name"
    );
    let mut out = [0u8; N];
    let mut i = 0;
    while i < s.len() {
        out[i] = s[i];
        i += 1;
    }
    out
}

/// The C string in `bytes`, which [`type_with_nul`] made.
pub const fn c_str(bytes: &'static [u8]) -> &'static CStr {
    match CStr::from_bytes_with_nul(bytes) {
        Ok(c) => c,
        Err(_) => panic!("not a NUL-terminated string without interior NUL"),
    }
}

/// Panics (a compile error, in a constant) if a key of `keys` is no
/// interface option key.
pub const fn check_option_keys(keys: &[&str]) {
    let mut i = 0;
    while i < keys.len() {
        if let Some(problem) = option_key_problem(keys[i]) {
            panic!("{}", problem);
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The const checks agree with `char`'s own methods, which the host
    /// uses, for every character.
    #[test]
    fn the_character_classes_are_chars_own() {
        let mut buf = [0u8; 4];
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            let s = c.encode_utf8(&mut buf);
            assert_eq!(char_at(s.as_bytes(), 0), (c as u32, c.len_utf8()), "{c:?}");
            assert_eq!(is_whitespace(c as u32), c.is_whitespace(), "{c:?}");
            assert_eq!(is_control(c as u32), c.is_control(), "{c:?}");
        }
    }

    #[test]
    fn types_the_host_refuses_are_named() {
        assert_eq!(type_problem("representor"), None);
        assert_eq!(type_problem("exämple-ü"), None);
        assert!(type_problem("").unwrap().contains("empty"));
        assert!(type_problem("two words").unwrap().contains("whitespace"));
        assert!(type_problem("no\u{a0}break")
            .unwrap()
            .contains("whitespace"));
        assert!(type_problem("nul\0").unwrap().contains("NUL"));
        assert!(type_problem("bell\u{7}").unwrap().contains("control"));
    }

    #[test]
    fn option_keys_are_checked() {
        assert_eq!(option_key_problem("my key: spaces are fine"), None);
        assert!(option_key_problem("").unwrap().contains("empty"));
        assert!(option_key_problem("a\0b").unwrap().contains("NUL"));
    }

    #[test]
    fn the_type_is_copied_with_a_nul() {
        const NAME: [u8; 5] = type_with_nul("mine");
        assert_eq!(c_str(&NAME), c"mine");
    }

    #[test]
    #[should_panic(expected = "contains whitespace")]
    fn a_bad_type_panics_when_copied() {
        let _: [u8; 4] = type_with_nul("a b");
    }
}
