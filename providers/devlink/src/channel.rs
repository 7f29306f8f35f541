//! What the provider says to devlink and hears back, whatever carries it:
//! the kernel's generic netlink sockets ([`crate::socket`]) or a replay
//! file standing in for them ([`crate::replay`]). Both are non-blocking;
//! the state machines in [`crate::sync`] and [`crate::mac_program`] decide
//! what to send and what the answers mean.

use crate::mac::MacAddr;
use crate::message::DevlinkMessage;
use crate::port::PortKey;
use std::time::Duration;

/// A request to devlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Every port: `DEVLINK_CMD_PORT_GET` with `NLM_F_DUMP`; answered by
    /// [`Incoming::Reply`]s and one [`Incoming::Done`].
    DumpPorts,
    /// One port: `DEVLINK_CMD_PORT_GET` with `NLM_F_ACK`; answered by a
    /// [`Incoming::Reply`] (a `PORT_NEW`) and an [`Incoming::Ack`].
    GetPort(PortKey),
    /// Set the hardware address of a port's function:
    /// `DEVLINK_CMD_PORT_SET` with `NLM_F_ACK`; answered by an
    /// [`Incoming::Ack`]. The kernel then notifies a `PORT_NEW` of the port
    /// to the `config` group (`devlink_port_notify` after
    /// `devlink_port_function_set`).
    SetFunctionMac(PortKey, MacAddr),
}

impl std::fmt::Display for Request {
    /// As devlink(8) would say it: `PORT_SET pci/0000:03:00.0/2 hw_addr
    /// fa:16:3e:00:00:01`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = |k: &PortKey| format!("{}/{}/{}", k.bus, k.dev, k.index);
        match self {
            Request::DumpPorts => f.write_str("PORT_GET (dump)"),
            Request::GetPort(k) => write!(f, "PORT_GET {}", path(k)),
            Request::SetFunctionMac(k, m) => write!(f, "PORT_SET {} hw_addr {m}", path(k)),
        }
    }
}

/// Something devlink sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A notification of the `config` multicast group.
    Event(DevlinkMessage),
    /// A reply to request `seq`: a part of a dump, or a `GetPort` answer.
    Reply {
        /// The request's sequence number.
        seq: u32,
        /// The message.
        msg: DevlinkMessage,
    },
    /// The end of dump `seq`: `NLMSG_DONE`, with 0 or a positive errno.
    Done {
        /// The request's sequence number.
        seq: u32,
        /// 0, or the errno the dump ended with (positive).
        errno: i32,
    },
    /// `NLMSG_ERROR` for request `seq`: an acknowledgement (`errno` 0) or
    /// a refusal (positive errno, e.g. `EOPNOTSUPP` 95).
    Ack {
        /// The request's sequence number.
        seq: u32,
        /// 0, or the errno (positive).
        errno: i32,
    },
    /// Notifications were lost: the socket overflowed (`ENOBUFS`) or one
    /// could not be decoded. The table must be dumped again.
    EventsLost,
}

/// A non-blocking conversation with devlink.
pub trait Channel: Send {
    /// Sends `req` and returns its sequence number. Never blocks.
    ///
    /// Errors: the socket refused the request (text for the log).
    fn send(&mut self, req: &Request) -> Result<u32, String>;

    /// Everything received so far, in order per socket, without blocking.
    ///
    /// Errors: the socket failed (text for the log); the caller dumps again.
    fn receive(&mut self) -> Result<Vec<Incoming>, String>;

    /// Drops every notification still queued, returning how many: before a
    /// new dump, whose result supersedes them. Without this, events older
    /// than the dump would be applied after it and roll the table back.
    fn discard_events(&mut self) -> usize;

    /// Waits up to `timeout` for something to receive (used only by
    /// `init`, never by `run` or `port_prepare`).
    fn wait(&mut self, timeout: Duration);
}
