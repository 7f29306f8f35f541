//! The `representor` provider: the table fed from the kernel (or a replay
//! file), and the answers to the host.

use crate::links::{LinkDrain, LinkEvent, LinkSocket};
use crate::message::{consts::*, DevlinkMessage};
use crate::options;
use crate::port::{DevlinkPort, Flavour};
use crate::renames::{self, PendingRenames};
use crate::socket::{DevlinkSocket, Drained, OpenError};
use crate::table::PortTable;
use crate::{replay, sysfs};
use std::ffi::CStr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use vif_plug_abi::sdk::{Host, InitError, PortIn, PortOut, Provider};

const EINVAL: i32 = 22;
const EIO: i32 = 5;
const ENODEV: i32 = 19;

/// Configuration keys (`--provider-config representor:KEY=VALUE`).
pub mod config {
    /// Root of sysfs for the PF MAC fallback (default `/sys`).
    pub const SYSFS_ROOT: &str = "sysfs-root";
    /// A file of recorded devlink messages to use instead of the kernel.
    pub const REPLAY: &str = "replay";
    /// How long to wait for udev to rename a new representor, in ms
    /// (default 3000).
    pub const RENAME_TIMEOUT_MS: &str = "rename-timeout-ms";
}

/// The provider's state: the port table and where it is fed from.
pub struct Representor {
    table: PortTable,
    /// `None` when fed from a replay file.
    socket: Option<DevlinkSocket>,
    /// Netdev renames (from the kernel, even with a replay file); `None`
    /// when unavailable.
    links: Option<LinkSocket>,
    pending: PendingRenames,
    rename_timeout: Duration,
    sysfs_root: PathBuf,
    /// Events were lost and the last dump failed: dump again.
    needs_dump: bool,
    /// A change seen outside `run` (in `prepare`), for `run` to report.
    unreported_change: bool,
}

/// Applies one devlink message to the table; true if lookups changed.
pub fn apply(table: &mut PortTable, msg: &DevlinkMessage) -> bool {
    let port = match DevlinkPort::from_attrs(&msg.attrs) {
        Ok(p) => p,
        Err(e) => {
            log::warn!("ignoring a devlink message: {e}");
            return false;
        }
    };
    match msg.cmd {
        CMD_PORT_NEW => table.upsert(port),
        CMD_PORT_DEL => table.remove(&port.key),
        _ => false,
    }
}

impl Representor {
    /// A representor still under its kernel name will be renamed by udev:
    /// hold it back until then.
    fn note_kernel_name(&mut self, msg: &DevlinkMessage, now: Instant) {
        if msg.cmd != CMD_PORT_NEW {
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

    /// Applies queued devlink events; true if lookups changed.
    fn drain_devlink(&mut self) -> bool {
        let Some(socket) = self.socket.as_mut() else {
            return false;
        };
        match socket.drain() {
            Ok(Drained::Messages(messages)) => {
                let now = Instant::now();
                let mut changed = false;
                for m in &messages {
                    self.note_kernel_name(m, now);
                    changed |= apply(&mut self.table, m);
                }
                if changed {
                    // A physical port may have appeared.
                    changed |= self.apply_sysfs_fallback();
                }
                changed
            }
            Ok(Drained::Overflow) => {
                log::warn!("devlink: events were lost (socket overflow); dumping the ports again");
                self.needs_dump = true;
                false
            }
            Err(e) => {
                log::error!("{e}; dumping the ports again");
                self.needs_dump = true;
                false
            }
        }
    }

    /// Applies queued netdev renames; true if lookups changed.
    fn drain_links(&mut self) -> bool {
        let Some(links) = self.links.as_mut() else {
            return false;
        };
        match links.drain() {
            Ok(LinkDrain::Events(events)) => events.iter().fold(false, |changed, e| {
                changed
                    | match e {
                        LinkEvent::Named { ifindex, name } => {
                            self.table.rename(*ifindex, name) | self.pending.named(*ifindex, name)
                        }
                        LinkEvent::Removed { ifindex } => self.pending.done(*ifindex),
                    }
            }),
            Ok(LinkDrain::Overflow) => {
                log::warn!(
                    "rtnetlink: events were lost (socket overflow); dumping the ports again"
                );
                self.needs_dump = true;
                false
            }
            Err(e) => {
                log::error!("{e}");
                false
            }
        }
    }

    fn load_dump(&mut self) -> Result<(), String> {
        let Some(socket) = self.socket.as_mut() else {
            return Ok(());
        };
        let messages = socket.dump_ports()?;
        self.load(&messages);
        Ok(())
    }

    /// Replaces the table with `messages` (a dump, or a replay).
    fn load(&mut self, messages: &[DevlinkMessage]) {
        let mut table = PortTable::new();
        let now = Instant::now();
        for m in messages {
            if self.socket.is_some() {
                self.note_kernel_name(m, now);
            }
            apply(&mut table, m);
        }
        self.table = table;
        self.apply_sysfs_fallback();
        if self.table.is_empty() {
            log::warn!(
                "devlink reports no port: no devlink-capable NIC driver is loaded (yet); representors will be found when they appear"
            );
        } else {
            log::info!("devlink: {} port(s) known", self.table.len());
        }
    }

    /// For each physical port, the host PF MAC sysfs reports, used where
    /// devlink reports none (physical port N carries PF N). True if a
    /// lookup changed.
    fn apply_sysfs_fallback(&mut self) -> bool {
        let physical: Vec<_> = self
            .table
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
                    changed |= self.table.set_fallback_pf_mac(&key.bus, &key.dev, pf, mac);
                }
                Ok(None) => {}
                Err(e) => log::warn!("sysfs fallback: {e}"),
            }
        }
        changed
    }

    /// Everything `run` does; also called from `prepare`, whose result is
    /// then kept for the next `run` to report.
    fn refresh(&mut self) -> bool {
        let mut changed = self.drain_devlink();
        changed |= self.drain_links();
        if self.needs_dump {
            match self.load_dump() {
                Ok(()) => {
                    self.needs_dump = false;
                    changed = true;
                }
                Err(e) => log::error!("{e}; will try again"),
            }
        }
        changed | self.pending.expire(Instant::now())
    }
}

