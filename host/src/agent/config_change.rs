//! Following the settings of the local `Open_vSwitch` row, as
//! ovn-controller does: the Southbound remote, the chassis name, the
//! integration bridge, `dpdk_initialized`, the hostname and the
//! Southbound's inactivity probe (flags override them).

use super::{
    local_view, options, poster, probe, rows, system_hostname, Agent, Event, CONNECT_TIMEOUT,
};
use crate::ovsdb::client::ClientConfig;
use crate::ovsdb::remote;
use crate::ovsdb::Remote;

impl Agent {
    /// Settings from the Open_vSwitch row (unless overridden by flags).
    pub(super) fn on_config_change(&mut self) {
        let cfg = self.local.view().config(self.opts.chassis.as_deref());
        let sb_remote = match &self.opts.sb_remote {
            Some(r) => Some((r.clone(), "--ovnsb-remote")),
            None => match cfg.ovn_remote.as_deref().map(remote::parse_list) {
                Some(Ok(r)) => Some((r, "external_ids:ovn-remote")),
                Some(Err(e)) => {
                    let keep = if self.sb.client().is_some() {
                        ": keeping the Southbound remote(s) in use"
                    } else {
                        ""
                    };
                    log::error!("external_ids:ovn-remote: {e}{keep}");
                    return self.on_settings_other_than_the_remote(cfg.clone());
                }
                None => None,
            },
        };
        match sb_remote {
            Some((remotes, source)) => {
                let tls = self.opts.tls.clone();
                let make = move |remotes: Vec<Remote>| ClientConfig {
                    label: "southbound".into(),
                    database: "OVN_Southbound".into(),
                    // Set right below, once the remotes are in place.
                    probe_interval: None,
                    remotes,
                    tls,
                    connect_timeout: CONNECT_TIMEOUT,
                    shuffle_remotes: true,
                    required: rows::SB_REQUIRED,
                };
                let update =
                    self.sb
                        .set_remotes(remotes, source, make, poster(&self.tx, Event::Sb));
                self.ports.mark_many(update.lports);
            }
            None if self.sb.client().is_none() => log::warn!(
                "no Southbound remote: set external_ids:ovn-remote or pass --ovnsb-remote"
            ),
            None if self.ovn_remote.is_some() => log::warn!(
                "external_ids:ovn-remote was removed: keeping the Southbound remote(s) in use"
            ),
            None => {}
        }
        self.on_settings_other_than_the_remote(cfg);
    }

    /// The rest of [`Agent::on_config_change`], also when the remote is
    /// unusable.
    fn on_settings_other_than_the_remote(&mut self, cfg: local_view::OvsConfig) {
        self.ovn_remote = cfg.ovn_remote.clone();
        self.follow_probe_setting(&cfg);
        let name = self
            .opts
            .chassis
            .clone()
            .or(cfg.system_id)
            .unwrap_or_default();
        self.sb.set_chassis_name(name);
        self.hostname_key = cfg.hostname.clone();
        self.sb
            .set_local_hostname(cfg.hostname.clone().or_else(system_hostname));
        let bridge = self
            .opts
            .bridge
            .clone()
            .or(cfg.ovn_bridge)
            .unwrap_or_else(|| options::DEFAULT_BRIDGE.into());
        let first = self.bridges.current.is_empty();
        if self.bridges.set(bridge) {
            if first {
                log::info!("integration bridge: {}", self.bridges.current);
            } else {
                log::info!(
                    "integration bridge changed to {}: ports plugged on {} will be moved there",
                    self.bridges.current,
                    self.bridges
                        .former
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            self.ports.forget_applied();
            self.mark_everything();
        }
        // DPDK becoming available can change providers' answers.
        if self.dpdk.is_some_and(|d| d != cfg.dpdk_initialized) {
            self.ports.forget_applied();
            self.mark_everything();
        }
        self.dpdk = Some(cfg.dpdk_initialized);
    }

    /// Applies the Southbound probe interval the flags and the
    /// `Open_vSwitch` row ask for (see [`probe`]), saying so when it
    /// changes.
    fn follow_probe_setting(&mut self, cfg: &local_view::OvsConfig) {
        let flag = self.opts.probe_interval;
        let Some(sb) = self.sb.client() else {
            return;
        };
        let ext = cfg
            .remote_probe_interval
            .as_ref()
            .map(|(k, v)| (k.as_str(), v.as_str()));
        let (setting, complaint) = probe::southbound(flag, ext, sb.remotes());
        if complaint != self.probe_complaint {
            if let Some(c) = &complaint {
                log::warn!("{c}");
            }
            self.probe_complaint = complaint;
        }
        if self.sb_probe.as_ref() != Some(&setting) {
            log::info!("southbound: inactivity probe {setting}");
            sb.set_probe_interval(setting.interval);
            self.sb_probe = Some(setting);
        }
    }
}
