//! Seeds in the OS keyring through keyring-core and the platform's store crate.

use std::collections::HashMap;
use std::sync::Arc;

use keyring_core::api::CredentialStore;
use keyring_core::{Entry, Error as KeyringError};

use super::{SecretStore, VaultError};
use crate::protocol::StoreKind;
use crate::secret::SecretString;

/// The keyring "service" every mfa-agent entry is filed under.
const SERVICE: &str = "mfa-agent";

pub struct KeyringStore {
    store: Arc<CredentialStore>,
}

impl KeyringStore {
    /// Connects to the platform keyring. Fails when none is reachable, never silently.
    pub fn connect() -> Result<Self, VaultError> {
        let store = platform_store().map_err(|e| VaultError::KeyringUnavailable {
            detail: describe(&e),
        })?;
        Ok(Self { store })
    }

    fn entry(&self, id: &str, label: Option<&str>) -> Result<Entry, VaultError> {
        let mods: HashMap<&str, &str> = label.map(|l| ("label", l)).into_iter().collect();
        self.store
            .build(SERVICE, id, (!mods.is_empty()).then_some(&mods))
            .map_err(map_error)
    }
}

#[cfg(target_os = "linux")]
fn platform_store() -> keyring_core::Result<Arc<CredentialStore>> {
    Ok(zbus_secret_service_keyring_store::Store::new()?)
}

#[cfg(target_os = "macos")]
fn platform_store() -> keyring_core::Result<Arc<CredentialStore>> {
    Ok(apple_native_keyring_store::keychain::Store::new()?)
}

#[cfg(target_os = "windows")]
fn platform_store() -> keyring_core::Result<Arc<CredentialStore>> {
    Ok(windows_native_keyring_store::Store::new()?)
}

impl SecretStore for KeyringStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Keyring
    }

    fn describe(&self) -> String {
        if cfg!(target_os = "linux") {
            "OS keyring (Secret Service)".into()
        } else if cfg!(target_os = "macos") {
            "OS keyring (macOS Keychain)".into()
        } else {
            "OS keyring (Windows Credential Manager)".into()
        }
    }

    fn put(&mut self, id: &str, label: &str, secret: &SecretString) -> Result<(), VaultError> {
        self.entry(id, Some(label))?
            .set_password(secret.expose())
            .map_err(map_error)
    }

    fn get(&mut self, id: &str) -> Result<Option<SecretString>, VaultError> {
        match self.entry(id, None)?.get_password() {
            Ok(secret) => Ok(Some(SecretString::new(secret))),
            Err(KeyringError::NoEntry) => Ok(None),
            Err(e) => Err(map_error(e)),
        }
    }

    fn delete(&mut self, id: &str) -> Result<(), VaultError> {
        match self.entry(id, None)?.delete_credential() {
            Ok(()) | Err(KeyringError::NoEntry) => Ok(()),
            Err(e) => Err(map_error(e)),
        }
    }
}

fn map_error(err: KeyringError) -> VaultError {
    match err {
        KeyringError::NoStorageAccess(_) => VaultError::KeyringLocked {
            detail: describe(&err),
        },
        KeyringError::NoDefaultStore => VaultError::KeyringUnavailable {
            detail: describe(&err),
        },
        other => VaultError::Keyring {
            detail: describe(&other),
        },
    }
}

/// Describes a keyring error without the payloads some variants carry: `BadEncoding` and
/// `BadDataFormat` hold the raw secret bytes, which must never reach a message.
fn describe(err: &KeyringError) -> String {
    match err {
        KeyringError::PlatformFailure(e) | KeyringError::NoStorageAccess(e) => e.to_string(),
        KeyringError::BadEncoding(_) | KeyringError::BadDataFormat(..) => {
            "the stored secret is not in the expected format".into()
        }
        KeyringError::Ambiguous(items) => {
            format!("{} entries match; remove the duplicates", items.len())
        }
        other => other.to_string(),
    }
}
