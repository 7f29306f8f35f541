//! Command-line interface.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use vif_plug_host::config::{parse_spec, Setting};

/// Plugs OVN logical ports into Open vSwitch through vendor provider
/// libraries loaded at start-up.
#[derive(Debug, Parser)]
#[command(name = "vif-plug-host", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check provider libraries against the ABI contract before shipping
    /// them: load each file, drive every class through CREATE, UPDATE and
    /// REMOVE on sample ports, and report. Exits 1 on any violation.
    Check {
        /// Provider libraries (.so) to check.
        #[arg(required = true, value_name = "FILE.so")]
        files: Vec<PathBuf>,
        /// Configuration for a provider's init (repeatable).
        #[arg(long = "provider-config", value_name = "TYPE:KEY=VALUE", value_parser = parse_spec)]
        provider_config: Vec<Setting>,
        /// Extra logical port option for the sample ports, such as the lookup
        /// keys a hardware provider needs (repeatable).
        #[arg(long = "lport-option", value_name = "KEY=VALUE", value_parser = parse_kv)]
        lport_options: Vec<(String, String)>,
    },
    /// Load providers as the agent would and list the registered classes.
    ListProviders {
        /// Where providers come from.
        #[command(flatten)]
        providers: ProviderArgs,
    },
}

/// Options that choose and configure provider libraries.
#[derive(Debug, Args, Clone, Default)]
pub struct ProviderArgs {
    /// Load this provider library (repeatable).
    #[arg(long = "provider", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Load every *.so in this directory (repeatable). Without --provider or
    /// --provider-dir, /usr/lib/vif-plug-host/providers is used.
    #[arg(long = "provider-dir", value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Configuration for a provider's init, e.g.
    /// devlink:sysfs-root=/sys (repeatable).
    #[arg(long = "provider-config", value_name = "TYPE:KEY=VALUE", value_parser = parse_spec)]
    pub config: Vec<Setting>,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?}: expected KEY=VALUE with a non-empty KEY")),
    }
}
