//! The Southbound session: the connection, the monitor and its condition,
//! and the facts the agent decides on. It decides nothing about ports; it
//! says what the view holds and how far it can be trusted ([`Doubt`]).
//!
//! The monitor's condition follows our chassis (its UUID is known only
//! from its row) and the agent's lookups (see [`super::sb_view`]). One
//! condition change is in flight at a time; what the server has
//! acknowledged is kept apart from what is wanted, because only an
//! acknowledged condition proves anything.

use super::placement::OurChassis;
use super::port_state::Doubt;
use super::rows::PortBinding;
use super::sb_view::{self, SbView, Selection};
use crate::ovsdb::client::{Client, ClientConfig, ClientEvent};
use crate::ovsdb::replica::RowChange;
use crate::ovsdb::Json;
use crate::ovsdb::{Remote, Uuid};
use serde_json::json;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The monitor id used on both databases.
pub const MONITOR_ID: &str = "vif-plug-host";

/// What a batch of Southbound events changed, for the agent to act on.
#[derive(Debug, Default)]
pub struct SbUpdate {
    /// Logical ports to decide again.
    pub lports: HashSet<String>,
    /// The view's certainty changed: every known port is decided again.
    pub recheck_all: bool,
}

/// Whether unplugs wait for the settle time on this monitor (see
/// [`Doubt::Settling`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settle {
    /// The first look found no populated database: what ovn-northd writes
    /// from now on is current.
    NotNeeded,
    /// The first look found a populated database; the wait starts once the
    /// view is otherwise current.
    Pending,
    /// Waiting until then.
    Until(Instant),
    /// Waited.
    Done,
}

/// The Southbound session.
pub struct SbSession {
    client: Option<Client>,
    view: SbView,
    /// The `monitor`/`monitor_cond` request awaiting its reply, with the
    /// selection it carries.
    request: Option<(u64, Selection)>,
    /// Whether the monitor has delivered its complete initial contents.
    complete: bool,
    /// The server lacks `monitor_cond`: plain `monitor` is used.
    plain: bool,
    /// What the agent wants selected.
    wanted: Selection,
    /// What the server has acknowledged.
    selected: Option<Selection>,
    /// A `monitor_cond_change` awaiting its reply.
    change: Option<(u64, Selection)>,
    /// The certainty last logged.
    last_doubt: Option<Option<Doubt>>,
    /// The view has been current at least once since the agent started.
    been_current: bool,
    /// How long to wait before trusting a first look (see [`Settle`]).
    settle_time: Duration,
    settle: Settle,
    /// The hostname this chassis registers with, known locally.
    local_hostname: Option<String>,
    /// The last hostname our Chassis row carried: a row re-created under
    /// the same name may lack it for a while.
    row_hostname: Option<String>,
    /// The `SB_Global` row seen in this monitor, to notice the database
    /// being replaced under it.
    sb_global: Option<Uuid>,
    /// Whether the database was populated at the last look.
    populated: bool,
    /// Logical ports with an interface we plugged; those whose binding is
    /// not selected by our chassis are looked up by name.
    plugged: BTreeSet<String>,
}

impl SbSession {
    /// A session with no remote yet. `settle_time`: see
    /// [`Doubt::Settling`].
    pub fn new(chassis_name: String, settle_time: Duration) -> SbSession {
        SbSession {
            client: None,
            view: SbView::default(),
            request: None,
            complete: false,
            plain: false,
            wanted: Selection {
                chassis_name,
                ..Selection::default()
            },
            selected: None,
            change: None,
            last_doubt: None,
            been_current: false,
            settle_time,
            settle: Settle::NotNeeded,
            local_hostname: None,
            row_hostname: None,
            sb_global: None,
            populated: false,
            plugged: BTreeSet::new(),
        }
    }

    /// Sets the hostname this chassis registers with (see
    /// [`OurChassis::local_hostname`]).
    pub fn set_local_hostname(&mut self, hostname: Option<String>) {
        self.local_hostname = hostname;
    }

    /// The client, if a remote is known.
    pub fn client(&mut self) -> Option<&mut Client> {
        self.client.as_mut()
    }

    /// Bytes received, if connected once.
    pub fn rx_bytes(&self) -> Option<u64> {
        self.client.as_ref().map(Client::rx_bytes)
    }

