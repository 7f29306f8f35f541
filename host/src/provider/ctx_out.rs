//! Reading and validating what a provider put in `vif_plug_port_ctx_out`.
//!
//! Whatever a provider returns is checked before the host uses it: a bad
//! answer is refused with every reason listed, never half-applied.

use smallvec::SmallVec;
use std::ffi::CStr;
use std::os::raw::c_char;
use vif_plug_abi::vif_plug_port_ctx_out;

/// Longest Linux interface name in bytes (IFNAMSIZ - 1).
pub const MAX_IFNAME_LEN: usize = 15;
/// More options than this is taken as garbage rather than read.
const MAX_OPTIONS: usize = 1024;
/// Interface types are short identifiers ("internal", "dpdkvhostuserclient").
const MAX_TYPE_LEN: usize = 64;
/// The longest interface option key accepted, in bytes.
pub const MAX_OPTION_KEY: usize = 256;
/// The longest interface option value accepted, in bytes (a DPDK devargs
/// string or a socket path is far shorter).
pub const MAX_OPTION_VALUE: usize = 4096;
/// The most bytes of options one answer may carry in all (with the batch
/// size of a worker, this keeps a batch's answers far below its frame
/// limit).
pub const MAX_OPTIONS_BYTES: usize = 16 << 10;

/// Checks the sizes of an answer's options (each key and value, and all of
/// them together) and that they hold no control characters. Returns every
/// problem.
pub fn check_option_sizes<'a>(
    options: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut total = 0usize;
    for (k, v) in options {
        total += k.len() + v.len();
        if k.len() > MAX_OPTION_KEY {
            problems.push(format!(
                "option key {:?}... is {} bytes, longer than {MAX_OPTION_KEY}",
                k.chars().take(32).collect::<String>(),
                k.len()
            ));
        }
        if k.chars().chain(v.chars()).any(char::is_control) {
            problems.push(format!(
                "option {:?} holds a control character",
                k.chars().take(32).collect::<String>()
            ));
        }
        if v.len() > MAX_OPTION_VALUE {
            problems.push(format!(
                "option {:?} has a value of {} bytes, longer than {MAX_OPTION_VALUE}",
                k.chars().take(32).collect::<String>(),
                v.len()
            ));
        }
    }
    if total > MAX_OPTIONS_BYTES {
        problems.push(format!(
            "the options take {total} bytes in all, more than {MAX_OPTIONS_BYTES}"
        ));
    }
    problems
}

/// Interface options, usually a handful: kept inline without allocating.
pub type Options = SmallVec<[(String, String); 4]>;

/// A provider's validated answer to a CREATE, copied out of `ctx_out`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortOutput {
    /// Port and Interface name.
    pub name: String,
    /// Interface type; `None` for a system interface.
    pub iface_type: Option<String>,
    /// Interface options.
    pub options: Options,
}

/// Checks that `name` is a name Linux accepts for a network interface
/// (`dev_valid_name`): 1 to 15 bytes, not "." or "..", no '/', ':' or
/// whitespace.
pub fn check_ifname(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("interface name is empty".into());
    }
    if name.len() > MAX_IFNAME_LEN {
        return Err(format!(
            "interface name {name:?} is {} bytes, longer than {MAX_IFNAME_LEN}",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("interface name {name:?} is not allowed"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| *c == '/' || *c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err(format!("interface name {name:?} contains {c:?}"));
    }
    Ok(())
}

/// Checks an interface type: a short identifier of ASCII letters, digits,
/// '-' and '_'. An empty string is refused: NULL is how a provider asks for
/// a system interface.
pub fn check_iface_type(t: &str) -> Result<(), String> {
    if t.is_empty() {
        return Err("interface type is \"\"; use NULL for a system interface".into());
    }
    if t.len() > MAX_TYPE_LEN
        || !t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!("interface type {t:?} is not a valid type name"));
    }
    Ok(())
}

