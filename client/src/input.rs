//! Secrets the user hands over in files or on stdin (never argv), read bounded and wiped.
//! Shared by the CLI (seeds, keys it is given) and the agent (`MFA_AGENT_PIN_FILE`,
//! `MFA_AGENT_PASSPHRASE_FILE`).

use std::fs;
use std::io::{self, Read};
use std::path::Path;

use thiserror::Error;

use crate::secret::{SecretBytes, SecretString};

/// More than any seed, URI or passphrase needs; stops a mistaken pipe from eating memory.
pub(crate) const MAX_SECRET_INPUT: u64 = 64 * 1024;

#[derive(Debug, Error)]
pub enum InputError {
    #[error("failed to open {from}")]
    Open { from: String, source: io::Error },
    #[error("failed to read {from}")]
    Read { from: String, source: io::Error },
    #[error(
        "{from} holds more than {MAX_SECRET_INPUT} bytes; that is not a seed, URI, key or passphrase"
    )]
    TooLong { from: String },
    #[error("{from} is not UTF-8 text")]
    NotText { from: String },
}

/// Reads a secret from stdin, up to EOF, without trailing newlines.
pub(crate) fn secret_from_stdin() -> Result<SecretString, InputError> {
    read_secret(io::stdin().lock(), "stdin")
}

/// Reads a secret from a file the user named, without trailing newlines.
pub fn secret_from_file(path: &Path) -> Result<SecretString, InputError> {
    let from = path.display().to_string();
    let file = fs::File::open(path).map_err(|source| InputError::Open {
        from: from.clone(),
        source,
    })?;
    read_secret(file, &from)
}

fn read_secret(source: impl Read, from: &str) -> Result<SecretString, InputError> {
    let mut raw = Vec::with_capacity(MAX_SECRET_INPUT as usize + 1);
    source
        .take(MAX_SECRET_INPUT + 1)
        .read_to_end(&mut raw)
        .map_err(|source| InputError::Read {
            from: from.into(),
            source,
        })?;
    let raw = SecretBytes::new(raw);
    if raw.len() as u64 > MAX_SECRET_INPUT {
        return Err(InputError::TooLong { from: from.into() });
    }
    let text =
        std::str::from_utf8(raw.expose()).map_err(|_| InputError::NotText { from: from.into() })?;
    Ok(SecretString::new(
        text.trim_end_matches(['\n', '\r']).to_owned(),
    ))
}
