//! Talking to the user on the terminal: hidden prompts, confirmations, progress, and the
//! answers the agent asks for. Secrets never come from argv.

use std::env;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use anyhow::{Context, Result};

use crate::client::Question;
use crate::protocol::AskKind;
use crate::secret::SecretString;

/// Asks for a secret on the terminal without echoing it.
pub fn prompt_hidden(prompt: &str) -> Result<SecretString> {
    let answer = rpassword::prompt_password(prompt).context("failed to read from the terminal")?;
    Ok(SecretString::new(answer))
}

/// Whether the process has a controlling terminal to prompt on.
#[must_use]
pub fn has_tty() -> bool {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .is_ok()
}

/// Progress goes to the terminal when there is one (the AWS CLI captures a
/// credential_process's stderr and shows it only on failure), otherwise to stderr. Never to
/// stdout.
pub fn tell_user(message: &str) {
    if let Ok(mut tty) = fs::OpenOptions::new().write(true).open("/dev/tty") {
        let _ = writeln!(tty, "mfa-agent: {message}");
    } else {
        eprintln!("mfa-agent: {message}");
    }
}

/// Asks a yes/no question on the terminal; `None` when there is no terminal.
pub fn confirm(question: &str) -> Result<Option<bool>> {
    let Ok(tty) = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
    else {
        return Ok(None);
    };
    let mut writer = &tty;
    write!(writer, "{question} [y/N] ")?;
    writer.flush()?;
    let mut line = String::new();
    BufReader::new(&tty).read_line(&mut line)?;
    Ok(Some(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    )))
}

/// Answers a question from the agent: a PIN or passphrase from the file named by
/// `MFA_AGENT_PIN_FILE` / `MFA_AGENT_PASSPHRASE_FILE` (scripts, tests), else typed on the
/// terminal; a confirmation asked on the terminal. `None` when there is no terminal.
#[must_use]
pub fn answer(question: &Question<'_>) -> Option<SecretString> {
    let message = question.message;
    let from_file = |var: &str| {
        let path = env::var_os(var)?;
        crate::input::secret_from_file(Path::new(&path))
            .map_err(|e| tell_user(&format!("{var}: {}", crate::report::what_happened(&e))))
            .ok()
    };
    match question.kind {
        AskKind::Pin => from_file("MFA_AGENT_PIN_FILE").or_else(|| hidden(message)),
        AskKind::Passphrase => from_file("MFA_AGENT_PASSPHRASE_FILE").or_else(|| hidden(message)),
        AskKind::NewPassphrase => {
            from_file("MFA_AGENT_PASSPHRASE_FILE").or_else(|| new_passphrase(message))
        }
        AskKind::Confirm => {
            let yes = confirm(message).ok()??;
            Some(SecretString::new(if yes { "yes" } else { "no" }.into()))
        }
        AskKind::MfaCode => mfa_code(question),
    }
}

/// Asks for an MFA code on the terminal, shown as typed (it is spent once used), while
/// watching the agent: when it stops waiting (no answer within its prompt timeout), the
/// prompt ends and the agent's response is read.
fn mfa_code(question: &Question<'_>) -> Option<SecretString> {
    use std::io::Read as _;
    use std::os::fd::AsFd as _;
    let mut tty = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()?;
    write!(tty, "mfa-agent: {}: ", question.message).ok()?;
    tty.flush().ok()?;
    if !question.wait_for(tty.as_fd()).ok()? {
        let _ = writeln!(tty);
        return None;
    }
    // The terminal is in line mode: one read returns the line typed.
    let mut line = [0u8; 64];
    let n = tty.read(&mut line).ok()?;
    let typed = String::from_utf8_lossy(&line[..n]).trim().to_owned();
    zeroize::Zeroize::zeroize(&mut line);
    Some(SecretString::new(typed))
}

fn hidden(message: &str) -> Option<SecretString> {
    if !has_tty() {
        return None;
    }
    prompt_hidden(&format!("mfa-agent: {message}: ")).ok()
}

/// Asks twice; after three mismatches gives up with an empty answer (nothing is saved).
fn new_passphrase(message: &str) -> Option<SecretString> {
    for _ in 0..3 {
        let first = hidden(message)?;
        let again = hidden("Repeat the passphrase")?;
        if first.expose() == again.expose() {
            return Some(first);
        }
        tell_user("the passphrases differ; try again");
    }
    Some(SecretString::new(String::new()))
}
