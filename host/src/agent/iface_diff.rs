//! What must change on an Interface record so that it matches a provider's
//! answer, touching only what is ours: the type, the options the provider
//! maintains or sets, our external ids (`iface-id`, `ovn-plugged`,
//! `iface-id-ver`), and `mtu_request`. Options and external ids that other
//! programs set are never removed or rewritten.

use super::lport_options::MtuRequest;
use super::rows::{IFACE_ID, IFACE_ID_VER, OVN_PLUGGED, VIF_PLUG_BRIDGE};
use std::collections::BTreeMap;

/// The parts of an Interface record the agent manages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IfaceState {
    /// `type` ("" for a system interface).
    pub iface_type: String,
    /// `options`.
    pub options: BTreeMap<String, String>,
    /// `external_ids`.
    pub external_ids: BTreeMap<String, String>,
    /// `mtu_request`.
    pub mtu_request: Option<i64>,
}

/// What the interface should look like, from the provider and the logical
/// port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired<'a> {
    /// Interface type ("" for system).
    pub iface_type: &'a str,
    /// Options the provider wants set.
    pub options: &'a [(String, String)],
    /// Option keys the provider maintains.
    pub maintained: &'a [String],
    /// Logical port name (`external_ids:iface-id`).
    pub lport: &'a str,
    /// Provider type (`external_ids:ovn-plugged`).
    pub provider_type: &'a str,
    /// The integration bridge (`external_ids:vif-plug-bridge`).
    pub bridge: &'a str,
    /// `vif-plug-mtu-request`.
    pub mtu_request: MtuRequest,
    /// The binding's `options:iface-id-ver`, copied to
    /// `external_ids:iface-id-ver` so that ovn-controller claims the port;
    /// removed from the interface when withdrawn.
    pub iface_id_ver: Option<&'a str>,
}

impl Desired<'_> {
    /// The external ids the agent owns on the interface, as they should be.
    pub fn external_ids(&self) -> Vec<(String, String)> {
        our_external_ids(
            self.lport,
            self.provider_type,
            self.bridge,
            self.iface_id_ver,
        )
    }
}

/// The external ids the agent owns on an interface it plugged for `lport`
/// through `provider_type` on integration bridge `bridge`: `iface-id`,
/// `ovn-plugged`, `vif-plug-bridge`, and `iface-id-ver` when the binding
/// has one.
pub fn our_external_ids(
    lport: &str,
    provider_type: &str,
    bridge: &str,
    iface_id_ver: Option<&str>,
) -> Vec<(String, String)> {
    let mut ids = vec![
        (IFACE_ID.to_owned(), lport.to_owned()),
        (OVN_PLUGGED.to_owned(), provider_type.to_owned()),
        (VIF_PLUG_BRIDGE.to_owned(), bridge.to_owned()),
    ];
    if let Some(v) = iface_id_ver {
        ids.push((IFACE_ID_VER.to_owned(), v.to_owned()));
    }
    ids
}

/// Changes to bring an interface to its desired state, as map mutations:
/// for each map, keys to delete first, then pairs to insert.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IfaceUpdate {
    /// New type, if it differs.
    pub set_type: Option<String>,
    /// Option keys to delete.
    pub options_delete: Vec<String>,
    /// Options to insert (after the deletes).
    pub options_insert: Vec<(String, String)>,
    /// External id keys to delete.
    pub external_ids_delete: Vec<String>,
    /// External ids to insert.
    pub external_ids_insert: Vec<(String, String)>,
    /// New `mtu_request` (`Some(None)` clears it), if it differs.
    pub set_mtu_request: Option<Option<i64>>,
}

impl IfaceUpdate {
    /// True if nothing needs to change.
    pub fn is_empty(&self) -> bool {
        *self == IfaceUpdate::default()
    }
}

