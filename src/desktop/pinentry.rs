//! Asking for a security key's PIN with a pinentry program (the dialog GnuPG uses), when
//! there is no terminal to ask on: the agent, when its client has none, and the tray.

use anyhow::{Result, bail};
use secrecy::ExposeSecret as _;

use crate::secret::SecretString;

/// Runs `program` (default: `pinentry` from PATH, which Debian points at the desktop's
/// variant) and returns the PIN the user typed. Cancelling is an error.
pub fn ask(program: Option<&str>, prompt: &str) -> Result<SecretString> {
    ask_for(program, prompt, "PIN:", None)
}

/// As [`ask`], for an MFA code from the user's token or phone; the dialog closes itself
/// after `timeout_seconds`.
pub fn ask_code(program: Option<&str>, prompt: &str, timeout_seconds: u64) -> Result<SecretString> {
    let timeout = u16::try_from(timeout_seconds).unwrap_or(u16::MAX);
    ask_for(program, prompt, "Code:", Some(timeout))
}

fn ask_for(
    program: Option<&str>,
    prompt: &str,
    label: &str,
    timeout: Option<u16>,
) -> Result<SecretString> {
    let program = program.unwrap_or("pinentry");
    let Some(mut input) = pinentry::PassphraseInput::with_binary(program) else {
        bail!(
            "no pinentry program {program:?} found; install pinentry-gnome3 (or another pinentry), or run the command in a terminal"
        );
    };
    let description = format!("mfa-agent: {prompt}");
    input
        .with_title("mfa-agent")
        .with_description(&description)
        .with_prompt(label)
        .required("An answer is needed");
    if let Some(timeout) = timeout {
        input.with_timeout(timeout);
    }
    let answer = input
        .interact()
        .map_err(|e| anyhow::anyhow!("{program} could not ask: {e}"))?;
    Ok(SecretString::new(answer.expose_secret().to_owned()))
}
