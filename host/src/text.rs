//! How bytes that come from outside (a provider's C strings, a worker's
//! standard error, file names) are shown: valid UTF-8 as it is, every other
//! byte as `\xNN`, so that a report or a log line never carries raw bytes
//! that a terminal or the journal would mangle, and nothing is lost either
//! (`String::from_utf8_lossy` would turn each into U+FFFD).

use std::borrow::Cow;
use std::path::Path;

/// `bytes` as text: unchanged when it is UTF-8, else each byte that is not
/// part of a valid UTF-8 sequence written as `\xNN` (lowercase hex).
pub fn escape_bytes(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    Cow::Owned(out)
}

/// Whether `c` is a Unicode bidirectional formatting character (UAX #9:
/// ALM, LRM, RLM, the embeddings and overrides U+202A..U+202E, the isolates
/// U+2066..U+2069). Shown raw, one reorders what a terminal displays after
/// it, so a provider could make a FAIL read as a PASS; these are escaped
/// wherever a line is escaped.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every bidirectional formatting character written as
/// `\u{NNNN}`; everything else as it is (a report line may hold several
/// lines on purpose).
pub fn escape_bidi(text: &str) -> Cow<'_, str> {
    escape_chars(text, is_bidi_control)
}

/// A name (a type, an option key) as shown in a message: as [`escape_bidi`],
/// and every control character escaped too, a tab included (which a log
/// line keeps).
pub fn escape_name(text: &str) -> Cow<'_, str> {
    escape_chars(text, |c| c.is_control() || is_bidi_control(c))
}

/// `text` with each character for which `escaped` holds written as Rust
/// writes it in a literal (`\n`, `\u{1b}`, `\u{202e}`); borrowed when
/// there is none.
pub fn escape_chars(text: &str, escaped: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(&escaped) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if escaped(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A path as [`escape_bytes`] shows it, with control characters escaped
/// too (a file name may hold a newline).
pub fn path(p: &Path) -> Cow<'_, str> {
    use std::os::unix::ffi::OsStrExt;
    match escape_bytes(p.as_os_str().as_bytes()) {
        Cow::Borrowed(s) => crate::provider::one_line(s),
        Cow::Owned(s) => Cow::Owned(crate::provider::one_line(&s).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bytes_outside_utf8_are_escaped() {
        let cases: [(&[u8], &str); 5] = [
            (b"plain", "plain"),
            ("caf\u{e9}".as_bytes(), "caf\u{e9}"),
            (b"bad \xff byte", "bad \\xff byte"),
            (b"\xc3", "\\xc3"),
            (b"a\xe2\x82b", "a\\xe2\\x82b"),
        ];
        for (bytes, shown) in cases {
            assert_eq!(escape_bytes(bytes), shown, "{bytes:?}");
        }
        assert!(matches!(escape_bytes(b"ok"), Cow::Borrowed(_)));
    }

    #[test]
    fn bidirectional_formatting_characters_are_escaped() {
        let cases = [
            ("plain", "plain"),
            ("caf\u{e9}", "caf\u{e9}"),
            ("PASS\u{202e}LIAF", "PASS\\u{202e}LIAF"),
            ("\u{2066}a\u{2069}", "\\u{2066}a\\u{2069}"),
            ("\u{200f}\u{61c}", "\\u{200f}\\u{61c}"),
            ("two\nlines\tkept", "two\nlines\tkept"),
            // Zero-width joiner: not a direction control, kept.
            ("a\u{200d}b", "a\u{200d}b"),
        ];
        for (text, shown) in cases {
            assert_eq!(escape_bidi(text), shown, "{text:?}");
        }
    }

    #[test]
    fn a_path_shows_control_characters_escaped() {
        use std::os::unix::ffi::OsStrExt;
        let p = Path::new(std::ffi::OsStr::from_bytes(b"/x/a\nb\xff.so"));
        assert_eq!(path(p), "/x/a\\nb\\xff.so");
    }
}
