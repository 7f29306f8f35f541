//! Following netdev renames through rtnetlink: udev renames representors
//! (predictable names) after devlink announced them, and the table must
//! hold the current name.

use netlink_packet_core::{NetlinkBuffer, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::link::LinkAttribute;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::{Socket, SocketAddr};
use std::io;

/// `RTMGRP_LINK`: link change notifications.
const RTMGRP_LINK: u32 = 1;
const ENOBUFS: i32 = 105;

/// A netdev's new state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// The netdev with this ifindex is (now) called `name`.
    Named {
        /// Interface index.
        ifindex: u32,
        /// Current name.
        name: String,
    },
    /// The netdev is gone.
    Removed {
        /// Interface index.
        ifindex: u32,
    },
}

/// What draining the socket gave.
#[derive(Debug)]
pub enum LinkDrain {
    /// Events, possibly none.
    Events(Vec<LinkEvent>),
    /// Events were lost (ENOBUFS).
    Overflow,
}

/// The event of one rtnetlink message, if it is about a link.
pub fn link_event(msg: &NetlinkMessage<RouteNetlinkMessage>) -> Option<LinkEvent> {
    match &msg.payload {
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
            let name = link.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            })?;
            Some(LinkEvent::Named {
                ifindex: link.header.index,
                name,
            })
        }
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) => {
            Some(LinkEvent::Removed {
                ifindex: link.header.index,
            })
        }
        _ => None,
    }
}

/// A non-blocking rtnetlink socket subscribed to link changes, in the
/// network namespace of the thread that opened it.
pub struct LinkSocket {
    sock: Socket,
}

impl LinkSocket {
    /// Opens and subscribes, with a receive buffer as large as the
    /// devlink event socket's ([`crate::socket::EVENT_RECEIVE_BUFFER`]):
    /// every new representor brings link notifications too.
    pub fn open() -> io::Result<LinkSocket> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind(&SocketAddr::new(0, RTMGRP_LINK))?;
        sock.set_non_blocking(true)?;
        crate::socket::raise_receive_buffer(&sock, crate::socket::EVENT_RECEIVE_BUFFER);
        Ok(LinkSocket { sock })
    }

    /// Sets the socket's receive buffer (the kernel may round it up); a
    /// small one makes overflows easy to provoke in tests.
    pub fn set_receive_buffer(&self, bytes: usize) -> io::Result<()> {
        self.sock.set_rx_buf_sz(bytes)
    }

    /// Reads every queued event without blocking.
    pub fn drain(&mut self) -> Result<LinkDrain, String> {
        let mut events = Vec::new();
        loop {
            let buf = match self.sock.recv_from_full() {
                Ok((buf, _)) => buf,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(LinkDrain::Events(events))
                }
                Err(e) if e.raw_os_error() == Some(ENOBUFS) => return Ok(LinkDrain::Overflow),
                Err(e) => return Err(format!("rtnetlink: {e}")),
            };
            let mut offset = 0;
            while offset < buf.len() {
                let Ok(nb) = NetlinkBuffer::new_checked(&buf[offset..]) else {
                    break;
                };
                let len = nb.length() as usize;
                if len == 0 {
                    break;
                }
                // Messages this parser does not know are skipped, not fatal.
                if let Ok(msg) =
                    NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[offset..offset + len])
                {
                    events.extend(link_event(&msg));
                }
                offset += (len + 3) & !3;
            }
        }
    }
}
