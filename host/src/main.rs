//! `vif-plug-host`: see `--help`.

mod cli;
mod man;

use clap::Parser;
use cli::{Cli, Command, ProviderArgs, RunArgs};
use std::process::ExitCode;
use std::time::Duration;
use vif_plug_host::agent::{Agent, AgentOptions};
use vif_plug_host::check::{self, CheckOptions};
use vif_plug_host::config::Setting;
use vif_plug_host::dispatch::{Isolation, Providers, Settings};
use vif_plug_host::loader::{self, Sources};
use vif_plug_host::ovsdb::remote;
use vif_plug_host::ovsdb::stream::{TlsFiles, TlsSource};
use vif_plug_host::unixctl::{ControlServer, Placement};
use vif_plug_host::ProviderConfig;

use vif_plug_host::dispatch::SLOW_CALL;

/// The `--provider-config` settings; errors: a key given twice.
fn config_from(settings: Vec<Setting>) -> Result<ProviderConfig, String> {
    let mut config = ProviderConfig::default();
    for setting in settings {
        config.insert(setting)?;
    }
    Ok(config)
}

/// `--provider-timeout` when not given, in milliseconds.
const DEFAULT_TIMEOUT_MS: u64 = 1000;

/// The providers `args` name, loaded in the isolation mode they ask for.
/// Errors: the provider configuration is not usable.
fn load_providers(args: ProviderArgs) -> Result<Providers, String> {
    if args.timeout.is_some() && args.isolation == Isolation::None {
        log::warn!(
            "--provider-timeout has no effect with --provider-isolation=none: in process, a provider's calls cannot be cut short"
        );
    }
    let config = config_from(args.config)?;
    let sources = Sources {
        files: args.files,
        dirs: args.dirs,
    }
    .or_default();
    let settings = Settings {
        exe: std::env::current_exe().unwrap_or_else(|_| "vif-plug-host".into()),
        per_call: Duration::from_millis(args.timeout.unwrap_or(DEFAULT_TIMEOUT_MS)),
        slow: SLOW_CALL,
    };
    Ok(Providers::load(
        &loader::provider_files(&sources),
        &config,
        args.isolation,
        settings,
    ))
}

fn list_providers(args: ProviderArgs) -> ExitCode {
    let mut providers = match load_providers(args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("vif-plug-host: {e}");
            return ExitCode::from(2);
        }
    };
    if !providers.has_providers() {
        eprintln!("no provider registered");
        return ExitCode::FAILURE;
    }
    for t in providers.types() {
        println!(
            "{t}\t{}\tmaintains: {}",
            providers
                .origin(&t)
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            providers.maintained(&t).join(",")
        );
    }
    providers.destroy_all();
    ExitCode::SUCCESS
}

