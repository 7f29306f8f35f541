//! Whether to use the cluster member just connected to, from its
//! `_Server.Database` row, as the OVS IDL decides it (`lib/ovsdb-cs.c`): a
//! member that is not connected to its cluster is skipped, and so is one
//! whose copy of the database is older than a copy already seen (a follower
//! still catching up), since a view read from it would be stale. A relay
//! (`relay:` database of ovsdb-server) not connected to its source is
//! skipped as well.
//!
//! Ages are compared by the Raft log `index`, within one database
//! (`cid`): a database re-created under a new cluster id starts over.
//!
//! The row is read once when connecting, then followed through a monitor on
//! `_Server` for as long as the connection lasts ([`watched_change`]), so a
//! member that loses its cluster, or whose database is re-created or
//! removed, is left as the OVS IDL leaves it.

use super::datum::Uuid;
use serde_json::Value;

/// The `_Server.Database` columns read.
pub const COLUMNS: &[&str] = &["model", "connected", "leader", "index", "cid"];

/// The id of the client's own monitor on `_Server`, told apart from the
/// owner's monitors by it.
pub const MONITOR_ID: &str = "vif-plug-host _Server";

/// The parameters of the `monitor` request that follows `_Server.Database`.
pub fn monitor_params() -> Value {
    let mut columns: Vec<&str> = vec!["name"];
    columns.extend_from_slice(COLUMNS);
    serde_json::json!(["_Server", MONITOR_ID, {"Database": {"columns": columns}}])
}

/// What a `_Server` monitor update (RFC 7047 §4.1.6 `<table-updates>`)
/// says about `database`'s row on this member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watched {
    /// Nothing about it.
    Nothing,
    /// Its new contents.
    Row(ServerRow),
    /// It was removed: the member no longer serves the database (it left
    /// its cluster, or the database was removed at run time).
    Removed,
}

/// Reads `updates` for `database`'s row.
pub fn watched_change(updates: &Value, database: &str) -> Watched {
    let Some(rows) = updates.get("Database").and_then(Value::as_object) else {
        return Watched::Nothing;
    };
    let named =
        |v: Option<&Value>| v.and_then(|r| r.get("name")).and_then(Value::as_str) == Some(database);
    for change in rows.values() {
        match change.get("new") {
            // A plain monitor sends every column of a new or modified row.
            Some(new) if named(Some(new)) => {
                if let Some(row) = ServerRow::from_row(new) {
                    return Watched::Row(row);
                }
            }
            None if named(change.get("old")) => return Watched::Removed,
            _ => {}
        }
    }
    Watched::Nothing
}

/// A member's `_Server.Database` row for our database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerRow {
    /// `clustered`, `standalone` or `relay`.
    pub model: String,
    /// Connected to its cluster (always true for a standalone server).
    pub connected: bool,
    /// The Raft log index of its copy, for a clustered database.
    pub index: Option<i64>,
    /// The cluster id, for a clustered database.
    pub cid: Option<Uuid>,
}

impl ServerRow {
    /// Reads the row out of a `select` reply; `None` when the server has no
    /// `_Server` database (an old server) or the reply names no row.
    pub fn from_select(result: &Value) -> Option<ServerRow> {
        ServerRow::from_row(result.get(0)?.get("rows")?.get(0)?)
    }

    /// Reads one row (as `select` or a monitor gives it).
    pub fn from_row(row: &Value) -> Option<ServerRow> {
        let int = |v: &Value| -> Option<i64> {
            // An optional column is a set: ["set", []] when empty.
            v.as_i64()
        };
        let uuid = |v: &Value| -> Option<Uuid> {
            match v.as_array()?.as_slice() {
                [tag, u] if tag == "uuid" => u.as_str()?.parse().ok(),
                _ => None,
            }
        };
        Some(ServerRow {
            model: row.get("model")?.as_str()?.to_owned(),
            connected: row
                .get("connected")
                .and_then(Value::as_bool)
                .unwrap_or(true),
            index: row.get("index").and_then(int),
            cid: row.get("cid").and_then(uuid),
        })
    }
}

/// What to do with the member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Use it.
    Use,
    /// Use it: its database is a new one (the cluster id changed), so its
    /// view is fresh and nothing seen before counts.
    NewDatabase,
    /// Skip it: not connected to its cluster.
    NotConnected,
    /// Skip it: its copy is older than one already seen.
    Behind {
        /// Its index.
        index: i64,
        /// The newest index seen.
        seen: i64,
    },
}

/// The newest copy of the database seen so far, across members and
/// reconnects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Newest {
    cid: Option<Uuid>,
    index: i64,
}

