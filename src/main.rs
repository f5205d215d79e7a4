//! The `mfa-agent` binary: hardens the process, sets up logging, runs the command.

use std::process::ExitCode;

use clap::Parser;
use mfa_agent::cli::{Cli, run};
use tracing_subscriber::EnvFilter;

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
    // -v raises only our own crate's level; MFA_AGENT_LOG is a full filter for debugging.
    let filter = std::env::var("MFA_AGENT_LOG").ok().map_or_else(
        || {
            let level = ["warn", "info", "debug", "trace"][usize::from(verbose.min(3))];
            EnvFilter::new(format!("warn,mfa_agent={level}"))
        },
        EnvFilter::new,
    );
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
