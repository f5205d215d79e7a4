//! The command line: clap definitions (their `///` comments are the `--help`) and dispatch.

mod adopt;
mod agent_commands;
mod aws;
mod code;
mod creds;
mod exec;
mod generate;
pub mod input;
mod key;
mod log;
mod login;
mod names;
mod seed;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};

use crate::client::Client;
use crate::config::Config;
use crate::paths::Paths;
use crate::protocol::{Call, StoreKind};

/// MFA sessions for the AWS CLI and SDKs, from a per-user agent.
///
/// The agent keeps your AWS virtual MFA (TOTP) seeds and long-term keys in the OS keyring
/// (or an encrypted file), sealed by a FIDO2/U2F security key if you enrol one, and mints
/// and caches STS sessions for profiles that use `credential_process`. A device whose seed
/// it does not hold (a hardware token, a phone app) works too: it asks you for the code,
/// once per session.
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

    /// Where a new vault keeps its secrets: keyring (the default) or file (encrypted, for
    /// machines without a keyring); an existing vault remembers its own.
    #[arg(
        long,
        global = true,
        env = "MFA_AGENT_STORE",
        value_name = "STORE",
        hide_possible_values = true
    )]
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
    Exec(exec::ExecArgs),
    /// Show the agent's version, store, cached sessions and last error.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show who asked the agent for which credentials (program and pid, time, profile, and
    /// whether the cache served it): the agent's audit log.
    Log {
        /// Keep printing new entries as they come.
        #[arg(long, short)]
        follow: bool,
        /// One JSON object per line: time (Unix seconds), profile, program, pid, outcome.
        #[arg(long)]
        json: bool,
    },
    /// Open the AWS console signed in with a role profile's session (through AWS's
    /// federation endpoint).
    Login {
        /// A role profile (role_arn), whose session opens the console.
        profile: String,
        /// Print the sign-in link (valid 15 minutes) instead of opening a browser.
        #[arg(long)]
        print: bool,
    },
    /// Drop every session the agent has cached and lock sealed seeds; the next request needs a
    /// new MFA code (and a touch, with a security key enrolled).
    Lock,
    /// Stop the agent (started by a client or by systemd), dropping what it caches; the
    /// next command that needs one starts a new agent, which reads the configuration again.
    Stop,
    /// Manage long-term AWS keys kept in the vault.
    #[command(subcommand)]
    Creds(creds::CredsCommand),
    /// Keep a profile's name: move its long-term keys into the vault and let it get its MFA
    /// session from the agent, so that `--profile NAME` and the roles built on it work as
    /// before (`--undo` puts everything back).
    Adopt(adopt::AdoptArgs),
    /// Security keys (FIDO2/U2F USB keys).
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Virtual MFA devices in IAM: enrol one whose seed goes straight into the vault,
    /// resync, unenrol, list.
    #[command(subcommand)]
    Aws(aws::AwsCommand),
    /// Check the whole set-up (agent, keyring, security keys and udev, clock against STS,
    /// AWS profiles) and print how to fix each problem. Exits 1 if something would fail.
    Doctor {
        /// Print the findings as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the agent in the system tray: its state as the icon; a menu to copy codes, see
    /// sessions, lock and refresh. Normally started by the mfa-agent-tray systemd unit.
    Tray,
    /// Print shell completions, e.g. `mfa-agent completions bash >
    /// ~/.local/share/bash-completion/completions/mfa-agent`.
    Completions {
        /// The shell to print them for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The profile or seed names a completion offers, one per line (run by the completion
    /// scripts on TAB).
    #[command(hide = true)]
    CompleteNames {
        /// Which names: the AWS profiles, or the vault's seeds.
        #[arg(value_enum)]
        kind: names::NameKind,
    },
    /// Print the man page (roff), e.g. `mfa-agent man | man -l -`.
    Man {
        /// Write every page (one per subcommand too) into this directory instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// The command line, parsed; a mistake clap reports gets, where people often make it, a
/// tip with the command as it should be.
#[must_use]
pub fn parse() -> Cli {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(err) => {
            let Some(tip) = tip_for(&err, &args) else {
                err.exit()
            };
            let _ = err.print();
            eprintln!("\ntip: {tip}");
            std::process::exit(err.exit_code());
        }
    }
}

/// `exec prod terraform plan` (the command needs a `--` before it) and
/// `credential-process prod` (the profile goes with `--profile`).
fn tip_for(err: &clap::Error, args: &[String]) -> Option<String> {
    if err.kind() != clap::error::ErrorKind::UnknownArgument {
        return None;
    }
    let at = args
        .iter()
        .position(|a| a == "exec" || a == "credential-process")?;
    let (command, rest) = (&args[at], &args[at + 1..]);
    // Its own flags, then the profile (the first word that is no flag); what follows is
    // the command to run, as typed.
    let profile = rest.iter().position(|a| !a.starts_with('-'))?;
    if command == "exec" {
        Some(format!(
            "put `--` before the command to run: `mfa-agent exec {} -- {}`",
            rest[..=profile].join(" "),
            rest[profile + 1..].join(" ")
        ))
    } else {
        Some(format!(
            "name the profile with --profile: `mfa-agent credential-process --profile {}`",
            rest[profile]
        ))
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let verbose = cli.verbose;
    let store = cli.store;
    match cli.command {
        // Need no home or agent: work in a package build.
        Command::Completions { shell } => generate::completions(shell),
        Command::Man { dir } => generate::man(dir.as_deref()),
        Command::CompleteNames { kind } => Ok(names::print(kind)),
        // The daemon, its checks and the tray are binaries of their own, so that this one
        // (started by every credential_process call) stays small.
        Command::Daemon => exec_companion(crate::client::DAEMON, &[], verbose),
        Command::Doctor { json } => {
            let args: &[&str] = if json {
                &["doctor", "--json"]
            } else {
                &["doctor"]
            };
            exec_companion(crate::client::DAEMON, args, verbose)
        }
        Command::Tray => exec_companion("mfa-agent-tray", &[], verbose),
        command => {
            let paths = Paths::from_env()?;
            let agent = Agent {
                paths: &paths,
                store,
            };
            match command {
                Command::Seed(cmd) => seed::run(cmd, &agent),
                Command::Code(args) => code::run(&args, &agent),
                Command::Creds(cmd) => creds::run(cmd, &agent),
                Command::Adopt(args) => adopt::run(&args, &agent, &paths),
                Command::Key(cmd) => key::run(&cmd, &agent),
                Command::Aws(cmd) => aws::run(cmd, &agent),
                Command::Login { profile, print } => login::run(&agent, profile, print),
                Command::CredentialProcess(args) => {
                    agent_commands::credential_process(&paths, &args)
                }
                Command::Exec(args) => exec::exec(&paths, &args),
                Command::Status { json } => agent_commands::status(&paths, json),
                Command::Lock => agent_commands::lock(&paths),
                Command::Stop => agent_commands::stop(&paths),
                Command::Log { follow, json } => log::run(&paths, follow, json),
                _ => unreachable!("handled above"),
            }
        }
    }
}

/// `credential-process --profile P [--refresh]`, recognised without building the whole
/// command line: the AWS CLI and SDKs start this process for every credentials lookup, so
/// its start-up is the cost of a cache hit. Anything else (a typo, `--help`, `-v`) gives
/// `None` and goes through clap, which then explains or rejects it.
#[must_use]
pub fn credential_process_fast_path() -> Option<FastPath> {
    fast_path_from(
        std::env::args_os().skip(1),
        std::env::var("AWS_PROFILE").ok(),
    )
}

fn fast_path_from(
    mut args: impl Iterator<Item = std::ffi::OsString>,
    aws_profile: Option<String>,
) -> Option<FastPath> {
    if args.next()? != "credential-process" {
        return None;
    }
    let (mut profile, mut refresh) = (None, false);
    while let Some(arg) = args.next() {
        let arg = arg.into_string().ok()?;
        match arg.as_str() {
            "--refresh" if !refresh => refresh = true,
            "--profile" if profile.is_none() => profile = Some(args.next()?.into_string().ok()?),
            _ => match arg.strip_prefix("--profile=") {
                Some(value) if profile.is_none() => profile = Some(value.to_owned()),
                _ => return None,
            },
        }
    }
    let profile = profile
        .or(aws_profile)
        .filter(|p| !p.is_empty() && !p.starts_with('-'))?;
    Some(FastPath(agent_commands::CredentialProcessArgs {
        profile,
        refresh,
    }))
}

/// A `credential-process` command line recognised by [`credential_process_fast_path`].
pub struct FastPath(agent_commands::CredentialProcessArgs);

impl FastPath {
    pub fn run(self) -> Result<ExitCode> {
        agent_commands::credential_process(&Paths::from_env()?, &self.0)
    }
}

/// Replaces this process with another binary of the package.
fn exec_companion(name: &str, args: &[&str], verbose: u8) -> Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    let exe = crate::client::companion(name)?;
    let verbosity = (verbose > 0).then(|| format!("-{}", "v".repeat(usize::from(verbose))));
    let err = std::process::Command::new(&exe)
        .args(args)
        .args(verbosity)
        .exec();
    Err(err).with_context(|| format!("failed to run {}", exe.display()))
}

/// The agent, as the vault and key commands reach it: every one of them is carried out by
/// the agent, the one owner of secrets and security keys.
pub struct Agent<'a> {
    paths: &'a Paths,
    /// `--store`: where a new vault keeps its secrets.
    store: Option<StoreKind>,
}

/// Whether this client may start the agent (`autostart` in config.toml). A broken file must
/// not keep a client from the agent that runs already and holds its cached sessions: the
/// error is shown and the default used (an agent started on the file refuses, saying why).
fn autostart_allowed(paths: &Paths) -> bool {
    match Config::load(&paths.config_dir) {
        Ok(config) => config.autostart_enabled(),
        Err(e) => {
            input::tell_user(&format!("ignoring config.toml here: {e}"));
            Config::defaults_here().autostart_enabled()
        }
    }
}

impl Agent<'_> {
    /// Connects, starting the agent when none runs (unless `autostart = false`).
    fn connect(&self) -> Result<Client> {
        if let Some(store) = self.store {
            crate::vault_rules::check_store(&self.paths.data_dir, store)?;
        }
        Ok(Client::connect(self.paths, autostart_allowed(self.paths))?)
    }

    /// Sends `request`, showing the agent's progress on the terminal and answering its
    /// questions there; returns its reply.
    fn call<C: Call>(&self, request: C) -> Result<C::Reply> {
        let mut client = self.connect()?;
        Ok(client.call_asking(request, input::tell_user, input::answer)?)
    }

    /// Sends a change, and prints what it did on stderr.
    fn change<C: Call<Reply = String>>(&self, request: C) -> Result<ExitCode> {
        eprintln!("{}", self.call(request)?);
        Ok(ExitCode::SUCCESS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast(args: &[&str], aws_profile: Option<&str>) -> Option<(String, bool)> {
        let args = args.iter().map(std::ffi::OsString::from);
        fast_path_from(args, aws_profile.map(str::to_owned)).map(|f| (f.0.profile, f.0.refresh))
    }

    #[test]
    fn the_fast_path_takes_exactly_what_clap_would_and_leaves_the_rest_to_it() {
        let yes = |p: &str, r| Some((p.to_owned(), r));
        assert_eq!(
            fast(&["credential-process", "--profile", "prod"], None),
            yes("prod", false)
        );
        assert_eq!(
            fast(&["credential-process", "--profile=prod", "--refresh"], None),
            yes("prod", true)
        );
        assert_eq!(
            fast(&["credential-process"], Some("env")),
            yes("env", false)
        );
        assert_eq!(
            fast(&["credential-process", "--profile", "p"], Some("env")),
            yes("p", false)
        );
        for clap_decides in [
            &["credential-process"][..],
            &["credential-process", "--help"],
            &["credential-process", "-v", "--profile", "p"],
            &["credential-process", "--profile"],
            &["credential-process", "--profile", "a", "--profile", "b"],
            &["credential-process", "--profile", "--refresh"],
            &["status"],
        ] {
            assert_eq!(fast(clap_decides, None), None, "{clap_decides:?}");
        }
    }

    /// Every option and argument of every command says what it is in `--help`.
    #[test]
    fn every_option_and_argument_has_a_description() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_hide_set() || ["help", "version"].contains(&id) {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(
            &<Cli as clap::CommandFactory>::command(),
            "mfa-agent",
            &mut missing,
        );
        assert!(missing.is_empty(), "no description: {missing:#?}");
    }
}
