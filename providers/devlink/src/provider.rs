//! The `representor` provider: the table fed from the kernel (or a replay
//! file) through a non-blocking [`Channel`], MAC programming, and the
//! answers to the host.

use crate::channel::Channel;
use crate::links::{LinkDrain, LinkEvent, LinkSocket};
use crate::mac::MacAddr;
use crate::message::{consts::*, DevlinkMessage};
use crate::options;
use crate::port::{DevlinkPort, Flavour};
use crate::renames::{self, PendingRenames};
use crate::replay::{PortSetAnswer, ReplayChannel};
use crate::socket::{DevlinkSocket, OpenError};
use crate::view::DevlinkView;
use crate::{replay, sysfs};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use vif_plug_abi::sdk::errno::{EINVAL, EIO, ENODEV};
use vif_plug_abi::sdk::{Host, InitError, PortIn, PortOut, Provider};

/// How long `init` waits for the first dump before carrying on without it
/// (the dump then ends in `run`); well under the agent's default
/// `--provider-timeout` of 1000 ms.
const INIT_DUMP_WAIT: Duration = Duration::from_millis(400);

/// Configuration keys (`--provider-config representor:KEY=VALUE`).
pub mod config {
    /// Root of sysfs for the PF MAC fallback (default `/sys`).
    pub const SYSFS_ROOT: &str = "sysfs-root";
    /// A file of recorded devlink messages to use instead of the kernel.
    pub const REPLAY: &str = "replay";
    /// With `replay`: a file the requests sent are appended to.
    pub const REPLAY_CAPTURE: &str = "replay-capture";
    /// With `replay`: how the replayed kernel answers a MAC `PORT_SET`
    /// (see [`crate::replay::PortSetAnswer`]; default `apply`).
    pub const REPLAY_PORT_SET: &str = "replay-port-set";
    /// How long to wait for udev to rename a new representor, in ms
    /// (default 3000).
    pub const RENAME_TIMEOUT_MS: &str = "rename-timeout-ms";
    /// How long a port dump may take before it is abandoned and retried,
    /// in ms (default 5000).
    pub const DUMP_TIMEOUT_MS: &str = "dump-timeout-ms";
    /// Every key.
    pub const ALL: &[&str] = &[
        SYSFS_ROOT,
        REPLAY,
        REPLAY_CAPTURE,
        REPLAY_PORT_SET,
        RENAME_TIMEOUT_MS,
        DUMP_TIMEOUT_MS,
    ];
}

/// The provider's state: the table, where it is fed from, and the MACs
/// being programmed.
pub struct Representor {
    view: DevlinkView,
    /// Whether the channel is the kernel (not a replay file): only then are
    /// new netdevs checked for a kernel-enumerated name.
    kernel: bool,
    /// Netdev renames (from the kernel, even with a replay file); `None`
    /// when unavailable.
    links: Option<LinkSocket>,
    pending: PendingRenames,
    rename_timeout: Duration,
    sysfs_root: PathBuf,
    /// A change seen outside `run` (in `prepare`), for `run` to report.
    unreported_change: bool,
    /// Which logical port each representor (netdev) is plugged for, from
    /// the interfaces the agent reports and commits: a function's MAC is
    /// only ever set for the logical port that has it.
    owners: HashMap<String, String>,
    /// The last decline said for each logical port: said again only when
    /// it changes (the agent asks again whenever `run` reports a change).
    said: HashMap<String, String>,
}

fn millis(host: &Host<'_>, key: &str, default: u64) -> Result<Duration, InitError> {
    match host.config().get(key) {
        None => Ok(Duration::from_millis(default)),
        Some(v) => v.parse().map(Duration::from_millis).map_err(|_| {
            InitError::new(
                EINVAL,
                format!("{key}={v:?} is not a number of milliseconds"),
            )
        }),
    }
}

impl Representor {
    /// A representor still under its kernel name will be renamed by udev:
    /// hold it back until then.
    fn note_kernel_name(&mut self, msg: &DevlinkMessage, now: Instant) {
        if msg.cmd != CMD_PORT_NEW || !self.kernel {
            return;
        }
        let Ok(p) = DevlinkPort::from_attrs(&msg.attrs) else {
            return;
        };
        if let (Some(name), Some(i)) = (&p.netdev_name, p.netdev_ifindex) {
            if renames::kernel_named(&self.sysfs_root, name) {
                self.pending.expect(i, name, now, self.rename_timeout);
            } else {
                self.pending.named(i, name);
            }
        }
    }

