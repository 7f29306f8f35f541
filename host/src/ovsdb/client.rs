//! A reconnecting client session to one database (possibly a cluster).
//!
//! The session is driven by its owner's event loop: connection threads post
//! [`ConnEvent`]s, the owner feeds them to [`Client::handle`], calls
//! [`Client::tick`] when the deadline it returned passes, and gets back
//! [`ClientEvent`]s. Nothing here blocks.
//!
//! After connecting, the session checks `_Server` (a cluster member that is
//! not connected to its cluster, or holds an older copy than one already
//! seen, is skipped for the next remote; see [`super::member`]), reads the
//! schema, and reports [`ClientEvent::Ready`]; the owner then sets up its
//! monitors. Lost connections are retried with exponential back-off, and
//! echo requests serve as the inactivity probe in both directions.

use super::backoff::{Backoff, Jitter, MAX_BACKOFF};
use super::connection::{self, ConnEvent, Outbox, Post};
use super::json::Json;
use super::jsonrpc::Message;
use super::member::{self, Newest, ServerRow, Verdict};
use super::remote::Remote;
use super::schema::{Required, Schema};
use super::stream::Closer;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod negotiation;

/// How to reach one database.
#[derive(Clone)]
pub struct ClientConfig {
    /// A label for logs ("local", "southbound").
    pub label: String,
    /// The database name, e.g. "Open_vSwitch".
    pub database: String,
    /// Remotes; more than one for a cluster, tried in turn.
    pub remotes: Vec<Remote>,
    /// TLS settings, needed for `ssl:` remotes.
    pub tls: Option<Arc<super::stream::TlsSource>>,
    /// Send an echo after this long without traffic, and drop the
    /// connection after as long again without an answer. `None` disables
    /// the probe (the default for Unix sockets).
    pub probe_interval: Option<Duration>,
    /// Limit for one connection attempt: the TCP connect, the TLS
    /// handshake, and the server's answers to the `_Server` check and
    /// `get_schema`, each.
    pub connect_timeout: Duration,
    /// Start at a random one of several remotes, as the OVS IDL shuffles
    /// them (`lib/ovsdb-cs.c`), so that the agents of many chassis given
    /// the same list spread over a cluster's members instead of all
    /// loading the first.
    pub shuffle_remotes: bool,
    /// Columns the owner cannot work without. A server whose schema lacks
    /// one (a release older than the owner supports) is refused with one
    /// error line naming the column and the release that has it, and tried
    /// again after the longest back-off.
    pub required: &'static [Required],
}

