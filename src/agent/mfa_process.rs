//! `mfa_process` (a profile setting, as in aws-vault): a command that prints the MFA
//! device's current code, for seeds kept elsewhere: a YubiKey's OATH applet (`ykman oath
//! accounts code --single NAME`, where the seed never leaves the key), a password manager
//! (`op item get ... --otp`, `pass otp ...`). Run through `/bin/sh -c`, once per code a mint
//! needs, with a time limit; what it says on stderr ("Touch your YubiKey...") reaches the
//! waiting client as progress; its code is replay-guarded like a typed one.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use super::prompt::{Progress, Prompt};
use crate::secret::SecretString;

/// No code is longer; a command printing more is not printing a code.
const MAX_OUTPUT: u64 = 1024;

/// Why `mfa_process` gave no code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessFailure {
    /// It could not be started.
    Start(String),
    /// It ran past the time limit (and was killed).
    TimedOut(u64),
    /// It exited unsuccessfully; its last line on stderr, if any.
    Failed { status: String, said: String },
    /// It printed something other than a 6-digit code (not shown: it may be a secret).
    NotACode,
}

impl std::fmt::Display for ProcessFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Start(e) => write!(f, "it could not be started ({e})"),
            Self::TimedOut(seconds) => write!(f, "it printed no code within {seconds} s"),
            Self::Failed { status, said } if said.is_empty() => write!(f, "it failed ({status})"),
            Self::Failed { status, said } => write!(f, "it failed ({status}: {said})"),
            Self::NotACode => f.write_str("it printed something other than a 6-digit code"),
        }
    }
}

/// Runs `command` and returns the code it printed, relaying its stderr to `progress`.
pub(super) async fn code_from(
    command: &str,
    limit: Duration,
    progress: &Progress,
) -> Result<SecretString, ProcessFailure> {
    let mut child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ProcessFailure::Start(e.to_string()))?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let run = async {
        let mut printed = Vec::new();
        let mut stdout = stdout.take(MAX_OUTPUT);
        let read_stdout = stdout.read_to_end(&mut printed);
        let relay_stderr = async {
            let mut last = String::new();
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let line = crate::agent::peer::printable(line.trim());
                if !line.is_empty() {
                    let _ = progress.send(Prompt::Tell(format!("mfa_process: {line}")));
                    last = line;
                }
            }
            last
        };
        let (read, said) = tokio::join!(read_stdout, relay_stderr);
        let status = child.wait().await;
        (read, said, status, printed)
    };
    let (read, said, status, printed) = tokio::time::timeout(limit, run)
        .await
        .map_err(|_| ProcessFailure::TimedOut(limit.as_secs()))?;
    let printed = SecretString::new(String::from_utf8_lossy(&printed).into_owned());
    let status = status.map_err(|e| ProcessFailure::Start(e.to_string()))?;
    if !status.success() {
        return Err(ProcessFailure::Failed {
            status: status.to_string(),
            said,
        });
    }
    read.map_err(|e| ProcessFailure::Start(e.to_string()))?;
    let code = printed.expose().trim();
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(SecretString::new(code.to_owned()))
    } else {
        Err(ProcessFailure::NotACode)
    }
}
