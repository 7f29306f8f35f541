//! The sample ports `check` asks a provider about, as the agent would
//! describe them: the logical port and its options from the Southbound
//! `Port_Binding`, the integration bridge and DPDK facts from the local
//! Open vSwitch database, and for the update path an interface that exists.

use crate::provider::{ExistingIface, PortOutput, PortRequest};

/// The logical ports checked when `--lport` is not given: a short name, and
/// one longer than IFNAMSIZ (16 bytes with its NUL) so that a provider that
/// names interfaces after logical ports shows how it shortens them.
pub const DEFAULT_LPORTS: [&str; 2] = ["lsp1", "a-logical-port-name-longer-than-ifnamsiz"];

/// An interface option `check` puts on the existing interface of the
/// UPDATE step, as another program would: the provider must not claim it.
pub const FOREIGN_OPTION: (&str, &str) = ("check-foreign-option", "kept");

/// What the sample ports look like (`check --lport`, `--lport-option`,
/// `--lport-mac`, `--datapath-type`, `--dpdk-initialized`, `--iface-type`,
/// `--iface-option`).
#[derive(Debug, Clone, Default)]
pub struct SamplePorts {
    /// Logical port names; empty means [`DEFAULT_LPORTS`]. The first is the
    /// one updated and removed.
    pub lports: Vec<String>,
    /// Extra logical port options, such as the lookup keys a hardware
    /// provider needs (`vif-plug:representor:pf-mac=...`).
    pub lport_options: Vec<(String, String)>,
    /// The logical ports' MACs (ABI 1.1 `lport_macs`), lowercase.
    pub lport_macs: Vec<String>,
    /// Options of one sample port only (`--lport-option-of LPORT
    /// KEY=VALUE`): (logical port, key, value). One replaces an
    /// `lport_options` entry of the same key for that port.
    pub options_of: Vec<(String, String, String)>,
    /// MACs of one sample port only (`--lport-mac-of LPORT MAC`): a port
    /// with any gets these instead of `lport_macs`.
    pub macs_of: Vec<(String, String)>,
    /// `Bridge.datapath_type` of the integration bridge: "" (system) or
    /// e.g. "netdev".
    pub datapath_type: String,
    /// `Open_vSwitch.dpdk_initialized`.
    pub dpdk_initialized: bool,
    /// The existing interface's type for the UPDATE step, instead of the
    /// one the provider gave on CREATE.
    pub iface_type: Option<String>,
    /// The existing interface's options for the UPDATE step, instead of
    /// those the provider gave on CREATE.
    pub iface_options: Vec<(String, String)>,
}

/// Logical port options `check` sets itself on every sample port.
const OWN_OPTIONS: [&str; 2] = ["vif-plug-type", "requested-chassis"];

