//! A devlink port, as the table keeps it, built from a message's
//! attributes.

use crate::mac::MacAddr;
use crate::message::{consts::*, FunctionAttr, PortAttr};

/// What identifies a devlink port: its instance (bus/device) and index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortKey {
    /// Bus, e.g. "pci".
    pub bus: String,
    /// Device, e.g. "0000:03:00.0".
    pub dev: String,
    /// Port index.
    pub index: u32,
}

/// Port flavours the provider cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavour {
    /// A physical (uplink) port.
    Physical,
    /// The representor of a host PCI PF.
    PciPf,
    /// The representor of a host PCI VF.
    PciVf,
    /// The representor of a host PCI subfunction.
    PciSf,
    /// Any other flavour, or none given.
    Other(Option<u16>),
}

/// One devlink port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevlinkPort {
    /// Identity.
    pub key: PortKey,
    /// Flavour.
    pub flavour: Flavour,
    /// Netdev name, if the port has a netdev.
    pub netdev_name: Option<String>,
    /// Netdev ifindex.
    pub netdev_ifindex: Option<u32>,
    /// Physical port number.
    pub port_number: Option<u32>,
    /// PCI PF number.
    pub pf: Option<u16>,
    /// PCI VF number.
    pub vf: Option<u16>,
    /// PCI SF number.
    pub sf: Option<u32>,
    /// Controller number (0, the local host, when absent).
    pub controller: u32,
    /// Whether the function is on an external controller (a host, not
    /// the DPU itself): `DEVLINK_ATTR_PORT_EXTERNAL`, reported for PCI
    /// PF/VF/SF ports since Linux 5.10; `None` where the kernel does not
    /// report it.
    pub external: Option<bool>,
    /// The port function's hardware address (for a PF: the host's MAC).
    pub hw_addr: Option<MacAddr>,
}

impl DevlinkPort {
    /// Builds a port from the attributes of a PORT_NEW/PORT_DEL message.
    /// Bus, device and index are required; everything else may be absent
    /// (the kernel sends a bare PORT_NEW before a PORT_DEL).
    pub fn from_attrs(attrs: &[PortAttr]) -> Result<DevlinkPort, String> {
        let (mut bus, mut dev, mut index) = (None, None, None);
        let mut p = DevlinkPort {
            key: PortKey {
                bus: String::new(),
                dev: String::new(),
                index: 0,
            },
            flavour: Flavour::Other(None),
            netdev_name: None,
            netdev_ifindex: None,
            port_number: None,
            pf: None,
            vf: None,
            sf: None,
            controller: 0,
            external: None,
            hw_addr: None,
        };
        for a in attrs {
            match a {
                PortAttr::BusName(s) => bus = Some(s.clone()),
                PortAttr::DevName(s) => dev = Some(s.clone()),
                PortAttr::PortIndex(i) => index = Some(*i),
                PortAttr::NetdevName(s) if !s.is_empty() => p.netdev_name = Some(s.clone()),
                PortAttr::NetdevIfindex(i) if *i != 0 => p.netdev_ifindex = Some(*i),
                PortAttr::Flavour(f) => {
                    p.flavour = match *f {
                        FLAVOUR_PHYSICAL => Flavour::Physical,
                        FLAVOUR_PCI_PF => Flavour::PciPf,
                        FLAVOUR_PCI_VF => Flavour::PciVf,
                        FLAVOUR_PCI_SF => Flavour::PciSf,
                        other => Flavour::Other(Some(other)),
                    }
                }
                PortAttr::PortNumber(n) => p.port_number = Some(*n),
                PortAttr::PfNumber(n) => p.pf = Some(*n),
                PortAttr::VfNumber(n) => p.vf = Some(*n),
                PortAttr::SfNumber(n) => p.sf = Some(*n),
                PortAttr::ControllerNumber(n) => p.controller = *n,
                PortAttr::External(v) => p.external = Some(*v != 0),
                PortAttr::Function(f) => {
                    for fa in f {
                        if let FunctionAttr::HwAddr(b) = fa {
                            // An all-zero address means "not set".
                            p.hw_addr = MacAddr::try_from(b.as_slice())
                                .ok()
                                .filter(|m| m.0 != [0; 6]);
                        }
                    }
                }
                _ => {}
            }
        }
        p.key = PortKey {
            bus: bus.ok_or("port message without DEVLINK_ATTR_BUS_NAME")?,
            dev: dev.ok_or("port message without DEVLINK_ATTR_DEV_NAME")?,
            index: index.ok_or("port message without DEVLINK_ATTR_PORT_INDEX")?,
        };
        Ok(p)
    }
}

impl DevlinkPort {
    /// `pci/0000:03:00.0/2`, as devlink(8) names a port.
    pub fn path(&self) -> String {
        format!("{}/{}/{}", self.key.bus, self.key.dev, self.key.index)
    }

    /// The port for the logs: its netdev and devlink path, its controller
    /// and whether that is external.
    pub fn describe(&self) -> String {
        let side = match self.external {
            Some(true) => ", external",
            Some(false) => ", local",
            None => "",
        };
        format!(
            "{} ({}, controller {}{side})",
            self.netdev_name.as_deref().unwrap_or("no netdev"),
            self.path(),
            self.controller
        )
    }
}
