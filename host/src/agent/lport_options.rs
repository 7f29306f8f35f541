//! The logical port options the agent reads from `Port_Binding.options`
//! (copied there by ovn-northd from the Northbound `Logical_Switch_Port`),
//! parsed in one place, as strictly as ovn-controller reads them.
//!
//! A value the agent cannot use is reported as a [`Problem`] naming the
//! option and the value, so that the caller can say it once per logical
//! port and value, and is otherwise treated as absent.

use crate::ovsdb::Datum;

/// Names the provider that plugs the port (the reference's
/// `VIF_PLUG_OPTION_TYPE`).
pub const VIF_PLUG_TYPE: &str = "vif-plug-type";
/// The interface MTU to request (the reference's
/// `VIF_PLUG_OPTION_MTU_REQUEST`).
pub const VIF_PLUG_MTU_REQUEST: &str = "vif-plug-mtu-request";
/// The version ovn-controller expects in the interface's
/// `external_ids:iface-id-ver` before it claims the port.
pub const IFACE_ID_VER: &str = "iface-id-ver";
/// The chassis names (or hostnames) the port is requested on,
/// comma-separated: the first is the main chassis, the others additional
/// (live migration), as in OVN's `controller/lport.c`.
pub const REQUESTED_CHASSIS: &str = "requested-chassis";

/// Smallest and largest `vif-plug-mtu-request` accepted. OVS itself takes
/// any positive value; anything outside what an Ethernet device can carry
/// is more likely a typo than a wish.
pub const MTU_RANGE: std::ops::RangeInclusive<i64> = 68..=65535;

/// An option value the agent cannot use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The option.
    pub option: &'static str,
    /// Its value.
    pub value: String,
    /// What is wrong and what the agent does instead.
    pub message: String,
}

/// What `vif-plug-mtu-request` asks of the interface's `mtu_request`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MtuRequest {
    /// No request (absent, or `0` as in the reference): none is set.
    #[default]
    Unset,
    /// This MTU.
    Value(i64),
    /// A value the agent cannot use: reported, and whatever the interface
    /// has is left as it is (a typo must not change a running interface).
    Invalid,
}

impl MtuRequest {
    /// The MTU to set on a new interface.
    pub fn for_new_interface(self) -> Option<i64> {
        match self {
            MtuRequest::Value(n) => Some(n),
            MtuRequest::Unset | MtuRequest::Invalid => None,
        }
    }
}

/// The options of one binding, as the agent uses them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LportOptions {
    /// `vif-plug-type`, if set (an empty value is kept: it names no
    /// provider, which is not the same as withdrawing the option).
    pub plug_type: Option<String>,
    /// `vif-plug-mtu-request`.
    pub mtu_request: MtuRequest,
    /// `iface-id-ver`, if set, even to an empty string (ovn-controller then
    /// expects an empty `external_ids:iface-id-ver`).
    pub iface_id_ver: Option<String>,
    /// The names in `requested-chassis`, in order, empty names skipped
    /// (the reference splits on `,` and trims nothing).
    pub requested_chassis: Vec<String>,
    /// Every option, in key order: what the provider is given, and what a
    /// change is detected on.
    pub all: Vec<(String, String)>,
    /// Values that could not be used.
    pub problems: Vec<Problem>,
}

/// Parses an MTU as ovn-controller's `smap_get_int` would accept it, but
/// stricter: decimal digits only (no sign, no spaces, no `0x`), within
/// [`MTU_RANGE`]; `"0"` means no request.
pub fn parse_mtu(value: &str) -> Result<Option<i64>, String> {
    let bad = |why: &str| {
        Err(format!(
            "{VIF_PLUG_MTU_REQUEST}={value:?} {why}; ignored (a new interface gets no MTU request, an existing one keeps its own)"
        ))
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return bad("is not a decimal number");
    }
    match value.parse::<i64>() {
        Ok(0) => Ok(None),
        Ok(n) if MTU_RANGE.contains(&n) => Ok(Some(n)),
        _ => bad(&format!(
            "is not an MTU between {} and {}",
            MTU_RANGE.start(),
            MTU_RANGE.end()
        )),
    }
}

