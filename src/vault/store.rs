//! Where seed secrets are kept: the OS keyring or an encrypted file, behind one trait.

use super::VaultError;
use crate::protocol::StoreKind;
use crate::secret::SecretString;

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
