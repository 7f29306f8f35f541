//! Representors udev is still expected to rename.
//!
//! A driver creates a representor netdev with a kernel-enumerated name
//! (`eth3`, sysfs `name_assign_type` 1), and udev renames it moments later
//! to a predictable name. Plugging it under the first name would create an
//! interface that immediately loses its device, so such a representor is
//! held back until it is renamed, or until a timeout says no rename is
//! coming.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// `NET_NAME_ENUM`: a name the kernel enumerated.
const NET_NAME_ENUM: &str = "1";

/// Whether sysfs says `netdev`'s name was enumerated by the kernel.
pub fn kernel_named(sysfs_root: &Path, netdev: &str) -> bool {
    std::fs::read_to_string(
        sysfs_root
            .join("class/net")
            .join(netdev)
            .join("name_assign_type"),
    )
    .is_ok_and(|t| t.trim() == NET_NAME_ENUM)
}

/// Netdevs (by ifindex) with a rename expected: their kernel name, and
/// until when to wait.
#[derive(Debug, Default)]
pub struct PendingRenames {
    until: HashMap<u32, (String, Instant)>,
}

impl PendingRenames {
    /// Expects `ifindex`, now called `kernel_name`, to be renamed within
    /// `timeout` of `now`. Seeing the same name again does not restart the
    /// wait.
    pub fn expect(&mut self, ifindex: u32, kernel_name: &str, now: Instant, timeout: Duration) {
        match self.until.get(&ifindex) {
            Some((name, _)) if name == kernel_name => {}
            _ => {
                self.until
                    .insert(ifindex, (kernel_name.to_owned(), now + timeout));
            }
        }
    }

    /// `ifindex` is now called `name`: no longer pending if that is not
    /// the kernel name (link up/down events repeat the old name). True if
    /// the wait ended.
    pub fn named(&mut self, ifindex: u32, name: &str) -> bool {
        match self.until.get(&ifindex) {
            Some((kernel, _)) if kernel != name => self.until.remove(&ifindex).is_some(),
            _ => false,
        }
    }

    /// `ifindex` is gone. True if it was pending.
    pub fn done(&mut self, ifindex: u32) -> bool {
        self.until.remove(&ifindex).is_some()
    }

    /// Whether a rename of `ifindex` is still expected.
    pub fn is_pending(&self, ifindex: u32) -> bool {
        self.until.contains_key(&ifindex)
    }

    /// Gives up on renames whose time ran out. True if any did.
    pub fn expire(&mut self, now: Instant) -> bool {
        let before = self.until.len();
        self.until.retain(|_, (_, t)| *t > now);
        self.until.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_until_renamed_or_timed_out() {
        let t0 = Instant::now();
        let mut p = PendingRenames::default();
        p.expect(7, "eth7", t0, Duration::from_secs(3));
        p.expect(8, "eth8", t0, Duration::from_secs(3));
        assert!(p.is_pending(7));
        // The kernel's own notification repeats the kernel name: still
        // pending. udev's rename ends the wait.
        assert!(!p.named(7, "eth7"));
        assert!(p.is_pending(7));
        assert!(p.named(7, "pf0vf7"));
        assert!(!p.is_pending(7));
        assert!(!p.done(7));
        // Seeing the same kernel name again does not restart the timer.
        p.expect(
            8,
            "eth8",
            t0 + Duration::from_secs(2),
            Duration::from_secs(3),
        );
        assert!(!p.expire(t0 + Duration::from_secs(1)));
        assert!(p.is_pending(8));
        assert!(p.expire(t0 + Duration::from_secs(4)));
        assert!(!p.is_pending(8));
    }

    #[test]
    fn reads_name_assign_type_from_sysfs() {
        let dir = std::env::temp_dir().join(format!("renames-test-{}", std::process::id()));
        let net = dir.join("class/net");
        std::fs::create_dir_all(net.join("eth3")).unwrap();
        std::fs::create_dir_all(net.join("pf0vf3")).unwrap();
        std::fs::write(net.join("eth3/name_assign_type"), "1\n").unwrap();
        std::fs::write(net.join("pf0vf3/name_assign_type"), "4\n").unwrap();
        assert!(kernel_named(&dir, "eth3"));
        assert!(!kernel_named(&dir, "pf0vf3"));
        assert!(!kernel_named(&dir, "missing"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
