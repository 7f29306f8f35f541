//! Provider worker processes (in progress): each provider library loaded
//! by a child process of its own, so that a crash or a hang in vendor code
//! costs that provider's calls in flight, not the chassis.
//!
//! - [`frame`]: how messages travel on the socketpair;
//! - [`protocol`]: what the agent and a worker say, batched per iteration;
//! - [`serve`]: the worker's side, one provider class driven by those
//!   messages (not yet run in a child process).

pub mod frame;
pub mod protocol;
pub mod serve;