    /// Connects to `remotes` (or switches to them); `source` says where
    /// they were given, for the log. Returns the events of dropping an
    /// earlier connection.
    pub fn set_remotes(
        &mut self,
        remotes: Vec<Remote>,
        source: &str,
        make: impl FnOnce(Vec<Remote>) -> ClientConfig,
        post: crate::ovsdb::connection::Post,
    ) -> SbUpdate {
        let list = remotes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        match &mut self.client {
            None => {
                log::info!("southbound: {list} (from {source})");
                self.client = Some(Client::new(make(remotes), post));
                SbUpdate::default()
            }
            Some(c) if c.remotes() != remotes.as_slice() => {
                log::info!("southbound: now {list} (from {source})");
                let events = c.set_remotes(remotes);
                self.on_events(events)
            }
            Some(_) => SbUpdate::default(),
        }
    }

    /// Sets our chassis name (from `external_ids:system-id` or the command
    /// line).
    pub fn set_chassis_name(&mut self, name: String) {
        if name == self.wanted.chassis_name {
            return;
        }
        let old = std::mem::replace(&mut self.wanted.chassis_name, name);
        self.row_hostname = None;
        if old.is_empty() {
            log::info!("chassis name: {:?}", self.wanted.chassis_name);
        } else {
            // A mistyped system-id, set back a moment later, must not
            // unplug every port: what changes hands waits like a first look.
            log::warn!(
                "chassis name changed from {old:?} to {:?}: ports requested on {old:?} will be unplugged once the view for {:?} is current, after --unplug-settle",
                self.wanted.chassis_name,
                self.wanted.chassis_name
            );
            self.restart_settle();
        }
        self.follow();
    }

    /// Makes unplugs wait the settle time again (see [`Doubt::Settling`]).
    fn restart_settle(&mut self) {
        if !self.settle_time.is_zero() {
            self.settle = Settle::Pending;
        }
    }

    /// Notices the database changing identity under a live monitor: the
    /// `SB_Global` row replaced (a database restored with `ovsdb-client
    /// restore`; ovn-northd never deletes it), or a database that was not
    /// populated becoming so (ovn-northd rebuilding it, or a copy restored
    /// into it, which look the same). Either starts the settle time again.
    fn check_database(&mut self, out: &mut SbUpdate) {
        let now = self.view.sb_global();
        let populated = self.view.populated();
        if self.sb_global.is_some() && now != self.sb_global {
            log::warn!(
                "southbound: SB_Global was replaced: the database was restored or rebuilt under a live connection; unplugging nothing until --unplug-settle has passed"
            );
            self.restart_settle();
            out.recheck_all = true;
        } else if populated && !self.populated {
            log::info!(
                "southbound: the database was populated under a live connection (ovn-northd rebuilding it, or a copy restored into it): unplugging nothing until --unplug-settle has passed"
            );
            self.restart_settle();
            out.recheck_all = true;
        }
        if now.is_some() {
            self.sb_global = now;
        }
        self.populated = populated;
    }

    /// Our chassis name.
    pub fn chassis_name(&self) -> &str {
        &self.wanted.chassis_name
    }

    /// Sets the logical ports with an interface we plugged. Those whose
    /// binding is not in view as requested for our chassis are looked up
    /// by name (see [`SbSession::needed_lookups`]).
    pub fn set_lookups(&mut self, plugged: BTreeSet<String>) {
        if self.plugged != plugged {
            self.plugged = plugged;
            self.follow();
        }
    }

    /// The plugged logical ports to look up by name: those whose binding
    /// the chassis clauses do not already bring into view. A port requested
    /// here needs no lookup while it stays so; when its binding leaves the
    /// view (moved away, deleted), it is looked up from then on, and until
    /// the server has answered that lookup its absence proves nothing
    /// ([`SbSession::lookup_confirmed`]). So the condition stays at a few
    /// clauses in steady state, instead of one per plugged port, which every
    /// change to the table is checked against on the server, for every
    /// chassis.
    fn needed_lookups(&self) -> BTreeSet<String> {
        let Some(chassis) = self.wanted.chassis else {
            return self.plugged.clone();
        };
        self.plugged
            .iter()
            .filter(|lport| {
                !self.view.binding(lport).is_some_and(|b| {
                    b.requested_chassis() == Some(chassis)
                        || b.requested_additional_chassis().any(|c| c == chassis)
                })
            })
            .cloned()
            .collect()
    }

