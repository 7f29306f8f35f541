//! Whether to use the cluster member just connected to, from its
//! `_Server.Database` row, as the OVS IDL decides it (`lib/ovsdb-cs.c`): a
//! member that is not connected to its cluster is skipped, and so is one
//! whose copy of the database is older than a copy already seen (a follower
//! still catching up), since a view read from it would be stale.
//!
//! Ages are compared by the Raft log `index`, within one database
//! (`cid`): a database re-created under a new cluster id starts over.

use super::datum::Uuid;
use serde_json::Value;

/// The `_Server.Database` columns read.
pub const COLUMNS: &[&str] = &["model", "connected", "leader", "index", "cid"];

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
        let row = result.get(0)?.get("rows")?.get(0)?;
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
        // (member, verdict) in the order they are met.
        let table = [
            (standalone, Verdict::Use),
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
}
