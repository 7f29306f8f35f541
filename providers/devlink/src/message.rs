//! Devlink port messages (generic netlink family "devlink"), typed, after
//! `/usr/include/linux/devlink.h`: each attribute parses from and emits to
//! its exact wire form, so tests can build byte-exact kernel messages.
//!
//! Parsing is lenient where the kernel may grow: an attribute of a known
//! kind whose value is malformed or unexpectedly sized is kept as
//! [`PortAttr::Other`] (a debug line says so) and the rest of the message
//! stands; only broken framing (an attribute running past the message)
//! fails the message. Messages of commands other than the port commands
//! (device, param, health, rate, ...) keep their attributes untyped.

use netlink_packet_core::{
    emit_u16, emit_u32, parse_string, parse_u16, parse_u32, parse_u8, DecodeError, DefaultNla,
    Emitable, Nla, NlaBuffer, NlasIterator, Parseable, ParseableParametrized, NLA_F_NESTED,
};
use netlink_packet_generic::{GenlFamily, GenlHeader};

use crate::mac::MacAddr;
use crate::port::PortKey;

/// Values from `linux/devlink.h` (kernel UAPI; stable).
pub mod consts {
    /// Generic netlink family name.
    pub const FAMILY_NAME: &str = "devlink";
    /// Family version.
    pub const VERSION: u8 = 1;
    /// Multicast group of configuration events (port new/del).
    pub const MCGRP_CONFIG: &str = "config";

    /// `DEVLINK_CMD_PORT_GET` (dumpable).
    pub const CMD_PORT_GET: u8 = 5;
    /// `DEVLINK_CMD_PORT_SET`.
    pub const CMD_PORT_SET: u8 = 6;
    /// `DEVLINK_CMD_PORT_NEW` (also the reply to PORT_GET).
    pub const CMD_PORT_NEW: u8 = 7;
    /// `DEVLINK_CMD_PORT_DEL`.
    pub const CMD_PORT_DEL: u8 = 8;

    /// `DEVLINK_ATTR_BUS_NAME`, string.
    pub const ATTR_BUS_NAME: u16 = 1;
    /// `DEVLINK_ATTR_DEV_NAME`, string.
    pub const ATTR_DEV_NAME: u16 = 2;
    /// `DEVLINK_ATTR_PORT_INDEX`, u32.
    pub const ATTR_PORT_INDEX: u16 = 3;
    /// `DEVLINK_ATTR_PORT_TYPE`, u16.
    pub const ATTR_PORT_TYPE: u16 = 4;
    /// `DEVLINK_ATTR_PORT_NETDEV_IFINDEX`, u32.
    pub const ATTR_PORT_NETDEV_IFINDEX: u16 = 6;
    /// `DEVLINK_ATTR_PORT_NETDEV_NAME`, string.
    pub const ATTR_PORT_NETDEV_NAME: u16 = 7;
    /// `DEVLINK_ATTR_PORT_FLAVOUR`, u16.
    pub const ATTR_PORT_FLAVOUR: u16 = 77;
    /// `DEVLINK_ATTR_PORT_NUMBER`, u32.
    pub const ATTR_PORT_NUMBER: u16 = 78;
    /// `DEVLINK_ATTR_PORT_PCI_PF_NUMBER`, u16.
    pub const ATTR_PORT_PCI_PF_NUMBER: u16 = 127;
    /// `DEVLINK_ATTR_PORT_PCI_VF_NUMBER`, u16.
    pub const ATTR_PORT_PCI_VF_NUMBER: u16 = 128;
    /// `DEVLINK_ATTR_PORT_FUNCTION`, nested.
    pub const ATTR_PORT_FUNCTION: u16 = 145;
    /// `DEVLINK_ATTR_PORT_EXTERNAL`, u8.
    pub const ATTR_PORT_EXTERNAL: u16 = 149;
    /// `DEVLINK_ATTR_PORT_CONTROLLER_NUMBER`, u32.
    pub const ATTR_PORT_CONTROLLER_NUMBER: u16 = 150;
    /// `DEVLINK_ATTR_PORT_PCI_SF_NUMBER`, u32.
    pub const ATTR_PORT_PCI_SF_NUMBER: u16 = 164;

