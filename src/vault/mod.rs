//! The seed vault: a non-secret index of seeds plus a secret store holding their keys.
//!
//! Adding writes the secret first and the index second; removing does the reverse. A crash
//! in between leaves at worst an unused secret behind, never an index entry without one.

mod error;
mod file;
mod index;
mod keyring;
#[cfg(test)]
mod rekey_tests;
mod store;

use std::path::{Path, PathBuf};

pub use self::error::{PassphraseError, VaultError};
pub use self::file::{FileStore, PassphrasePurpose, PassphraseSource};
use self::index::VaultLock;
pub use self::index::{CredentialInfo, EnrolledKey, Index, KeyKind, SeedInfo};
pub use self::keyring::KeyringStore;
pub use self::store::SecretStore;
use crate::aws::LongTermKeys;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::clock::unix_now;
use crate::keys::seal::{DataKey, SealError};
use crate::otp::{self, Seed};
use crate::protocol::StoreKind;
use crate::secret::SecretString;

use mfa_agent_client::vault_rules::{INDEX_FILE, StoreMismatch};
const SECRETS_FILE: &str = "seeds.age";

/// The index of the vault in `data_dir` alone (that of a new keyring vault where there is
/// none yet): what the vault holds and how it is sealed, for readers that need no secret
/// (doctor, the agent's start, the notifier). No store is contacted and nothing is written.
pub fn read_index(data_dir: &Path) -> Result<Index, VaultError> {
    Ok(Index::load(&data_dir.join(INDEX_FILE))?.unwrap_or_else(|| Index::new(StoreKind::Keyring)))
}

/// The seeds of one user, as found under one data directory.
pub struct Vault {
    data_dir: PathBuf,
    index: Index,
    exists: bool,
    passphrase: Option<PassphraseSource>,
    store: Option<Box<dyn SecretStore>>,
    /// Opens the data key when a sealed seed is read or a seed must be sealed, and gets a
    /// touch of an approve-only (U2F) key before a seed is read.
    unlocker: Option<Box<dyn Unlocker>>,
    /// This vault's user approved already: one touch per request, for all it reads.
    approved: bool,
    data_key: Option<DataKey>,
}

/// What opens what the enrolled security keys guard, asked only when a secret is read or
/// sealed (`keys::unlock::ByTouch` is the real one: a touch, and the PIN where set).
pub trait Unlocker {
    /// The vault's data key, from one of its sealing keys.
    fn unseal(&mut self, sealing: &[EnrolledKey]) -> Result<DataKey, VaultError>;
    /// The user's approval, on one of the approve-only (U2F) keys.
    fn approve(&mut self, approving: &[EnrolledKey]) -> Result<(), VaultError>;
}

/// Marks a stored seed as sealed: `sealed:v1:` + base64(nonce || ciphertext).
const SEALED_PREFIX: &str = "sealed:v1:";

/// A secret in the store: `key` makes its id (with the vault id and generation), `name` is
/// the seed or profile it belongs to, `label` what the keyring shows.
struct Entry {
    key: String,
    name: String,
    label: String,
}

/// The error for a seed that is not there, naming the closest one that is.
fn unknown_seed(index: &Index, name: &str) -> VaultError {
    VaultError::UnknownSeed {
        name: name.into(),
        suggestion: crate::suggest::closest(name, index.seeds.keys().map(String::as_str)),
    }
}

/// The stored form of a secret sealed under `data_key` for the store id `id`.
fn sealed_form(data_key: &DataKey, id: &str, plain: &SecretString) -> SecretString {
    let sealed = data_key.seal(id, plain.expose().as_bytes());
    SecretString::new(format!("{SEALED_PREFIX}{}", BASE64.encode(sealed)))
}