fn run(args: RunArgs) -> ExitCode {
    let fail = |what: &str, e: String| {
        log::error!("{what}: {e}");
        ExitCode::from(2)
    };
    // First, so that a signal in the first milliseconds is held for the
    // agent (and handled as a clean stop once it runs) instead of killing
    // the process by its default action with the pidfile left behind.
    let mut signals = match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        // As OVS daemons do: a hang-up (the terminal gone) is a clean stop
        // too, not a death without destroy and with the pidfile left.
        signal_hook::consts::SIGHUP,
    ]) {
        Ok(s) => s,
        Err(e) => return fail("installing signal handlers", e.to_string()),
    };
    let ovs_remote = match remote::parse_list(&args.ovs_remote) {
        Ok(r) => r,
        Err(e) => return fail("--ovs-remote", e),
    };
    let sb_remote = match args.sb_remote.as_deref().map(remote::parse_list) {
        None => None,
        Some(Ok(r)) => Some(r),
        Some(Err(e)) => return fail("--ovnsb-remote", e),
    };
    let tls = match (args.private_key, args.certificate, args.ca_cert) {
        (Some(private_key), Some(certificate), Some(ca_cert)) => match TlsSource::new(TlsFiles {
            private_key,
            certificate,
            ca_cert,
        }) {
            Ok(c) => Some(std::sync::Arc::new(c)),
            Err(e) => return fail("TLS", e),
        },
        _ => None,
    };
    let placement = Placement::new(args.rundir, args.unixctl);
    let pidfile = match ControlServer::claim(&placement) {
        Ok(p) => p,
        Err(e) => return fail("pidfile", e),
    };
    let providers = match load_providers(args.providers) {
        Ok(p) => p,
        Err(e) => return fail("provider configuration", e),
    };
    if !providers.has_providers() {
        log::error!("no provider registered: nothing to plug (see --provider, --provider-dir)");
        return ExitCode::FAILURE;
    }
    let opts = AgentOptions {
        ovs_remote,
        sb_remote,
        chassis: args.chassis,
        bridge: args.bridge,
        tls,
        probe_interval: args.probe_interval,
        provider_run_interval: Duration::from_millis(args.provider_run_interval),
        unplug_settle: Duration::from_millis(args.unplug_settle),
    };
    let agent = Agent::new(opts, providers);
    let events = std::sync::Mutex::new(agent.sender());
    let control = ControlServer::start(&placement, pidfile, move |c| {
        let tx = events.lock().unwrap_or_else(|e| e.into_inner());
        tx.send(vif_plug_host::agent::Event::Control(c)).is_ok()
    });
    let _control = match control {
        Ok(c) => c,
        Err(e) => return fail("control socket", e),
    };
    let stop = agent.stop_handle();
    std::thread::spawn(move || {
        for sig in signals.forever() {
            if !stop.stop(sig) {
                break;
            }
        }
    });
    agent.run();
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    vif_plug_host::memory::limit_arenas();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap repeats a bad value as it was given; a bidirectional
            // control in it would reorder the rest of the line.
            let plain = e.render().to_string();
            if plain.chars().any(vif_plug_host::text::is_bidi_control) {
                eprint!("{}", vif_plug_host::text::escape_bidi(&plain));
                return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
            }
            e.exit()
        }
    };
    let logger =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
            .format_timestamp_millis()
            .build();
    // Only `check` records provider errors (to report them as violations);
    // a long-running agent must not keep every line a provider logs.
    let installed = if matches!(cli.command, Command::Worker { .. }) {
        let max = logger.filter().max(log::LevelFilter::Error);
        log::set_boxed_logger(Box::new(vif_plug_host::worker::child::WorkerLogger(logger)))
            .map(|()| max)
    } else if matches!(cli.command, Command::Check { .. }) {
        let max = logger.filter().max(log::LevelFilter::Error);
        log::set_boxed_logger(Box::new(check::RecordingLogger(logger))).map(|()| max)
    } else if matches!(cli.command, Command::Run(_)) {
        // The agent's levels change at run time (vlog/set).
        drop(logger);
        vif_plug_host::vlog::install().map(|()| log::max_level())
    } else {
        let max = logger.filter();
        log::set_boxed_logger(Box::new(logger)).map(|()| max)
    };
    if let Ok(max) = installed {
        log::set_max_level(max);
    }
    match cli.command {
        Command::Check {
            files,
            provider_config,
            lport_options,
            timeout,
            ports,
            allow_decline,
            keep_loaded,
        } => {
            if keep_loaded {
                loader::keep_loaded();
            }
            let config = match config_from(provider_config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("vif-plug-host: {e}");
                    return ExitCode::from(2);
                }
            };
            let per_port = cli::options_of(&ports.lport_option_of)
                .map_err(|e| format!("--lport-option-of: {e}"))
                .and_then(|o| {
                    let m = cli::macs_of(&ports.lport_mac_of)
                        .map_err(|e| format!("--lport-mac-of: {e}"))?;
                    Ok((o, m))
                });
            let (options_of, macs_of) = match per_port {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("vif-plug-host: {e}");
                    return ExitCode::from(2);
                }
            };
            let opts = CheckOptions {
                config,
                ports: check::SamplePorts {
                    lports: ports.lports,
                    lport_options,
                    lport_macs: ports.lport_macs,
                    options_of,
                    macs_of,
                    datapath_type: ports.datapath_type,
                    dpdk_initialized: ports.dpdk_initialized,
                    iface_type: ports.iface_type,
                    iface_options: ports.iface_options,
                },
                worker_exe: std::env::current_exe().unwrap_or_else(|_| "vif-plug-host".into()),
                deadline: Duration::from_millis(timeout),
                allow_decline,
            };
            if let Err(e) = opts.ports.validate() {
                eprintln!("vif-plug-host: {e}");
                return ExitCode::from(2);
            }
            match check::run(&files, &opts, &mut std::io::stdout().lock()) {
                Ok(summary) if summary.passed() => ExitCode::SUCCESS,
                Ok(_) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("vif-plug-host: writing the report: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::ListProviders { providers } => list_providers(providers),
        Command::Run(args) => run(*args),
        Command::Worker {
            library,
            keep_loaded,
        } => {
            if keep_loaded {
                loader::keep_loaded();
            }
            ExitCode::from(vif_plug_host::worker::child::main(&library))
        }
        Command::Man { dir } => man::main(dir),
    }
}
