//! Safe views of `vif_plug_port_ctx_in`, and the owned answer `PortOut`.

use crate::map::{vif_plug_kv, vif_plug_map};
use crate::port_ctx::{vif_plug_port_ctx_in, VIF_PLUG_OP_CREATE, VIF_PLUG_OP_REMOVE};
use std::ffi::CStr;
use std::os::raw::c_char;

/// The operation of a port context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Create, or update an existing port.
    Create,
    /// Remove the port from this chassis.
    Remove,
}

/// A borrowed, validated key/value map from the host.
#[derive(Clone, Copy)]
pub struct MapView<'a> {
    entries: &'a [vif_plug_kv],
}

impl<'a> MapView<'a> {
    /// Checks every pointer and string of `map` once, so that the accessors
    /// need no further checks.
    ///
    /// # Safety
    /// `map` must describe `n_entries` readable pairs whose non-NULL strings
    /// are NUL-terminated, all valid for `'a`, as the ABI guarantees.
    pub(crate) unsafe fn new(what: &str, map: &'a vif_plug_map) -> Result<Self, String> {
        if map.n_entries == 0 {
            return Ok(MapView { entries: &[] });
        }
        if map.entries.is_null() {
            return Err(format!(
                "{what}: {} entries but a NULL array",
                map.n_entries
            ));
        }
        // SAFETY: non-NULL and, per the caller's contract, `n_entries` long.
        let entries = unsafe { std::slice::from_raw_parts(map.entries, map.n_entries) };
        for (i, kv) in entries.iter().enumerate() {
            // SAFETY: the caller guarantees the strings are valid for 'a.
            unsafe {
                required_str(&format!("{what} #{i} key"), kv.key)?;
                required_str(&format!("{what} #{i} value"), kv.value)?;
            }
        }
        Ok(MapView { entries })
    }

    /// The value for `key`, if present.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// All pairs, in the host's order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        // SAFETY: every pointer was checked to be a valid UTF-8 C string in
        // `new`; reading it again (strlen, UTF-8) is cheap for option maps.
        self.entries
            .iter()
            .map(|kv| unsafe { (revalidated(kv.key), revalidated(kv.value)) })
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl std::fmt::Debug for MapView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// The Interface record that already exists for a port: `ctx_in`'s
/// `iface_name`, `iface_type` and `iface_options`.
#[derive(Debug, Clone, Copy)]
pub struct Iface<'a> {
    /// Interface name.
    pub name: &'a str,
    /// Interface type; "" for a system interface.
    pub iface_type: &'a str,
    /// All its options, including those other programs maintain.
    pub options: MapView<'a>,
}

/// What the host says about one port operation: every member of the C
/// ABI's `vif_plug_port_ctx_in`, checked once (known op, non-NULL UTF-8
/// strings, sane maps) before the provider sees it.
///
/// | `ctx_in` member | accessor |
/// | --- | --- |
/// | `op_type` | [`op`](Self::op) |
/// | `lport_name`, `lport_options` | [`lport_name`](Self::lport_name), [`lport_options`](Self::lport_options), [`lport_option`](Self::lport_option) |
/// | `iface_name`, `iface_type`, `iface_options` | [`iface`](Self::iface) |
/// | `bridge_name`, `bridge_datapath_type` | [`bridge_name`](Self::bridge_name), [`bridge_datapath_type`](Self::bridge_datapath_type) |
/// | `dpdk_initialized` | [`dpdk_initialized`](Self::dpdk_initialized) |
/// | `lport_macs`, `n_lport_macs` (ABI 1.1) | [`lport_macs`](Self::lport_macs) |
///
/// Everything is borrowed from the host for the duration of one call
/// (`'a`): copy what you keep.
#[derive(Debug, Clone, Copy)]
pub struct PortIn<'a> {
    op: Op,
    lport_name: &'a str,
    lport_options: MapView<'a>,
    iface: Option<Iface<'a>>,
    bridge_name: &'a str,
    bridge_datapath_type: &'a str,
    dpdk_initialized: bool,
    /// The logical port's MACs (ABI 1.1), each checked to be a UTF-8 C
    /// string; empty from a 1.0 host.
    lport_macs: &'a [*const c_char],
}

/// More MACs than this is taken as garbage rather than read.
const MAX_MACS: usize = 1024;