impl Vault {
    /// Opens the vault in `data_dir`. `requested` is the store the user asked for; it picks
    /// the store of a new vault and must match the store of an existing one. Nothing is
    /// written and no store is contacted until a seed is read or changed.
    pub fn open(
        data_dir: &Path,
        requested: Option<StoreKind>,
        passphrase: PassphraseSource,
    ) -> Result<Self, VaultError> {
        let (index, exists) = match Index::load(&data_dir.join(INDEX_FILE))? {
            Some(index) => {
                if let Some(requested) = requested.filter(|r| *r != index.store) {
                    return Err(VaultError::StoreMismatch(StoreMismatch {
                        actual: index.store,
                        requested,
                    }));
                }
                (index, true)
            }
            None => (Index::new(requested.unwrap_or(StoreKind::Keyring)), false),
        };
        Ok(Self {
            data_dir: data_dir.to_owned(),
            index,
            exists,
            passphrase: Some(passphrase),
            store: None,
            unlocker: None,
            approved: false,
            data_key: None,
        })
    }

    /// Lets the vault ask for the data key (a touch) when it needs to seal or unseal, and
    /// for an approve-only key's touch before it hands out a secret.
    #[must_use]
    pub fn with_unlocker(mut self, unlocker: Box<dyn Unlocker>) -> Self {
        self.unlocker = Some(unlocker);
        self
    }

    /// Hands the vault a data key already unlocked (one an unlock keeps, or a new vault's
    /// at its first enrolment). Like a key a touch opened, it must have signed the key
    /// list as it is now.
    pub fn set_data_key(&mut self, data_key: DataKey) -> Result<(), VaultError> {
        self.check_keys_signed(&data_key)?;
        self.data_key = Some(data_key);
        Ok(())
    }

    /// Refuses a key list `data_key` did not sign, and signs one sealed before key lists
    /// were signed (its next unlock migrates it).
    fn check_keys_signed(&mut self, data_key: &DataKey) -> Result<(), VaultError> {
        match self.index.keys_signed_by(data_key) {
            Some(false) => Err(VaultError::KeyListChanged {
                path: self.index_path(),
            }),
            None if self.index.is_sealed() => self.change_index(|index| {
                // Signed as read under the lock, and only if it is still unsigned.
                if index.keys_mac.is_none() {
                    index.sign_keys(data_key);
                }
                Ok(())
            }),
            Some(true) | None => Ok(()),
        }
    }

    /// In a vault no key seals, a MAC or a sealed secret means the keys were taken out of
    /// the index behind the agent's back: storing a new secret in the clear there would
    /// hand it to whoever did.
    fn check_unsealed_mode(&mut self) -> Result<(), VaultError> {
        let path = self.index_path();
        let refused = || VaultError::KeyListChanged { path: path.clone() };
        if self.index.keys_mac.is_some() {
            return Err(refused());
        }
        if let Some(entry) = self.entries().into_iter().next() {
            let id = self.id_in(self.index.generation, &entry.key);
            if let Ok(stored) = self.read_secret(&id, &entry.name)
                && stored.expose().starts_with(SEALED_PREFIX)
            {
                return Err(refused());
            }
        }
        Ok(())
    }

    /// The data key, if this vault has unlocked it (to keep it under an unlock policy).
    pub fn take_data_key(&mut self) -> Option<DataKey> {
        self.data_key.take()
    }

    /// Whether seeds are sealed by enrolled security keys.
    #[must_use]
    pub fn is_sealed(&self) -> bool {
        self.index.is_sealed()
    }

    /// The approve-only (U2F) keys; they gate seeds only where no key seals them.
    fn approval_keys(&self) -> Vec<EnrolledKey> {
        self.index
            .keys
            .iter()
            .filter(|k| k.kind == KeyKind::Approve)
            .cloned()
            .collect()
    }

    fn data_key(&mut self) -> Result<&DataKey, VaultError> {
        if self.data_key.is_none() {
            let unlocker = self.unlocker.as_mut().ok_or(VaultError::Sealed)?;
            let sealing: Vec<EnrolledKey> = self
                .index
                .keys
                .iter()
                .filter(|k| k.kind == KeyKind::Seal)
                .cloned()
                .collect();
            let data_key = unlocker.unseal(&sealing)?;
            self.check_keys_signed(&data_key)?;
            self.data_key = Some(data_key);
        }
        Ok(self.data_key.as_ref().expect("set above"))
    }

