//! The `representor` provider: the table fed from the kernel, and the
//! answers to the host.

use crate::message::{consts::*, DevlinkMessage};
use crate::options;
use crate::port::DevlinkPort;
use crate::port::Flavour;
use crate::socket::{DevlinkSocket, Drained, OpenError};
use crate::table::PortTable;
use crate::{replay, sysfs};
use std::ffi::CStr;
use std::path::PathBuf;
use vif_plug_abi::sdk::{Host, InitError, PortIn, PortOut, Provider};

const EIO: i32 = 5;
const ENODEV: i32 = 19;

/// Configuration keys (`--provider-config representor:KEY=VALUE`).
pub mod config {
    /// Root of sysfs for the PF MAC fallback (default `/sys`).
    pub const SYSFS_ROOT: &str = "sysfs-root";
    /// A file of recorded devlink messages to use instead of the kernel.
    pub const REPLAY: &str = "replay";
}

/// The provider's state: the port table and where it is fed from.
pub struct Representor {
    table: PortTable,
    /// `None` when fed from a replay file.
    socket: Option<DevlinkSocket>,
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
        if let Some(path) = host.config().get(config::REPLAY) {
            let messages = replay::load(path.as_ref()).map_err(|e| InitError::new(EIO, e))?;
            log::info!(
                "devlink: using {} recorded message(s) from {path} instead of the kernel",
                messages.len()
            );
            let mut provider = Representor {
                table: PortTable::new(),
                socket: None,
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
        let mut provider = Representor {
            table: PortTable::new(),
            socket: Some(socket),
            sysfs_root,
        };
        provider.load_dump().map_err(|e| InitError::new(EIO, e))?;
        Ok(provider)
    }

    fn run(&mut self) -> bool {
        let Some(socket) = self.socket.as_mut() else {
            return false;
        };
        match socket.drain() {
            Ok(Drained::Messages(messages)) => {
                let changed = messages
                    .iter()
                    .fold(false, |changed, m| apply(&mut self.table, m) | changed);
                if changed {
                    // A physical port may have appeared.
                    self.apply_sysfs_fallback();
                }
                changed
            }
            Ok(Drained::Overflow) => {
                log::warn!("devlink: events were lost (socket overflow); dumping the ports again");
                match self.load_dump() {
                    Ok(()) => true,
                    Err(e) => {
                        log::error!("{e}");
                        false
                    }
                }
            }
            Err(e) => {
                log::error!("{e}");
                false
            }
        }
    }

    fn prepare_create(&mut self, port: &PortIn<'_>) -> Option<PortOut> {
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