    /// `DEVLINK_PORT_FUNCTION_ATTR_HW_ADDR`, binary.
    pub const FUNCTION_ATTR_HW_ADDR: u16 = 1;

    /// `DEVLINK_PORT_FLAVOUR_PHYSICAL`.
    pub const FLAVOUR_PHYSICAL: u16 = 0;
    /// `DEVLINK_PORT_FLAVOUR_PCI_PF`.
    pub const FLAVOUR_PCI_PF: u16 = 3;
    /// `DEVLINK_PORT_FLAVOUR_PCI_VF`.
    pub const FLAVOUR_PCI_VF: u16 = 4;
    /// `DEVLINK_PORT_FLAVOUR_PCI_SF`.
    pub const FLAVOUR_PCI_SF: u16 = 7;
}
use consts::*;

/// An attribute of the nested port function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FunctionAttr {
    /// The function's hardware address: for a PF, the MAC the host sees.
    HwAddr(Vec<u8>),
    /// Anything else, kept as is.
    Other(DefaultNla),
}

impl Nla for FunctionAttr {
    fn value_len(&self) -> usize {
        match self {
            FunctionAttr::HwAddr(b) => b.len(),
            FunctionAttr::Other(n) => n.value_len(),
        }
    }
    fn kind(&self) -> u16 {
        match self {
            FunctionAttr::HwAddr(_) => FUNCTION_ATTR_HW_ADDR,
            FunctionAttr::Other(n) => n.kind(),
        }
    }
    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            FunctionAttr::HwAddr(b) => buffer[..b.len()].copy_from_slice(b),
            FunctionAttr::Other(n) => n.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for FunctionAttr {
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        Ok(match buf.kind() {
            FUNCTION_ATTR_HW_ADDR => FunctionAttr::HwAddr(buf.value().to_vec()),
            _ => FunctionAttr::Other(DefaultNla::parse(buf)?),
        })
    }
}

/// An attribute of a devlink port message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortAttr {
    /// Bus of the devlink instance, e.g. "pci".
    BusName(String),
    /// Device of the devlink instance, e.g. "0000:03:00.0".
    DevName(String),
    /// Port index within the instance.
    PortIndex(u32),
    /// Port type (notset/auto/eth/ib).
    PortType(u16),
    /// Ifindex of the port's netdev.
    NetdevIfindex(u32),
    /// Name of the port's netdev.
    NetdevName(String),
    /// Port flavour (physical, PCI PF/VF/SF, ...).
    Flavour(u16),
    /// Physical port number.
    PortNumber(u32),
    /// PCI PF number.
    PfNumber(u16),
    /// PCI VF number.
    VfNumber(u16),
    /// PCI SF number.
    SfNumber(u32),
    /// Controller number.
    ControllerNumber(u32),
    /// Whether the port's function is on an external controller (host).
    External(u8),
    /// The port function (nested).
    Function(Vec<FunctionAttr>),
    /// Anything else, kept as is.
    Other(DefaultNla),
}

