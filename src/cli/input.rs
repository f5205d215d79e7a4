//! Reading secrets and answers from the user: stdin, files, and the terminal (never argv).

use std::env;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::secret::SecretString;
use crate::vault::{PassphrasePurpose, PassphraseSource, VaultError};

/// More than any seed, URI or passphrase needs; stops a mistaken pipe from eating memory.
const MAX_SECRET_INPUT: u64 = 64 * 1024;
const MIN_PASSPHRASE: usize = 8;

/// Reads a secret from stdin, up to EOF, without trailing newlines.
pub fn secret_from_stdin() -> Result<SecretString> {
    let mut raw = Vec::with_capacity(MAX_SECRET_INPUT as usize + 1);
    io::stdin()
        .lock()
        .take(MAX_SECRET_INPUT + 1)
        .read_to_end(&mut raw)
        .context("failed to read stdin")?;
    into_secret(raw, "stdin")
}

/// Reads a secret from a file the user named.
pub fn secret_from_file(path: &Path) -> Result<SecretString> {
    let file =
        fs::File::open(path).with_context(|| format!("failed to open {}", path.display()))?;
    let mut raw = Vec::with_capacity(MAX_SECRET_INPUT as usize + 1);
    file.take(MAX_SECRET_INPUT + 1)
        .read_to_end(&mut raw)
        .with_context(|| format!("failed to read {}", path.display()))?;
    into_secret(raw, &path.display().to_string())
}

fn into_secret(raw: Vec<u8>, from: &str) -> Result<SecretString> {
    let raw = crate::secret::SecretBytes::new(raw);
    if raw.len() as u64 > MAX_SECRET_INPUT {
        bail!(
            "{from} holds more than {MAX_SECRET_INPUT} bytes; that is not a seed, URI or passphrase"
        );
    }
    let text =
        std::str::from_utf8(raw.expose()).with_context(|| format!("{from} is not UTF-8 text"))?;
    Ok(SecretString::new(
        text.trim_end_matches(['\n', '\r']).to_owned(),
    ))
}

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

/// A security key PIN: from the file named by `MFA_AGENT_PIN_FILE` (scripts, tests), else
/// asked on the terminal.
pub fn security_key_pin(prompt: &str) -> Result<SecretString> {
    if let Some(path) = env::var_os("MFA_AGENT_PIN_FILE") {
        return secret_from_file(Path::new(&path));
    }
    if !has_tty() {
        bail!(
            "the security key needs its PIN and there is no terminal to ask on; set MFA_AGENT_PIN_FILE to a file holding it"
        );
    }
    prompt_hidden(prompt)
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

/// The passphrase of the encrypted-file store: from the file named by
/// `MFA_AGENT_PASSPHRASE_FILE` (for scripts and tests), else asked on the terminal.
#[must_use]
pub fn passphrase_source() -> PassphraseSource {
    Box::new(|purpose| {
        let fail = |msg: String| VaultError::Passphrase(msg);
        if let Some(path) = env::var_os("MFA_AGENT_PASSPHRASE_FILE") {
            let path = Path::new(&path);
            let passphrase = secret_from_file(path).map_err(|e| fail(format!("{e:#}")))?;
            if passphrase.is_empty() {
                return Err(fail(format!(
                    "the passphrase file {} is empty",
                    path.display()
                )));
            }
            return Ok(passphrase);
        }
        if !has_tty() {
            return Err(fail(
                "the encrypted seed file needs its passphrase: run on a terminal, or set MFA_AGENT_PASSPHRASE_FILE to a file that holds it".into(),
            ));
        }
        let ask = |prompt: &str| prompt_hidden(prompt).map_err(|e| fail(format!("{e:#}")));
        match purpose {
            PassphrasePurpose::Unlock => ask("Passphrase for the encrypted seed file: "),
            PassphrasePurpose::Create => {
                let first = ask("New passphrase for the encrypted seed file: ")?;
                if first.expose().chars().count() < MIN_PASSPHRASE {
                    return Err(fail(format!(
                        "the passphrase is too short; use at least {MIN_PASSPHRASE} characters"
                    )));
                }
                let again = ask("Repeat the passphrase: ")?;
                if first.expose() != again.expose() {
                    return Err(fail(
                        "the passphrases differ; nothing was saved, try again".into(),
                    ));
                }
                Ok(first)
            }
        }
    })
}

/// The CLI's prompter for security keys: messages on the terminal, PIN from
/// `MFA_AGENT_PIN_FILE` or the terminal.
pub struct TerminalPrompter;

impl crate::unlock::Prompter for TerminalPrompter {
    fn tell(&self, message: &str) {
        tell_user(message);
    }

    fn pin(&self, _: &crate::vault::EnrolledKey, prompt: &str) -> Result<SecretString, VaultError> {
        security_key_pin(&format!("{prompt}: ")).map_err(|e| VaultError::Unlock(format!("{e:#}")))
    }
}

/// Lets a CLI command read seeds guarded by U2F keys: asks for a touch on the terminal.
#[must_use]
pub fn terminal_approver() -> crate::vault::Approver {
    Box::new(|keys| crate::unlock::approve(keys, &TerminalPrompter, "approve"))
}

/// Lets a CLI command open sealed seeds: asks for a touch on the terminal.
#[must_use]
pub fn terminal_unsealer() -> crate::vault::Unsealer {
    Box::new(|keys| crate::unlock::unlock(keys, &TerminalPrompter, "open your seeds", None))
}
