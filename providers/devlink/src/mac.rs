//! Ethernet addresses, parsed strictly.

use std::fmt;
use std::str::FromStr;

/// A 48-bit MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl FromStr for MacAddr {
    type Err = String;

    /// Six two-digit hex groups separated by ':' (either case). Anything
    /// else, and the all-zero address, is refused.
    fn from_str(s: &str) -> Result<MacAddr, String> {
        let bad = || format!("{s:?} is not a MAC address (expected xx:xx:xx:xx:xx:xx)");
        let mut out = [0u8; 6];
        let mut groups = s.split(':');
        for b in out.iter_mut() {
            let g = groups.next().ok_or_else(bad)?;
            if g.len() != 2 || !g.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad());
            }
            *b = u8::from_str_radix(g, 16).map_err(|_| bad())?;
        }
        if groups.next().is_some() {
            return Err(bad());
        }
        if out == [0; 6] {
            return Err(format!("{s:?} is the all-zero MAC address"));
        }
        Ok(MacAddr(out))
    }
}

impl MacAddr {
    /// Whether it is a group (multicast or broadcast) address: the low bit
    /// of the first octet. A function cannot have one.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
}

impl TryFrom<&[u8]> for MacAddr {
    type Error = String;
    fn try_from(b: &[u8]) -> Result<MacAddr, String> {
        <[u8; 6]>::try_from(b)
            .map(MacAddr)
            .map_err(|_| format!("hardware address of {} bytes is not a MAC address", b.len()))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let m: MacAddr = "0C:42:A1:00:00:01".parse().unwrap();
        assert_eq!(m.0, [0x0c, 0x42, 0xa1, 0, 0, 1]);
        assert_eq!(m.to_string(), "0c:42:a1:00:00:01");
    }

    #[test]
    fn refuses_anything_else() {
        for bad in [
            "",
            "0c:42:a1:00:00",
            "0c:42:a1:00:00:01:02",
            "0c-42-a1-00-00-01",
            "0c:42:a1:00:00:1",
            "0c:42:a1:00:00:0g",
            "0c:42:a1:00:00:001",
            " 0c:42:a1:00:00:01",
            "00:00:00:00:00:00",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad:?}");
        }
    }
}
