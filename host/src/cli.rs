//! Command-line interface.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use vif_plug_host::config::{parse_spec, Setting};
use vif_plug_host::dispatch::Isolation;

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
    /// them: load each file in a worker process, drive every class through
    /// CREATE, UPDATE and REMOVE on sample ports, and report. A crash or a
    /// hang is a FAIL naming the callback; callbacks slower than 10 ms get
    /// a WARN. Exits 1 on any violation, 2 on a usage error.
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
        /// Each callback's deadline in milliseconds: past it the step FAILs
        /// and the worker is killed.
        #[arg(long = "provider-timeout", value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
        timeout: u64,
        /// What the sample ports look like.
        #[command(flatten)]
        ports: CheckPortArgs,
        /// Pass even if every CREATE is declined, for a provider that
        /// rightly declines the sample ports on this machine (no hardware
        /// here). Without it, that is a FAIL, since nothing of the create,
        /// update and finish paths was then checked.
        #[arg(long)]
        allow_decline: bool,
        /// Never unload the libraries (dlopen with RTLD_NODELETE), so that
        /// valgrind and AddressSanitizer can name the provider's functions
        /// in the leaks they report when the worker exits.
        #[arg(long)]
        keep_loaded: bool,
    },
    /// Run the plugging agent beside ovn-controller: plug, update and unplug
    /// the logical ports that the Southbound database requests on this
    /// chassis with options:vif-plug-type. Stops cleanly on SIGTERM/SIGINT,
    /// leaving plugged ports in place.
    Run(Box<RunArgs>),
    /// Internal: a provider worker process, started by the agent with a
    /// socketpair as standard input.
    #[command(hide = true)]
    Worker {
        /// The provider library.
        #[arg(long, value_name = "FILE.so")]
        library: PathBuf,
        /// Never unmap the library (`check --keep-loaded`).
        #[arg(long)]
        keep_loaded: bool,
    },
    /// Load providers as the agent would and list the registered classes.
    ListProviders {
        /// Where providers come from.
        #[command(flatten)]
        providers: ProviderArgs,
    },
    /// Internal: write the manual page, vif-plug-host(1), generated from
    /// this command line (packaging runs it).
    #[command(hide = true)]
    Man {
        /// Write DIR/vif-plug-host.1 (and print its path) instead of writing
        /// the page to standard output.
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// The sample ports `check` asks the providers about.
#[derive(Debug, Args, Clone)]
pub struct CheckPortArgs {
    /// A logical port to CREATE, UPDATE and REMOVE (repeatable) [default:
    /// lsp1 and a-logical-port-name-longer-than-ifnamsiz]. The first is the
    /// one updated and removed.
    #[arg(long = "lport", value_name = "NAME", value_parser = parse_lport)]
    pub lports: Vec<String>,
    /// A MAC address of the logical ports, or a Port_Binding.mac entry
    /// ("MAC IP...") whose MAC is taken (repeatable; every sample port gets
    /// them; passed to providers built for ABI 1.1 or later).
    #[arg(long = "lport-mac", value_name = "MAC", value_parser = parse_mac)]
    pub lport_macs: Vec<String>,
    /// A logical port option for one sample port only, e.g. the VF a
    /// provider looks up (repeatable; replaces an --lport-option of the
    /// same key for that port).
    #[arg(long = "lport-option-of", num_args = 2, value_names = ["LPORT", "KEY=VALUE"])]
    pub lport_option_of: Vec<String>,
    /// A MAC of one sample port only (repeatable; a port given any gets
    /// these instead of the --lport-mac ones).
    #[arg(long = "lport-mac-of", num_args = 2, value_names = ["LPORT", "MAC"])]
    pub lport_mac_of: Vec<String>,
    /// The integration bridge's Bridge.datapath_type: netdev, or "" for
    /// the system datapath.
    #[arg(long = "datapath-type", value_name = "TYPE", default_value = "")]
    pub datapath_type: String,
    /// Open_vSwitch.dpdk_initialized is true.
    #[arg(long = "dpdk-initialized")]
    pub dpdk_initialized: bool,
    /// For the UPDATE step: the existing interface's type [default: the
    /// one the provider gave on CREATE]. With it or --iface-option, UPDATE
    /// runs even when the provider declined the CREATE.
    #[arg(long = "iface-type", value_name = "TYPE", value_parser = parse_iface_type)]
    pub iface_type: Option<String>,
    /// For the UPDATE step: an option of the existing interface
    /// (repeatable) [default: the options the provider gave on CREATE].
    #[arg(long = "iface-option", value_name = "KEY=VALUE", value_parser = parse_kv)]
    pub iface_options: Vec<(String, String)>,
}

fn parse_lport(s: &str) -> Result<String, String> {
    if s.is_empty() || s.chars().any(char::is_control) {
        Err(format!(
            "{s:?}: a logical port name is non-empty, without control characters"
        ))
    } else {
        Ok(s.to_owned())
    }
}

/// A MAC, or a whole `Port_Binding.mac` entry ("MAC IP..."), whose MAC is
/// taken as the agent takes it.
fn parse_mac(s: &str) -> Result<String, String> {
    vif_plug_host::agent::lport_macs::from_mac_column([s])
        .pop()
        .ok_or_else(|| {
            format!(
                "{s:?}: expected a MAC address, six hexadecimal pairs separated by colons (0a:00:00:00:00:01), optionally followed by IP addresses as in Port_Binding.mac"
            )
        })
}

/// An interface type as the host accepts one from a provider: letters,
/// digits, '-' and '_', or "" (system).
fn parse_iface_type(s: &str) -> Result<String, String> {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{s:?}: an interface type is made of letters, digits, '-' and '_' (\"\" for a system interface)"
        ))
    }
}