    /// The form a seed's base32 secret takes in the store: sealed once a key is enrolled.
    fn stored_form(
        &mut self,
        id: &str,
        encoded: &SecretString,
    ) -> Result<SecretString, VaultError> {
        if !self.is_sealed() {
            self.check_unsealed_mode()?;
            return Ok(encoded.clone());
        }
        Ok(sealed_form(self.data_key()?, id, encoded))
    }

    /// The base32 secret from its stored form, sealed or not (a vault may be mid-way through
    /// sealing or unsealing after an interruption; both forms stay readable).
    fn plain_form(
        &mut self,
        id: &str,
        name: &str,
        stored: SecretString,
    ) -> Result<SecretString, VaultError> {
        let Some(sealed) = stored.expose().strip_prefix(SEALED_PREFIX) else {
            return Ok(stored);
        };
        let unseal_error = |source: SealError| VaultError::Unseal {
            name: name.into(),
            source,
        };
        let damaged = |e: &dyn std::fmt::Display| unseal_error(SealError::Damaged(e.to_string()));
        let sealed = BASE64.decode(sealed).map_err(|e| damaged(&e))?;
        let plain = self.data_key()?.open(id, &sealed).map_err(unseal_error)?;
        let text = std::str::from_utf8(plain.expose()).map_err(|e| damaged(&e))?;
        Ok(SecretString::new(text.to_owned()))
    }

    /// A secret read for use. In a sealed vault it takes the data key (a touch) even when
    /// it is found unsealed — an enrolment interrupted before it sealed everything — and is
    /// then sealed where it lies, so an interruption never leaves a secret that opens
    /// without the key.
    fn opened(
        &mut self,
        id: &str,
        name: &str,
        stored: SecretString,
        label: &str,
    ) -> Result<SecretString, VaultError> {
        let left_plain = self.is_sealed() && !stored.expose().starts_with(SEALED_PREFIX);
        let plain = self.plain_form(id, name, stored)?;
        if left_plain {
            let sealed = self.stored_form(id, &plain)?;
            self.store()?.put(id, label, &sealed)?;
            tracing::info!(
                name,
                "sealed a secret an interrupted enrolment had left unsealed"
            );
        }
        Ok(plain)
    }

    /// Rewrites every secret in the store (seeds and long-term keys) in its proper form:
    /// sealed while keys are enrolled, plain once none is. Idempotent, so an interrupted run
    /// is finished by the next.
    pub fn reseal_all(&mut self, seal: bool) -> Result<usize, VaultError> {
        let mut changed = 0;
        for entry in self.entries() {
            let (id, name, label) = (
                self.id_in(self.index.generation, &entry.key),
                entry.name,
                entry.label,
            );
            let stored = self.read_secret(&id, &name)?;
            let is_sealed = stored.expose().starts_with(SEALED_PREFIX);
            if is_sealed == seal {
                continue;
            }
            let plain = self.plain_form(&id, &name, stored)?;
            let new_form = if seal {
                self.stored_form(&id, &plain)?
            } else {
                plain
            };
            self.store()?.put(&id, &label, &new_form)?;
            changed += 1;
        }
        Ok(changed)
    }

    /// Re-keys the vault after a security key is removed: every secret is opened with `old`
    /// and sealed again under `new`, and `keys` (each wrapping `new`) replace the enrolled
    /// keys. A removed key, even with a copy of the old index, then opens nothing current.
    ///
    /// The new secrets are written under the next generation's ids, beside the old ones;
    /// one atomic index write switches to them; only then are the old ones deleted. So an
    /// interruption before the switch leaves the vault exactly as it was (plus unused
    /// entries), and one after it a vault whose next change finishes the deletion.
    pub fn rekey(
        &mut self,
        old: DataKey,
        new: &DataKey,
        keys: Vec<EnrolledKey>,
    ) -> Result<usize, VaultError> {
        let _lock = VaultLock::acquire(&self.data_dir)?;
        self.reload()?;
        // The keys that stay take the new data key: never an entry nobody enrolled.
        if self.index.keys_signed_by(&old) == Some(false) {
            return Err(VaultError::KeyListChanged {
                path: self.index_path(),
            });
        }
        self.data_key = Some(old);
        let from = self.index.generation;
        let to = from + 1;
        let entries = self.entries();
        let copies = self.sealed_copies(&entries, from, to, new)?;
        let written: Vec<String> = copies.iter().map(|(id, ..)| id.clone()).collect();
        let before = self.index.clone();
        let switched = self.store()?.put_all(&copies).and_then(|()| {
            self.index.keys = keys;
            self.index.sign_keys(new);
            self.index.generation = to;
            self.index.retired = entries.iter().map(|e| self.id_in(from, &e.key)).collect();
            self.save()
        });
        if let Err(e) = switched {
            self.index = before;
            let _ = self.store().and_then(|store| store.delete_all(&written));
            return Err(e);
        }
        self.data_key = Some(new.clone());
        Ok(entries.len())
    }

