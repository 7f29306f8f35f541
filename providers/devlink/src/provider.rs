//! The `representor` provider: the table fed from the kernel, and the
//! answers to the host.

use crate::message::{consts::*, DevlinkMessage};
use crate::options;
use crate::port::DevlinkPort;
use crate::socket::{DevlinkSocket, Drained, OpenError};
use crate::table::PortTable;
use std::ffi::CStr;
use vif_plug_abi::sdk::{Host, InitError, PortIn, PortOut, Provider};

const EIO: i32 = 5;
const ENODEV: i32 = 19;

/// The provider's state: the port table and where it is fed from.
pub struct Representor {
    table: PortTable,
    socket: DevlinkSocket,
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
        let messages = self.socket.dump_ports()?;
        let mut table = PortTable::new();
        for m in &messages {
            apply(&mut table, m);
        }
        log::info!("devlink: {} port(s) known", table.len());
        self.table = table;
        Ok(())
    }
}

impl Provider for Representor {
    const TYPE: &'static CStr = c"representor";

    fn init(_host: &Host<'_>) -> Result<Self, InitError> {
        let mut socket = DevlinkSocket::open().map_err(|e| match e {
            OpenError::Unavailable(m) => InitError::new(ENODEV, m),
            OpenError::Failed(m) => InitError::new(EIO, m),
        })?;
        // Subscribe before dumping, so no event falls between the two.
        socket.subscribe().map_err(|e| InitError::new(EIO, e))?;
        let mut provider = Representor {
            table: PortTable::new(),
            socket,
        };
        provider.load_dump().map_err(|e| InitError::new(EIO, e))?;
        Ok(provider)
    }

    fn run(&mut self) -> bool {
        match self.socket.drain() {
            Ok(Drained::Messages(messages)) => messages
                .iter()
                .fold(false, |changed, m| apply(&mut self.table, m) | changed),
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