    /// Applies what devlink sent and sends what is due; true if lookups
    /// changed.
    fn poll_devlink(&mut self, now: Instant) -> bool {
        let polled = self.view.poll(now);
        for m in &polled.applied {
            self.note_kernel_name(m, now);
        }
        if polled.table_changed {
            // A physical port may have appeared, or a dump replaced the
            // table.
            self.apply_sysfs_fallback();
        }
        polled.changed
    }

    /// Applies queued netdev renames; true if lookups changed.
    fn drain_links(&mut self, now: Instant) -> bool {
        let Some(links) = self.links.as_mut() else {
            return false;
        };
        match links.drain() {
            Ok(LinkDrain::Events(events)) => events.iter().fold(false, |changed, e| {
                changed
                    | match e {
                        LinkEvent::Named { ifindex, name } => {
                            self.view.table_mut().rename(*ifindex, name)
                                | self.pending.named(*ifindex, name)
                        }
                        LinkEvent::Removed { ifindex } => self.pending.done(*ifindex),
                    }
            }),
            Ok(LinkDrain::Overflow) => {
                log::warn!(
                    "rtnetlink: events were lost (socket overflow); dumping the ports again"
                );
                self.view.resync(now);
                false
            }
            Err(e) => {
                log::error!("{e}");
                false
            }
        }
    }

    /// For each physical port, the host PF MAC sysfs reports, used where
    /// devlink reports none (physical port N carries PF N). True if a
    /// lookup changed.
    fn apply_sysfs_fallback(&mut self) -> bool {
        let physical: Vec<_> = self
            .view
            .table()
            .ports()
            .filter(|p| p.flavour == Flavour::Physical)
            .filter_map(|p| Some((p.key.clone(), p.netdev_name.clone()?, p.port_number?)))
            .collect();
        let mut changed = false;
        for (key, netdev, number) in physical {
            let Ok(pf) = u16::try_from(number) else {
                continue;
            };
            match sysfs::pf_mac(&self.sysfs_root, &netdev) {
                Ok(Some(mac)) => {
                    changed |= self
                        .view
                        .table_mut()
                        .set_fallback_pf_mac(&key.bus, &key.dev, pf, mac);
                }
                Ok(None) => {}
                Err(e) => log::warn!("sysfs fallback: {e}"),
            }
        }
        changed
    }

    /// Everything `run` does, never blocking; also called from `prepare`,
    /// whose result is then kept for the next `run` to report.
    fn refresh(&mut self) -> bool {
        let now = Instant::now();
        let mut changed = self.poll_devlink(now);
        changed |= self.drain_links(now);
        changed | self.pending.expire(now)
    }

    /// The MAC the function of `found` should have for `port`, if it is
    /// to be programmed: a PCI VF or SF, the option not `false`, and a
    /// logical port MAC given (by a host of ABI 1.1 or later).
    fn wanted_mac(
        &self,
        port: &PortIn<'_>,
        found: &DevlinkPort,
    ) -> Result<Option<MacAddr>, String> {
        if !matches!(found.flavour, Flavour::PciVf | Flavour::PciSf)
            || !options::program_mac(|k| port.lport_option(k))?
        {
            return Ok(None);
        }
        let Some(first) = port.lport_macs().next() else {
            return Ok(None);
        };
        let mac: MacAddr = first
            .parse()
            .map_err(|e| format!("its MAC cannot be given to the function: {e}"))?;
        if mac.is_multicast() {
            return Err(format!(
                "its MAC {mac} is a group address, which a function cannot have"
            ));
        }
        Ok(Some(mac))
    }
}

