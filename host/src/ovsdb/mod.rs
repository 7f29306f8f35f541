//! Our OVSDB client (RFC 7047): remotes, streams, JSON-RPC, typed values,
//! schemas, monitored-table replicas and transactions.

pub mod backoff;
pub mod client;
pub mod connection;
pub mod datum;
pub mod json;
pub mod jsonrpc;
pub mod member;
pub mod remote;
pub mod replica;
pub mod schema;
pub mod stream;
pub mod txn;
pub mod wire;

pub use datum::{Atom, ColumnKind, Datum, Uuid};
pub use json::Json;
pub use jsonrpc::Message;
pub use remote::Remote;
pub use schema::Schema;