impl<'a> PortIn<'a> {
    /// Validates a raw context: known op, non-NULL UTF-8 strings, sane maps.
    /// `host_minor` is the host's ABI minor version: members a host of an
    /// older version does not have are never read.
    ///
    /// # Safety
    /// `raw` must be a context as the ABI describes it for a host of
    /// version `1.host_minor`, valid for `'a`.
    pub(crate) unsafe fn new(
        raw: &'a vif_plug_port_ctx_in,
        host_minor: u32,
    ) -> Result<Self, String> {
        let op = match raw.op_type {
            VIF_PLUG_OP_CREATE => Op::Create,
            VIF_PLUG_OP_REMOVE => Op::Remove,
            other => return Err(format!("unknown op_type {other}")),
        };
        // SAFETY (all blocks below): the caller guarantees the pointers are
        // NULL or valid C strings and maps for 'a.
        let lport_name = unsafe { required_str("lport_name", raw.lport_name) }?;
        let lport_options = unsafe { MapView::new("lport_options", &raw.lport_options) }?;
        let iface = if raw.iface_name.is_null() {
            None
        } else {
            Some(Iface {
                name: unsafe { required_str("iface_name", raw.iface_name) }?,
                iface_type: unsafe { required_str("iface_type", raw.iface_type) }?,
                options: unsafe { MapView::new("iface_options", &raw.iface_options) }?,
            })
        };
        let lport_macs: &'a [*const c_char] =
            if host_minor < 1 || raw.n_lport_macs == 0 || raw.lport_macs.is_null() {
                &[]
            } else if raw.n_lport_macs > MAX_MACS {
                return Err(format!("{} lport_macs is too many", raw.n_lport_macs));
            } else {
                // SAFETY: a 1.1 host passes n_lport_macs valid pointers.
                let macs = unsafe { std::slice::from_raw_parts(raw.lport_macs, raw.n_lport_macs) };
                for (i, p) in macs.iter().enumerate() {
                    // SAFETY: each is a C string, per the caller's contract.
                    unsafe { required_str(&format!("lport_macs[{i}]"), *p) }?;
                }
                macs
            };
        Ok(PortIn {
            op,
            lport_name,
            lport_options,
            iface,
            bridge_name: unsafe { required_str("bridge_name", raw.bridge_name) }?,
            bridge_datapath_type: unsafe {
                required_str("bridge_datapath_type", raw.bridge_datapath_type)
            }?,
            dpdk_initialized: raw.dpdk_initialized,
            lport_macs,
        })
    }

    /// Create/update or remove.
    pub fn op(&self) -> Op {
        self.op
    }
    /// The logical port name.
    pub fn lport_name(&self) -> &'a str {
        self.lport_name
    }
    /// The logical port's options.
    pub fn lport_options(&self) -> MapView<'a> {
        self.lport_options
    }
    /// One logical port option.
    pub fn lport_option(&self, key: &str) -> Option<&'a str> {
        self.lport_options.get(key)
    }
    /// The existing Interface record: `None` while the port has none (its
    /// first CREATE); otherwise the interface as it is, with all its
    /// options, those other programs maintain included.
    pub fn iface(&self) -> Option<Iface<'a>> {
        self.iface
    }
    /// The integration bridge's name.
    pub fn bridge_name(&self) -> &'a str {
        self.bridge_name
    }
    /// The integration bridge's `Bridge.datapath_type`: "" (the default,
    /// "system") or e.g. "netdev". A provider that needs a userspace
    /// datapath (DPDK, vhost-user) decides from this.
    pub fn bridge_datapath_type(&self) -> &'a str {
        self.bridge_datapath_type
    }
    /// Whether the local Open vSwitch has initialized DPDK
    /// (`Open_vSwitch.dpdk_initialized` of the local database): a provider
    /// that answers with a DPDK interface type (`dpdk`, `dpdkvhostuser`, ...)
    /// needs it true.
    pub fn dpdk_initialized(&self) -> bool {
        self.dpdk_initialized
    }
    /// The logical port's MAC addresses (ABI 1.1), from the Southbound
    /// `Port_Binding.mac`: the MAC of each entry, in order, lowercase
    /// `xx:xx:xx:xx:xx:xx`. Empty for a port without MACs, for a REMOVE,
    /// and under a host of ABI 1.0, which does not pass them.
    pub fn lport_macs(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.lport_macs.iter().map(|p| {
            // SAFETY: checked in `new` to be a UTF-8 C string valid for 'a.
            unsafe { CStr::from_ptr(*p) }.to_str().unwrap_or_default()
        })
    }
}

/// A provider's answer to a CREATE: the interface to create or update.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortOut {
    /// Port and Interface name: 1 to 15 bytes (IFNAMSIZ - 1; see
    /// [`PortOut::ifname`]), no '/', ':', whitespace or NUL byte, as Linux
    /// requires of a network interface name (`dev_valid_name` in
    /// net/core/dev.c). The host refuses any other answer.
    pub name: String,
    /// Interface type; `None` for a system interface.
    pub iface_type: Option<String>,
    /// Interface options to set.
    pub options: Vec<(String, String)>,
}

