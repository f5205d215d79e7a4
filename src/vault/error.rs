//! What can go wrong with the vault. Each message says what happened, and only that: what
//! the user can do about it is written in one place, `crate::advice`, which is where the
//! commands and flags of the CLI are named.

use std::path::PathBuf;

use thiserror::Error;

use crate::otp::OtpError;
use crate::protocol::StoreKind;
use mfa_agent_client::vault_rules::{BadName, StoreMismatch};

#[derive(Debug, Error)]
pub enum VaultError {
    #[error("no long-term keys for profile {profile:?} in the vault")]
    UnknownCredentials { profile: String },
    #[error("the vault already holds keys for profile {profile:?}")]
    DuplicateCredentials { profile: String },
    #[error("no enrolled security key named {name:?}")]
    UnknownKey { name: String },
    #[error("a security key named {name:?} is already enrolled")]
    DuplicateKey { name: String },
    #[error(transparent)]
    Unlock(#[from] crate::keys::unlock::UnlockError),
    #[error("the seeds are sealed by a security key, and nothing here can ask for a touch")]
    Sealed,
    #[error("the sealed secret {name:?} does not open")]
    Unseal {
        name: String,
        source: crate::keys::seal::SealError,
    },
    #[error(
        "no seed named {name:?}{}",
        crate::suggest::did_you_mean(.suggestion.as_ref())
    )]
    UnknownSeed {
        name: String,
        /// The closest name there is, when one is close.
        suggestion: Option<String>,
    },
    #[error("a seed named {name:?} already exists")]
    DuplicateSeed { name: String },
    #[error(
        "seed {seed:?} is already linked to the MFA device {serial}, and each device takes one seed; nothing was added"
    )]
    SerialTaken { serial: String, seed: String },
    #[error(transparent)]
    BadName(#[from] BadName),
    #[error("{serial:?} is not an MFA device ARN")]
    BadSerial { serial: String },
    #[error("no Secret Service is reachable on the session D-Bus ({detail})")]
    KeyringUnavailable { detail: String },
    #[error("the keyring is locked ({detail})")]
    KeyringLocked { detail: String },
    #[error("the keyring failed: {detail}")]
    Keyring { detail: String },
    #[error("the {store} holds no secret for seed {name:?} (removed outside mfa-agent?)")]
    SecretMissing { name: String, store: StoreKind },
    #[error("wrong passphrase for the encrypted seed file {path}")]
    WrongPassphrase { path: PathBuf },
    #[error("the encrypted seed file {path} is damaged ({detail})")]
    CorruptFile { path: PathBuf, detail: String },
    #[error(transparent)]
    Passphrase(#[from] PassphraseError),
    #[error(transparent)]
    StoreMismatch(#[from] StoreMismatch),
    #[error("the seed index {path} is damaged ({detail}); nothing was changed")]
    CorruptIndex { path: PathBuf, detail: String },
    #[error(
        "the seed index {path} is damaged and there is no copy of an earlier version to restore"
    )]
    NoIndexBackup { path: PathBuf },
    #[error("the seed index {path} was written by a newer mfa-agent (format {version})")]
    NewerIndex { path: PathBuf, version: u32 },
    /// The I/O error is the source, not part of this message.
    #[error("failed to {action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the list of security keys in {path} is not the one this vault's keys signed: a key entry was added, changed or removed outside mfa-agent (by another program, or a restored or synced copy of the file), or the vault was made to look unsealed; nothing was opened or changed"
    )]
    KeyListChanged { path: PathBuf },
    #[error("the stored seed {name:?} is unusable")]
    BadStoredSeed { name: String, source: OtpError },
}

/// Why the encrypted file's passphrase could not be had.
#[derive(Debug, Error)]
pub enum PassphraseError {
    #[error("wrong passphrase in the agent's MFA_AGENT_PASSPHRASE_FILE ({path})")]
    WrongInFile { path: PathBuf },
    /// The source names the file and what failed.
    #[error("the agent's MFA_AGENT_PASSPHRASE_FILE cannot be used")]
    File { source: anyhow::Error },
    #[error("the passphrase file {path} is empty")]
    EmptyFile { path: PathBuf },
    #[error(
        "the encrypted seed file needs its passphrase and the client has no terminal to ask on"
    )]
    NoWayToAsk,
    #[error("no passphrase was typed; nothing was changed")]
    NoneTyped,
    #[error("the passphrase is too short")]
    TooShort { min: usize },
}