    /// The binding of `lport`, if in view.
    pub fn binding(&self, lport: &str) -> Option<PortBinding<'_>> {
        self.view.binding(lport)
    }

    /// Every logical port with a binding in view.
    pub fn lports(&self) -> impl Iterator<Item = &String> {
        self.view.lports()
    }

    /// This chassis as the view knows it.
    pub fn our_chassis(&self) -> OurChassis<'_> {
        let row = self.view.chassis(&self.wanted.chassis_name);
        OurChassis {
            uuid: row.map(|(u, _)| u),
            name: &self.wanted.chassis_name,
            hostname: row.map(|(_, c)| c.hostname()),
            local_hostname: self.local_hostname.as_deref(),
            remembered_hostname: self.row_hostname.as_deref(),
        }
    }

    /// Whether a Southbound remote is known (a client exists).
    pub fn has_remote(&self) -> bool {
        self.client.is_some()
    }

    /// Whether the monitor's complete contents are in view on a live
    /// connection.
    pub fn is_complete(&self) -> bool {
        self.complete && self.client.as_ref().is_some_and(Client::is_ready)
    }

    /// Why the view cannot prove an unplug at `now`; `None` when it can:
    /// the monitor's contents are complete, our Chassis row is in view, the
    /// server has acknowledged the condition on it, ovn-northd has
    /// populated the database, and, if it was populated at the first look,
    /// the settle time has passed.
    pub fn doubt(&self, now: Instant) -> Option<Doubt> {
        if let Some(d) = self.base_doubt() {
            return Some(d);
        }
        match self.settle {
            Settle::Pending => Some(Doubt::Settling),
            Settle::Until(t) if now < t => Some(Doubt::Settling),
            _ => None,
        }
    }

    /// When the settle time ends, if it is running.
    pub fn settle_deadline(&self) -> Option<Instant> {
        match self.settle {
            Settle::Until(t) => Some(t),
            _ => None,
        }
    }

    fn base_doubt(&self) -> Option<Doubt> {
        if !self.client.as_ref().is_some_and(Client::is_ready) {
            return Some(Doubt::Disconnected);
        }
        if !self.complete {
            return Some(Doubt::Loading);
        }
        let Some((chassis, _)) = self.view.chassis(&self.wanted.chassis_name) else {
            return Some(Doubt::NoChassis(self.wanted.chassis_name.clone()));
        };
        if !self.plain {
            let acknowledged = self.selected.as_ref().is_some_and(|s| {
                s.chassis_name == self.wanted.chassis_name && s.chassis == Some(chassis)
            });
            if !acknowledged {
                return Some(Doubt::ConditionPending);
            }
        }
        if !self.view.populated() {
            return Some(Doubt::NotPopulated);
        }
        None
    }

    /// Whether the server has answered a lookup of `lport`: then a binding
    /// of that name not in view does not exist.
    /// See [`sb_view::lookup_answered`].
    pub fn lookup_confirmed(&self, lport: &str) -> bool {
        self.plain
            || sb_view::lookup_answered(
                self.selected.as_ref(),
                self.change.as_ref().map(|(_, s)| s),
                lport,
            )
    }

    /// Moves the settle time on, and logs a change of certainty, once.
    /// Returns whether the certainty changed.
    pub fn refresh_certainty(&mut self, now: Instant) -> bool {
        if self.settle == Settle::Pending && self.base_doubt().is_none() {
            self.settle = Settle::Until(now + self.settle_time);
        }
        if matches!(self.settle, Settle::Until(t) if now >= t) {
            self.settle = Settle::Done;
        }
        let doubt = self.doubt(now);
        if self.last_doubt.as_ref() == Some(&doubt) {
            return false;
        }
        let was_current = self.last_doubt == Some(None);
        match &doubt {
            None => log::info!(
                "southbound: the view is complete and current ({} binding(s) in view for chassis {:?}): unplugging on proof",
                self.view.len(),
                self.wanted.chassis_name
            ),
            // Losing certainty is news; gaining it step by step is not.
            Some(d) if was_current => {
                log::warn!("southbound: {d}: unplugging nothing until the view is current")
            }
            // At start, connecting and loading are the expected way in:
            // said at debug level; what can last (settling, no chassis row,
            // not populated) is said at info.
            Some(d @ (Doubt::Disconnected | Doubt::Loading | Doubt::ConditionPending))
                if !self.been_current =>
            {
                log::debug!("southbound: {d}: unplugging nothing until the view is current")
            }
            Some(d) => log::info!("southbound: {d}: unplugging nothing until the view is current"),
        }
        self.been_current |= doubt.is_none();
        self.last_doubt = Some(doubt);
        true
    }

    /// Feeds the client's events; returns what they changed.
    pub fn on_events(&mut self, events: Vec<ClientEvent>) -> SbUpdate {
        let mut out = SbUpdate::default();
        for e in events {
            self.on_event(e, &mut out);
        }
        if let Some((_, c)) = self.view.chassis(&self.wanted.chassis_name) {
            if !c.hostname().is_empty() && self.row_hostname.as_deref() != Some(c.hostname()) {
                self.row_hostname = Some(c.hostname().to_owned());
            }
        }
        self.follow();
        out
    }

    fn on_event(&mut self, e: ClientEvent, out: &mut SbUpdate) {
        match e {
            ClientEvent::Ready => {
                self.complete = false;
                self.request = None;
                self.change = None;
                self.selected = None;
                self.request_monitor();
            }
            ClientEvent::Reply { id, result }
                if self.request.as_ref().is_some_and(|r| r.0 == id) =>
            {
                let (_, sel) = self.request.take().expect("checked above");
                let mut changes = self.view.reset();
                match self.apply(&result) {
                    Ok(c) => changes.extend(c),
                    Err(e) => {
                        self.view.reset();
                        self.reconnect(&format!("bad monitor reply ({e})"), out);
                        return;
                    }
                }
                let idx = self.view.index(&changes);
                out.lports.extend(idx.lports);
                out.recheck_all = true;
                self.complete = true;
                self.selected = Some(sel);
                self.settle = if self.view.populated() && !self.settle_time.is_zero() {
                    Settle::Pending
                } else {
                    Settle::NotNeeded
                };
                self.sb_global = self.view.sb_global();
                self.populated = self.view.populated();
                match self.selected.as_ref().and_then(|s| s.chassis) {
                    Some(_) => log::info!(
                        "southbound: {} port binding(s) in view for chassis {:?}",
                        self.view.len(),
                        self.wanted.chassis_name
                    ),
                    // Known only from this first reply: the condition on it
                    // follows.
                    None => log::debug!(
                        "southbound: first contents read; selecting the bindings of chassis {:?} next",
                        self.wanted.chassis_name
                    ),
                }
            }
            ClientEvent::Error { id, error }
                if self.request.as_ref().is_some_and(|r| r.0 == id) =>
            {
                self.request = None;
                if !self.plain && error.to_string().contains("unknown method") {
                    log::warn!("southbound: server has no monitor_cond; monitoring every port binding (more traffic)");
                    self.plain = true;
                    self.request_monitor();
                } else {
                    self.reconnect(&format!("monitor refused ({error})"), out);
                }
            }
            ClientEvent::Reply { id, .. } if self.change.as_ref().is_some_and(|c| c.0 == id) => {
                let (_, sel) = self.change.take().expect("checked above");
                // Lookups now answered: their absence has become proof.
                match self.selected.as_ref().map(|s| &s.lookups) {
                    Some(before) => out.lports.extend(sel.lookups.difference(before).cloned()),
                    None => out.lports.extend(sel.lookups.iter().cloned()),
                }
                // Only a new chassis condition changes what every port sees.
                let new_chassis = self.selected_chassis_changes(&sel);
                out.recheck_all |= new_chassis;
                if new_chassis && sel.chassis.is_some() {
                    // The server sent the rows before its reply: the count
                    // is of the acknowledged condition.
                    log::info!(
                        "southbound: {} port binding(s) in view for chassis {:?}",
                        self.view.len(),
                        self.wanted.chassis_name
                    );
                }
                self.selected = Some(sel);
            }
            ClientEvent::Error { id, error } if self.change.as_ref().is_some_and(|c| c.0 == id) => {
                // The server still filters on the old condition: this view
                // must not be trusted; start afresh.
                self.change = None;
                self.reconnect(&format!("monitor_cond_change refused ({error})"), out);
            }
            ClientEvent::Notify { method, params } if method == "update2" || method == "update" => {
                let updates = take_updates(params);
                match self.apply(&updates) {
                    Ok(changes) => {
                        log::debug!("southbound: update of {} row(s)", changes.len());
                        let idx = self.view.index(&changes);
                        out.lports.extend(idx.lports);
                        out.recheck_all |= idx.global;
                        if idx.global {
                            self.check_database(out);
                        }
                    }
                    Err(e) => self.reconnect(&format!("cannot apply an update ({e})"), out),
                }
            }
            ClientEvent::Disconnected { .. } => {
                // The rows stay as they were (still good for plugging) but
                // prove nothing until a fresh monitor delivers them again.
                self.complete = false;
                self.request = None;
                self.change = None;
                self.selected = None;
                out.recheck_all = true;
            }
            _ => {}
        }
    }

    fn selected_chassis_changes(&self, sel: &Selection) -> bool {
        self.selected
            .as_ref()
            .is_none_or(|s| s.chassis != sel.chassis || s.chassis_name != sel.chassis_name)
    }

    fn reconnect(&mut self, reason: &str, out: &mut SbUpdate) {
        self.complete = false;
        self.selected = None;
        let events = match self.client.as_mut() {
            Some(c) => c.reconnect(reason),
            None => return,
        };
        out.recheck_all = true;
        for e in events {
            self.on_event(e, out);
        }
    }

    fn apply(&mut self, updates: &Json) -> Result<Vec<RowChange>, String> {
        if self.plain {
            let schema = self.client.as_ref().and_then(Client::schema);
            return self.view.replica.apply_update(schema, updates.text());
        }
        let schema = self
            .client
            .as_ref()
            .and_then(Client::schema)
            .ok_or("no schema")?;
        self.view.replica.apply_update2(schema, updates.text())
    }

    fn request_monitor(&mut self) {
        self.wanted.chassis = self.view.chassis(&self.wanted.chassis_name).map(|(u, _)| u);
        let sel = self.wanted.clone();
        let Some(client) = self.client.as_mut() else {
            return;
        };
        let schema = client.schema();
        let id = json!(MONITOR_ID);
        let (method, params) = if self.plain {
            ("monitor", sb_view::monitor_plain_params(schema, &id))
        } else {
            ("monitor_cond", sb_view::monitor_params(schema, &id, &sel))
        };
        self.request = client.request(method, params).map(|id| (id, sel));
    }

    /// Moves the condition to what is wanted, one change at a time.
    fn follow(&mut self) {
        let chassis = self.view.chassis(&self.wanted.chassis_name).map(|(u, _)| u);
        if chassis != self.wanted.chassis {
            match chassis {
                Some(c) => log::info!("chassis {:?} is {c}", self.wanted.chassis_name),
                None if self.complete => log::warn!(
                    "chassis {:?} is not in the Southbound database: waiting for ovn-controller to register it",
                    self.wanted.chassis_name
                ),
                None => {}
            }
            self.wanted.chassis = chassis;
        }
        let lookups = self.needed_lookups();
        if *self.wanted.lookups != lookups {
            self.wanted.lookups = Arc::new(lookups);
        }
        if self.plain || !self.complete || self.request.is_some() || self.change.is_some() {
            return; // followed again when the pending request is answered
        }
        if self.selected.as_ref() == Some(&self.wanted) {
            return;
        }
        let sel = self.wanted.clone();
        let Some(client) = self.client.as_mut() else {
            return;
        };
        let params = sb_view::condition_change_params(client.schema(), &json!(MONITOR_ID), &sel);
        self.change = client
            .request("monitor_cond_change", params)
            .map(|id| (id, sel));
    }
}

/// The `<table-updates>` of an `update`/`update2` notification (its
/// second parameter), as text; `null` if the parameters are malformed,
/// which applying then reports.
pub fn take_updates(params: Json) -> Json {
    params
        .parse::<(serde::de::IgnoredAny, Json)>()
        .map_or_else(|_| Json::null(), |(_, updates)| updates)
}
