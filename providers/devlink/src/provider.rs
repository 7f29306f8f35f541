//! The `representor` provider: the table fed from the kernel, and the
//! answers to the host.

use crate::links::{LinkDrain, LinkEvent, LinkSocket};
use crate::message::{consts::*, DevlinkMessage};
use crate::options;
use crate::port::DevlinkPort;
use crate::port::Flavour;
use crate::renames::{self, PendingRenames};
use crate::socket::{DevlinkSocket, Drained, OpenError};
use crate::table::PortTable;
use crate::{replay, sysfs};
use std::ffi::CStr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use vif_plug_abi::sdk::{Host, InitError, PortIn, PortOut, Provider};

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
    /// Netdev renames; `None` when fed from a replay file, or unavailable.
    links: Option<LinkSocket>,
    pending: PendingRenames,
    rename_timeout: Duration,
    sysfs_root: PathBuf,
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
                    // A new representor still under its kernel name will
                    // be renamed by udev: hold it back until then.
                    if m.cmd == CMD_PORT_NEW {
                        if let Ok(p) = DevlinkPort::from_attrs(&m.attrs) {
                            if let (Some(name), Some(i)) = (&p.netdev_name, p.netdev_ifindex) {
                                if renames::kernel_named(&self.sysfs_root, name) {
                                    self.pending.expect(i, now, self.rename_timeout);
                                }
                            }
                        }
                    }
                    changed |= apply(&mut self.table, m);
                }
                if changed {
                    // A physical port may have appeared.
                    self.apply_sysfs_fallback();
                }
                changed
            }
            Ok(Drained::Overflow) => {
                log::warn!("devlink: events were lost (socket overflow); dumping the ports again");
                self.redump()
            }
            Err(e) => {
                log::error!("{e}");
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
                            self.table.rename(*ifindex, name) | self.pending.done(*ifindex)
                        }
                        LinkEvent::Removed { ifindex } => self.pending.done(*ifindex),
                    }
            }),
            Ok(LinkDrain::Overflow) => {
                log::warn!(
                    "rtnetlink: events were lost (socket overflow); dumping the ports again"
                );
                self.redump()
            }
            Err(e) => {
                log::error!("{e}");
                false
            }
        }
    }

    fn redump(&mut self) -> bool {
        match self.load_dump() {
            Ok(()) => true,
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
        for m in messages {
            apply(&mut table, m);
        }
        self.table = table;
        self.apply_sysfs_fallback();
        log::info!("devlink: {} port(s) known", self.table.len());
    }

    /// For each physical port, the host PF MAC sysfs reports, used where
    /// devlink reports none (physical port N carries PF N).
    fn apply_sysfs_fallback(&mut self) {
        let physical: Vec<_> = self
            .table
            .ports()
            .filter(|p| p.flavour == Flavour::Physical)
            .filter_map(|p| Some((p.key.clone(), p.netdev_name.clone()?, p.port_number?)))
            .collect();
        for (key, netdev, number) in physical {
            let Ok(pf) = u16::try_from(number) else {
                continue;
            };
            match sysfs::pf_mac(&self.sysfs_root, &netdev) {
                Ok(Some(mac)) => {
                    log::debug!("sysfs: PF {pf} behind {netdev} has MAC {mac}");
                    self.table
                        .set_fallback_pf_mac(&key.bus, &key.dev, 0, pf, mac);
                }
                Ok(None) => {}
                Err(e) => log::warn!("sysfs fallback: {e}"),
            }
        }
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
                    22,
                    format!(
                        "{}={v:?} is not a number of milliseconds",
                        config::RENAME_TIMEOUT_MS
                    ),
                )
            })?,
        };
        if let Some(path) = host.config().get(config::REPLAY) {
            let messages = replay::load(path.as_ref()).map_err(|e| InitError::new(EIO, e))?;
            log::info!(
                "devlink: using {} recorded message(s) from {path} instead of the kernel",
                messages.len()
            );
            let mut provider = Representor {
                table: PortTable::new(),
                socket: None,
                links: None,
                pending: PendingRenames::default(),
                rename_timeout,
                sysfs_root,
            };
            provider.load(&messages);
            return Ok(provider);
        }
        let mut socket = DevlinkSocket::open().map_err(|e| match e {
            OpenError::Unavailable(m) => InitError::new(ENODEV, m),
            OpenError::Failed(m) => InitError::new(EIO, m),
        })?;
        // Subscribe before dumping, so no event falls between the two.
        socket.subscribe().map_err(|e| InitError::new(EIO, e))?;
        let links = LinkSocket::open()
            .map_err(|e| {
                log::warn!("rtnetlink unavailable ({e}); netdev renames will not be followed")
            })
            .ok();
        let mut provider = Representor {
            table: PortTable::new(),
            socket: Some(socket),
            links,
            pending: PendingRenames::default(),
            rename_timeout,
            sysfs_root,
        };
        provider.load_dump().map_err(|e| InitError::new(EIO, e))?;
        Ok(provider)
    }

    fn run(&mut self) -> bool {
        let mut changed = self.drain_devlink();
        changed |= self.drain_links();
        changed | self.pending.expire(Instant::now())
    }

    fn prepare_create(&mut self, port: &PortIn<'_>) -> Option<PortOut> {
        // Exhaust the non-blocking ways to succeed first: fresh events.
        self.run();
        let lport = port.lport_name();
        let lookup = match options::parse(|k| port.lport_option(k)) {
            Ok(l) => l,
            Err(e) => {
                log::error!("logical port {lport}: {e}; not plugging it");
                return None;
            }
        };
        let Some(found) = self.table.lookup(&lookup) else {
            log::info!(
                "logical port {lport}: no representor known (yet) for PF {} {:?} on controller {}",
                lookup.pf_mac,
                lookup.function,
                lookup.controller
            );
            return None;
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