/// What the session reports to its owner.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// Connected and the schema is known: set up monitors now. Monitors from
    /// an earlier connection are gone.
    Ready,
    /// The reply to request `id`.
    Reply {
        /// Request id.
        id: u64,
        /// Result, as received.
        result: Json,
    },
    /// An error reply to request `id`.
    Error {
        /// Request id.
        id: u64,
        /// Error, as received.
        error: Json,
    },
    /// A notification (`update2`, `update3`, ...).
    Notify {
        /// Method.
        method: String,
        /// Parameters, as received.
        params: Json,
    },
    /// The connection was lost. Requests in flight (listed) got no reply and
    /// never will; monitors are gone until the next `Ready`.
    Disconnected {
        /// Why.
        reason: String,
        /// Ids of requests that were in flight.
        in_flight: Vec<u64>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Internal {
    /// `set_db_change_aware`: so that the server tells us when it drops
    /// our monitors (a database converted or replaced) instead of
    /// dropping them silently.
    ChangeAware,
    ServerCheck,
    ServerMonitor,
    GetSchema,
    Probe,
}

enum State {
    Waiting {
        until: Instant,
    },
    Connecting,
    /// Connected; checking `_Server` and reading the schema, until a
    /// deadline after which the remote counts as failed.
    Negotiating {
        writer: Outbox,
        closer: Closer,
        until: Instant,
    },
    Ready {
        writer: Outbox,
        closer: Closer,
    },
}

/// Whether `params` of an "update" are for the client's own `_Server`
/// monitor (its first parameter is [`member::MONITOR_ID`]); only that
/// parameter is read.
fn is_server_monitor(params: &Json) -> bool {
    params
        .parse::<(Value, serde::de::IgnoredAny)>()
        .is_ok_and(|(id, _)| id == member::MONITOR_ID)
}

/// One database session.
pub struct Client {
    cfg: ClientConfig,
    post: Post,
    state: State,
    generation: u64,
    next_remote: usize,
    backoff: Backoff,
    jitter: Jitter,
    schema: Option<Schema>,
    next_id: u64,
    user_requests: HashSet<u64>,
    internal: HashMap<u64, Internal>,
    last_rx: Instant,
    probe_sent: bool,
    rx_bytes: Arc<AtomicU64>,
    rx_seen: u64,
    /// The newest copy of a clustered database seen, across members.
    newest: Newest,
    /// Schema complaints already logged, per remote.
    complained: HashSet<String>,
}

impl Client {
    /// A session that starts connecting at the first [`Client::tick`].
    /// `post` delivers connection events to the owner's queue.
    pub fn new(cfg: ClientConfig, post: Post) -> Client {
        let mut client = Client {
            cfg,
            post,
            state: State::Waiting {
                until: Instant::now(),
            },
            generation: 0,
            next_remote: 0,
            backoff: Backoff::default(),
            jitter: Jitter::default(),
            schema: None,
            next_id: 1,
            user_requests: HashSet::new(),
            internal: HashMap::new(),
            last_rx: Instant::now(),
            probe_sent: false,
            rx_bytes: Arc::new(AtomicU64::new(0)),
            rx_seen: 0,
            newest: Newest::default(),
            complained: HashSet::new(),
        };
        client.next_remote = client.first_remote();
        client
    }

    /// Where a round of the remotes starts: see
    /// [`ClientConfig::shuffle_remotes`].
    fn first_remote(&mut self) -> usize {
        let n = self.cfg.remotes.len();
        if self.cfg.shuffle_remotes && n > 1 {
            self.jitter.draw() as usize % n
        } else {
            0
        }
    }

    /// Bytes received from the server(s) since the session was created.
    pub fn rx_bytes(&self) -> u64 {
        self.rx_bytes.load(Ordering::Relaxed)
    }

    /// The label given in the configuration.
    pub fn label(&self) -> &str {
        &self.cfg.label
    }

    /// The remote in use or about to be.
    pub fn remote(&self) -> &Remote {
        &self.cfg.remotes[self.next_remote % self.cfg.remotes.len()]
    }

    /// The remotes.
    pub fn remotes(&self) -> &[Remote] {
        &self.cfg.remotes
    }

    /// True once connected and the schema is known.
    pub fn is_ready(&self) -> bool {
        matches!(self.state, State::Ready { .. })
    }

    /// The schema of the current connection.
    pub fn schema(&self) -> Option<&Schema> {
        self.schema.as_ref()
    }

    /// Switches to other remotes (e.g. `ovn-remote` changed): drops the
    /// current connection and reconnects. Returns the events of the drop.
    pub fn set_remotes(&mut self, remotes: Vec<Remote>) -> Vec<ClientEvent> {
        if remotes == self.cfg.remotes || remotes.is_empty() {
            return Vec::new();
        }
        log::info!(
            "{}: remote changed to {}",
            self.cfg.label,
            remotes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        self.cfg.remotes = remotes;
        self.next_remote = self.first_remote();
        self.backoff.reset();
        self.drop_connection("remote changed", Duration::ZERO)
    }

    /// Changes the inactivity probe (`None`: off) from now on, e.g. when
    /// `external_ids:ovn-remote-probe-interval` changes. A connection up
    /// counts its silence from this call.
    pub fn set_probe_interval(&mut self, interval: Option<Duration>) {
        if self.cfg.probe_interval != interval {
            self.cfg.probe_interval = interval;
            self.last_rx = Instant::now();
            self.probe_sent = false;
        }
    }

    /// The caller was busy elsewhere for `away` (waiting for providers):
    /// the server's silence meanwhile is not held against it, so the
    /// inactivity probe and the connect deadline move on by as much.
    pub fn excuse(&mut self, away: Duration) {
        self.last_rx += away;
        if let State::Negotiating { until, .. } = &mut self.state {
            *until += away;
        }
    }

    /// Sends a request; `None` if not ready (the caller retries after the
    /// next `Ready`).
    pub fn request(&mut self, method: &str, params: Value) -> Option<u64> {
        if !self.is_ready() {
            return None;
        }
        let id = self.send_request(method, params)?;
        self.user_requests.insert(id);
        Some(id)
    }

    /// Like [`Client::request`], with `params` already serialised as a JSON
    /// array (as [`super::txn::Txn::params_json`] gives them), so a large
    /// transaction is not parsed back into a `Value` only to be written.
    pub fn request_json(&mut self, method: &str, params: &[u8]) -> Option<u64> {
        if !self.is_ready() {
            return None;
        }
        let mut bytes = Vec::with_capacity(params.len() + method.len() + 40);
        bytes.extend_from_slice(b"{\"method\":");
        serde_json::to_writer(&mut bytes, method).ok()?;
        bytes.extend_from_slice(b",\"params\":");
        bytes.extend_from_slice(params);
        bytes.extend_from_slice(format!(",\"id\":{}}}\n", self.next_id).as_bytes());
        let id = self.send_numbered(method, bytes)?;
        self.user_requests.insert(id);
        Some(id)
    }

    fn writer(&self) -> Option<&Outbox> {
        match &self.state {
            State::Ready { writer, .. } | State::Negotiating { writer, .. } => Some(writer),
            _ => None,
        }
    }

    fn send_request(&mut self, method: &str, params: Value) -> Option<u64> {
        let message = Message::Request {
            method: method.to_owned(),
            params: Json::from_value(&params),
            id: json!(self.next_id),
        };
        let mut bytes = serde_json::to_vec(&message).ok()?;
        bytes.push(b'\n');
        self.send_numbered(method, bytes)
    }

    /// Writes a request that carries the next id, and returns that id.
    fn send_numbered(&mut self, method: &str, bytes: Vec<u8>) -> Option<u64> {
        match self.writer()?.send_bytes(bytes) {
            Ok(()) => {
                self.next_id += 1;
                Some(self.next_id - 1)
            }
            Err(e) => {
                // The reader thread will report the broken connection.
                log::debug!("{}: sending {method}: {e}", self.cfg.label);
                None
            }
        }
    }

    fn send_internal(&mut self, what: Internal, method: &str, params: Value) {
        if let Some(id) = self.send_request(method, params) {
            self.internal.insert(id, what);
        }
    }

    /// Starts due connection attempts and runs the inactivity probe.
    /// Returns what happened and when to call again.
    pub fn tick(&mut self, now: Instant) -> (Vec<ClientEvent>, Option<Instant>) {
        let mut events = Vec::new();
        match self.state {
            State::Waiting { until } if now >= until => {
                self.generation += 1;
                self.state = State::Connecting;
                let remote = self.remote().clone();
                log::debug!("{}: connecting to {remote}", self.cfg.label);
                connection::spawn(
                    remote,
                    self.cfg.tls.clone(),
                    self.cfg.connect_timeout,
                    self.generation,
                    self.post.clone(),
                    self.rx_bytes.clone(),
                );
            }
            State::Negotiating { until, .. } if now >= until => {
                let reason = format!(
                    "{} accepted the connection but did not answer within {} ms",
                    self.remote(),
                    self.cfg.connect_timeout.as_millis()
                );
                events.extend(self.fail(&reason, true));
            }
            State::Ready { .. } => {
                // Bytes still arriving (a large message) count as activity.
                let rx = self.rx_bytes.load(Ordering::Relaxed);
                if rx != self.rx_seen {
                    self.rx_seen = rx;
                    self.last_rx = now;
                    self.probe_sent = false;
                }
                if let Some(interval) = self.cfg.probe_interval {
                    if now.duration_since(self.last_rx) >= interval {
                        if self.probe_sent {
                            let reason = format!(
                                "no answer from {} for {} ms (inactivity probe)",
                                self.remote(),
                                2 * interval.as_millis()
                            );
                            // A failure like any other: the next remote, after
                            // the usual back-off (`lib/reconnect.c`).
                            events.extend(self.fail(&reason, true));
                        } else {
                            self.send_internal(Internal::Probe, "echo", json!([]));
                            self.probe_sent = true;
                            self.last_rx = now;
                        }
                    }
                }
            }
            _ => {}
        }
        let deadline = match self.state {
            State::Waiting { until } | State::Negotiating { until, .. } => Some(until),
            State::Ready { .. } => self.cfg.probe_interval.map(|i| self.last_rx + i),
            State::Connecting => None,
        };
        (events, deadline)
    }

    /// Feeds one event from a connection thread.
    pub fn handle(&mut self, event: ConnEvent) -> Vec<ClientEvent> {
        match event {
            ConnEvent::Connected {
                generation,
                writer,
                closer,
            } if generation == self.generation => {
                log::debug!("{}: connected to {}", self.cfg.label, self.remote());
                self.state = State::Negotiating {
                    writer,
                    closer,
                    until: Instant::now() + self.cfg.connect_timeout,
                };
                self.last_rx = Instant::now();
                self.probe_sent = false;
                // As the OVS IDL does (`lib/ovsdb-cs.c`): without it,
                // ovsdb-server cancels the monitors of a converted
                // clustered database without a word, and the view stops
                // advancing while the connection stays healthy.
                self.send_internal(Internal::ChangeAware, "set_db_change_aware", json!([true]));
                let check = json!([
                    "_Server",
                    {"op": "select", "table": "Database",
                     "where": [["name", "==", self.cfg.database]],
                     "columns": member::COLUMNS}
                ]);
                self.send_internal(Internal::ServerCheck, "transact", check);
                Vec::new()
            }
            ConnEvent::Connected { closer, .. } => {
                closer.close();
                Vec::new()
            }
            ConnEvent::Message {
                generation,
                message,
            } if generation == self.generation => {
                self.last_rx = Instant::now();
                self.probe_sent = false;
                self.on_message(message)
            }
            ConnEvent::Closed { generation, reason } if generation == self.generation => {
                // A connection that broke soon after it became ready is a
                // failure like any other (see `backoff`).
                self.fail(&reason, true)
            }
            _ => Vec::new(),
        }
    }

    /// How long to wait after a failed attempt or a lost connection
    /// (see [`Backoff::failed`]).
    fn failure_wait(&mut self) -> Duration {
        let jitter = self.jitter.draw();
        self.backoff
            .failed(Instant::now(), self.cfg.remotes.len(), jitter)
    }

    fn drop_connection(&mut self, reason: &str, wait: Duration) -> Vec<ClientEvent> {
        let was_ready = self.is_ready();
        let old = std::mem::replace(
            &mut self.state,
            State::Waiting {
                until: Instant::now() + wait,
            },
        );
        if let State::Ready { closer, .. } | State::Negotiating { closer, .. } = &old {
            closer.close();
        }
        if wait < MAX_BACKOFF * 2 {
            log::info!(
                "{}: next attempt: {} {}",
                self.cfg.label,
                self.remote(),
                if wait.is_zero() {
                    "now".to_owned()
                } else {
                    format!("in {} ms", wait.as_millis())
                }
            );
        }
        // Reports from the abandoned attempt are ignored from now on.
        self.generation += 1;
        self.internal.clear();
        self.schema = None;
        let in_flight: Vec<u64> = self.user_requests.drain().collect();
        if was_ready || !in_flight.is_empty() {
            vec![ClientEvent::Disconnected {
                reason: reason.to_owned(),
                in_flight,
            }]
        } else {
            Vec::new()
        }
    }

    fn on_message(&mut self, message: Message) -> Vec<ClientEvent> {
        match message {
            Message::Reply { result, id } => {
                let Some(id) = id.as_u64() else {
                    return Vec::new();
                };
                if let Some(what) = self.internal.remove(&id) {
                    return self.on_internal_reply(what, Ok(result));
                }
                if self.user_requests.remove(&id) {
                    vec![ClientEvent::Reply { id, result }]
                } else {
                    Vec::new()
                }
            }
            Message::Error { error, id } => {
                let Some(id) = id.as_u64() else {
                    return Vec::new();
                };
                if let Some(what) = self.internal.remove(&id) {
                    return self.on_internal_reply(what, Err(error));
                }
                if self.user_requests.remove(&id) {
                    vec![ClientEvent::Error { id, error }]
                } else {
                    Vec::new()
                }
            }
            Message::Notify { method, .. } if method == "echo" => Vec::new(),
            Message::Notify { method, .. } if method == "monitor_canceled" => {
                // The database was converted or replaced under us: read it
                // afresh from the same server, as for any lost connection
                // (the view is not current again until it is repopulated).
                let reason = format!(
                    "{} canceled our monitor of {} (the database was converted or replaced): reading it afresh",
                    self.remote(),
                    self.cfg.database
                );
                self.fail(&reason, false)
            }
            Message::Notify { method, params }
                if method == "update" && is_server_monitor(&params) =>
            {
                let params = params.value();
                self.on_server_update(params.get(1).unwrap_or(&Value::Null))
            }
            Message::Notify { method, params } => vec![ClientEvent::Notify { method, params }],
            Message::Request { method, id, .. } => {
                // The server asks nothing of clients but echo (answered by
                // the connection thread); refuse anything else politely.
                if let Some(w) = self.writer() {
                    let _ = w.send(&Message::Error {
                        error: json!(format!("unknown method {method}")).into(),
                        id,
                    });
                }
                Vec::new()
            }
        }
    }

    /// A failure of the connection or of the attempt: said in one
    /// warning, then the connection dropped and tried again after the
    /// usual back-off (`lib/reconnect.c`), at the next remote if `next`.
    fn fail(&mut self, reason: &str, next: bool) -> Vec<ClientEvent> {
        log::warn!("{}: {reason}", self.cfg.label);
        if next {
            self.next_remote += 1;
        }
        let wait = self.failure_wait();
        self.drop_connection(reason, wait)
    }

    /// Drops the connection and reconnects after the usual back-off, e.g.
    /// to resynchronise after an update that could not be applied.
    pub fn reconnect(&mut self, reason: &str) -> Vec<ClientEvent> {
        log::warn!("{}: {reason}; reconnecting", self.cfg.label);
        let wait = self.failure_wait();
        self.drop_connection(reason, wait)
    }

    /// Closes the connection for good (shutdown).
    pub fn close(&mut self) {
        self.drop_connection("shutting down", MAX_BACKOFF * 1000);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(n: usize, shuffle: bool) -> Client {
        let remotes = (0..n)
            .map(|i| Remote::Unix(format!("/nonexistent/{i}.sock").into()))
            .collect();
        Client::new(
            ClientConfig {
                label: "test".into(),
                database: "OVN_Southbound".into(),
                remotes,
                tls: None,
                probe_interval: None,
                connect_timeout: Duration::from_secs(1),
                shuffle_remotes: shuffle,
                required: &[],
            },
            Arc::new(|_| {}),
        )
    }

    #[test]
    fn shuffled_remotes_spread_the_first_connections_over_every_member() {
        let mut firsts = HashSet::new();
        for _ in 0..64 {
            firsts.insert(client(3, true).remote().to_string());
        }
        assert_eq!(firsts.len(), 3, "{firsts:?}");
        for _ in 0..8 {
            assert_eq!(
                client(3, false).remote().to_string(),
                "unix:/nonexistent/0.sock"
            );
        }
    }
}
