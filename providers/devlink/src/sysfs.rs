//! The sysfs fallback for the host PF's MAC: kernels (and NIC firmware)
//! that do not report it in the PF port's function expose it as
//! `<sysfs>/class/net/<physical port netdev>/smart_nic/pf/config`, with a
//! line `MAC        : xx:xx:xx:xx:xx:xx`.

use crate::mac::MacAddr;
use std::path::Path;

/// The PF MAC from `config` text, if it has a MAC line.
pub fn parse_pf_config(text: &str) -> Result<Option<MacAddr>, String> {
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if key.trim() == "MAC" {
            return value.trim().parse().map(Some);
        }
    }
    Ok(None)
}

/// Reads the PF MAC behind physical port netdev `netdev` under sysfs root
/// `root` (normally `/sys`). `Ok(None)` if there is no such file.
pub fn pf_mac(root: &Path, netdev: &str) -> Result<Option<MacAddr>, String> {
    if netdev.contains('/') || netdev == "." || netdev == ".." {
        return Err(format!("{netdev:?} is not a netdev name"));
    }
    let path = root
        .join("class/net")
        .join(netdev)
        .join("smart_nic/pf/config");
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_pf_config(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_mac_line() {
        let text = "MAC        : 0c:42:a1:00:00:00\nMaxTxRate  : 0\nState      : Up\n";
        assert_eq!(
            parse_pf_config(text)
                .unwrap()
                .map(|m| m.to_string())
                .as_deref(),
            Some("0c:42:a1:00:00:00")
        );
        assert_eq!(parse_pf_config("State : Up\n").unwrap(), None);
        assert!(parse_pf_config("MAC : nonsense\n").is_err());
    }
}
