//! Whether a library's ABI record (and, for Rust providers, its layout)
//! matches this host.

use abi_stable::type_layout::TypeLayout;
use vif_plug_abi::{vif_plug_abi_info, VIF_PLUG_ABI_INFO};

/// Compares a library's version record with ours. The major version must be
/// equal; a library built for a newer minor version might read members this
/// host does not provide, so it is refused. Every struct size must match
/// the sizes of the library's own minor version on this host (1.0 structs
/// end where 1.1 appended members); a difference means a different header
/// or compiler settings (packing, pointer size).
pub(crate) fn check_version(theirs: &vif_plug_abi_info) -> Result<(), String> {
    let ours = VIF_PLUG_ABI_INFO;
    if theirs.major != ours.major {
        return Err(format!(
            "built for ABI version {}.{}, but this host implements {}.{} (major versions differ)",
            theirs.major, theirs.minor, ours.major, ours.minor
        ));
    }
    if theirs.minor > ours.minor {
        return Err(format!(
            "built for ABI version {}.{}, newer than this host's {}.{}; upgrade the host",
            theirs.major, theirs.minor, ours.major, ours.minor
        ));
    }
    // A library built for an older minor has the structs of that minor:
    // its sizes are checked against that minor's table.
    let Some(ours) = vif_plug_abi::abi_info_for_minor(theirs.minor) else {
        return Err(format!(
            "built for ABI version {}.{}, which this host does not know",
            theirs.major, theirs.minor
        ));
    };
    let sizes = [
        ("struct vif_plug_class", theirs.class_size, ours.class_size),
        (
            "struct vif_plug_port_ctx_in",
            theirs.port_ctx_in_size,
            ours.port_ctx_in_size,
        ),
        (
            "struct vif_plug_port_ctx_out",
            theirs.port_ctx_out_size,
            ours.port_ctx_out_size,
        ),
        ("struct vif_plug_host", theirs.host_size, ours.host_size),
        ("struct vif_plug_kv", theirs.kv_size, ours.kv_size),
    ];
    match sizes.iter().find(|(_, t, o)| t != o) {
        Some((name, t, o)) => Err(format!(
            "ABI version {}.{} matches, but sizeof({name}) is {t} in the library and {o} in this host (mismatched header or compiler settings)",
            theirs.major, theirs.minor
        )),
        None => Ok(()),
    }
}

/// Compares a Rust provider's exported layout of the ABI types with ours,
/// which catches a provider built against an incompatible `vif-plug-abi`
/// even when the version record matches.
pub(crate) fn check_rust_layout(theirs: &'static TypeLayout) -> Result<(), String> {
    abi_stable::abi_stability::check_layout_compatibility(vif_plug_abi::RUST_LAYOUT.class_layout, theirs)
        .into_result()
        .map_err(|e| {
            let full = e.to_string();
            log::debug!("full abi_stable layout report:\n{full}");
            format!(
                "its vif-plug-abi type layout differs from this host's: {} (RUST_LOG=debug shows the full report)",
                layout_error_summary(&full)
            )
        })
}

/// The report abi_stable gives lists both layouts in full and then, after
/// "N error(s).", what differs; the latter is what an operator needs.
fn layout_error_summary(report: &str) -> String {
    let mut lines = report.lines().map(str::trim).filter(|l| !l.is_empty());
    let errors: Vec<&str> = lines
        .by_ref()
        .skip_while(|l| !l.ends_with("error(s)."))
        .skip(1)
        .take(8)
        .collect();
    if errors.is_empty() {
        return "layouts differ".to_owned();
    }
    errors
        .join(" ")
        .replace("Error:", "")
        .replace(" Expected: ", ": expected ")
        .replace(" Found: ", ", found ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_record_is_accepted() {
        assert!(check_version(&VIF_PLUG_ABI_INFO).is_ok());
    }

    #[test]
    fn another_major_is_refused_naming_both_versions() {
        let mut v = VIF_PLUG_ABI_INFO;
        v.major += 1;
        let e = check_version(&v).unwrap_err();
        assert!(e.contains(&format!("{}.{}", v.major, v.minor)), "{e}");
        assert!(
            e.contains(&format!(
                "{}.{}",
                VIF_PLUG_ABI_INFO.major, VIF_PLUG_ABI_INFO.minor
            )),
            "{e}"
        );
    }

    #[test]
    fn a_1_0_library_is_checked_against_the_1_0_sizes() {
        let v = vif_plug_abi::VIF_PLUG_ABI_1_0_INFO;
        assert!(v.class_size < VIF_PLUG_ABI_INFO.class_size);
        assert!(v.port_ctx_in_size < VIF_PLUG_ABI_INFO.port_ctx_in_size);
        assert!(check_version(&v).is_ok());
        // A 1.0 record with 1.1 sizes is a mismatched header.
        let wrong = vif_plug_abi_info {
            minor: 0,
            ..VIF_PLUG_ABI_INFO
        };
        assert!(check_version(&wrong)
            .unwrap_err()
            .contains("sizeof(struct vif_plug_class)"));
    }

    #[test]
    fn a_newer_minor_is_refused() {
        let mut v = VIF_PLUG_ABI_INFO;
        v.minor += 1;
        assert!(check_version(&v).unwrap_err().contains("newer"));
    }

    #[test]
    fn a_size_difference_is_refused_naming_the_struct() {
        let mut v = VIF_PLUG_ABI_INFO;
        v.port_ctx_in_size += 8;
        assert!(check_version(&v)
            .unwrap_err()
            .contains("sizeof(struct vif_plug_port_ctx_in)"));
    }

    #[test]
    fn layout_report_is_summarised_from_its_error_section() {
        let report = "Compared <this>:\n  --- Type Layout ---\n  type:x\n 1 error(s).\n Error:mismatched package\n Expected:\n   a\n Found:\n   b\n";
        assert_eq!(
            layout_error_summary(report),
            "mismatched package: expected a, found b"
        );
    }

    #[test]
    fn our_own_layout_is_accepted() {
        assert!(check_rust_layout(vif_plug_abi::RUST_LAYOUT.class_layout).is_ok());
    }
}