    /// Every secret of generation `from`, opened and sealed with `new` for its id in
    /// generation `to`, as `(id, label, stored form)`.
    fn sealed_copies(
        &mut self,
        entries: &[Entry],
        from: u32,
        to: u32,
        new: &DataKey,
    ) -> Result<Vec<(String, String, SecretString)>, VaultError> {
        let mut copies = Vec::with_capacity(entries.len());
        for entry in entries {
            let old_id = self.id_in(from, &entry.key);
            let stored = self.read_secret(&old_id, &entry.name)?;
            let plain = self.plain_form(&old_id, &entry.name, stored)?;
            let new_id = self.id_in(to, &entry.key);
            let sealed = sealed_form(new, &new_id, &plain);
            copies.push((new_id, entry.label.clone(), sealed));
        }
        Ok(copies)
    }

    /// Every secret the index says the store holds.
    fn entries(&self) -> Vec<Entry> {
        let seeds = self.index.seeds.keys().map(|name| Entry {
            key: name.clone(),
            name: name.clone(),
            label: format!("mfa-agent TOTP seed {name}"),
        });
        let creds = self.index.credentials.keys().map(|profile| Entry {
            key: format!("aws-keys:{profile}"),
            name: profile.clone(),
            label: format!("mfa-agent AWS keys for profile {profile}"),
        });
        seeds.chain(creds).collect()
    }

    /// Asks an enrolled approve-only (U2F) key for a touch before a secret is handed out,
    /// where no key seals the secrets (a sealing key's touch is the approval then).
    fn approve(&mut self) -> Result<(), VaultError> {
        let approval = self.approval_keys();
        if !self.approved && !self.is_sealed() && !approval.is_empty() {
            let unlocker = self.unlocker.as_mut().ok_or(VaultError::Sealed)?;
            unlocker.approve(&approval)?;
            self.approved = true;
        }
        Ok(())
    }

    /// Which kind of store holds (or will hold) this vault's secrets.
    #[must_use]
    pub fn store_kind(&self) -> StoreKind {
        self.index.store
    }

    /// A description of the store, connecting to it if needed.
    pub fn store_description(&mut self) -> Result<String, VaultError> {
        Ok(self.store()?.describe())
    }

    /// The seeds, sorted by name.
    pub fn seeds(&self) -> impl Iterator<Item = (&str, &SeedInfo)> {
        self.index.seed_list()
    }

    pub fn info(&self, name: &str) -> Result<&SeedInfo, VaultError> {
        self.index
            .seeds
            .get(name)
            .ok_or_else(|| unknown_seed(&self.index, name))
    }

    /// Stores a new seed under `name`, linked to the AWS MFA device `serial` if given.
    pub fn add(
        &mut self,
        name: &str,
        seed: &Seed,
        serial: Option<String>,
    ) -> Result<(), VaultError> {
        validate_name(name)?;
        if let Some(serial) = &serial {
            validate_serial(serial)?;
        }
        let _lock = VaultLock::acquire(&self.data_dir)?;
        self.reload()?;
        if self.index.seeds.contains_key(name) {
            return Err(VaultError::DuplicateSeed { name: name.into() });
        }
        if let Some(serial) = &serial
            && let Some(seed) = seed_for_serial(self.seeds(), serial).first()
        {
            return Err(VaultError::SerialTaken {
                serial: serial.clone(),
                seed: (*seed).to_owned(),
            });
        }
        let id = self.secret_id(name);
        let encoded = self.stored_form(&id, &otp::encode_base32(&seed.secret))?;
        self.store()?
            .put(&id, &format!("mfa-agent TOTP seed {name}"), &encoded)?;
        self.index.seeds.insert(
            name.to_owned(),
            SeedInfo {
                params: seed.params,
                issuer: seed.issuer.clone(),
                account: seed.account.clone(),
                serial,
                added: unix_now(),
            },
        );
        if let Err(e) = self.save() {
            self.index.seeds.remove(name);
            let _ = self.store()?.delete(&id);
            return Err(e);
        }
        Ok(())
    }

