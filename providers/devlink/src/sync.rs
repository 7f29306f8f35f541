//! Keeping the port table in step with the kernel without ever blocking:
//! dumps run as a state machine with a deadline, notifications are applied
//! as they come, and a lost notification (socket overflow) starts a fresh
//! dump that nothing older can roll back.
//!
//! Ordering, which is what makes the table right after an overflow:
//! 1. events already queued when a dump is sent are discarded
//!    ([`Channel::discard_events`]): the dump supersedes them;
//! 2. events arriving while the dump runs are held, and applied in order
//!    after the dump's result: each reflects a change at least as new as
//!    the dump's view of that port, and every later change brings its own
//!    event;
//! 3. lookups use the last complete table until the dump ends.

use crate::channel::{Channel, Incoming, Request};
use crate::message::{consts::*, is_port_command, DevlinkMessage};
use crate::port::DevlinkPort;
use crate::table::PortTable;
use std::time::{Duration, Instant};

/// First wait before a failed dump is tried again; doubles per failure.
pub const DUMP_RETRY_MIN: Duration = Duration::from_millis(250);
/// Wait before a dump refused as busy is sent again.
pub const DUMP_BUSY_RETRY: Duration = Duration::from_millis(20);
/// `EBUSY`: a dump already runs on the socket.
const EBUSY: i32 = 16;
/// Longest wait between dump attempts.
pub const DUMP_RETRY_MAX: Duration = Duration::from_secs(30);

/// A dump in progress.
#[derive(Debug)]
struct Dump {
    seq: u32,
    deadline: Instant,
    replies: Vec<DevlinkMessage>,
    /// Notifications (and re-read answers) received meanwhile.
    held: Vec<DevlinkMessage>,
}

/// What feeding received items did.
#[derive(Debug, Default)]
pub struct Fed {
    /// Whether a lookup may now answer differently.
    pub changed: bool,
    /// The port messages applied to the table, in order (for the rename
    /// watch, which looks at every announced netdev).
    pub applied: Vec<DevlinkMessage>,
    /// Acknowledgements of requests other than dumps (for
    /// [`crate::mac_program`]), as `(seq, errno)`.
    pub acks: Vec<(u32, i32)>,
}

/// The table and the dump state machine.
#[derive(Debug)]
pub struct TableSync {
    table: PortTable,
    dump: Option<Dump>,
    /// A dump is wanted, not before this instant.
    next_dump: Option<Instant>,
    failures: u32,
    complete: bool,
    timeout: Duration,
    /// Sequence numbers of every dump sent (the last 1024), ended or
    /// abandoned: a reply to one of those that is not the current dump is
    /// late and dropped, never taken for a re-read.
    dump_seqs: std::collections::VecDeque<u32>,
    /// Why the last dump failed, until one succeeds.
    last_error: Option<String>,
}

/// Applies one port message to `table`; true if lookups changed. Other
/// commands (device, param, health, rate, ...) are ignored quietly.
pub fn apply(table: &mut PortTable, msg: &DevlinkMessage) -> bool {
    if !is_port_command(msg.cmd) {
        log::trace!("devlink: ignoring a notification of command {}", msg.cmd);
        return false;
    }
    let port = match DevlinkPort::from_attrs(&msg.attrs) {
        Ok(p) => p,
        Err(e) => {
            log::warn!("devlink: ignoring a port message: {e}");
            return false;
        }
    };
    match msg.cmd {
        CMD_PORT_NEW => table.upsert(port),
        CMD_PORT_DEL => table.remove(&port.key),
        _ => false,
    }
}

impl TableSync {
    /// An empty table that wants its first dump now; a dump not finished
    /// within `timeout` is abandoned and retried.
    pub fn new(timeout: Duration, now: Instant) -> TableSync {
        TableSync {
            table: PortTable::new(),
            dump: None,
            next_dump: Some(now),
            failures: 0,
            complete: false,
            timeout,
            dump_seqs: std::collections::VecDeque::new(),
            last_error: None,
        }
    }

    /// A table loaded once from recorded messages, with no dump wanted.
    pub fn loaded(messages: &[DevlinkMessage], timeout: Duration) -> TableSync {
        let mut table = PortTable::new();
        for m in messages {
            apply(&mut table, m);
        }
        TableSync {
            table,
            dump: None,
            next_dump: None,
            failures: 0,
            complete: true,
            timeout,
            dump_seqs: std::collections::VecDeque::new(),
            last_error: None,
        }
    }

    /// The last complete table.
    pub fn table(&self) -> &PortTable {
        &self.table
    }

    /// The same, for renames and the sysfs fallback.
    pub fn table_mut(&mut self) -> &mut PortTable {
        &mut self.table
    }

    /// Whether a dump has completed at least once.
    pub fn complete(&self) -> bool {
        self.complete
    }

    /// Why the last dump failed, if none has succeeded since.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Whether a dump is running.
    pub fn dumping(&self) -> bool {
        self.dump.is_some()
    }