impl Nla for PortAttr {
    fn value_len(&self) -> usize {
        use PortAttr::*;
        match self {
            BusName(s) | DevName(s) | NetdevName(s) => s.len() + 1,
            PortIndex(_) | NetdevIfindex(_) | PortNumber(_) | SfNumber(_) | ControllerNumber(_) => {
                4
            }
            PortType(_) | Flavour(_) | PfNumber(_) | VfNumber(_) => 2,
            External(_) => 1,
            Function(attrs) => attrs.as_slice().buffer_len(),
            Other(n) => n.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        use PortAttr::*;
        match self {
            BusName(_) => ATTR_BUS_NAME,
            DevName(_) => ATTR_DEV_NAME,
            PortIndex(_) => ATTR_PORT_INDEX,
            PortType(_) => ATTR_PORT_TYPE,
            NetdevIfindex(_) => ATTR_PORT_NETDEV_IFINDEX,
            NetdevName(_) => ATTR_PORT_NETDEV_NAME,
            Flavour(_) => ATTR_PORT_FLAVOUR,
            PortNumber(_) => ATTR_PORT_NUMBER,
            PfNumber(_) => ATTR_PORT_PCI_PF_NUMBER,
            VfNumber(_) => ATTR_PORT_PCI_VF_NUMBER,
            SfNumber(_) => ATTR_PORT_PCI_SF_NUMBER,
            ControllerNumber(_) => ATTR_PORT_CONTROLLER_NUMBER,
            External(_) => ATTR_PORT_EXTERNAL,
            Function(_) => ATTR_PORT_FUNCTION | NLA_F_NESTED,
            Other(n) => n.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        use PortAttr::*;
        match self {
            BusName(s) | DevName(s) | NetdevName(s) => {
                buffer[..s.len()].copy_from_slice(s.as_bytes());
                buffer[s.len()] = 0;
            }
            PortIndex(v) | NetdevIfindex(v) | PortNumber(v) | SfNumber(v) | ControllerNumber(v) => {
                emit_u32(buffer, *v).expect("4-byte buffer")
            }
            PortType(v) | Flavour(v) | PfNumber(v) | VfNumber(v) => {
                emit_u16(buffer, *v).expect("2-byte buffer")
            }
            External(v) => buffer[0] = *v,
            Function(attrs) => attrs.as_slice().emit(buffer),
            Other(n) => n.emit_value(buffer),
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Parseable<NlaBuffer<&'a T>> for PortAttr {
    /// Never fails on a malformed value: the attribute is kept untyped as
    /// [`PortAttr::Other`], with a debug line.
    fn parse(buf: &NlaBuffer<&'a T>) -> Result<Self, DecodeError> {
        match parse_typed(buf) {
            Ok(a) => Ok(a),
            Err(e) => {
                log::debug!(
                    "skipping devlink attribute {} ({} bytes): {e}",
                    buf.kind() & !NLA_F_NESTED,
                    buf.value().len()
                );
                Ok(PortAttr::Other(DefaultNla::parse(buf)?))
            }
        }
    }
}

/// A port attribute in its typed form, or why its value does not fit.
fn parse_typed<T: AsRef<[u8]> + ?Sized>(buf: &NlaBuffer<&T>) -> Result<PortAttr, DecodeError> {
    use PortAttr::*;
    let v = buf.value();
    // Fixed-size attributes must have exactly their size.
    let exact = |n: usize, what: &str| {
        if v.len() == n {
            Ok(())
        } else {
            Err(DecodeError::from(format!(
                "devlink attribute {what} has {} bytes, expected {n}",
                v.len()
            )))
        }
    };
    Ok(match buf.kind() & !NLA_F_NESTED {
        ATTR_BUS_NAME => BusName(parse_string(v)?),
        ATTR_DEV_NAME => DevName(parse_string(v)?),
        ATTR_PORT_NETDEV_NAME => NetdevName(parse_string(v)?),
        ATTR_PORT_INDEX => {
            exact(4, "PORT_INDEX")?;
            PortIndex(parse_u32(v)?)
        }
        ATTR_PORT_NETDEV_IFINDEX => {
            exact(4, "PORT_NETDEV_IFINDEX")?;
            NetdevIfindex(parse_u32(v)?)
        }
        ATTR_PORT_NUMBER => {
            exact(4, "PORT_NUMBER")?;
            PortNumber(parse_u32(v)?)
        }
        ATTR_PORT_PCI_SF_NUMBER => {
            exact(4, "PORT_PCI_SF_NUMBER")?;
            SfNumber(parse_u32(v)?)
        }
        ATTR_PORT_CONTROLLER_NUMBER => {
            exact(4, "PORT_CONTROLLER_NUMBER")?;
            ControllerNumber(parse_u32(v)?)
        }
        ATTR_PORT_TYPE => {
            exact(2, "PORT_TYPE")?;
            PortType(parse_u16(v)?)
        }
        ATTR_PORT_FLAVOUR => {
            exact(2, "PORT_FLAVOUR")?;
            Flavour(parse_u16(v)?)
        }
        ATTR_PORT_PCI_PF_NUMBER => {
            exact(2, "PORT_PCI_PF_NUMBER")?;
            PfNumber(parse_u16(v)?)
        }
        ATTR_PORT_PCI_VF_NUMBER => {
            exact(2, "PORT_PCI_VF_NUMBER")?;
            VfNumber(parse_u16(v)?)
        }
        ATTR_PORT_EXTERNAL => {
            exact(1, "PORT_EXTERNAL")?;
            External(parse_u8(v)?)
        }
        ATTR_PORT_FUNCTION => Function(
            NlasIterator::new(v)
                .map(|nla| FunctionAttr::parse(&nla?))
                .collect::<Result<_, _>>()?,
        ),
        _ => Other(DefaultNla::parse(buf)?),
    })
}

/// Whether `cmd` is one of the port commands, whose attributes are typed.
pub fn is_port_command(cmd: u8) -> bool {
    matches!(
        cmd,
        CMD_PORT_GET | CMD_PORT_SET | CMD_PORT_NEW | CMD_PORT_DEL
    )
}

/// A devlink port message: a command and its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevlinkMessage {
    /// `CMD_PORT_*`.
    pub cmd: u8,
    /// Attributes.
    pub attrs: Vec<PortAttr>,
}

impl GenlFamily for DevlinkMessage {
    fn family_name() -> &'static str {
        FAMILY_NAME
    }
    fn command(&self) -> u8 {
        self.cmd
    }
    fn version(&self) -> u8 {
        VERSION
    }
}

impl Emitable for DevlinkMessage {
    fn buffer_len(&self) -> usize {
        self.attrs.as_slice().buffer_len()
    }
    fn emit(&self, buffer: &mut [u8]) {
        self.attrs.as_slice().emit(buffer)
    }
}

impl DevlinkMessage {
    fn identity(key: &PortKey) -> Vec<PortAttr> {
        vec![
            PortAttr::BusName(key.bus.clone()),
            PortAttr::DevName(key.dev.clone()),
            PortAttr::PortIndex(key.index),
        ]
    }

    /// `DEVLINK_CMD_PORT_GET` for one port (a "doit" re-read; the kernel
    /// answers with a `PORT_NEW`), per `devlink_nl_port_get_doit`.
    pub fn port_get(key: &PortKey) -> DevlinkMessage {
        DevlinkMessage {
            cmd: CMD_PORT_GET,
            attrs: DevlinkMessage::identity(key),
        }
    }

    /// `DEVLINK_CMD_PORT_SET` setting the hardware address of the port's
    /// function (nested `DEVLINK_ATTR_PORT_FUNCTION` /
    /// `DEVLINK_PORT_FUNCTION_ATTR_HW_ADDR`, 6 bytes), as
    /// `devlink port function set DEV/INDEX hw_addr MAC` sends it.
    pub fn port_set_function_mac(key: &PortKey, mac: MacAddr) -> DevlinkMessage {
        let mut attrs = DevlinkMessage::identity(key);
        attrs.push(PortAttr::Function(vec![FunctionAttr::HwAddr(
            mac.0.to_vec(),
        )]));
        DevlinkMessage {
            cmd: CMD_PORT_SET,
            attrs,
        }
    }
}

impl ParseableParametrized<[u8], GenlHeader> for DevlinkMessage {
    /// Fails only on broken framing. The attributes of a non-port command
    /// (device, param, health, rate, ...) are kept untyped.
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        let nlas = NlasIterator::new(buf).collect::<Result<Vec<_>, _>>()?;
        let typed = is_port_command(header.cmd);
        let attrs = nlas
            .iter()
            .map(|nla| {
                if typed {
                    PortAttr::parse(nla)
                } else {
                    DefaultNla::parse(nla).map(PortAttr::Other)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(DevlinkMessage {
            cmd: header.cmd,
            attrs,
        })
    }
}
