//! The agent's clients: `credential-process` (and the credentials `exec` fetches), `status`,
//! `stop` and `lock`.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, bail};
use clap::Args;
use serde::Serialize;

use crate::client::Client;
use crate::clock::iso8601;
use crate::paths::Paths;
use crate::protocol::{
    Credentials, CredentialsUser, Lock, SessionCredentials, Status, StatusReport, Stop,
};

#[derive(Debug, Args)]
pub struct CredentialProcessArgs {
    /// The AWS profile (in ~/.aws/config) to get credentials for.
    #[arg(long, env = "AWS_PROFILE")]
    pub profile: String,
    /// Mint new credentials even if the agent has fresh ones.
    #[arg(long)]
    pub refresh: bool,
}

/// The `credential_process` output format, with AWS's field names.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ProcessCredentials<'a> {
    version: u8,
    access_key_id: &'a str,
    secret_access_key: &'a str,
    session_token: &'a str,
    expiration: String,
}

fn connect(paths: &Paths) -> Result<Client> {
    Ok(Client::connect(paths, super::autostart_allowed(paths))?)
}

/// Credentials for `profile`, for the program that ran this client, or for `user` where
/// `exec` asks on another's behalf.
pub(super) fn fetch(
    paths: &Paths,
    profile: &str,
    force_refresh: bool,
    user: Option<CredentialsUser>,
) -> Result<Arc<SessionCredentials>> {
    let mut client = connect(paths)?;
    let request = Credentials {
        profile: profile.to_owned(),
        force_refresh,
        user,
    };
    // A security key's PIN (or the seed file's passphrase) is asked on this process's
    // terminal; without one the agent falls back to pinentry for a PIN.
    Ok(client.call_asking(request, super::input::tell_user, super::input::answer)?)
}

pub(super) fn credential_process(paths: &Paths, args: &CredentialProcessArgs) -> Result<ExitCode> {
    let creds = fetch(paths, &args.profile, args.refresh, None)?;
    let out = ProcessCredentials {
        version: 1,
        access_key_id: &creds.access_key_id,
        secret_access_key: creds.secret_access_key.expose(),
        session_token: creds.session_token.expose(),
        expiration: iso8601(creds.expiration),
    };
    // Sized from the secrets so that serialising never reallocates (which would strand
    // unwiped copies of them), and wiped when dropped, on an error too. Session tokens
    // are base64, which JSON does not escape; 256 bytes cover the names and the date.
    let room = out.access_key_id.len() + out.secret_access_key.len() + out.session_token.len();
    let mut json = zeroize::Zeroizing::new(Vec::with_capacity(room + 256));
    serde_json::to_writer(&mut *json, &out)?;
    json.push(b'\n');
    debug_assert!(json.len() <= room + 256, "the JSON outgrew its buffer");
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&json)?;
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn status(paths: &Paths, json: bool) -> Result<ExitCode> {
    let mut client = match Client::connect(paths, false) {
        Ok(client) => client,
        // Not an error to fix by hand where clients start the agent themselves.
        Err(crate::client::ClientError::NotRunning { path, .. })
            if super::autostart_allowed(paths) =>
        {
            bail!(
                "no agent is running at {}; the next mfa-agent command that needs one starts it (to have systemd start it instead: `systemctl --user enable --now mfa-agent.socket`)",
                path.display()
            );
        }
        Err(e) => return Err(e.into()),
    };
    let report = client.call(Status, |_| {})?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_status(&report);
        println!("socket: {}", paths.socket.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_status(report: &StatusReport) {
    println!(
        "mfa-agent {} (protocol {}), pid {}, up {} s",
        report.agent_version, report.protocol_version, report.pid, report.uptime_seconds
    );
    println!("seeds: {}", report.store);
    if report.sessions.is_empty() {
        println!("sessions: none cached");
    }
    let now = crate::clock::unix_now_i64();
    for s in &report.sessions {
        let left = (s.expiration - now).max(0);
        println!(
            "session {}: {} until {} ({} h {:02} min left)",
            s.display_name(),
            s.access_key,
            crate::sys::local_hh_mm(s.expiration),
            left / 3600,
            left % 3600 / 60
        );
    }
    if report.waiting_for_sessions > 0 {
        println!(
            "minting: {} request(s) waiting for a session",
            report.waiting_for_sessions
        );
    }
    if let Some(until) = report.unlocked_until {
        println!(
            "seeds: unlocked until {} (`mfa-agent lock` locks them now)",
            iso8601(until)
        );
    }
    if let Some(e) = &report.last_error {
        println!("last error at {}: {}", iso8601(e.at), e.message);
    }
    if report.notifications == Some(false) {
        println!("notifications: off ([notifications] enabled = false in config.toml)");
    }
}

/// How long `stop` waits for the agent to be gone.
const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

pub(super) fn stop(paths: &Paths) -> Result<ExitCode> {
    let mut client = match Client::connect(paths, false) {
        Ok(client) => client,
        Err(crate::client::ClientError::NotRunning { .. }) => {
            eprintln!("no agent is running");
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(e.into()),
    };
    let pid = client.call(Stop, |_| {})?;
    drop(client);
    // Gone once nothing accepts on the socket (systemd's socket unit keeps accepting: then
    // once the daemon's pid is gone).
    let deadline = std::time::Instant::now() + STOP_WAIT;
    while std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|s| s.trim_start().starts_with('Z'))
        })
    {
        if std::time::Instant::now() >= deadline {
            bail!(
                "asked the agent (pid {pid}) to stop, but it is still running after {} s; `kill {pid}` stops it",
                STOP_WAIT.as_secs()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    eprintln!("stopped the agent (pid {pid}); the next command that needs it starts a new one");
    Ok(ExitCode::SUCCESS)
}

pub(super) fn lock(paths: &Paths) -> Result<ExitCode> {
    match Client::connect(paths, false) {
        Ok(mut client) => {
            let dropped = client.call(Lock, |_| {})?;
            eprintln!("dropped {dropped} cached session(s)");
        }
        Err(crate::client::ClientError::NotRunning { .. }) => {
            eprintln!("no agent is running: nothing is cached");
        }
        Err(e) => return Err(e.into()),
    }
    Ok(ExitCode::SUCCESS)
}
