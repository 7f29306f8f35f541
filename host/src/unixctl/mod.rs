//! The control socket that Open vSwitch's `ovs-appctl` talks to: OVS's
//! unixctl protocol (JSON-RPC 1.0 over a Unix stream socket, as
//! `lib/unixctl.c` serves it), at `<rundir>/vif-plug-host.<pid>.ctl`, with
//! the pidfile `<rundir>/vif-plug-host.pid` by which `ovs-appctl -t
//! vif-plug-host` finds it.
//!
//! - [`protocol`]: requests and replies, and the command table;
//! - [`pidfile`]: the pidfile, and refusing to run twice on one rundir;
//! - [`server`]: the socket and its threads, which hand each valid command
//!   to the agent and write back its answer.

pub mod pidfile;
pub mod protocol;
pub mod server;

pub use protocol::{Command, COMMANDS};
pub use server::{Control, ControlServer, Placement};