    /// Wants a fresh dump as soon as possible (events were lost
    /// elsewhere, e.g. on the rtnetlink socket). A running dump is
    /// abandoned: it may already have read the ports whose events were
    /// lost.
    pub fn resync(&mut self, now: Instant) {
        self.abandon();
        self.next_dump = Some(now);
    }

    fn abandon(&mut self) {
        self.dump = None;
    }

    /// Takes what the channel received.
    pub fn feed(&mut self, items: Vec<Incoming>, now: Instant) -> Fed {
        let mut fed = Fed::default();
        // After an overflow, every event of this batch predates the dump
        // that follows: applying any could only roll it back.
        let lost = items.contains(&Incoming::EventsLost);
        if lost {
            log::warn!(
                "devlink: notifications were lost (socket overflow); dumping the ports again"
            );
            self.resync(now);
        }
        for item in items {
            match item {
                Incoming::Event(msg) if !lost => self.take(msg, &mut fed),
                Incoming::Event(_) | Incoming::EventsLost => {}
                Incoming::Reply { seq, msg } => match &mut self.dump {
                    Some(d) if d.seq == seq => d.replies.push(msg),
                    _ if self.dump_seqs.contains(&seq) => {}
                    // A re-read of one port: as fresh as an event.
                    _ => self.take(msg, &mut fed),
                },
                Incoming::Done { seq, errno } => {
                    if self.dump.as_ref().is_some_and(|d| d.seq == seq) {
                        if errno == 0 {
                            self.finish(&mut fed);
                        } else {
                            self.failed(&format!("ended with {}", errno_text(errno)), now);
                        }
                    }
                }
                Incoming::Ack { seq, errno } => {
                    if self.dump.as_ref().is_some_and(|d| d.seq == seq) {
                        if errno == EBUSY {
                            // An abandoned dump still runs on the socket
                            // (the kernel allows one at a time): its end is
                            // near, try again shortly.
                            self.abandon();
                            self.next_dump = Some(now + DUMP_BUSY_RETRY);
                        } else if errno != 0 {
                            self.failed(&format!("was refused: {}", errno_text(errno)), now);
                        }
                    } else {
                        fed.acks.push((seq, errno));
                    }
                }
            }
        }
        fed
    }

    fn take(&mut self, msg: DevlinkMessage, fed: &mut Fed) {
        match &mut self.dump {
            Some(d) => d.held.push(msg),
            None => {
                fed.changed |= apply(&mut self.table, &msg);
                fed.applied.push(msg);
            }
        }
    }

    /// The dump ended: its result, then what was held, replace the table.
    fn finish(&mut self, fed: &mut Fed) {
        let Some(d) = self.dump.take() else { return };
        let mut table = PortTable::new();
        for m in d.replies.iter().chain(&d.held) {
            apply(&mut table, m);
        }
        fed.applied.extend(d.replies);
        fed.applied.extend(d.held);
        log::info!(
            "devlink: {} port(s) known{}",
            table.len(),
            if table.is_empty() {
                ": no devlink-capable NIC driver has created one (yet); representors will be found when they appear"
            } else {
                ""
            }
        );
        self.table = table;
        self.complete = true;
        self.failures = 0;
        self.last_error = None;
        fed.changed = true;
    }

    fn failed(&mut self, why: &str, now: Instant) {
        self.abandon();
        self.failures += 1;
        let wait = DUMP_RETRY_MIN
            .saturating_mul(1 << (self.failures - 1).min(16))
            .min(DUMP_RETRY_MAX);
        log::error!(
            "devlink: the port dump {why}; lookups use the last complete table; trying again in {} ms",
            wait.as_millis()
        );
        self.next_dump = Some(now + wait);
        self.last_error = Some(format!("devlink: the port dump {why}"));
    }

    /// Starts a wanted dump when due, and abandons one past its deadline.
    pub fn tick(&mut self, channel: &mut dyn Channel, now: Instant) {
        if self.dump.as_ref().is_some_and(|d| now >= d.deadline) {
            let ms = self.timeout.as_millis();
            self.failed(&format!("did not end within {ms} ms"), now);
        }
        if self.dump.is_some() || self.next_dump.is_none_or(|t| now < t) {
            return;
        }
        let dropped = channel.discard_events();
        if dropped > 0 {
            log::debug!("devlink: {dropped} queued notification(s) superseded by a new dump");
        }
        match channel.send(&Request::DumpPorts) {
            Ok(seq) => {
                self.next_dump = None;
                self.dump_seqs.push_back(seq);
                if self.dump_seqs.len() > 1024 {
                    self.dump_seqs.pop_front();
                }
                self.dump = Some(Dump {
                    seq,
                    deadline: now + self.timeout,
                    replies: Vec::new(),
                    held: Vec::new(),
                });
            }
            Err(e) => self.failed(&format!("could not be sent ({e})"), now),
        }
    }
}

/// An errno as text: "Operation not supported (os error 95)".
pub fn errno_text(errno: i32) -> String {
    std::io::Error::from_raw_os_error(errno).to_string()
}