impl Provider for Representor {
    const TYPE: &'static CStr = c"representor";

    fn init(host: &Host<'_>) -> Result<Self, InitError> {
        let sysfs_root = PathBuf::from(host.config().get(config::SYSFS_ROOT).unwrap_or("/sys"));
        let rename_timeout = match host.config().get(config::RENAME_TIMEOUT_MS) {
            None => Duration::from_secs(3),
            Some(v) => v.parse().map(Duration::from_millis).map_err(|_| {
                InitError::new(
                    EINVAL,
                    format!(
                        "{}={v:?} is not a number of milliseconds",
                        config::RENAME_TIMEOUT_MS
                    ),
                )
            })?,
        };
        let mut provider = Representor {
            table: PortTable::new(),
            socket: None,
            links: None,
            pending: PendingRenames::default(),
            rename_timeout,
            sysfs_root,
            needs_dump: false,
            unreported_change: false,
        };
        // Renames come from rtnetlink in both modes: a replay file stands in
        // for devlink only, and its representors may be real netdevs.
        provider.links = LinkSocket::open()
            .map_err(|e| {
                log::warn!("rtnetlink unavailable ({e}); netdev renames will not be followed")
            })
            .ok();
        if let Some(path) = host.config().get(config::REPLAY) {
            let messages = replay::load(path.as_ref()).map_err(|e| InitError::new(EIO, e))?;
            log::info!(
                "devlink: using {} recorded message(s) from {path} instead of the kernel",
                messages.len()
            );
            provider.load(&messages);
            return Ok(provider);
        }
        let mut socket = DevlinkSocket::open().map_err(|e| match e {
            OpenError::Unavailable(m) => InitError::new(ENODEV, m),
            OpenError::Failed(m) => InitError::new(EIO, m),
        })?;
        // Subscribe before dumping, so no event falls between the two.
        socket.subscribe().map_err(|e| InitError::new(EIO, e))?;
        provider.socket = Some(socket);
        provider.load_dump().map_err(|e| InitError::new(EIO, e))?;
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
        let lookup = match options::parse(|k| port.lport_option(k)) {
            Ok(l) => l,
            Err(e) => {
                log::error!("logical port {lport}: {e}; not plugging it");
                return None;
            }
        };
        let controller = lookup
            .controller
            .map_or("any controller".into(), |c| format!("controller {c}"));
        let found = match self.table.lookup(&lookup) {
            Ok(Some(p)) => p,
            Ok(None) => {
                log::info!(
                    "logical port {lport}: no representor known (yet) for PF {} {:?} on {controller}",
                    lookup.pf_mac,
                    lookup.function
                );
                return None;
            }
            Err(candidates) => {
                log::error!(
                    "logical port {lport}: PF {} {:?} matches several representors ({}); set {} to choose; not plugging it",
                    lookup.pf_mac,
                    lookup.function,
                    candidates.join(", "),
                    options::CONTROLLER
                );
                return None;
            }
        };
        if found
            .netdev_ifindex
            .is_some_and(|i| self.pending.is_pending(i))
        {
            log::info!(
                "logical port {lport}: representor {} is expected to be renamed by udev; waiting",
                found.netdev_name.as_deref().unwrap_or("?")
            );
            return None;
        }
        match &found.netdev_name {
            // A representor is a system interface named after its netdev.
            Some(name) => Some(PortOut::new(name.clone())),
            None => {
                log::info!("logical port {lport}: its representor has no netdev (yet)");
                None
            }
        }
    }
}
