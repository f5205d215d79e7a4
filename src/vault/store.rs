//! Where seed secrets are kept: the OS keyring or an encrypted file, behind one trait.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::VaultError;
use crate::secret::SecretString;

/// The kinds of secret store a vault can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum StoreKind {
    /// The OS keyring: Secret Service on Linux, Keychain on macOS, Credential Manager on Windows.
    Keyring,
    /// A passphrase-encrypted file (age/scrypt), for machines without a keyring.
    File,
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Keyring => "OS keyring",
            Self::File => "encrypted file",
        })
    }
}

impl FromStr for StoreKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        <Self as clap::ValueEnum>::from_str(s, true)
            .map_err(|_| format!("unknown store {s:?}; use `keyring` or `file`"))
    }
}

/// A place that keeps secrets by id. Implementations never log or echo the secrets.
pub trait SecretStore {
    /// Which kind of store this is.
    fn kind(&self) -> StoreKind;
    /// A human description, e.g. "Secret Service (GNOME Keyring)" or the file's path.
    fn describe(&self) -> String;
    /// Saves `secret` under `id`, replacing any previous one.
    fn put(&mut self, id: &str, label: &str, secret: &SecretString) -> Result<(), VaultError>;
    /// Reads the secret under `id`; `Ok(None)` when there is none.
    fn get(&mut self, id: &str) -> Result<Option<SecretString>, VaultError>;
    /// Deletes the secret under `id`; deleting a missing secret is not an error.
    fn delete(&mut self, id: &str) -> Result<(), VaultError>;
    /// Saves several secrets (`(id, label, secret)`); the file store encrypts once for all.
    fn put_all(&mut self, secrets: &[(String, String, SecretString)]) -> Result<(), VaultError> {
        for (id, label, secret) in secrets {
            self.put(id, label, secret)?;
        }
        Ok(())
    }
    /// Deletes several secrets; the file store encrypts once for all.
    fn delete_all(&mut self, ids: &[String]) -> Result<(), VaultError> {
        for id in ids {
            self.delete(id)?;
        }
        Ok(())
    }
}
