//! The VIF plug host: loads provider libraries at start-up, keeps the
//! registry, and drives providers through the ABI's port life cycle.
//!
//! - [`loader`]: finding, trusting, mapping and version-checking libraries;
//! - [`provider`]: a class as the host calls it, with the call-order
//!   contract enforced by types;
//! - [`registry`]: registered classes by type;
//! - [`check`]: the conformance run behind `vif-plug-host check`;
//! - [`worker`]: provider worker processes (the messages, so far).

pub mod agent;
pub mod check;
pub mod config;
pub mod coverage;
pub mod dispatch;
pub mod loader;
pub mod memory;
pub mod ovsdb;
pub mod provider;
pub mod registry;
pub mod text;
pub mod unixctl;
pub mod vlog;
pub mod worker;

pub use config::ProviderConfig;
pub use registry::Registry;
