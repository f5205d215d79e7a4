//! `exec`: a command run with a profile's session credentials, in its environment, or
//! served to it from a local endpoint that renews them (`--server`, in `server`).

mod loopback;
mod server;

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

use anyhow::Result;
use clap::Args;

use super::agent_commands::fetch;
use crate::clock::iso8601;
use crate::paths::Paths;
use crate::protocol::CredentialsUser;

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The AWS profile to get credentials for.
    pub profile: String,
    /// Serve the credentials to the command from a local endpoint (the container-credentials
    /// protocol, 127.0.0.1 with a random token) instead of the environment: the AWS SDKs
    /// and CLI fetch fresh ones on their own before expiry, for commands that run for hours.
    #[arg(long)]
    pub server: bool,
    /// The command to run, after `--`. Defaults to $SHELL.
    #[arg(last = true)]
    pub command: Vec<String>,
}

/// The command to run and its arguments; $SHELL when none is given.
fn program_and_args(command: &[String]) -> (String, Vec<String>) {
    match command.split_first() {
        Some((program, rest)) => (program.clone(), rest.to_vec()),
        None => (
            std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into()),
            Vec::new(),
        ),
    }
}

/// Whether this is the first `exec` of `profile`'s session ending at `expiration`: the
/// short-session warning is said once per session, not at every command. Remembered in the
/// agent's private runtime directory (profile and expiry, nothing secret); when it cannot
/// be, the warning is said.
fn first_exec_of_session(paths: &Paths, profile: &str, expiration: i64) -> bool {
    let path = paths.runtime_dir.join("exec-warned");
    let entry = format!("{expiration} {profile}");
    let seen = std::fs::read_to_string(&path).unwrap_or_default();
    if seen.lines().any(|line| line == entry) {
        return false;
    }
    // Sessions that ended are dropped, so the file stays a few lines long.
    let now = crate::clock::unix_now_i64();
    let mut kept: Vec<&str> = seen
        .lines()
        .filter(|line| {
            line.split_once(' ')
                .and_then(|(until, _)| until.parse::<i64>().ok())
                .is_some_and(|until| until > now)
        })
        .collect();
    kept.push(&entry);
    let _ = crate::atomic::write_private(&path, format!("{}\n", kept.join("\n")).as_bytes());
    true
}

/// Below this much time left, `exec` warns that the session may run out under the command:
/// the refresh margin (15 min) is what every session handed out has at least, so this
/// singles out the 1-hour chained role sessions and sessions near their end.
const SHORT_SESSION: i64 = 3600;

pub(super) fn exec(paths: &Paths, args: &ExecArgs) -> Result<ExitCode> {
    if args.server {
        return server::exec(paths, &args.profile, &args.command);
    }
    let (program, rest) = program_and_args(&args.command);
    let creds = fetch(
        paths,
        &args.profile,
        false,
        Some(CredentialsUser::Command(program.clone())),
    )?;
    let left = creds.expiration - crate::clock::unix_now_i64();
    if left < SHORT_SESSION && first_exec_of_session(paths, &args.profile, creds.expiration) {
        crate::cli::input::tell_user(&format!(
            "these credentials expire in {} min (at {}); a command that runs longer should use `mfa-agent exec --server {}`, which renews them",
            left / 60,
            crate::sys::local_hh_mm(creds.expiration),
            args.profile
        ));
    }
    let mut command = Command::new(&program);
    command
        .args(&rest)
        // The child must use these credentials, not a profile that would loop back here.
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_DEFAULT_PROFILE")
        .env("AWS_ACCESS_KEY_ID", &creds.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", creds.secret_access_key.expose())
        .env("AWS_SESSION_TOKEN", creds.session_token.expose())
        .env("AWS_CREDENTIAL_EXPIRATION", iso8601(creds.expiration))
        .env("MFA_AGENT_PROFILE", &args.profile);
    if let Some(region) = &creds.region {
        command
            .env("AWS_REGION", region)
            .env("AWS_DEFAULT_REGION", region);
    }
    let err = command.exec();
    Ok(not_run(&program, &err))
}

/// A command `exec` could not start: the error, and the exit code shells use (127 when it
/// is not found, 126 when it cannot be run).
fn not_run(program: &str, err: &std::io::Error) -> ExitCode {
    let (why, code) = match err.kind() {
        std::io::ErrorKind::NotFound => ("no such command", 127),
        std::io::ErrorKind::PermissionDenied => ("not allowed to run it", 126),
        _ => ("it could not be started", 126),
    };
    eprintln!("error: cannot run {program:?}: {why} ({err}); check the name and PATH");
    ExitCode::from(code)
}
