//! `mfa-agent`: the command line, a lean client of the agent (no AWS SDK, HID or D-Bus in
//! this binary: a `credential_process` cache hit is a process start and one socket round
//! trip).

use std::process::ExitCode;

use clap::Parser;
use mfa_agent::cli::{Cli, run};

fn main() -> ExitCode {
    // Before anything holds a secret: no core dumps, no ptrace by other same-user processes.
    mfa_agent::sys::harden_process();
    let cli = Cli::parse();
    mfa_agent::logging::init(cli.verbose);
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
