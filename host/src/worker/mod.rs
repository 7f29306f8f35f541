//! Provider worker processes: each provider library loaded
//! by a child process of its own, so that a crash or a hang in vendor code
//! costs that provider's calls in flight, not the chassis.
//!
//! - [`frame`]: how messages travel on the socketpair;
//! - [`protocol`]: what the agent and a worker say, batched per iteration;
//! - [`serve`]: the worker's side, one provider class driven by those
//!   messages;
//! - [`child`]: the worker process's entry point;
//! - `failure`: how a request can fail, and the call it was in;
//! - [`process`]: the agent's handle on a worker: spawn, call with a
//!   deadline, crash and hang reported with the signal (used by the agent
//!   through `dispatch`, and by `check`);
//! - `program`: which binary a worker is started from;
//! - `stderr`: what a worker writes to its standard error, logged;

pub mod child;
mod failure;
pub mod frame;
pub mod process;
mod program;
pub mod protocol;
pub mod serve;
mod stderr;
