//! The logical port options that select a representor, checked strictly:
//! a bad value is refused with the option and the value named, never
//! guessed at.

use crate::mac::MacAddr;

/// The PF's MAC address, as the host sees it (required).
pub const PF_MAC: &str = "vif-plug:representor:pf-mac";
/// The VF number on that PF (optional; without it, the PF itself).
pub const VF_NUM: &str = "vif-plug:representor:vf-num";
/// The subfunction number on that PF (optional; exclusive with vf-num).
pub const SF_NUM: &str = "vif-plug:representor:sf-num";
/// The controller number, for NICs serving several hosts (optional; by
/// default any controller, as long as only one has the function).
pub const CONTROLLER: &str = "vif-plug:representor:controller";

/// Whether to set the VF's or SF's MAC address, as the host sees it, to
/// the logical port's first MAC (optional; `true` or `false`, default
/// `true`). See [`crate::mac_program`].
pub const PROGRAM_MAC: &str = "vif-plug:representor:program-mac";

/// Reads [`PROGRAM_MAC`]: `true` when absent; anything but `true` or
/// `false` is refused, naming the value.
pub fn program_mac<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<bool, String> {
    match get(PROGRAM_MAC) {
        None | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(v) => Err(format!("{PROGRAM_MAC}={v:?} is neither true nor false")),
    }
}

/// Which function of the PF is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    /// The PF itself.
    Pf,
    /// A virtual function (devlink flavour PCI_VF).
    Vf(u16),
    /// A subfunction (devlink flavour PCI_SF).
    Sf(u32),
}

impl std::fmt::Display for Function {
    /// "the PF", "VF 3", "SF 88".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Function::Pf => f.write_str("the PF"),
            Function::Vf(n) => write!(f, "VF {n}"),
            Function::Sf(n) => write!(f, "SF {n}"),
        }
    }
}

/// What a logical port asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lookup {
    /// The host-side MAC of the PF.
    pub pf_mac: MacAddr,
    /// PF, VF or SF.
    pub function: Function,
    /// Controller number; `None`: any controller (ambiguity is refused).
    pub controller: Option<u32>,
}

fn number<T: std::str::FromStr>(key: &str, value: &str, max: u64) -> Result<T, String> {
    let bad = || format!("{key}={value:?} is not a number from 0 to {max}");
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match value.parse::<u64>() {
        Ok(n) if n <= max => value.parse::<T>().map_err(|_| bad()),
        _ => Err(bad()),
    }
}

/// Reads the lookup from a logical port's options (`get` returns an
/// option's value).
pub fn parse<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Lookup, String> {
    let mac = get(PF_MAC).ok_or_else(|| format!("{PF_MAC} is missing"))?;
    let pf_mac = mac.parse().map_err(|e| format!("{PF_MAC}: {e}"))?;
    // The kernel's devlink attributes: VF numbers are u16, SF and
    // controller numbers u32.
    let vf = get(VF_NUM)
        .map(|v| number::<u16>(VF_NUM, v, u16::MAX.into()))
        .transpose()?;
    let sf = get(SF_NUM)
        .map(|v| number::<u32>(SF_NUM, v, u32::MAX.into()))
        .transpose()?;
    let controller = get(CONTROLLER)
        .map(|v| number::<u32>(CONTROLLER, v, u32::MAX.into()))
        .transpose()?;
    let function = match (vf, sf) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "{VF_NUM} and {SF_NUM} are both given; a port is one or the other"
            ))
        }
        (Some(v), None) => Function::Vf(v),
        (None, Some(s)) => Function::Sf(s),
        (None, None) => Function::Pf,
    };
    Ok(Lookup {
        pf_mac,
        function,
        controller,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse_map(pairs: &[(&str, &str)]) -> Result<Lookup, String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(|k| m.get(k).map(String::as_str))
    }

    const MAC: &str = "0c:42:a1:00:00:01";

    #[test]
    fn pf_vf_sf_and_controller() {
        let l = parse_map(&[(PF_MAC, MAC)]).unwrap();
        assert_eq!(l.function, Function::Pf);
        assert_eq!(l.controller, None);
        assert_eq!(
            parse_map(&[(PF_MAC, MAC), (VF_NUM, "7")]).unwrap().function,
            Function::Vf(7)
        );
        assert_eq!(
            parse_map(&[(PF_MAC, MAC), (SF_NUM, "88"), (CONTROLLER, "1")]).unwrap(),
            Lookup {
                pf_mac: MAC.parse().unwrap(),
                function: Function::Sf(88),
                controller: Some(1)
            }
        );
        assert_eq!(
            parse_map(&[(PF_MAC, MAC), (VF_NUM, "65535")])
                .unwrap()
                .function,
            Function::Vf(65535)
        );
    }

    #[test]
    fn program_mac_is_on_unless_false_and_strict() {
        let get = |v: Option<&'static str>| program_mac(move |_| v);
        assert_eq!(get(None), Ok(true));
        assert_eq!(get(Some("true")), Ok(true));
        assert_eq!(get(Some("false")), Ok(false));
        for bad in ["False", "0", "no", ""] {
            assert!(get(Some(bad)).unwrap_err().contains(&format!("{bad:?}")));
        }
    }

    #[test]
    fn every_bad_input_is_refused_naming_the_value() {
        assert_eq!(
            parse_map(&[]).unwrap_err(),
            "vif-plug:representor:pf-mac is missing"
        );
        assert!(parse_map(&[(PF_MAC, "0c:42:a1:00:00")])
            .unwrap_err()
            .contains("\"0c:42:a1:00:00\""));
        for v in [
            "x",
            "-1",
            "+1",
            "1.0",
            "",
            " 1",
            "65536",
            "99999999999999999999",
        ] {
            let e = parse_map(&[(PF_MAC, MAC), (VF_NUM, v)]).unwrap_err();
            assert!(e.starts_with("vif-plug:representor:vf-num="), "{v}: {e}");
            assert!(e.contains("from 0 to 65535"), "{e}");
        }
        assert!(parse_map(&[(PF_MAC, MAC), (SF_NUM, "4294967296")]).is_err());
        assert!(parse_map(&[(PF_MAC, MAC), (CONTROLLER, "abc")]).is_err());
        assert!(parse_map(&[(PF_MAC, MAC), (VF_NUM, "1"), (SF_NUM, "2")])
            .unwrap_err()
            .contains("both given"));
    }
}
