//! The local Open vSwitch database session: the connection, the monitor,
//! and the lock that makes the agent the only writer.
//!
//! The agent writes only while it holds the RFC 7047 lock
//! [`LOCK_NAME`] (§4.1.8): a second agent on the same database waits,
//! writes nothing, and says so once. Its transactions also `assert` the
//! lock, so a lock lost between deciding and committing fails the
//! transaction rather than racing the new holder.

use super::local_view::{Affected, LocalView};
use super::rows::{Interface, Table};
use super::sb_session::{take_updates, MONITOR_ID};
use crate::ovsdb::client::{Client, ClientEvent};
use crate::ovsdb::replica::RowChange;
use crate::ovsdb::Json;
use serde_json::{json, Value};

/// The lock held on the local database while writing.
/// An OVSDB `<id>`: letters, digits and underscores only.
pub const LOCK_NAME: &str = "vif_plug_host";

/// What a batch of local events changed, for the agent to act on.
#[derive(Debug, Default)]
pub struct LocalUpdate {
    /// What the row changes affected.
    pub affected: Affected,
    /// The complete contents arrived (initially or after a reconnect).
    pub loaded: bool,
    /// Replies (or errors) to requests the agent made: transactions.
    pub replies: Vec<(u64, Result<Value, String>)>,
    /// Requests of the agent's that will never be answered.
    pub lost: Vec<u64>,
    /// The lock was acquired or lost.
    pub lock_changed: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum Lock {
    /// Not asked for (not connected).
    #[default]
    None,
    /// Asked for; awaiting the reply.
    Requested(u64),
    /// Another client holds it; the server notifies us when it is ours.
    Waiting,
    /// Ours.
    Held,
}

/// The local database session.
pub struct LocalSession {
    client: Client,
    view: LocalView,
    request: Option<u64>,
    complete: bool,
    plain: bool,
    lock: Lock,
}

impl LocalSession {
    /// A session on `client`.
    pub fn new(client: Client) -> LocalSession {
        LocalSession {
            client,
            view: LocalView::default(),
            request: None,
            complete: false,
            plain: false,
            lock: Lock::None,
        }
    }

    /// The client.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// The rows.
    pub fn view(&self) -> &LocalView {
        &self.view
    }

    /// Whether the monitor's complete contents are in view.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Whether another client holds the lock we asked for (a second agent
    /// on this database): we write nothing until it is released.
    pub fn is_standby(&self) -> bool {
        self.lock == Lock::Waiting
    }

    /// Whether the agent may write: the view is complete and the lock is
    /// ours.
    pub fn may_write(&self) -> bool {
        self.complete && self.lock == Lock::Held
    }

    /// Feeds the client's events; returns what they changed.
    pub fn on_events(&mut self, events: Vec<ClientEvent>) -> LocalUpdate {
        let mut out = LocalUpdate::default();
        for e in events {
            self.on_event(e, &mut out);
        }
        out
    }