impl std::fmt::Display for IfaceUpdate {
    /// `type internal; options set a=1, removed b; external_ids set
    /// iface-id-ver=v2; mtu_request 1400`, naming only what changes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(t) = &self.set_type {
            parts.push(format!("type {}", if t.is_empty() { "system" } else { t }));
        }
        for (column, delete, insert) in [
            ("options", &self.options_delete, &self.options_insert),
            (
                "external_ids",
                &self.external_ids_delete,
                &self.external_ids_insert,
            ),
        ] {
            let set: Vec<String> = insert.iter().map(|(k, v)| format!("{k}={v}")).collect();
            // A key deleted and inserted again is a change of value.
            let removed: Vec<&str> = delete
                .iter()
                .filter(|k| !insert.iter().any(|(i, _)| i == *k))
                .map(String::as_str)
                .collect();
            let mut what = Vec::new();
            if !set.is_empty() {
                what.push(format!("set {}", set.join(", ")));
            }
            if !removed.is_empty() {
                what.push(format!("removed {}", removed.join(", ")));
            }
            if !what.is_empty() {
                parts.push(format!("{column} {}", what.join(", ")));
            }
        }
        match self.set_mtu_request {
            Some(Some(m)) => parts.push(format!("mtu_request {m}")),
            Some(None) => parts.push("mtu_request cleared".into()),
            None => {}
        }
        f.write_str(&parts.join("; "))
    }
}

/// Plans the map mutations that make `current` hold `wanted` and lose the
/// `removable` keys not in `wanted`.
fn map_changes(
    current: &BTreeMap<String, String>,
    wanted: &[(String, String)],
    removable: impl Iterator<Item = String>,
) -> (Vec<String>, Vec<(String, String)>) {
    let mut delete = Vec::new();
    let mut insert = Vec::new();
    for (k, v) in wanted {
        match current.get(k) {
            Some(cur) if cur == v => {}
            Some(_) => {
                delete.push(k.clone());
                insert.push((k.clone(), v.clone()));
            }
            None => insert.push((k.clone(), v.clone())),
        }
    }
    for k in removable {
        if current.contains_key(&k) && !wanted.iter().any(|(w, _)| *w == k) && !delete.contains(&k)
        {
            delete.push(k);
        }
    }
    (delete, insert)
}

/// The update that brings `current` to `desired`.
pub fn diff(current: &IfaceState, desired: &Desired<'_>) -> IfaceUpdate {
    let (options_delete, options_insert) = map_changes(
        &current.options,
        desired.options,
        desired.maintained.iter().cloned(),
    );
    let (external_ids_delete, external_ids_insert) = map_changes(
        &current.external_ids,
        &desired.external_ids(),
        std::iter::once(IFACE_ID_VER.to_owned()),
    );
    IfaceUpdate {
        set_type: (current.iface_type != desired.iface_type).then(|| desired.iface_type.to_owned()),
        options_delete,
        options_insert,
        external_ids_delete,
        external_ids_insert,
        set_mtu_request: match desired.mtu_request {
            MtuRequest::Invalid => None,
            MtuRequest::Unset => current.mtu_request.is_some().then_some(None),
            MtuRequest::Value(n) => (current.mtu_request != Some(n)).then_some(Some(n)),
        },
    }
}

