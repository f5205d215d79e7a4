//! `mfa-agent-daemon`: the agent, the one owner of secrets and security keys (`mfa-agent
//! daemon` runs it; clients and the systemd units start it), and `doctor`, the checks that
//! need the AWS SDK, D-Bus and HID.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mfa_agent::paths::Paths;

/// The mfa-agent daemon. Users run `mfa-agent daemon` and `mfa-agent doctor`.
#[derive(Parser)]
#[command(name = "mfa-agent-daemon", version)]
struct Args {
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the agent's socket in the foreground (the default).
    Daemon,
    /// Check the whole set-up and print how to fix each problem.
    Doctor {
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    mfa_agent::sys::harden_process();
    let args = Args::parse();
    mfa_agent::logging::init(args.verbose);
    let result = Paths::from_env()
        .map_err(anyhow::Error::from)
        .and_then(|paths| match args.command {
            None | Some(Command::Daemon) => mfa_agent::agent::startup::serve(&paths),
            Some(Command::Doctor { json }) => mfa_agent::doctor::run(&paths, json),
        });
    result.unwrap_or_else(|err| {
        eprintln!("error: {}", mfa_agent::report::sentence(err.as_ref()));
        ExitCode::FAILURE
    })
}