/// Reads a provider string: `Err` for NULL or invalid UTF-8.
///
/// # Safety
/// `p` must be NULL or point to a NUL-terminated string.
unsafe fn read_str(what: &str, p: *const c_char) -> Result<String, String> {
    if p.is_null() {
        return Err(format!("{what} is NULL"));
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str().map(str::to_owned).map_err(|_| {
        format!(
            "{what} \"{}\" is not UTF-8",
            crate::text::escape_bytes(c.to_bytes())
        )
    })
}

/// Copies and validates a filled `ctx_out`, returning every problem found.
///
/// # Safety
/// `raw` must have been filled by the provider's `port_prepare`, whose
/// pointers the ABI requires to be NULL or valid until `port_ctx_destroy`.
pub(crate) unsafe fn read_output(raw: &vif_plug_port_ctx_out) -> Result<PortOutput, Vec<String>> {
    let mut problems = Vec::new();
    // SAFETY (all blocks below): per the caller's contract.
    let name = match unsafe { read_str("interface name", raw.name) } {
        Ok(n) => {
            if let Err(e) = check_ifname(&n) {
                problems.push(e);
            }
            n
        }
        Err(e) => {
            problems.push(e);
            String::new()
        }
    };
    let iface_type = if raw.type_.is_null() {
        None
    } else {
        match unsafe { read_str("interface type", raw.type_) } {
            Ok(t) => {
                if let Err(e) = check_iface_type(&t) {
                    problems.push(e);
                }
                Some(t)
            }
            Err(e) => {
                problems.push(e);
                None
            }
        }
    };
    let mut options = Options::new();
    let map = &raw.iface_options;
    if map.n_entries > MAX_OPTIONS {
        problems.push(format!(
            "{} interface options is more than the {MAX_OPTIONS} accepted",
            map.n_entries
        ));
    } else if map.n_entries > 0 && map.entries.is_null() {
        problems.push(format!(
            "interface options: {} but a NULL array",
            match map.n_entries {
                1 => "1 entry".to_owned(),
                n => format!("{n} entries"),
            }
        ));
    } else if map.n_entries > 0 {
        // SAFETY: non-NULL, n_entries long per the caller's contract.
        let pairs = unsafe { std::slice::from_raw_parts(map.entries, map.n_entries) };
        for (i, kv) in pairs.iter().enumerate() {
            let key = unsafe { read_str(&format!("option #{i} key"), kv.key) };
            let value = unsafe { read_str(&format!("option #{i} value"), kv.value) };
            match (key, value) {
                (Ok(k), _) if k.is_empty() => {
                    problems.push(format!("option #{i} has an empty key"))
                }
                (Ok(k), Ok(v)) => {
                    if options.iter().any(|(seen, _)| *seen == k) {
                        problems.push(format!("option {k:?} appears twice"));
                    } else {
                        options.push((k, v));
                    }
                }
                (Err(e), _) | (_, Err(e)) => problems.push(e),
            }
        }
    }
    problems.extend(check_option_sizes(
        options.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ));
    if problems.is_empty() {
        Ok(PortOutput {
            name,
            iface_type,
            options,
        })
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifnames_follow_the_kernel_rules() {
        assert!(check_ifname("lsp1").is_ok());
        assert!(check_ifname("exactly15bytes!").is_ok());
        assert!(check_ifname("").is_err());
        assert!(check_ifname("sixteen-bytes-xx").is_err());
        assert!(check_ifname(".").is_err());
        assert!(check_ifname("..").is_err());
        assert!(check_ifname("a/b").is_err());
        assert!(check_ifname("a:b").is_err());
        assert!(check_ifname("a b").is_err());
        assert!(check_ifname("a\tb").is_err());
    }

    #[test]
    fn option_sizes_and_characters_are_bounded() {
        let long_value = "v".repeat(MAX_OPTION_VALUE + 1);
        let long_key = "k".repeat(MAX_OPTION_KEY + 1);
        let table: [(Vec<(&str, &str)>, usize); 5] = [
            (vec![("a", "b")], 0),
            (vec![("a", long_value.as_str())], 1),
            (vec![(long_key.as_str(), "b")], 1),
            (vec![("a", "line\nbreak")], 1),
            (vec![("a", &long_value[..4000]); 5], 1),
        ];
        for (options, problems) in table {
            assert_eq!(
                check_option_sizes(options.clone()).len(),
                problems,
                "{options:?}"
            );
        }
    }

    #[test]
    fn types_are_identifiers() {
        assert!(check_iface_type("internal").is_ok());
        assert!(check_iface_type("dpdkvhostuserclient").is_ok());
        assert!(check_iface_type("").is_err());
        assert!(check_iface_type("in ternal").is_err());
        assert!(check_iface_type("x;rm").is_err());
    }
}