    /// Forgets the seed `name` and deletes its secret.
    pub fn remove(&mut self, name: &str) -> Result<(), VaultError> {
        if !self.index.seeds.contains_key(name) {
            return Err(unknown_seed(&self.index, name));
        }
        let id = self.secret_id(name);
        self.remove_with_secret(&id, |index| {
            index
                .seeds
                .remove(name)
                .map(drop)
                .ok_or_else(|| unknown_seed(index, name))
        })
    }

    /// Links the MFA device `serial` to seed `name` alone (any other seed linked to it is
    /// unlinked).
    pub fn link(&mut self, name: &str, serial: &str) -> Result<(), VaultError> {
        validate_serial(serial)?;
        self.change_index(|index| {
            if !index.seeds.contains_key(name) {
                return Err(unknown_seed(index, name));
            }
            for (seed, info) in &mut index.seeds {
                if seed == name {
                    info.serial = Some(serial.to_owned());
                } else if info.serial.as_deref() == Some(serial) {
                    info.serial = None;
                }
            }
            Ok(())
        })
    }

    /// Reads the whole seed `name`, secret included.
    pub fn seed(&mut self, name: &str) -> Result<Seed, VaultError> {
        let info = self.info(name)?.clone();
        // Sealed seeds need a touch to open; unsealed ones with U2F keys enrolled, to hand out.
        self.approve()?;
        let id = self.secret_id(name);
        let stored = self.read_secret(&id, name)?;
        let encoded = self.opened(&id, name, stored, &format!("mfa-agent TOTP seed {name}"))?;
        let secret =
            otp::decode_base32(encoded.expose()).map_err(|source| VaultError::BadStoredSeed {
                name: name.into(),
                source,
            })?;
        let seed = Seed {
            params: info.params,
            issuer: info.issuer,
            account: info.account,
            secret,
        };
        seed.validate()
            .map_err(|source| VaultError::BadStoredSeed {
                name: name.into(),
                source,
            })?;
        Ok(seed)
    }

    /// The enrolled security keys.
    #[must_use]
    pub fn enrolled_keys(&self) -> &[EnrolledKey] {
        &self.index.keys
    }

    /// Records an enrolled security key. A sealing key comes with the vault's data key
    /// (which it wraps), which signs the new key list in the same write.
    pub fn add_key(
        &mut self,
        key: EnrolledKey,
        data_key: Option<&DataKey>,
    ) -> Result<(), VaultError> {
        let path = self.index_path();
        self.change_index(|index| {
            if index.keys.iter().any(|k| k.name == key.name) {
                return Err(VaultError::DuplicateKey { name: key.name });
            }
            if let Some(data_key) = data_key
                && index.keys_signed_by(data_key) == Some(false)
            {
                return Err(VaultError::KeyListChanged { path });
            }
            index.keys.push(key);
            match data_key {
                Some(data_key) => index.sign_keys(data_key),
                None if index.is_sealed() => return Err(VaultError::Sealed),
                None => {}
            }
            Ok(())
        })
    }

    /// Forgets the enrolled security key `name`: an approve-only key, or the last sealing
    /// key once every secret is unsealed (a sealing key among others goes by [`Vault::rekey`],
    /// which signs the new list).
    pub fn remove_key(&mut self, name: &str) -> Result<(), VaultError> {
        self.change_index(|index| {
            let position = index
                .keys
                .iter()
                .position(|k| k.name == name)
                .ok_or_else(|| VaultError::UnknownKey { name: name.into() })?;
            index.keys.remove(position);
            if !index.is_sealed() {
                index.keys_mac = None;
            }
            Ok(())
        })
    }

