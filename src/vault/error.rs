//! What can go wrong with the vault, each with what the user can do about it.

use std::path::PathBuf;

use thiserror::Error;

use crate::otp::OtpError;
use crate::protocol::StoreKind;

#[derive(Debug, Error)]
pub enum VaultError {
    #[error(
        "no long-term keys for profile {profile:?} in the vault; `mfa-agent creds list` shows what is stored"
    )]
    UnknownCredentials { profile: String },
    #[error("the vault already holds keys for profile {profile:?}; to rotate them, pass --replace")]
    DuplicateCredentials { profile: String },
    #[error(
        "no enrolled security key named {name:?}; `mfa-agent key list` shows the enrolled keys"
    )]
    UnknownKey { name: String },
    #[error("a security key named {name:?} is already enrolled; pick another name with --name")]
    DuplicateKey { name: String },
    #[error("{0}")]
    Unlock(String),
    #[error("the seeds are sealed by a security key, and nothing here can ask for a touch")]
    Sealed,
    #[error("the sealed secret {name:?} does not open: {detail}")]
    Unseal { name: String, detail: String },
    #[error(
        "no seed named {name:?}{}; `mfa-agent seed list` shows the names",
        crate::suggest::did_you_mean(.suggestion.as_ref())
    )]
    UnknownSeed {
        name: String,
        /// The closest name there is, when one is close.
        suggestion: Option<String>,
    },
    #[error(
        "a seed named {name:?} already exists; pick another name, or remove it first with `mfa-agent seed remove {name}`"
    )]
    DuplicateSeed { name: String },
    #[error(
        "seed {seed:?} is already linked to the MFA device {serial}, and each device takes one seed; nothing was added: for a re-created device, add the new seed with --replace (seed {seed:?} is removed once the new one is stored), move the link with `mfa-agent seed link NAME --serial {serial}`, or rename the seed with `mfa-agent seed rename {seed} NEW`"
    )]
    SerialTaken { serial: String, seed: String },
    #[error(
        "{name:?} is not a usable seed name; use 1-64 letters, digits, '.', '_', '-' or '@', starting with a letter or digit"
    )]
    BadName { name: String },
    #[error(
        "{serial:?} is not an MFA device ARN; it looks like arn:aws:iam::123456789012:mfa/NAME (IAM console > Security credentials > MFA)"
    )]
    BadSerial { serial: String },
    #[error(
        "no Secret Service is reachable on the session D-Bus ({detail}); start your desktop keyring (GNOME Keyring, KeePassXC), or keep seeds in an encrypted file instead with `--store file`"
    )]
    KeyringUnavailable { detail: String },
    #[error(
        "the keyring is locked ({detail}); unlock it (log in to the desktop, or on a headless box run `gnome-keyring-daemon --replace --daemonize --unlock` and type the keyring's password, then Ctrl-D) and try again"
    )]
    KeyringLocked { detail: String },
    #[error("the keyring failed: {detail}")]
    Keyring { detail: String },
    #[error(
        "the {store} holds no secret for seed {name:?} (removed outside mfa-agent?); run `mfa-agent seed remove {name}` and add it again"
    )]
    SecretMissing { name: String, store: StoreKind },
    #[error(
        "wrong passphrase for the encrypted seed file {path}; try again (a forgotten passphrase cannot be recovered: move the file away and add the seeds again)"
    )]
    WrongPassphrase { path: PathBuf },
    #[error("the encrypted seed file {path} is damaged ({detail}); restore it from a backup")]
    CorruptFile { path: PathBuf, detail: String },
    #[error("{0}")]
    Passphrase(String),
    #[error(
        "this vault keeps its seeds in the {actual}, but --store asks for the {requested}; drop --store (moving seeds between stores is not supported yet)"
    )]
    StoreMismatch {
        actual: StoreKind,
        requested: StoreKind,
    },
    #[error(
        "the seed index {path} is damaged ({detail}); nothing was changed: `mfa-agent seed recover` restores the copy kept before its last change"
    )]
    CorruptIndex { path: PathBuf, detail: String },
    #[error(
        "the seed index {path} is damaged and there is no copy of an earlier version to restore; move it away and add the seeds again (their secrets are still in the store)"
    )]
    NoIndexBackup { path: PathBuf },
    #[error(
        "the seed index {path} was written by a newer mfa-agent (format {version}); upgrade mfa-agent"
    )]
    NewerIndex { path: PathBuf, version: u32 },
    #[error("failed to {action} {path}: {source}{}", crate::atomic::what_to_do(.source))]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the list of security keys in {path} is not the one this vault's keys signed: a key entry was added, changed or removed outside mfa-agent (by another program, or a restored or synced copy of the file), or the vault was made to look unsealed; nothing was opened or changed: restore the file from a backup you trust, or `mfa-agent seed recover` for the copy kept before its last change"
    )]
    KeyListChanged { path: PathBuf },
    #[error("the stored seed {name:?} is unusable: {source}")]
    BadStoredSeed { name: String, source: OtpError },
}
