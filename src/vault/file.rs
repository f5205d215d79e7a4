//! Seeds in one passphrase-encrypted file (age with scrypt), for machines with no keyring.
//!
//! The whole map of secrets is decrypted, changed and re-encrypted on each write; the file
//! is small and writes are rare, and one file keeps every write atomic.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::PathBuf;

use age::secrecy::SecretString as AgeSecret;
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use super::{SecretStore, VaultError};
use crate::atomic;
use crate::protocol::StoreKind;
use crate::secret::{SecretBytes, SecretString};

/// Why the passphrase is wanted: a new file asks for it twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassphrasePurpose {
    Unlock,
    Create,
    /// The one given did not open the file: once more, with this many tries left after it
    /// (a source that cannot ask again, such as a file, answers with an error).
    Retry {
        tries_left: u8,
    },
}

/// Tries at the passphrase of an existing file, as sudo and ssh give.
const PASSPHRASE_TRIES: u8 = 3;

/// Supplies the passphrase when the file is first touched.
pub type PassphraseSource = Box<dyn FnMut(PassphrasePurpose) -> Result<SecretString, VaultError>>;

const MAX_SCRYPT_WORK_FACTOR: u8 = 22;

#[derive(Default, Serialize, Deserialize)]
struct Contents {
    secrets: BTreeMap<String, String>,
}

impl Drop for Contents {
    fn drop(&mut self) {
        for value in self.secrets.values_mut() {
            value.zeroize();
        }
    }
}

pub struct FileStore {
    path: PathBuf,
    passphrase_source: PassphraseSource,
    /// The passphrase and decrypted contents, once unlocked by the first operation.
    unlocked: Option<(SecretString, Contents)>,
}

impl FileStore {
    #[must_use]
    pub fn new(path: PathBuf, passphrase_source: PassphraseSource) -> Self {
        Self {
            path,
            passphrase_source,
            unlocked: None,
        }
    }

    fn unlock(&mut self) -> Result<&mut Contents, VaultError> {
        if self.unlocked.is_none() {
            let ciphertext = match fs::read(&self.path) {
                Ok(bytes) => Some(bytes),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(source) => {
                    return Err(VaultError::Io {
                        action: "read",
                        path: self.path.clone(),
                        source,
                    });
                }
            };
            let unlocked = match ciphertext {
                None => (
                    (self.passphrase_source)(PassphrasePurpose::Create)?,
                    Contents::default(),
                ),
                Some(ciphertext) => {
                    let mut purpose = PassphrasePurpose::Unlock;
                    let mut tries = 1;
                    loop {
                        let passphrase = (self.passphrase_source)(purpose)?;
                        match self.decrypt(&passphrase, &ciphertext) {
                            Ok(contents) => break (passphrase, contents),
                            Err(VaultError::WrongPassphrase { .. }) if tries < PASSPHRASE_TRIES => {
                                tries += 1;
                                purpose = PassphrasePurpose::Retry {
                                    tries_left: PASSPHRASE_TRIES - tries,
                                };
                            }
                            Err(e) => return Err(e),
                        }
                    }
                }
            };
            self.unlocked = Some(unlocked);
        }
        Ok(&mut self.unlocked.as_mut().expect("unlocked above").1)
    }

    fn decrypt(
        &self,
        passphrase: &SecretString,
        ciphertext: &[u8],
    ) -> Result<Contents, VaultError> {
        let mut identity =
            age::scrypt::Identity::new(AgeSecret::from(passphrase.expose().to_owned()));
        // age caps the work it accepts from a file at what this machine does in ~16 s *right
        // now*; on a busy or slow machine that refuses our own file. A fixed cap (2^22, age's
        // own upper guidance) still refuses absurd files.
        identity.set_max_work_factor(MAX_SCRYPT_WORK_FACTOR);
        let plaintext = decrypt(&identity, ciphertext).map_err(|e| match e {
            // A wrong passphrase fails to open the header stanza; damage to the body shows up as
            // an I/O or MAC error instead.
            age::DecryptError::DecryptionFailed
            | age::DecryptError::NoMatchingKeys
            | age::DecryptError::KeyDecryptionFailed => VaultError::WrongPassphrase {
                path: self.path.clone(),
            },
            other => VaultError::CorruptFile {
                path: self.path.clone(),
                detail: other.to_string(),
            },
        })?;
        let plaintext = SecretBytes::new(plaintext);
        serde_json::from_slice(plaintext.expose()).map_err(|e| VaultError::CorruptFile {
            path: self.path.clone(),
            detail: e.to_string(),
        })
    }