    /// Applies `change` to the freshly read index under the vault lock and saves it; if the
    /// change or the save fails, the index in memory is left as it was.
    fn change_index(
        &mut self,
        change: impl FnOnce(&mut Index) -> Result<(), VaultError>,
    ) -> Result<(), VaultError> {
        let _lock = VaultLock::acquire(&self.data_dir)?;
        self.reload()?;
        let before = self.index.clone();
        let result = change(&mut self.index).and_then(|()| self.save());
        if result.is_err() {
            self.index = before;
        }
        result
    }

    /// Profiles with long-term keys in the vault, sorted.
    pub fn credential_list(&self) -> impl Iterator<Item = (&str, &CredentialInfo)> {
        self.index.credential_list()
    }

    /// Stores long-term keys for `profile`; `replace` allows rotating existing ones.
    pub fn add_credentials(
        &mut self,
        profile: &str,
        keys: &LongTermKeys,
        replace: bool,
    ) -> Result<(), VaultError> {
        let _lock = VaultLock::acquire(&self.data_dir)?;
        self.reload()?;
        if !replace && self.index.credentials.contains_key(profile) {
            return Err(VaultError::DuplicateCredentials {
                profile: profile.into(),
            });
        }
        let id = self.credential_id(profile);
        let stored = self.stored_form(&id, &keys.secret_access_key)?;
        self.store()?.put(
            &id,
            &format!("mfa-agent AWS keys for profile {profile}"),
            &stored,
        )?;
        let info = CredentialInfo {
            access_key_id: keys.access_key_id.clone(),
            added: unix_now(),
        };
        let previous = self.index.credentials.insert(profile.to_owned(), info);
        if let Err(e) = self.save() {
            // Only a brand-new entry can be rolled back; a replaced secret is already gone.
            if previous.is_none() {
                self.index.credentials.remove(profile);
                let _ = self.store()?.delete(&id);
            }
            return Err(e);
        }
        Ok(())
    }

    /// The long-term keys for `profile`, or `None` when the vault has none. Sealed like the
    /// seeds once a key is enrolled, and approved like them by an approve-only key.
    pub fn credentials(&mut self, profile: &str) -> Result<Option<LongTermKeys>, VaultError> {
        let Some(info) = self.index.credentials.get(profile).cloned() else {
            return Ok(None);
        };
        self.approve()?;
        let id = self.credential_id(profile);
        let stored = self.read_secret(&id, profile)?;
        let label = format!("mfa-agent AWS keys for profile {profile}");
        let secret = self.opened(&id, profile, stored, &label)?;
        Ok(Some(LongTermKeys {
            access_key_id: info.access_key_id,
            secret_access_key: secret,
        }))
    }

    pub fn remove_credentials(&mut self, profile: &str) -> Result<(), VaultError> {
        let unknown = || VaultError::UnknownCredentials {
            profile: profile.into(),
        };
        if !self.index.credentials.contains_key(profile) {
            return Err(unknown());
        }
        let id = self.credential_id(profile);
        self.remove_with_secret(&id, |index| {
            index
                .credentials
                .remove(profile)
                .map(drop)
                .ok_or_else(unknown)
        })
    }

    /// Removes an index entry (`change`) and then its secret `id`. The store is opened first
    /// (keyring unlocked, passphrase right), so a failure there changes nothing; a crash after
    /// the index is saved leaves at worst an unused secret behind.
    fn remove_with_secret(
        &mut self,
        id: &str,
        change: impl FnOnce(&mut Index) -> Result<(), VaultError>,
    ) -> Result<(), VaultError> {
        self.store()?.get(id)?;
        self.change_index(change)?;
        self.store()?.delete(id)
    }

    /// The secret under `id`, which the index says exists (for the seed or profile `name`).
    fn read_secret(&mut self, id: &str, name: &str) -> Result<SecretString, VaultError> {
        let store = self.index.store;
        self.store()?
            .get(id)?
            .ok_or_else(|| VaultError::SecretMissing {
                name: name.into(),
                store,
            })
    }

    fn secret_id(&self, name: &str) -> String {
        self.id_in(self.index.generation, name)
    }

