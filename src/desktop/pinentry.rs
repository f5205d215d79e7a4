//! Asking for a security key's PIN with a pinentry program (the dialog GnuPG uses), when
//! there is no terminal to ask on: the agent, when its client has none, and the tray.

use anyhow::{Result, bail};
use secrecy::ExposeSecret as _;

use crate::secret::SecretString;

/// Runs `program` (default: `pinentry` from PATH, which Debian points at the desktop's
/// variant) and returns what the user typed. Cancelling is an error.
pub fn ask(program: Option<&str>, prompt: &str) -> Result<SecretString> {
    let program = program.unwrap_or("pinentry");
    let Some(mut input) = pinentry::PassphraseInput::with_binary(program) else {
        bail!(
            "no pinentry program {program:?} found; install pinentry-gnome3 (or another pinentry), or set MFA_AGENT_PIN_FILE"
        );
    };
    let description = format!("mfa-agent: {prompt}");
    let pin = input
        .with_title("mfa-agent")
        .with_description(&description)
        .with_prompt("PIN:")
        .required("A PIN is needed")
        .interact()
        .map_err(|e| anyhow::anyhow!("{program} did not return a PIN: {e}"))?;
    Ok(SecretString::new(pin.expose_secret().to_owned()))
}
