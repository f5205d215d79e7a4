//! `mfa-agent-tray`: the tray icon, a client of the agent's socket (`mfa-agent tray` runs
//! it; the mfa-agent-tray systemd unit starts it with the desktop).

use std::process::ExitCode;

use clap::Parser;

/// The mfa-agent tray icon. Users run `mfa-agent tray`.
#[derive(Parser)]
#[command(name = "mfa-agent-tray", version)]
struct Args {
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

fn main() -> ExitCode {
    mfa_agent::sys::harden_process();
    let args = Args::parse();
    mfa_agent::logging::init(args.verbose);
    match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", mfa_agent::report::sentence(err.as_ref()));
            ExitCode::FAILURE
        }
    }
}

#[cfg(all(target_os = "linux", feature = "tray"))]
fn run() -> anyhow::Result<ExitCode> {
    mfa_agent::desktop::tray::run(&mfa_agent::paths::Paths::from_env()?)
}

#[cfg(not(all(target_os = "linux", feature = "tray")))]
fn run() -> anyhow::Result<ExitCode> {
    anyhow::bail!("this mfa-agent was built without the tray (Linux, cargo feature `tray`)")
}