    /// Profile names may hold any character, so their ids get a prefix seed names cannot.
    fn credential_id(&self, profile: &str) -> String {
        self.id_in(self.index.generation, &format!("aws-keys:{profile}"))
    }

    /// The store id of a secret in a generation; generation 0 has the ids of format 1, so
    /// a vault made before re-keying existed reads as it is.
    fn id_in(&self, generation: u32, key: &str) -> String {
        match generation {
            0 => format!("{}/{key}", self.index.vault_id),
            generation => format!("{}/g{generation}/{key}", self.index.vault_id),
        }
    }

    fn reload(&mut self) -> Result<(), VaultError> {
        if let Some(index) = Index::load(&self.index_path())? {
            self.index = index;
            self.exists = true;
        }
        Ok(())
    }

    /// Writes the index (under the vault lock), then deletes the secrets it no longer names.
    fn save(&mut self) -> Result<(), VaultError> {
        self.index.save(&self.index_path())?;
        self.exists = true;
        if !self.index.retired.is_empty() {
            self.delete_retired();
        }
        Ok(())
    }

    /// Deletes the secrets a re-keying replaced. A failure is logged and left for the next
    /// change: the vault works either way, but until then a removed key opens those copies.
    fn delete_retired(&mut self) {
        let retired = std::mem::take(&mut self.index.retired);
        if let Err(e) = self.store().and_then(|store| store.delete_all(&retired)) {
            tracing::warn!(
                "could not delete the secrets replaced by re-keying ({e}); the next change to the vault retries"
            );
            self.index.retired = retired;
            return;
        }
        if let Err(e) = self.index.save(&self.index_path()) {
            tracing::warn!(
                "could not record the deletion of replaced secrets ({e}); the next change to the vault retries"
            );
        }
    }

    fn index_path(&self) -> PathBuf {
        self.data_dir.join(INDEX_FILE)
    }

    fn store(&mut self) -> Result<&mut dyn SecretStore, VaultError> {
        if self.store.is_none() {
            let store: Box<dyn SecretStore> = match self.index.store {
                StoreKind::Keyring => Box::new(KeyringStore::connect()?),
                StoreKind::File => Box::new(FileStore::new(
                    self.data_dir.join(SECRETS_FILE),
                    self.passphrase
                        .take()
                        .expect("the passphrase source is used once"),
                )),
            };
            tracing::debug!(store = %store.describe(), "secret store ready");
            self.store = Some(store);
        }
        Ok(self.store.as_deref_mut().expect("set above"))
    }
}

/// Refuses `requested` when the vault in `data_dir` keeps its secrets in another store: a
/// vault never switches stores silently. Reads only the (non-secret) index.
/// Restores a damaged seed index from the copy kept before its last change; the damaged
/// file is kept beside it. Says what was restored.
pub fn recover_index(data_dir: &Path) -> Result<String, VaultError> {
    let _lock = VaultLock::acquire(data_dir)?;
    let path = data_dir.join(INDEX_FILE);
    match Index::load(&path) {
        Ok(_) => {
            return Ok(format!(
                "the seed index {} is sound; nothing to recover",
                path.display()
            ));
        }
        Err(VaultError::CorruptIndex { .. }) => {}
        Err(e) => return Err(e),
    }
    let backup = index::backup_path(&path);
    let Some(restored) = Index::load(&backup)? else {
        return Err(VaultError::NoIndexBackup { path });
    };
    let damaged = data_dir.join(format!("{INDEX_FILE}.damaged-{}", unix_now()));
    std::fs::rename(&path, &damaged).map_err(|source| VaultError::Io {
        action: "move away",
        path: path.clone(),
        source,
    })?;
    restored.save(&path)?;
    Ok(format!(
        "restored the seed index from {}: {} seed(s), {} profile(s) with keys, {} security key(s); the last change before the damage may need doing again; the damaged file is {}",
        backup.display(),
        restored.seeds.len(),
        restored.credentials.len(),
        restored.keys.len(),
        damaged.display()
    ))
}

/// The seed linked to the MFA device `serial`, if exactly one is.
#[must_use]
pub fn seed_for_serial<'a>(
    index: impl Iterator<Item = (&'a str, &'a SeedInfo)>,
    serial: &str,
) -> Vec<&'a str> {
    index
        .filter(|(_, info)| info.serial.as_deref() == Some(serial))
        .map(|(name, _)| name)
        .collect()
}

