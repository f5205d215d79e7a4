//! The `mfa-agent` binary: hardens the process, sets up logging, runs the command.

use std::process::ExitCode;

use clap::Parser;
use mfa_agent::cli::{Cli, run};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

fn main() -> ExitCode {
    // Before anything reads a secret: no core dumps, no ptrace by other same-user processes.
    mfa_agent::sys::harden_process();
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8) {
    // -v raises only our own crate's level; MFA_AGENT_LOG is a full filter for debugging
    // (`debug`, or `warn,mfa_agent=trace`). `Targets` rather than `EnvFilter`: it needs no
    // regex engine, which keeps start-up (paid on every credential_process call) short.
    let level = ["warn", "info", "debug", "trace"][usize::from(verbose.min(3))];
    let default = format!("warn,mfa_agent={level}");
    let filter = std::env::var("MFA_AGENT_LOG")
        .ok()
        .and_then(|spec| {
            spec.parse::<Targets>()
                .map_err(|e| eprintln!("warning: ignoring MFA_AGENT_LOG ({e}); use e.g. `debug` or `warn,mfa_agent=trace`"))
                .ok()
        })
        .unwrap_or_else(|| default.parse().expect("the default filter parses"));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    tracing_subscriber::registry()
        .with(layer)
        .with(filter)
        .init();
}
