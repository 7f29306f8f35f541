//! What the session does with the answers to its own requests while
//! connecting and after: the `_Server` check that judges a cluster member,
//! the schema read, `set_db_change_aware`, and the `_Server` monitor that
//! notices a member losing its cluster.

use super::*;

impl Client {
    pub(super) fn on_internal_reply(
        &mut self,
        what: Internal,
        result: Result<Json, Json>,
    ) -> Vec<ClientEvent> {
        // Small answers all: read as values.
        let result = result.map(|r| r.value()).map_err(|e| e.value());
        match what {
            Internal::Probe => Vec::new(),
            Internal::ChangeAware => {
                if let Err(e) = result {
                    // An ovsdb-server older than 2.9: it closes the
                    // connection on a conversion instead.
                    log::debug!("{}: set_db_change_aware refused: {e}", self.cfg.label);
                }
                Vec::new()
            }
            Internal::ServerMonitor => match result {
                Ok(initial) => self.on_server_update(&initial),
                Err(e) => {
                    // Not fatal: the member was judged when connecting.
                    log::debug!("{}: cannot follow _Server: {e}", self.cfg.label);
                    Vec::new()
                }
            },
            Internal::ServerCheck => {
                // A server without _Server (or an error) is not clustered.
                let row = result.ok().as_ref().and_then(ServerRow::from_select);
                let verdict = row.as_ref().map_or(Verdict::Use, |r| self.newest.judge(r));
                let skip = match verdict {
                    Verdict::Use => None,
                    Verdict::NewDatabase => {
                        log::warn!(
                            "{}: {} serves a new copy of {} (its cluster id changed): reading it afresh",
                            self.cfg.label,
                            self.remote(),
                            self.cfg.database
                        );
                        None
                    }
                    Verdict::NotConnected => Some(format!(
                        "{} is not connected to its cluster; trying the next remote",
                        self.remote()
                    )),
                    Verdict::Behind { index, seen } => Some(format!(
                        "{} holds an older copy of {} than one already seen (log index {index} < {seen}): it is still catching up; trying the next remote",
                        self.remote(),
                        self.cfg.database
                    )),
                };
                if let Some(reason) = skip {
                    return self.fail(&reason, true);
                }
                if row.is_some() {
                    // Follow the row for as long as the connection lasts.
                    self.send_internal(
                        Internal::ServerMonitor,
                        "monitor",
                        member::monitor_params(),
                    );
                }
                self.send_internal(
                    Internal::GetSchema,
                    "get_schema",
                    json!([self.cfg.database]),
                );
                Vec::new()
            }
            Internal::GetSchema => match result
                .map_err(|e| e.to_string())
                .and_then(|r| Schema::from_json(&r))
            {
                Ok(schema) if !schema.missing(self.cfg.required).is_empty() => {
                    let missing: Vec<String> = schema
                        .missing(self.cfg.required)
                        .iter()
                        .map(|r| format!("{}.{} ({} or later)", r.table, r.column, r.since))
                        .collect();
                    let reason = format!(
                        "{} serves {} schema {} without {}: this release is too old; trying again in about {} s",
                        self.remote(),
                        self.cfg.database,
                        schema.version.as_deref().unwrap_or("(no version)"),
                        missing.join(", "),
                        MAX_BACKOFF.as_secs()
                    );
                    // Said once per server: it will not change by itself.
                    if self.complained.insert(self.remote().to_string()) {
                        log::error!("{}: {reason}", self.cfg.label);
                    } else {
                        log::debug!("{}: {reason}", self.cfg.label);
                    }
                    self.next_remote += 1;
                    let jitter = self.jitter.draw();
                    let wait = self.backoff.failed_for_long(self.cfg.remotes.len(), jitter);
                    self.drop_connection(&reason, wait)
                }
                Ok(schema) => {
                    self.schema = Some(schema);
                    let State::Negotiating { writer, closer, .. } = std::mem::replace(
                        &mut self.state,
                        State::Waiting {
                            until: Instant::now(),
                        },
                    ) else {
                        return Vec::new();
                    };
                    self.state = State::Ready { writer, closer };
                    self.backoff.ready(Instant::now());
                    log::info!(
                        "{}: connected to {} ({})",
                        self.cfg.label,
                        self.remote(),
                        self.cfg.database
                    );
                    vec![ClientEvent::Ready]
                }
                Err(e) => {
                    let reason = format!(
                        "{}: cannot get the schema of {}: {e}",
                        self.remote(),
                        self.cfg.database
                    );
                    self.fail(&reason, false)
                }
            },
        }
    }

    /// A change to this member's `_Server.Database` row, while connected:
    /// the member is left, as the OVS IDL leaves it, when it loses its
    /// cluster, falls behind a copy seen elsewhere, or stops serving the
    /// database; a database re-created under a new cluster id is read
    /// afresh from the same member.
    pub(super) fn on_server_update(&mut self, updates: &Value) -> Vec<ClientEvent> {
        let row = match member::watched_change(updates, &self.cfg.database) {
            member::Watched::Nothing => return Vec::new(),
            member::Watched::Removed => None,
            member::Watched::Row(row) => Some(row),
        };
        let (reason, next) = match row.map(|r| self.newest.judge(&r)) {
            Some(Verdict::Use) => return Vec::new(),
            None => (
                format!(
                    "{} no longer serves {} (it left its cluster, or the database was removed); moving to the next remote",
                    self.remote(),
                    self.cfg.database
                ),
                true,
            ),
            Some(Verdict::NotConnected) => (
                format!(
                    "{} lost contact with its cluster (_Server says it is not connected); moving to the next remote",
                    self.remote()
                ),
                true,
            ),
            Some(Verdict::Behind { index, seen }) => (
                format!(
                    "{} fell behind a copy of {} already seen (log index {index} < {seen}); moving to the next remote",
                    self.remote(),
                    self.cfg.database
                ),
                true,
            ),
            Some(Verdict::NewDatabase) => (
                format!(
                    "{} now serves a new copy of {} (its cluster id changed): reading it afresh",
                    self.remote(),
                    self.cfg.database
                ),
                false,
            ),
        };
        self.fail(&reason, next)
    }
}