    fn save(&mut self) -> Result<(), VaultError> {
        let (passphrase, contents) = self.unlocked.as_ref().expect("saved only after unlock");
        // Reserve enough that serialisation never reallocates and strands a copy.
        let room = contents
            .secrets
            .iter()
            .map(|(k, v)| k.len() + v.len() + 16)
            .sum::<usize>()
            + 64;
        let mut plaintext = Vec::with_capacity(room);
        serde_json::to_writer(&mut plaintext, contents).expect("the contents always serialise");
        let plaintext = SecretBytes::new(plaintext);
        let recipient =
            age::scrypt::Recipient::new(AgeSecret::from(passphrase.expose().to_owned()));
        let ciphertext =
            age::encrypt(&recipient, plaintext.expose()).map_err(|e| VaultError::CorruptFile {
                path: self.path.clone(),
                detail: e.to_string(),
            })?;
        atomic::write_private(&self.path, &ciphertext).map_err(|source| VaultError::Io {
            action: "write",
            path: self.path.clone(),
            source,
        })
    }
}

/// `age::decrypt`, but into a buffer sized up front: the plaintext is shorter than the
/// ciphertext, so the buffer never reallocates and leaves no stray copy of the secrets.
fn decrypt(
    identity: &age::scrypt::Identity,
    ciphertext: &[u8],
) -> Result<Vec<u8>, age::DecryptError> {
    let decryptor = age::Decryptor::new_buffered(ciphertext)?;
    let mut reader = decryptor.decrypt(std::iter::once(identity as &dyn age::Identity))?;
    let mut plaintext = Vec::with_capacity(ciphertext.len());
    let read = io::Read::read_to_end(&mut reader, &mut plaintext);
    if let Err(e) = read {
        plaintext.zeroize();
        return Err(e.into());
    }
    Ok(plaintext)
}

impl SecretStore for FileStore {
    fn kind(&self) -> StoreKind {
        StoreKind::File
    }

    fn describe(&self) -> String {
        format!("encrypted file {}", self.path.display())
    }

    fn put(&mut self, id: &str, _label: &str, secret: &SecretString) -> Result<(), VaultError> {
        let contents = self.unlock()?;
        if let Some(mut old) = contents
            .secrets
            .insert(id.to_owned(), secret.expose().to_owned())
        {
            old.zeroize();
        }
        self.save()
    }

    fn get(&mut self, id: &str) -> Result<Option<SecretString>, VaultError> {
        Ok(self
            .unlock()?
            .secrets
            .get(id)
            .map(|s| SecretString::new(s.clone())))
    }

    fn delete(&mut self, id: &str) -> Result<(), VaultError> {
        self.delete_all(&[id.to_owned()])
    }

    fn put_all(&mut self, secrets: &[(String, String, SecretString)]) -> Result<(), VaultError> {
        let contents = self.unlock()?;
        for (id, _label, secret) in secrets {
            if let Some(mut old) = contents
                .secrets
                .insert(id.clone(), secret.expose().to_owned())
            {
                old.zeroize();
            }
        }
        self.save()
    }

    fn delete_all(&mut self, ids: &[String]) -> Result<(), VaultError> {
        if !self.path.exists() {
            return Ok(());
        }
        let contents = self.unlock()?;
        let mut removed = false;
        for id in ids {
            if let Some(mut old) = contents.secrets.remove(id) {
                old.zeroize();
                removed = true;
            }
        }
        if removed {
            self.save()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(path: PathBuf, passphrase: &'static str) -> FileStore {
        FileStore::new(
            path,
            Box::new(move |_| Ok(SecretString::new(passphrase.into()))),
        )
    }

    #[test]
    fn round_trip_wrong_passphrase_and_no_plaintext_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seeds.age");
        let secret = SecretString::new("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".into());
        store(path.clone(), "correct horse")
            .put("v/work", "work", &secret)
            .unwrap();

        let on_disk = fs::read(&path).unwrap();
        assert!(
            !on_disk.windows(8).any(|w| w == b"GEZDGNBV"),
            "the secret is encrypted"
        );

        let mut reopened = store(path.clone(), "correct horse");
        assert_eq!(
            reopened.get("v/work").unwrap().unwrap().expose(),
            secret.expose()
        );
        assert!(reopened.get("v/other").unwrap().is_none());

        let err = store(path.clone(), "wrong").get("v/work").unwrap_err();
        assert!(matches!(err, VaultError::WrongPassphrase { .. }), "{err}");

        reopened.delete("v/work").unwrap();
        assert!(
            store(path, "correct horse")
                .get("v/work")
                .unwrap()
                .is_none()
        );
    }
}
