//! `vif-plug-host`: see `--help`.

mod cli;

use clap::Parser;
use cli::{Cli, Command, ProviderArgs};
use std::process::ExitCode;
use vif_plug_host::check::{self, CheckOptions};
use vif_plug_host::config::Setting;
use vif_plug_host::loader::{self, Sources};
use vif_plug_host::{ProviderConfig, Registry};

fn config_from(settings: Vec<Setting>) -> ProviderConfig {
    let mut config = ProviderConfig::default();
    for setting in settings {
        config.insert(setting);
    }
    config
}

fn list_providers(args: ProviderArgs) -> ExitCode {
    let config = config_from(args.config);
    let sources = Sources {
        files: args.files,
        dirs: args.dirs,
    }
    .or_default();
    let mut registry = Registry::new();
    loader::load_into(&mut registry, &sources, &config);
    if !registry.has_providers() {
        eprintln!("no provider registered");
        return ExitCode::FAILURE;
    }
    for p in registry.iter() {
        println!(
            "{}\t{}\tmaintains: {}",
            p.type_name(),
            p.origin().display(),
            p.maintained_options().join(",")
        );
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match cli.command {
        Command::Check {
            files,
            provider_config,
            lport_options,
        } => {
            let opts = CheckOptions {
                config: config_from(provider_config),
                lport_options,
            };
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
    }
}