impl Newest {
    /// Judges a member by its row and, if it is used, remembers its copy.
    pub fn judge(&mut self, row: &ServerRow) -> Verdict {
        // A relay not connected to its source serves a view that no longer
        // advances, as a cluster member cut off from its cluster does.
        if row.model == "relay" && !row.connected {
            return Verdict::NotConnected;
        }
        if row.model != "clustered" {
            return Verdict::Use;
        }
        if !row.connected {
            return Verdict::NotConnected;
        }
        let index = row.index.unwrap_or(0);
        if row.cid.is_some() && self.cid.is_some() && row.cid != self.cid {
            *self = Newest {
                cid: row.cid,
                index,
            };
            return Verdict::NewDatabase;
        }
        if index < self.index {
            return Verdict::Behind {
                index,
                seen: self.index,
            };
        }
        self.cid = row.cid.or(self.cid);
        self.index = index;
        Verdict::Use
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn clustered(connected: bool, index: i64, cid: u128) -> ServerRow {
        ServerRow {
            model: "clustered".into(),
            connected,
            index: Some(index),
            cid: Some(Uuid(cid)),
        }
    }

    #[test]
    fn members_are_judged_as_the_ovs_idl_does() {
        let mut n = Newest::default();
        let standalone = ServerRow {
            model: "standalone".into(),
            connected: true,
            ..ServerRow::default()
        };
        let relay = |connected| ServerRow {
            model: "relay".into(),
            connected,
            ..ServerRow::default()
        };
        // (member, verdict) in the order they are met.
        let table = [
            (standalone, Verdict::Use),
            (relay(true), Verdict::Use),
            (relay(false), Verdict::NotConnected),
            (clustered(false, 50, 1), Verdict::NotConnected),
            (clustered(true, 40, 1), Verdict::Use),
            (clustered(true, 45, 1), Verdict::Use),
            // A follower still catching up.
            (
                clustered(true, 44, 1),
                Verdict::Behind {
                    index: 44,
                    seen: 45,
                },
            ),
            (clustered(true, 45, 1), Verdict::Use),
            // The cluster was re-created: a new database, indexes start over.
            (clustered(true, 3, 2), Verdict::NewDatabase),
            (clustered(true, 4, 2), Verdict::Use),
            (clustered(true, 2, 2), Verdict::Behind { index: 2, seen: 4 }),
        ];
        for (i, (row, verdict)) in table.into_iter().enumerate() {
            assert_eq!(n.judge(&row), verdict, "row {i}: {row:?}");
        }
    }

    #[test]
    fn rows_are_read_from_a_select_reply() {
        let reply = json!([{"rows": [{
            "model": "clustered", "connected": true, "leader": false, "index": 1234,
            "cid": ["uuid", "36c3d7a4-49a7-4c2c-a7e8-8e1fbbc3b5e0"]
        }]}]);
        let row = ServerRow::from_select(&reply).unwrap();
        assert_eq!(row.index, Some(1234));
        assert!(row.cid.is_some());
        let standalone = json!([{"rows": [{
            "model": "standalone", "connected": true, "leader": true,
            "index": ["set", []], "cid": ["set", []]
        }]}]);
        let row = ServerRow::from_select(&standalone).unwrap();
        assert_eq!((row.index, row.cid), (None, None));
        assert_eq!(ServerRow::from_select(&json!([{"rows": []}])), None);
    }

    #[test]
    fn monitor_updates_are_read_for_our_database_only() {
        let row = |name: &str, connected: bool| {
            json!({"name": name, "model": "clustered", "connected": connected,
                   "leader": false, "index": 7, "cid": ["uuid", "36c3d7a4-49a7-4c2c-a7e8-8e1fbbc3b5e0"]})
        };
        let table = [
            (json!({}), Watched::Nothing),
            (
                json!({"Database": {"u1": {"new": row("_Server", false)}}}),
                Watched::Nothing,
            ),
            (
                json!({"Database": {"u2": {"old": {"connected": true}, "new": row("OVN_Southbound", false)}}}),
                Watched::Row(ServerRow::from_row(&row("x", false)).unwrap()),
            ),
            (
                json!({"Database": {"u2": {"old": row("OVN_Southbound", true)}}}),
                Watched::Removed,
            ),
            (
                json!({"Database": {"u3": {"old": row("Other", true)}}}),
                Watched::Nothing,
            ),
        ];
        for (i, (updates, want)) in table.into_iter().enumerate() {
            assert_eq!(watched_change(&updates, "OVN_Southbound"), want, "case {i}");
        }
        assert_eq!(monitor_params()[1], MONITOR_ID);
    }
}