/// Options that choose and configure provider libraries.
#[derive(Debug, Args, Clone)]
pub struct ProviderArgs {
    /// Load this provider library (repeatable).
    #[arg(long = "provider", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Load every *.so in this directory (repeatable). Without --provider or
    /// --provider-dir, /usr/lib/vif-plug-host/providers is used.
    #[arg(long = "provider-dir", value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Configuration for a provider's init, e.g.
    /// representor:sysfs-root=/sys (repeatable).
    #[arg(long = "provider-config", value_name = "TYPE:KEY=VALUE", value_parser = parse_spec)]
    pub config: Vec<Setting>,
    /// Where provider code runs: "process" loads each library in a worker
    /// process of its own, so that a crash or a hang in it costs only its
    /// calls in flight (the worker is restarted); "none" loads them into
    /// this process, as ovn-controller does.
    #[arg(
        long = "provider-isolation",
        value_name = "MODE",
        default_value = "process"
    )]
    pub isolation: Isolation,
    /// Each provider callback's deadline in milliseconds, in process
    /// isolation: a worker whose callback runs longer is killed and
    /// handled as a crash [default: 1000]. Calls slower than 50 ms are
    /// logged. Not applicable with --provider-isolation=none.
    #[arg(long = "provider-timeout", value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
}

/// `--lport-option-of`'s and `--lport-mac-of`'s values, taken in pairs:
/// (logical port, parsed value).
pub fn pairs<T>(
    values: &[String],
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<(String, T)>, String> {
    values
        .chunks(2)
        .map(|c| match c {
            [lport, v] => Ok((parse_lport(lport)?, parse(v)?)),
            _ => Err("expected LPORT and a value".to_owned()),
        })
        .collect()
}

/// [`pairs`] of `--lport-option-of`.
pub fn options_of(values: &[String]) -> Result<Vec<(String, String, String)>, String> {
    Ok(pairs(values, parse_kv)?
        .into_iter()
        .map(|(l, (k, v))| (l, k, v))
        .collect())
}

/// [`pairs`] of `--lport-mac-of`.
pub fn macs_of(values: &[String]) -> Result<Vec<(String, String)>, String> {
    pairs(values, parse_mac)
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?}: expected KEY=VALUE with a non-empty KEY")),
    }
}

/// Options of `run`. Defaults follow ovn-controller.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// The local Open vSwitch database.
    #[arg(long, value_name = "REMOTE", default_value = vif_plug_host::agent::options::DEFAULT_OVS_REMOTE)]
    pub ovs_remote: String,
    /// The OVN Southbound database, one remote or a comma-separated cluster
    /// list [default: external_ids:ovn-remote of the local Open_vSwitch
    /// row, followed when it changes].
    #[arg(long = "ovnsb-remote", value_name = "REMOTES")]
    pub sb_remote: Option<String>,
    /// This chassis's name [default: external_ids:system-id of the local
    /// Open_vSwitch row, followed when it changes; unplugs then wait
    /// --unplug-settle].
    #[arg(long, value_name = "NAME")]
    pub chassis: Option<String>,
    /// The integration bridge [default: external_ids:ovn-bridge, else
    /// br-int, followed when it changes: ports the agent plugged move to the
    /// new bridge, also after a restart of the agent].
    #[arg(long, value_name = "BRIDGE")]
    pub bridge: Option<String>,
    /// PEM private key for ssl: remotes.
    #[arg(long, value_name = "FILE", requires_all = ["certificate", "ca_cert"])]
    pub private_key: Option<std::path::PathBuf>,
    /// PEM certificate for ssl: remotes.
    #[arg(long, value_name = "FILE", requires_all = ["private_key", "ca_cert"])]
    pub certificate: Option<std::path::PathBuf>,
    /// PEM CA certificate that ssl: servers must be signed by.
    #[arg(long, value_name = "FILE", requires_all = ["private_key", "certificate"])]
    pub ca_cert: Option<std::path::PathBuf>,
    /// Inactivity probe in milliseconds (0: off; at least 1000) for both
    /// databases [default: for the Southbound,
    /// external_ids:ovn-remote-probe-interval(-<chassis>) of the local
    /// Open_vSwitch row, followed when it changes, as ovn-controller does;
    /// else 5000 on tcp:/ssl: remotes and off on unix: sockets].
    #[arg(long, value_name = "MS")]
    pub probe_interval: Option<u64>,
    /// The longest time between two calls of the providers' run, in
    /// milliseconds: run is called whenever the agent wakes, and at least
    /// this often when nothing happens.
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..))]
    pub provider_run_interval: u64,
    /// After connecting to a Southbound database that is already populated
    /// (a restart of the agent or of the database, a database restored from
    /// a copy), after the chassis name changes, and after SB_Global is
    /// replaced under a live connection, wait this long before unplugging or
    /// replacing anything, in milliseconds, so that ovn-northd can bring
    /// older contents up to date first. Plugging is never delayed. 0: trust
    /// the first look.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub unplug_settle: u64,
    /// Directory of the pidfile (`vif-plug-host.pid`) and the control
    /// socket (`vif-plug-host.<pid>.ctl`) that `ovs-appctl -t
    /// vif-plug-host` talks to. Default: `$OVS_RUNDIR`, else
    /// /var/run/openvswitch, as for Open vSwitch's own daemons.
    #[arg(long, value_name = "DIR")]
    pub rundir: Option<std::path::PathBuf>,
    /// The control socket's path instead (relative to the rundir if
    /// relative), or `none` for no control socket.
    #[arg(long, value_name = "PATH")]
    pub unixctl: Option<std::path::PathBuf>,
    /// Where providers come from.
    #[command(flatten)]
    pub providers: ProviderArgs,
}
