//! The provider's view of devlink: the port table kept in step
//! ([`crate::sync`]) and the function MACs being programmed
//! ([`crate::mac_program`]), both driven over one non-blocking
//! [`Channel`]. `run` and `port_prepare` call [`DevlinkView::poll`]; time
//! is passed in, so tests can drive every timeout.

use crate::channel::Channel;
use crate::mac::MacAddr;
use crate::mac_program::{MacProgrammer, Programming};
use crate::message::DevlinkMessage;
use crate::port::{DevlinkPort, PortKey};
use crate::sync::TableSync;
use crate::table::PortTable;
use std::time::{Duration, Instant};

/// What one [`DevlinkView::poll`] did.
#[derive(Debug, Default)]
pub struct Polled {
    /// Whether a lookup or a programming verdict may now differ (the
    /// agent should ask again).
    pub changed: bool,
    /// Whether the table itself changed (for the sysfs fallback).
    pub table_changed: bool,
    /// Port messages applied to the table, in order.
    pub applied: Vec<DevlinkMessage>,
}

/// The table, the MAC programmer and their channel.
pub struct DevlinkView {
    sync: TableSync,
    programmer: MacProgrammer,
    channel: Box<dyn Channel>,
}

impl DevlinkView {
    /// A view over `channel` that dumps the ports at the first poll; a
    /// dump longer than `dump_timeout` is abandoned and retried.
    pub fn new(channel: Box<dyn Channel>, dump_timeout: Duration, now: Instant) -> DevlinkView {
        DevlinkView {
            sync: TableSync::new(dump_timeout, now),
            programmer: MacProgrammer::new(),
            channel,
        }
    }

    /// Takes what devlink sent, then sends what is due (a dump, re-reads,
    /// retries). Never blocks.
    pub fn poll(&mut self, now: Instant) -> Polled {
        let items = match self.channel.receive() {
            Ok(items) => items,
            Err(e) => {
                log::error!("{e}; dumping the ports again");
                self.sync.resync(now);
                Vec::new()
            }
        };
        let fed = self.sync.feed(items, now);
        let mut polled = Polled {
            changed: fed.changed,
            table_changed: fed.changed,
            applied: fed.applied,
        };
        for (seq, errno) in fed.acks {
            let dumping = self.sync.dumping();
            polled.changed |= self
                .programmer
                .on_ack(seq, errno, self.sync.table(), dumping, now);
        }
        self.sync.tick(self.channel.as_mut(), now);
        polled.changed |= self
            .programmer
            .tick(self.sync.table(), self.channel.as_mut(), now);
        polled
    }

    /// Wants a fresh dump (events were lost elsewhere).
    pub fn resync(&mut self, now: Instant) {
        self.sync.resync(now);
    }

    /// The last complete table.
    pub fn table(&self) -> &PortTable {
        self.sync.table()
    }

    /// The same, for renames and the sysfs fallback.
    pub fn table_mut(&mut self) -> &mut PortTable {
        self.sync.table_mut()
    }

    /// The table state machine.
    pub fn sync(&self) -> &TableSync {
        &self.sync
    }

    /// Whether `port`'s function has `want` as its MAC, sending a
    /// `PORT_SET` when one is due; `Err` is why the port waits (see
    /// [`MacProgrammer::ensure`]).
    pub fn ensure_mac(
        &mut self,
        port: &DevlinkPort,
        want: MacAddr,
        now: Instant,
    ) -> Result<(), String> {
        self.programmer
            .ensure(port, want, self.channel.as_mut(), now)
    }

    /// Where programming `key`'s function MAC stands.
    pub fn programming(&self, key: &PortKey) -> Option<&Programming> {
        self.programmer.state(key)
    }

    /// Waits up to `timeout` for devlink to send something (`init` only).
    pub fn wait(&mut self, timeout: Duration) {
        self.channel.wait(timeout);
    }
}