/// Longest interface name Linux accepts: IFNAMSIZ (linux/if.h) less the
/// terminating NUL. (Not public: cbindgen would put it in the C header.)
const MAX_IFNAME: usize = 15;

impl PortOut {
    /// `name` cut to at most 15 bytes (IFNAMSIZ less its NUL), at a character
    /// boundary: logical port names are often longer (a UUID is 36
    /// bytes), and the host refuses an over-long interface name. Two
    /// logical ports whose names share their first 15 bytes get the same
    /// name; a provider that can meet such names builds a shorter unique
    /// one instead.
    pub fn ifname(name: &str) -> String {
        let mut cut = name.len().min(MAX_IFNAME);
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name[..cut].to_owned()
    }

    /// A system interface called `name`, without options.
    pub fn new(name: impl Into<String>) -> Self {
        PortOut {
            name: name.into(),
            iface_type: None,
            options: Vec::new(),
        }
    }

    /// Sets the interface type.
    pub fn with_type(mut self, iface_type: impl Into<String>) -> Self {
        self.iface_type = Some(iface_type.into());
        self
    }

    /// Adds an interface option.
    pub fn with_option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.push((key.into(), value.into()));
        self
    }
}

/// Reads a C string as UTF-8; None for NULL or invalid UTF-8.
///
/// # Safety
/// `p` must be NULL or a NUL-terminated string valid for `'a`.
pub(crate) unsafe fn str_at<'a>(p: *const c_char) -> Option<&'a str> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    unsafe { CStr::from_ptr(p) }.to_str().ok()
}

/// Reads a string the ABI says is never NULL, naming it if it is NULL or
/// not UTF-8.
///
/// # Safety
/// As for [`str_at`].
pub(crate) unsafe fn required_str<'a>(what: &str, p: *const c_char) -> Result<&'a str, String> {
    if p.is_null() {
        return Err(format!("{what} is NULL"));
    }
    // SAFETY: per the caller's contract.
    unsafe { str_at(p) }.ok_or_else(|| format!("{what} is not UTF-8"))
}

/// # Safety
/// `p` must have passed [`required_str`] and still be valid for `'a`.
unsafe fn revalidated<'a>(p: *const c_char) -> &'a str {
    // SAFETY: per the caller's contract, `p` is a valid UTF-8 C string.
    unsafe { str_at(p) }.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifname_cuts_at_15_bytes_on_a_character_boundary() {
        let cases = [
            ("lsp1", "lsp1"),
            ("exactly-15-byte", "exactly-15-byte"),
            (
                "a-logical-port-name-longer-than-ifnamsiz",
                "a-logical-port-",
            ),
            // 'é' is two bytes at 14..16: cut before it.
            ("abcdefghijklmn\u{e9}z", "abcdefghijklmn"),
            ("", ""),
        ];
        for (name, want) in cases {
            assert_eq!(PortOut::ifname(name), want, "{name:?}");
            assert!(PortOut::ifname(name).len() <= MAX_IFNAME);
        }
    }

    #[test]
    fn macs_are_read_only_from_a_host_that_passes_them() {
        let macs = [c"0a:00:00:00:00:01".as_ptr(), c"0a:00:00:00:00:02".as_ptr()];
        let raw = vif_plug_port_ctx_in {
            op_type: VIF_PLUG_OP_CREATE,
            lport_name: c"lsp1".as_ptr(),
            lport_options: vif_plug_map::EMPTY,
            iface_name: std::ptr::null(),
            iface_type: std::ptr::null(),
            iface_options: vif_plug_map::EMPTY,
            bridge_name: c"br-int".as_ptr(),
            bridge_datapath_type: c"".as_ptr(),
            dpdk_initialized: false,
            lport_macs: macs.as_ptr(),
            n_lport_macs: macs.len(),
        };
        // SAFETY: a valid context, its strings static.
        let port = unsafe { PortIn::new(&raw, 1) }.unwrap();
        assert_eq!(
            port.lport_macs().collect::<Vec<_>>(),
            ["0a:00:00:00:00:01", "0a:00:00:00:00:02"]
        );
        // A 1.0 host has no such members: they are never read.
        // SAFETY: as above.
        let port = unsafe { PortIn::new(&raw, 0) }.unwrap();
        assert_eq!(port.lport_macs().count(), 0);
    }
}