    fn on_event(&mut self, e: ClientEvent, out: &mut LocalUpdate) {
        match e {
            ClientEvent::Ready => {
                self.complete = false;
                self.request_monitor();
                self.lock = match self.client.request("lock", json!([LOCK_NAME])) {
                    Some(id) => Lock::Requested(id),
                    None => Lock::None,
                };
            }
            ClientEvent::Reply { id, result } if Some(id) == self.request => {
                self.request = None;
                let mut changes = self.view.reset();
                match self.apply(&result) {
                    Ok(c) => changes.extend(c),
                    Err(e) => {
                        self.view.reset();
                        self.reconnect(&format!("bad monitor reply ({e})"), out);
                        return;
                    }
                }
                let affected = self.view.index(&changes);
                merge(&mut out.affected, affected);
                self.complete = true;
                out.loaded = true;
                log::info!(
                    "local: {} interface(s) in view",
                    self.view.replica.len(Interface::TABLE)
                );
            }
            ClientEvent::Error { id, error } if Some(id) == self.request => {
                self.request = None;
                if !self.plain && error.to_string().contains("unknown method") {
                    log::info!("local: server has no monitor_cond; using monitor");
                    self.plain = true;
                    self.request_monitor();
                } else {
                    self.reconnect(&format!("monitor refused ({error})"), out);
                }
            }
            ClientEvent::Reply { id, result } if self.lock == Lock::Requested(id) => {
                if result.value().get("locked").and_then(Value::as_bool) == Some(true) {
                    self.lock = Lock::Held;
                    log::debug!("local: lock {LOCK_NAME:?} acquired");
                } else {
                    self.lock = Lock::Waiting;
                    log::warn!(
                        "local: another client holds lock {LOCK_NAME:?} on the local database (a second vif-plug-host?); writing nothing until it is released"
                    );
                }
                out.lock_changed = true;
            }
            ClientEvent::Error { id, error } if self.lock == Lock::Requested(id) => {
                self.lock = Lock::None;
                self.reconnect(&format!("lock refused ({error})"), out);
            }
            ClientEvent::Notify { method, params } if method == "locked" && is_ours(&params) => {
                log::info!("local: lock {LOCK_NAME:?} acquired: writing from now on");
                self.lock = Lock::Held;
                out.lock_changed = true;
            }
            ClientEvent::Notify { method, params } if method == "stolen" && is_ours(&params) => {
                log::warn!(
                    "local: lock {LOCK_NAME:?} was taken by another client (ovsdb-client steal?); writing nothing until it is released"
                );
                self.lock = Lock::Waiting;
                out.lock_changed = true;
            }
            ClientEvent::Notify { method, params } if method == "update2" || method == "update" => {
                let updates = take_updates(params);
                match self.apply(&updates) {
                    Ok(changes) => merge(&mut out.affected, self.view.index(&changes)),
                    Err(e) => {
                        // The view may be half-updated: start afresh.
                        self.reconnect(&format!("cannot apply an update ({e})"), out)
                    }
                }
            }
            ClientEvent::Reply { id, result } => out.replies.push((id, Ok(result.value()))),
            ClientEvent::Error { id, error } => out.replies.push((id, Err(error.to_string()))),
            ClientEvent::Disconnected { in_flight, .. } => {
                self.complete = false;
                self.request = None;
                self.lock = Lock::None;
                out.lost.extend(in_flight);
                out.lock_changed = true;
            }
            ClientEvent::Notify { .. } => {}
        }
    }

    fn reconnect(&mut self, reason: &str, out: &mut LocalUpdate) {
        self.complete = false;
        let events = self.client.reconnect(reason);
        for e in events {
            self.on_event(e, out);
        }
    }

    fn apply(&mut self, updates: &Json) -> Result<Vec<RowChange>, String> {
        if self.plain {
            self.view
                .replica
                .apply_update(self.client.schema(), updates.text())
        } else {
            let schema = self.client.schema().ok_or("no schema")?;
            self.view.replica.apply_update2(schema, updates.text())
        }
    }

    fn request_monitor(&mut self) {
        let Some(schema) = self.client.schema() else {
            return;
        };
        let mut params = super::local_view::monitor_params(schema, &json!(MONITOR_ID));
        let method = if self.plain {
            // Plain monitor takes {table: {columns}} without conditions.
            if let Some(tables) = params.get_mut(2).and_then(Value::as_object_mut) {
                for v in tables.values_mut() {
                    *v = v[0].clone();
                }
            }
            "monitor"
        } else {
            "monitor_cond"
        };
        self.request = self.client.request(method, params);
    }
}

/// Whether a `locked`/`stolen` notification names our lock.
fn is_ours(params: &Json) -> bool {
    params
        .parse::<(Value,)>()
        .is_ok_and(|(name,)| name == LOCK_NAME)
}

fn merge(into: &mut Affected, from: Affected) {
    into.lports.extend(from.lports);
    into.bridges.extend(from.bridges);
    into.config |= from.config;
    into.names_freed |= from.names_freed;
    into.plugged_changed |= from.plugged_changed;
}