/// The state an interface has after `update` is applied to `current`.
pub fn apply(current: &IfaceState, update: &IfaceUpdate) -> IfaceState {
    let mut s = current.clone();
    if let Some(t) = &update.set_type {
        s.iface_type = t.clone();
    }
    for k in &update.options_delete {
        s.options.remove(k);
    }
    for (k, v) in &update.options_insert {
        s.options.entry(k.clone()).or_insert_with(|| v.clone());
    }
    for k in &update.external_ids_delete {
        s.external_ids.remove(k);
    }
    for (k, v) in &update.external_ids_insert {
        s.external_ids.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if let Some(m) = update.set_mtu_request {
        s.mtu_request = m;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(t: &str, opts: &[(&str, &str)], ids: &[(&str, &str)], mtu: Option<i64>) -> IfaceState {
        IfaceState {
            iface_type: t.into(),
            options: opts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            external_ids: ids
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            mtu_request: mtu,
        }
    }

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn an_interface_already_as_desired_needs_nothing() {
        let opts = owned(&[("vif-plug-dummy-option", "value")]);
        let maintained = vec!["vif-plug-dummy-option".to_owned()];
        let d = Desired {
            iface_type: "internal",
            options: &opts,
            maintained: &maintained,
            lport: "lsp1",
            provider_type: "dummy",
            bridge: "br-int",
            mtu_request: MtuRequest::Value(1400),
            iface_id_ver: None,
        };
        let cur = state(
            "internal",
            &[("vif-plug-dummy-option", "value"), ("foreign", "kept")],
            &[
                ("iface-id", "lsp1"),
                ("ovn-plugged", "dummy"),
                ("vif-plug-bridge", "br-int"),
                ("other", "x"),
            ],
            Some(1400),
        );
        assert!(diff(&cur, &d).is_empty());
    }

    #[test]
    fn drift_is_reverted_and_foreign_options_are_kept() {
        let opts = owned(&[("a", "1"), ("b", "2")]);
        let maintained = vec!["a".to_owned(), "b".to_owned(), "old".to_owned()];
        let d = Desired {
            iface_type: "internal",
            options: &opts,
            maintained: &maintained,
            lport: "lsp1",
            provider_type: "dummy",
            bridge: "br-int",
            mtu_request: MtuRequest::Unset,
            iface_id_ver: None,
        };
        let cur = state(
            "system",
            &[("a", "changed"), ("old", "x"), ("foreign", "kept")],
            &[("iface-id", "lsp1")],
            Some(9000),
        );
        let u = diff(&cur, &d);
        assert_eq!(u.set_type.as_deref(), Some("internal"));
        assert_eq!(u.options_delete, ["a", "old"]);
        assert_eq!(u.options_insert, owned(&[("a", "1"), ("b", "2")]));
        assert_eq!(
            u.external_ids_insert,
            owned(&[("ovn-plugged", "dummy"), ("vif-plug-bridge", "br-int")])
        );
        assert_eq!(u.set_mtu_request, Some(None));
        assert_eq!(
            u.to_string(),
            "type internal; options set a=1, b=2, removed old; external_ids set ovn-plugged=dummy, vif-plug-bridge=br-int; mtu_request cleared"
        );
        let after = apply(&cur, &u);
        assert_eq!(
            after.options.get("foreign").map(String::as_str),
            Some("kept")
        );
        assert!(diff(&after, &d).is_empty());
    }

    #[test]
    fn iface_id_ver_is_copied_updated_and_removed_when_withdrawn() {
        let maintained = Vec::new();
        let d = |ver: Option<&'static str>| Desired {
            iface_type: "",
            options: &[],
            maintained: &maintained,
            lport: "lsp1",
            provider_type: "dummy",
            bridge: "br-int",
            mtu_request: MtuRequest::Unset,
            iface_id_ver: ver,
        };
        let ids = [
            ("iface-id", "lsp1"),
            ("ovn-plugged", "dummy"),
            ("vif-plug-bridge", "br-int"),
            ("owner", "x"),
        ];
        let cur = state("", &[], &ids, None);
        let u = diff(&cur, &d(Some("v1")));
        assert_eq!(u.external_ids_insert, owned(&[("iface-id-ver", "v1")]));
        assert!(u.external_ids_delete.is_empty());
        let v1 = apply(&cur, &u);
        let u = diff(&v1, &d(Some("v2")));
        assert_eq!(u.external_ids_delete, ["iface-id-ver"]);
        assert_eq!(u.external_ids_insert, owned(&[("iface-id-ver", "v2")]));
        let u = diff(&v1, &d(None));
        assert_eq!(u.external_ids_delete, ["iface-id-ver"]);
        assert!(u.external_ids_insert.is_empty());
        let withdrawn = apply(&v1, &u);
        assert_eq!(
            withdrawn.external_ids.get("owner").map(String::as_str),
            Some("x")
        );
        assert!(diff(&withdrawn, &d(None)).is_empty());
    }

    #[test]
    fn an_unusable_mtu_leaves_the_interface_as_it_is() {
        let maintained = Vec::new();
        let d = |mtu| Desired {
            iface_type: "",
            options: &[],
            maintained: &maintained,
            lport: "lsp1",
            provider_type: "dummy",
            bridge: "br-int",
            mtu_request: mtu,
            iface_id_ver: None,
        };
        let ids = [
            ("iface-id", "lsp1"),
            ("ovn-plugged", "dummy"),
            ("vif-plug-bridge", "br-int"),
        ];
        let cur = state("", &[], &ids, Some(9000));
        assert!(diff(&cur, &d(MtuRequest::Invalid)).is_empty());
        assert_eq!(
            diff(&cur, &d(MtuRequest::Unset)).set_mtu_request,
            Some(None)
        );
        assert_eq!(
            diff(&cur, &d(MtuRequest::Value(1500))).set_mtu_request,
            Some(Some(1500))
        );
        assert!(diff(&cur, &d(MtuRequest::Value(9000))).is_empty());
    }
}