/// Seed names appear in commands, config files and keyring labels: keep them plain.
pub fn validate_name(name: &str) -> Result<(), VaultError> {
    Ok(mfa_agent_client::vault_rules::validate_name(name)?)
}

/// Accepts `arn:PARTITION:iam::ACCOUNT:mfa/PATH/NAME`, as IAM shows for virtual MFA devices.
pub fn validate_serial(serial: &str) -> Result<(), VaultError> {
    let bad = || VaultError::BadSerial {
        serial: serial.into(),
    };
    let mut parts = serial.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(bad());
    };
    let device = resource.strip_prefix("mfa/").ok_or_else(bad)?;
    let device_ok = !device.is_empty()
        && device.len() <= 512
        && device
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c));
    if partition.starts_with("aws")
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && device_ok
    {
        Ok(())
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out the data key, counting the touches it stands for.
    struct Counting(DataKey, std::rc::Rc<std::cell::Cell<u32>>);
    impl Unlocker for Counting {
        fn unseal(&mut self, _: &[EnrolledKey]) -> Result<DataKey, VaultError> {
            self.1.set(self.1.get() + 1);
            Ok(self.0.clone())
        }
        fn approve(&mut self, _: &[EnrolledKey]) -> Result<(), VaultError> {
            unreachable!("no key here only approves")
        }
    }

    /// What `key enroll` leaves when it is killed after recording the key, before sealing.
    #[test]
    fn a_secret_left_unsealed_by_an_interrupted_enrolment_needs_the_key_and_is_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let passphrase = || -> PassphraseSource {
            Box::new(|_| Ok(SecretString::new("correct horse battery".into())))
        };
        let mut vault = Vault::open(dir.path(), Some(StoreKind::File), passphrase()).unwrap();
        let seed =
            Seed::from_secret(otp::decode_base32("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").unwrap())
                .unwrap();
        vault.add("work", &seed, None).unwrap();
        let data_key = DataKey::generate();
        vault
            .add_key(
                EnrolledKey {
                    name: "main".into(),
                    kind: KeyKind::Seal,
                    credential_id: vec![1],
                    public_key: vec![2],
                    rp_id: "mfa-agent".into(),
                    salt: vec![0; 32],
                    uses_pin: false,
                    pin_protocol: 2,
                    wrapped_data_key: vec![3],
                    recipient: None,
                    added: 0,
                    touch_gated: Some(true),
                    cred_protect: None,
                },
                Some(&data_key),
            )
            .unwrap();

        let touches = std::rc::Rc::new(std::cell::Cell::new(0));
        let mut reopened = Vault::open(dir.path(), None, passphrase())
            .unwrap()
            .with_unlocker(Box::new(Counting(data_key.clone(), touches.clone())));
        reopened.seed("work").unwrap();
        assert_eq!(
            touches.get(),
            1,
            "a sealed vault hands out nothing without the key"
        );
        let id = reopened.secret_id("work");
        let stored = reopened.store().unwrap().get(&id).unwrap().unwrap();
        assert!(
            stored.expose().starts_with(SEALED_PREFIX),
            "sealed where it lay"
        );

        // Without a way to ask for a touch, it does not open at all.
        let mut locked = Vault::open(dir.path(), None, passphrase()).unwrap();
        assert!(matches!(locked.seed("work"), Err(VaultError::Sealed)));
    }

    #[test]
    fn serials() {
        for good in [
            "arn:aws:iam::123456789012:mfa/alice",
            "arn:aws-us-gov:iam::123456789012:mfa/team/bob.smith@corp",
        ] {
            assert!(validate_serial(good).is_ok(), "{good}");
        }
        for bad in [
            "GAHT12345678",
            "arn:aws:iam::12345:mfa/alice",
            "arn:aws:iam::123456789012:user/alice",
            "arn:aws:sts::123456789012:mfa/alice",
            "arn:aws:iam::123456789012:mfa/",
        ] {
            assert!(validate_serial(bad).is_err(), "{bad}");
        }
    }
}