impl Representor {
    /// The representor's netdev for `port`, or the level and reason to
    /// decline (see [`Provider::prepare_create`]).
    fn answer(&mut self, port: &PortIn<'_>) -> Result<String, (log::Level, String)> {
        use log::Level::{Error, Info};
        let lport = port.lport_name();
        let lookup = options::parse(|k| port.lport_option(k)).map_err(|e| (Error, e))?;
        if !self.view.sync().complete() {
            return Err((Info, "the devlink port dump has not ended yet".into()));
        }
        let found = match self.view.table().lookup(&lookup) {
            Ok(Some(p)) => p.clone(),
            Ok(None) => return Err((Info, self.view.table().why_not_found(&lookup))),
            Err(candidates) => {
                let controllers: std::collections::BTreeSet<&str> = candidates
                    .iter()
                    .filter_map(|c| c.split(", controller ").nth(1))
                    .collect();
                let hint = if controllers.len() > 1 && lookup.controller.is_none() {
                    format!("; set {} to choose", options::CONTROLLER)
                } else {
                    "; the NIC reports the same function twice".into()
                };
                return Err((
                    Error,
                    format!(
                        "{} of the PF with MAC {} matches several representors: {}{hint}",
                        lookup.function,
                        lookup.pf_mac,
                        candidates.join(" and ")
                    ),
                ));
            }
        };
        if found
            .netdev_ifindex
            .is_some_and(|i| self.pending.is_pending(i))
        {
            let name = found.netdev_name.as_deref().unwrap_or("?");
            return Err((
                Info,
                format!("representor {name} is expected to be renamed by udev; waiting"),
            ));
        }
        let Some(name) = found.netdev_name.clone() else {
            return Err((
                Info,
                format!("its representor {} has no netdev (yet)", found.path()),
            ));
        };
        let ours = port.iface().is_some_and(|i| i.name == name);
        if let Some(owner) = self.owners.get(&name).filter(|o| *o != lport && !ours) {
            return Err((
                Info,
                format!("representor {name} is plugged for logical port {owner}: one logical port per function"),
            ));
        }
        let Some(mac) = self.wanted_mac(port, &found).map_err(|e| (Error, e))? else {
            return Ok(name);
        };
        let mut ready = self.view.ensure_mac(&found, mac, Instant::now());
        if ready.is_err() {
            // The kernel handles a PORT_SET within the send call, so its
            // answer and notification may already be queued.
            self.unreported_change |= self.refresh();
            if let Some(p) = self.view.table().get(&found.key).cloned() {
                ready = self.view.ensure_mac(&p, mac, Instant::now());
            }
        }
        ready
            .map(|()| name.clone())
            .map_err(|why| (Info, format!("representor {name}: {why}")))
    }
}

impl Provider for Representor {
    const TYPE: &'static str = "representor";

    fn init(host: &Host<'_>) -> Result<Self, InitError> {
        // A mistyped key would silently leave its default in force.
        for (key, _) in host.config().iter() {
            if !config::ALL.contains(&key) {
                return Err(InitError::new(
                    EINVAL,
                    format!(
                        "unknown configuration key {key:?} (known: {})",
                        config::ALL.join(", ")
                    ),
                ));
            }
        }
        let replay_only = [config::REPLAY_CAPTURE, config::REPLAY_PORT_SET];
        if host.config().get(config::REPLAY).is_none() {
            if let Some(k) = replay_only.iter().find(|k| host.config().get(k).is_some()) {
                return Err(InitError::new(
                    EINVAL,
                    format!("{k} applies only with {}=FILE", config::REPLAY),
                ));
            }
        }
        let sysfs_root = PathBuf::from(host.config().get(config::SYSFS_ROOT).unwrap_or("/sys"));
        let rename_timeout = millis(host, config::RENAME_TIMEOUT_MS, 3000)?;
        let dump_timeout = millis(host, config::DUMP_TIMEOUT_MS, 5000)?;
        let (channel, kernel): (Box<dyn Channel>, bool) = match host.config().get(config::REPLAY) {
            Some(path) => {
                let messages = replay::load(path.as_ref()).map_err(|e| InitError::new(EIO, e))?;
                let answer: PortSetAnswer = host
                    .config()
                    .get(config::REPLAY_PORT_SET)
                    .unwrap_or("apply")
                    .parse()
                    .map_err(|e| {
                        InitError::new(EINVAL, format!("{}: {e}", config::REPLAY_PORT_SET))
                    })?;
                let capture = host
                    .config()
                    .get(config::REPLAY_CAPTURE)
                    .map(std::path::Path::new);
                log::info!(
                    "devlink: using {} recorded message(s) from {path} instead of the kernel",
                    messages.len()
                );
                let channel = ReplayChannel::new(&messages, capture, answer)
                    .map_err(|e| InitError::new(EIO, e))?;
                (Box::new(channel), false)
            }
            None => {
                let mut socket = DevlinkSocket::open().map_err(|e| match e {
                    OpenError::Unavailable(m) => InitError::new(ENODEV, m),
                    OpenError::Failed(m) => InitError::new(EIO, m),
                })?;
                // Subscribe before dumping, so no event falls between the two.
                socket.subscribe().map_err(|e| InitError::new(EIO, e))?;
                (Box::new(socket), true)
            }
        };
        let now = Instant::now();
        let mut provider = Representor {
            view: DevlinkView::new(channel, dump_timeout, now),
            kernel,
            // Renames come from rtnetlink in both modes: a replay file
            // stands in for devlink only, and its representors may be real
            // netdevs.
            links: LinkSocket::open()
                .map_err(|e| {
                    log::warn!("rtnetlink unavailable ({e}); netdev renames will not be followed")
                })
                .ok(),
            pending: PendingRenames::default(),
            rename_timeout,
            sysfs_root,
            unreported_change: false,
            owners: HashMap::new(),
            said: HashMap::new(),
        };
        // The first dump, briefly waited for; a slow one ends in `run`.
        let deadline = now + INIT_DUMP_WAIT;
        loop {
            provider.refresh();
            if provider.view.sync().complete() {
                break;
            }
            if let Some(e) = provider.view.sync().last_error() {
                return Err(InitError::new(EIO, e.to_owned()));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                log::warn!(
                    "devlink: the port dump has not ended within {} ms; carrying on, and representors are declined until it ends",
                    INIT_DUMP_WAIT.as_millis()
                );
                break;
            }
            provider.view.wait(left);
        }
        Ok(provider)
    }