impl SamplePorts {
    /// Refuses what the agent could never pass a provider: a key given
    /// twice in one map (OVSDB map keys are unique, and the ABI says so),
    /// an option `check` sets itself, a logical port named twice.
    ///
    /// # Errors
    /// One line naming the option and the value.
    pub fn validate(&self) -> Result<(), String> {
        fn twice<'a>(keys: impl Iterator<Item = &'a str>) -> Option<&'a str> {
            let mut seen = std::collections::HashSet::new();
            keys.into_iter().find(|k| !seen.insert(*k))
        }
        if let Some(k) = twice(self.lport_options.iter().map(|(k, _)| k.as_str())) {
            return Err(format!("--lport-option: key {k:?} given twice"));
        }
        if let Some(k) = self
            .lport_options
            .iter()
            .find(|(k, _)| OWN_OPTIONS.contains(&k.as_str()))
        {
            return Err(format!(
                "--lport-option: {:?} is set by check itself (vif-plug-type to each class's type, requested-chassis to check-chassis)",
                k.0
            ));
        }
        if let Some(k) = twice(self.iface_options.iter().map(|(k, _)| k.as_str())) {
            return Err(format!("--iface-option: key {k:?} given twice"));
        }
        if let Some(l) = twice(self.lports.iter().map(String::as_str)) {
            return Err(format!("--lport: {l:?} given twice"));
        }
        let lports = self.lports();
        let named = self
            .options_of
            .iter()
            .map(|(l, _, _)| ("--lport-option-of", l))
            .chain(self.macs_of.iter().map(|(l, _)| ("--lport-mac-of", l)));
        for (flag, l) in named {
            if !lports.contains(l) {
                return Err(format!(
                    "{flag}: {l:?} is not a sample port (the sample ports are {}; add it with --lport)",
                    lports.join(", ")
                ));
            }
        }
        for (l, k, _) in &self.options_of {
            if OWN_OPTIONS.contains(&k.as_str()) {
                return Err(format!(
                    "--lport-option-of: {k:?} is set by check itself (vif-plug-type to each class's type, requested-chassis to check-chassis)"
                ));
            }
            if self
                .options_of
                .iter()
                .filter(|(l2, k2, _)| l2 == l && k2 == k)
                .count()
                > 1
            {
                return Err(format!(
                    "--lport-option-of: key {k:?} given twice for {l:?}"
                ));
            }
        }
        Ok(())
    }

    /// The logical port names to check, in order.
    pub fn lports(&self) -> Vec<String> {
        if self.lports.is_empty() {
            DEFAULT_LPORTS.iter().map(|s| (*s).to_owned()).collect()
        } else {
            self.lports.clone()
        }
    }

    /// True when the operator described the existing interface, so the
    /// UPDATE step runs whatever CREATE answered.
    pub fn describes_iface(&self) -> bool {
        self.iface_type.is_some() || !self.iface_options.is_empty()
    }

    /// The request for a port of provider type `type_name` with no
    /// interface yet, as the agent builds it (`vif-plug-type` and
    /// `requested-chassis` set, as ovn-northd copies them from the
    /// Northbound).
    pub fn request(&self, type_name: &str, lport: &str) -> PortRequest {
        let own: Vec<(&str, &str)> = self
            .options_of
            .iter()
            .filter(|(l, _, _)| l == lport)
            .map(|(_, k, v)| (k.as_str(), v.as_str()))
            .collect();
        let shared = self
            .lport_options
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .filter(|(k, _)| !own.iter().any(|(o, _)| o == k));
        let mut req = shared.chain(own.iter().copied()).fold(
            PortRequest::new(lport, "br-int")
                .with_option("vif-plug-type", type_name)
                .with_option("requested-chassis", "check-chassis")
                .with_datapath_type(self.datapath_type.clone()),
            |req, (k, v)| req.with_option(k, v),
        );
        req.bridge.dpdk_initialized = self.dpdk_initialized;
        let macs: Vec<String> = self
            .macs_of
            .iter()
            .filter(|(l, _)| l == lport)
            .map(|(_, m)| m.clone())
            .collect();
        req.lport_macs = if macs.is_empty() {
            self.lport_macs.clone()
        } else {
            macs
        };
        req
    }

    /// The interface that exists for the UPDATE step: named and typed as
    /// the provider's CREATE answer (`created`) unless `--iface-type` says
    /// otherwise, with the answer's options or `--iface-option`'s, plus
    /// [`FOREIGN_OPTION`]. `None` when there is neither an answer nor a
    /// description to build it from.
    pub fn existing_iface(
        &self,
        lport: &str,
        created: Option<&PortOutput>,
    ) -> Option<ExistingIface> {
        if created.is_none() && !self.describes_iface() {
            return None;
        }
        let name = created.map_or_else(|| lport.to_owned(), |o| o.name.clone());
        let iface_type = match (&self.iface_type, created) {
            (Some(t), _) => t.clone(),
            (None, Some(o)) => o.iface_type.clone().unwrap_or_default(),
            (None, None) => String::new(),
        };
        let mut options: Vec<(String, String)> = match created {
            _ if !self.iface_options.is_empty() => self.iface_options.clone(),
            Some(o) => o.options.iter().cloned().collect(),
            None => Vec::new(),
        };
        if !options.iter().any(|(k, _)| k == FOREIGN_OPTION.0) {
            options.push((FOREIGN_OPTION.0.into(), FOREIGN_OPTION.1.into()));
        }
        Some(ExistingIface {
            name,
            iface_type,
            options,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer() -> PortOutput {
        PortOutput {
            name: "eth7".into(),
            iface_type: Some("dpdk".into()),
            options: [("n_rxq".to_owned(), "2".to_owned())].into_iter().collect(),
        }
    }

    #[test]
    fn the_default_ports_are_a_short_and_an_over_long_name() {
        let s = SamplePorts::default();
        assert_eq!(s.lports(), DEFAULT_LPORTS);
        assert!(DEFAULT_LPORTS[1].len() > 15);
        let s = SamplePorts {
            lports: vec!["vm1".into()],
            ..SamplePorts::default()
        };
        assert_eq!(s.lports(), ["vm1"]);
    }

    #[test]
    fn keys_given_twice_and_check_own_options_are_refused() {
        let kv = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let cases: [(SamplePorts, Option<&str>); 6] = [
            (SamplePorts::default(), None),
            (
                SamplePorts {
                    lport_options: vec![kv("a", "1"), kv("b", "1")],
                    iface_options: vec![kv("a", "1")],
                    lports: vec!["vm1".into(), "vm2".into()],
                    ..SamplePorts::default()
                },
                None,
            ),
            (
                SamplePorts {
                    lport_options: vec![kv("a", "1"), kv("a", "2")],
                    ..SamplePorts::default()
                },
                Some("--lport-option: key \"a\" given twice"),
            ),
            (
                SamplePorts {
                    lport_options: vec![kv("vif-plug-type", "other")],
                    ..SamplePorts::default()
                },
                Some("--lport-option: \"vif-plug-type\" is set by check itself"),
            ),
            (
                SamplePorts {
                    iface_options: vec![kv("k", "1"), kv("k", "2")],
                    ..SamplePorts::default()
                },
                Some("--iface-option: key \"k\" given twice"),
            ),
            (
                SamplePorts {
                    lports: vec!["vm1".into(), "vm1".into()],
                    ..SamplePorts::default()
                },
                Some("--lport: \"vm1\" given twice"),
            ),
        ];
        for (s, want) in cases {
            match (s.validate(), want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => assert!(e.starts_with(w), "{e}"),
                (got, want) => panic!("{s:?}: {got:?}, wanted {want:?}"),
            }
        }
    }

    #[test]
    fn a_request_carries_every_sample_fact() {
        let s = SamplePorts {
            lport_options: vec![("vif-plug:representor:vf-num".into(), "3".into())],
            lport_macs: vec!["0a:00:00:00:00:01".into()],
            datapath_type: "netdev".into(),
            dpdk_initialized: true,
            ..SamplePorts::default()
        };
        let r = s.request("devlink", "vm1");
        assert_eq!(r.lport_name, "vm1");
        assert_eq!(
            r.lport_options,
            [
                ("vif-plug-type".to_owned(), "devlink".to_owned()),
                ("requested-chassis".into(), "check-chassis".into()),
                ("vif-plug:representor:vf-num".into(), "3".into()),
            ]
        );
        assert_eq!(r.lport_macs, ["0a:00:00:00:00:01"]);
        assert_eq!(r.bridge.datapath_type, "netdev");
        assert!(r.bridge.dpdk_initialized);
        assert_eq!(r.iface, None);
    }

    #[test]
    fn a_port_of_its_own_gets_its_options_and_macs_and_others_the_shared_ones() {
        let kv = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let s = SamplePorts {
            lports: vec!["vm1".into(), "vm2".into()],
            lport_options: vec![kv("vf", "0"), kv("pf", "p0")],
            lport_macs: vec!["0a:00:00:00:00:99".into()],
            options_of: vec![("vm1".into(), "vf".into(), "1".into())],
            macs_of: vec![("vm1".into(), "0a:00:00:00:00:01".into())],
            ..SamplePorts::default()
        };
        assert_eq!(s.validate(), Ok(()));
        let vm1 = s.request("t", "vm1");
        assert_eq!(&vm1.lport_options[2..], [kv("pf", "p0"), kv("vf", "1")]);
        assert_eq!(vm1.lport_macs, ["0a:00:00:00:00:01"]);
        let vm2 = s.request("t", "vm2");
        assert_eq!(&vm2.lport_options[2..], [kv("vf", "0"), kv("pf", "p0")]);
        assert_eq!(vm2.lport_macs, ["0a:00:00:00:00:99"]);

        let stranger = SamplePorts {
            options_of: vec![("vm9".into(), "vf".into(), "1".into())],
            ..s.clone()
        };
        assert!(stranger.validate().unwrap_err().starts_with(
            "--lport-option-of: \"vm9\" is not a sample port (the sample ports are vm1, vm2"
        ));
        let twice = SamplePorts {
            options_of: vec![
                ("vm1".into(), "vf".into(), "1".into()),
                ("vm1".into(), "vf".into(), "2".into()),
            ],
            ..s
        };
        assert!(twice.validate().is_err());
    }

    /// (iface_type given, iface_options given, CREATE answered) -> the
    /// existing interface's (name, type, options).
    #[test]
    fn the_existing_interface_comes_from_the_answer_or_the_description() {
        let foreign = (FOREIGN_OPTION.0.to_owned(), FOREIGN_OPTION.1.to_owned());
        type Case = (
            Option<&'static str>,
            Vec<(&'static str, &'static str)>,
            bool,
            Option<(
                &'static str,
                &'static str,
                Vec<(&'static str, &'static str)>,
            )>,
        );
        let cases: Vec<Case> = vec![
            (None, vec![], false, None),
            (
                None,
                vec![],
                true,
                Some(("eth7", "dpdk", vec![("n_rxq", "2")])),
            ),
            (
                Some("system"),
                vec![],
                true,
                Some(("eth7", "system", vec![("n_rxq", "2")])),
            ),
            (
                None,
                vec![("k", "v")],
                true,
                Some(("eth7", "dpdk", vec![("k", "v")])),
            ),
            (Some(""), vec![], false, Some(("vm1", "", vec![]))),
            (
                None,
                vec![("k", "v")],
                false,
                Some(("vm1", "", vec![("k", "v")])),
            ),
        ];
        for (iface_type, iface_options, created, want) in cases {
            let s = SamplePorts {
                iface_type: iface_type.map(str::to_owned),
                iface_options: iface_options
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                ..SamplePorts::default()
            };
            let a = answer();
            let got = s.existing_iface("vm1", created.then_some(&a));
            let want = want.map(|(name, t, opts)| ExistingIface {
                name: name.into(),
                iface_type: t.into(),
                options: opts
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .chain(std::iter::once(foreign.clone()))
                    .collect(),
            });
            assert_eq!(got, want, "{iface_type:?} {iface_options:?} {created}");
        }
    }
}
