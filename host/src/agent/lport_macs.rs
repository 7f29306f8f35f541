//! The logical port's MAC addresses as providers see them (ABI 1.1,
//! `vif_plug_port_ctx_in.lport_macs`), from the Southbound
//! `Port_Binding.mac` column. Each entry of that column is a MAC followed by
//! the port's IP addresses (`"0a:00:00:00:00:01 10.0.0.1"`), or one of the
//! words `router`, `unknown` and `dynamic` (ovn-nb(5),
//! `Logical_Switch_Port.addresses`, which ovn-northd copies); the words
//! carry no MAC of this port and are skipped.

/// Most MACs passed to a provider: the Rust SDK refuses a context with
/// more, and no NIC function has more.
pub const MAX_LPORT_MACS: usize = 1024;

/// The MAC of each entry of `Port_Binding.mac`, in the Southbound's order
/// (OVSDB sets are sorted, so not necessarily the order the CMS gave),
/// lowercase, at most [`MAX_LPORT_MACS`]; an entry that does not start
/// with a MAC (a word, or garbage) is skipped.
pub fn from_mac_column<'a>(entries: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    entries
        .into_iter()
        .filter_map(|e| e.split_whitespace().next())
        .filter(|first| is_mac(first))
        .map(str::to_ascii_lowercase)
        .take(MAX_LPORT_MACS)
        .collect()
}

/// `xx:xx:xx:xx:xx:xx`, hexadecimal.
fn is_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_entry_gives_its_mac_and_words_are_skipped() {
        let table: [(&[&str], &[&str]); 6] = [
            (&[], &[]),
            (&["0a:00:00:00:00:01 10.0.0.1"], &["0a:00:00:00:00:01"]),
            (
                &["0A:00:00:00:00:01", "0a:00:00:00:00:02 10.0.0.2 fd00::2"],
                &["0a:00:00:00:00:01", "0a:00:00:00:00:02"],
            ),
            (&["router", "unknown", "dynamic"], &[]),
            (&["unknown", "0a:00:00:00:00:03"], &["0a:00:00:00:00:03"]),
            (&["0a:00:00:00:00", "zz:00:00:00:00:01", " "], &[]),
        ];
        for (column, macs) in table {
            assert_eq!(from_mac_column(column.iter().copied()), macs, "{column:?}");
        }
    }
}