    fn run(&mut self) -> bool {
        let changed = self.refresh();
        changed | std::mem::take(&mut self.unreported_change)
    }

    fn prepare_create(&mut self, port: &PortIn<'_>) -> Option<PortOut> {
        // Exhaust the non-blocking ways to succeed first: fresh events. A
        // change found here may unblock other ports: `run` reports it.
        self.unreported_change |= self.refresh();
        let lport = port.lport_name();
        let answer = self.answer(port);
        match &answer {
            Ok(name) => {
                self.said.remove(lport);
                if port.iface().is_some_and(|i| i.name == name) {
                    self.owners.insert(name.clone(), lport.to_owned());
                }
            }
            Err((level, why)) => {
                let tail = match port.iface() {
                    Some(i) => format!("; interface {} is left as it is", i.name),
                    None => "; not plugging it".into(),
                };
                let line = format!("logical port {lport}: {why}{tail}");
                if self.said.get(lport) == Some(&line) {
                    log::debug!("{line}");
                } else {
                    log::log!(*level, "{line}");
                    self.said.insert(lport.to_owned(), line);
                }
            }
        }
        // A representor is a system interface named after its netdev.
        answer.ok().map(PortOut::new)
    }

    fn finish_create(&mut self, port: &PortIn<'_>, out: &PortOut) {
        self.owners
            .insert(out.name.clone(), port.lport_name().to_owned());
    }

    fn finish_remove(&mut self, port: &PortIn<'_>) {
        let lport = port.lport_name();
        let before = self.owners.len();
        self.owners.retain(|_, l| l != lport);
        self.said.remove(lport);
        // A representor freed may be what another logical port waits for.
        self.unreported_change |= self.owners.len() != before;
    }

    fn describe(&mut self) -> Vec<String> {
        self.unreported_change |= self.refresh();
        let mut ports: Vec<&DevlinkPort> = self.view.table().ports().collect();
        ports.sort_by(|a, b| a.key.cmp(&b.key));
        let mut lines = vec![format!(
            "devlink ports: {}{}",
            ports.len(),
            match (self.view.sync().complete(), self.view.sync().dumping()) {
                (false, _) => ", first dump not ended",
                (true, true) => ", dumping again",
                (true, false) => "",
            }
        )];
        for p in ports {
            let mut line = format!("{} {:?}", p.path(), p.flavour);
            for (what, v) in [
                ("controller", Some(p.controller.to_string())),
                ("external", p.external.map(|e| e.to_string())),
                ("pf", p.pf.map(|v| v.to_string())),
                ("vf", p.vf.map(|v| v.to_string())),
                ("sf", p.sf.map(|v| v.to_string())),
                ("netdev", p.netdev_name.clone()),
                ("function-mac", p.hw_addr.map(|m| m.to_string())),
                (
                    "pf-mac",
                    self.view.table().pf_mac_of(p).map(|m| m.to_string()),
                ),
            ] {
                if let Some(v) = v {
                    line += &format!(" {what} {v}");
                }
            }
            if let Some(s) = self.view.programming(&p.key) {
                line += &format!(" programming {s:?}");
            }
            lines.push(line);
        }
        lines
    }
}
