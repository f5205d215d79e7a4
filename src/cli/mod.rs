//! The command line: clap definitions (their `///` comments are the `--help`) and dispatch.

mod agent_commands;
mod code;
mod creds;
mod daemon;
mod doctor;
mod generate;
pub mod input;
mod key;
mod seed;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::paths::Paths;
use crate::vault::{StoreKind, Vault};

/// Use a hardware security key as the MFA factor for the AWS command line.
///
/// mfa-agent keeps your AWS virtual MFA (TOTP) seeds in the OS keyring and turns them into
/// codes, so MFA-protected AWS profiles work without typing codes from a phone.
#[derive(Debug, Parser)]
#[command(
    name = "mfa-agent",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace). MFA_AGENT_LOG takes a
    /// full tracing filter instead, e.g. MFA_AGENT_LOG=debug.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Where seed secrets are kept: `keyring` (the OS keyring, the default) or `file` (an
    /// encrypted file, for machines without a keyring). Chosen when the first seed is added;
    /// afterwards the vault remembers it.
    #[arg(long, global = true, env = "MFA_AGENT_STORE", value_name = "STORE")]
    pub store: Option<StoreKind>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Add, list, remove and export TOTP seeds.
    #[command(subcommand)]
    Seed(seed::SeedCommand),
    /// Print the current code of a seed (the code on stdout, its remaining time on stderr).
    Code(code::CodeArgs),
    /// Run the agent in the foreground: it mints STS sessions with MFA and caches them in
    /// memory. Clients start it on demand; systemd can socket-activate it.
    Daemon,
    /// Print credentials for AWS's `credential_process` setting: in ~/.aws/config, put
    /// `credential_process = mfa-agent credential-process --profile NAME`.
    CredentialProcess(agent_commands::CredentialProcessArgs),
    /// Run a command with a profile's session credentials in its environment.
    Exec(agent_commands::ExecArgs),
    /// Show the agent's version, store, cached sessions and last error.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Drop every session the agent has cached and lock sealed seeds; the next request needs a
    /// new MFA code (and a touch, with a security key enrolled).
    Lock,
    /// Manage long-term AWS keys kept in the vault.
    #[command(subcommand)]
    Creds(creds::CredsCommand),
    /// Security keys (FIDO2/U2F USB keys).
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Check the whole set-up (agent, keyring, security keys and udev, clock against STS,
    /// AWS profiles) and print how to fix each problem. Exits 1 if something would fail.
    Doctor {
        #[arg(long)]
        json: bool,
    },
    /// Show the agent in the system tray: its state as the icon; a menu to copy codes, see
    /// sessions, lock and refresh. Normally started by the mfa-agent-tray systemd unit.
    Tray,
    /// Print shell completions, e.g. `mfa-agent completions bash >
    /// ~/.local/share/bash-completion/completions/mfa-agent`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `mfa-agent man | man -l -`.
    Man {
        /// Write every page (one per subcommand too) into this directory instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[cfg(all(target_os = "linux", feature = "tray"))]
fn tray(paths: &Paths) -> Result<ExitCode> {
    crate::desktop::tray::run(paths)
}

#[cfg(not(all(target_os = "linux", feature = "tray")))]
fn tray(_: &Paths) -> Result<ExitCode> {
    anyhow::bail!("this mfa-agent was built without the tray (Linux, cargo feature `tray`)")
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    // Needs no home or vault: works in a package build.
    match cli.command {
        Command::Completions { shell } => return generate::completions(shell),
        Command::Man { dir } => return generate::man(dir.as_deref()),
        _ => {}
    }
    let paths = Paths::from_env()?;
    let open_vault = || -> Result<Vault> {
        let vault = Vault::open(&paths.data_dir, cli.store, input::passphrase_source())?;
        // Sealed (or U2F-guarded) seeds open with a touch of an enrolled key, asked for here.
        Ok(vault
            .with_unsealer(input::terminal_unsealer())
            .with_approver(input::terminal_approver()))
    };
    match cli.command {
        Command::Seed(cmd) => seed::run(cmd, open_vault()?),
        Command::Code(args) => code::run(&args, open_vault()?),
        Command::Creds(cmd) => creds::run(cmd, open_vault()?),
        Command::Daemon => daemon::run(&paths),
        Command::CredentialProcess(args) => agent_commands::credential_process(&paths, &args),
        Command::Exec(args) => agent_commands::exec(&paths, &args),
        Command::Status { json } => agent_commands::status(&paths, json),
        Command::Lock => agent_commands::lock(&paths),
        Command::Key(cmd) => key::run(&cmd, open_vault()?),
        Command::Doctor { json } => doctor::run(&paths, json),
        Command::Tray => tray(&paths),
        Command::Completions { .. } | Command::Man { .. } => unreachable!("handled above"),
    }
}