/// Parses a binding's `options` column.
pub fn parse(options: &Datum) -> LportOptions {
    let all = options.str_pairs();
    let mut out = LportOptions::default();
    for (k, v) in &all {
        match k.as_str() {
            VIF_PLUG_TYPE => out.plug_type = Some(v.clone()),
            VIF_PLUG_MTU_REQUEST => match parse_mtu(v) {
                Ok(m) => out.mtu_request = m.map_or(MtuRequest::Unset, MtuRequest::Value),
                Err(message) => {
                    out.mtu_request = MtuRequest::Invalid;
                    out.problems.push(Problem {
                        option: VIF_PLUG_MTU_REQUEST,
                        value: v.clone(),
                        message,
                    })
                }
            },
            IFACE_ID_VER => out.iface_id_ver = Some(v.clone()),
            REQUESTED_CHASSIS => {
                out.requested_chassis = v
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            }
            _ => {}
        }
    }
    out.all = all;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mtu_values_are_read_strictly() {
        // (value, expected): Ok(mtu) or Err (ignored with a warning).
        let table: &[(&str, Result<Option<i64>, ()>)] = &[
            ("1500", Ok(Some(1500))),
            ("68", Ok(Some(68))),
            ("65535", Ok(Some(65535))),
            ("0", Ok(None)),
            ("1500 ", Err(())),
            (" 1500", Err(())),
            ("+1500", Err(())),
            ("-1", Err(())),
            ("0x5dc", Err(())),
            ("jumbo", Err(())),
            ("", Err(())),
            ("67", Err(())),
            ("65536", Err(())),
            ("99999999999999999999999", Err(())),
        ];
        for (value, expected) in table {
            let got = parse_mtu(value).map_err(|_| ());
            assert_eq!(&got, expected, "vif-plug-mtu-request={value:?}");
        }
        let e = parse_mtu("1500 ").unwrap_err();
        assert!(e.contains("\"1500 \""), "{e}");
    }

    #[test]
    fn options_are_parsed_once_with_their_problems() {
        let d = Datum::str_map([
            ("vif-plug-type", "dummy"),
            ("vif-plug-mtu-request", "1500 "),
            ("iface-id-ver", "v1"),
            ("requested-chassis", "hv2,,hv1"),
            ("other", "x"),
        ]);
        let o = parse(&d);
        assert_eq!(o.plug_type.as_deref(), Some("dummy"));
        assert_eq!(o.mtu_request, MtuRequest::Invalid);
        assert_eq!(o.iface_id_ver.as_deref(), Some("v1"));
        assert_eq!(o.requested_chassis, ["hv2", "hv1"]);
        assert_eq!(o.all.len(), 5);
        assert_eq!(o.problems.len(), 1);
        assert_eq!(o.problems[0].option, VIF_PLUG_MTU_REQUEST);
        assert_eq!(o.problems[0].value, "1500 ");
    }

    #[test]
    fn an_empty_iface_id_ver_is_kept_as_ovn_controller_compares_it() {
        let o = parse(&Datum::str_map([("iface-id-ver", "")]));
        assert_eq!(o.iface_id_ver.as_deref(), Some(""));
        assert_eq!(parse(&Datum::str_map([])).iface_id_ver, None);
        let zero = parse(&Datum::str_map([("vif-plug-mtu-request", "0")]));
        assert_eq!(zero.mtu_request, MtuRequest::Unset);
        assert!(zero.problems.is_empty());
    }

    #[test]
    fn an_empty_plug_type_is_not_a_withdrawal() {
        let o = parse(&Datum::str_map([("vif-plug-type", "")]));
        assert_eq!(o.plug_type.as_deref(), Some(""));
        assert_eq!(parse(&Datum::str_map([])).plug_type, None);
    }
}
