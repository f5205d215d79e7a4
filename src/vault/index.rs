//! The non-secret index of seeds: names, parameters, labels, serials, and which store holds
//! the secrets. Kept as JSON under `XDG_DATA_HOME/mfa-agent/`, written atomically.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::VaultError;
use crate::atomic;
use crate::keys::seal::{DataKey, SealError};
use crate::otp::OtpParams;
use crate::protocol::{ListedSeed, StoreKind};
use crate::secret::SecretBytes;

/// 2: keys may wrap the data key to a public half (`recipient`), and secrets live under a
/// generation that changes when a key's removal re-keys the vault. Version 1 indexes read
/// as they are; an older mfa-agent refuses a version 2 index rather than misread it.
const FORMAT_VERSION: u32 = 2;

/// What the index knows about one seed. Nothing here is secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedInfo {
    #[serde(flatten)]
    pub params: OtpParams,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The AWS MFA device this seed belongs to (`arn:aws:iam::ACCOUNT:mfa/NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// Unix time the seed was added.
    pub added: u64,
}

impl SeedInfo {
    /// What `seed list` shows of the seed named `name`.
    #[must_use]
    pub fn listed_as(&self, name: &str) -> ListedSeed {
        ListedSeed {
            name: name.to_owned(),
            algorithm: self.params.algorithm.to_string(),
            digits: self.params.digits,
            period: self.params.period,
            issuer: self.issuer.clone(),
            account: self.account.clone(),
            serial: self.serial.clone(),
            added: self.added,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Index {
    pub version: u32,
    /// Where the secrets live. Fixed when the vault is created so that a keyring that is
    /// briefly unreachable never makes mfa-agent quietly switch stores.
    pub store: StoreKind,
    /// Random id that scopes keyring entries to this vault, so two vaults (say, two test
    /// homes, or two XDG_DATA_HOMEs) never see each other's secrets.
    pub vault_id: String,
    #[serde(default)]
    pub seeds: BTreeMap<String, SeedInfo>,
    /// Long-term AWS keys kept in the vault, by profile name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub credentials: BTreeMap<String, CredentialInfo>,
    /// Enrolled security keys, each wrapping the vault's data key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<EnrolledKey>,
    /// A MAC over `keys` (and the vault's id) under the data key, while a key seals the
    /// vault: a key entry added, changed or removed behind the agent's back, or the list
    /// dropped to make new secrets be stored unsealed, is refused when the data key is next
    /// opened. Written by vaults sealed before it existed at their next unlock.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "base64_option"
    )]
    pub keys_mac: Option<Vec<u8>>,
    /// Bumped each time the vault is re-keyed: secrets of generation N live under ids of
    /// their own, so a re-keying writes new ones beside the old and an interruption leaves
    /// the old set whole.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: u32,
    /// Store ids of secrets a re-keying replaced (sealed under a data key a removed key
    /// still opens), deleted right after the index that drops them is written, or by the
    /// next change if that was interrupted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<String>,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What an enrolled key does for the vault.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyKind {
    /// A FIDO2 key with hmac-secret: it seals the seeds, and its touch approves.
    #[default]
    Seal,
    /// A U2F-only key: its touch (a signed U2F authentication) approves; it cannot seal.
    Approve,
}

/// An enrolled security key. Nothing here is secret: the data key is wrapped under a key
/// only the security key can produce (its hmac-secret output for `salt`). For a U2F key,
/// `credential_id` is its key handle and `public_key` the registered P-256 point; it wraps
/// nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolledKey {
    pub name: String,
    #[serde(default)]
    pub kind: KeyKind,
    #[serde(with = "base64_bytes")]
    pub credential_id: Vec<u8>,
    /// ES256 public key, DER, to check every assertion's signature.
    #[serde(with = "base64_bytes")]
    pub public_key: Vec<u8>,
    pub rp_id: String,
    #[serde(with = "base64_bytes")]
    pub salt: Vec<u8>,
    /// Whether the PIN is part of unlocking (hmac-secret answers differently with it).
    pub uses_pin: bool,
    pub pin_protocol: u8,
    /// The data key, wrapped for this key: under a KEK from its hmac-secret output
    /// (format 1), or to `recipient` when that is set.
    #[serde(with = "base64_bytes")]
    pub wrapped_data_key: Vec<u8>,
    /// The X25519 public half of this key's hmac-secret output (see `keys::seal`): a new
    /// data key can be wrapped to it without a touch. `None` for keys enrolled by an
    /// mfa-agent before vault format 2, and for U2F keys.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "base64_option"
    )]
    pub recipient: Option<Vec<u8>>,
    pub added: u64,
    /// Whether the key refused, at enrolment, to give hmac-secret without a touch (`None`:
    /// not asked, or a U2F key). Where it gives it, a touch-only seal protects the vault at
    /// rest but not against a program of the user's asking the key itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub touch_gated: Option<bool>,
    /// The credProtect level the key confirmed at enrolment (3: it refuses any use of the
    /// credential without the PIN), if it took the extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cred_protect: Option<u8>,
}

impl EnrolledKey {
    /// What this key guarantees, in a phrase for `key list` and doctor; `Some(fix)` when the
    /// user should do something about it.
    #[must_use]
    pub fn guarantee(&self) -> (&'static str, Option<&'static str>) {
        match (self.kind, self.uses_pin, self.touch_gated) {
            (KeyKind::Approve, ..) => ("approves each use with a touch (U2F); cannot seal", None),
            (KeyKind::Seal, true, _) if self.cred_protect == Some(3) => (
                "seals; opens with a touch and the PIN, and the key refuses any use of it without the PIN (credProtect)",
                None,
            ),
            (KeyKind::Seal, true, _) => ("seals; opens with a touch and the PIN", None),
            (KeyKind::Seal, false, Some(true)) => ("seals; opens only with a touch", None),
            (KeyKind::Seal, false, Some(false)) => (
                "seals at rest, but this key gives its sealing secret without a touch to any program of yours that asks",
                Some("enrol it again with --pin: the PIN protects against that"),
            ),
            (KeyKind::Seal, false, None) => (
                "seals; whether it opens without a touch was not checked (enrolled by an older mfa-agent)",
                Some("enrol it again to check, or with --pin"),
            ),
        }
    }
}

impl EnrolledKey {
    /// The data key this key wraps, given its hmac-secret output.
    pub fn unwrap_data_key(&self, hmac_output: &SecretBytes) -> Result<DataKey, SealError> {
        if self.recipient.is_some() {
            DataKey::unwrap_from(&self.wrapped_data_key, hmac_output, &self.credential_id)
        } else {
            DataKey::unwrap(&self.wrapped_data_key, hmac_output, &self.credential_id)
        }
    }
}

/// Optional binary fields, the same way.
mod base64_option {
    use serde::{Deserialize, Deserializer, Serializer};

    #[allow(clippy::ref_option)] // serde's `with` passes a reference to the field
    pub(super) fn serialize<S: Serializer>(
        bytes: &Option<Vec<u8>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => super::base64_bytes::serialize(bytes, s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        struct Wrapped(Vec<u8>);
        impl<'de> Deserialize<'de> for Wrapped {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                super::base64_bytes::deserialize(d).map(Wrapped)
            }
        }
        Ok(Option::<Wrapped>::deserialize(d)?.map(|w| w.0))
    }
}

/// Binary fields as standard base64 strings in the JSON index.
mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        STANDARD
            .decode(String::deserialize(d)?)
            .map_err(serde::de::Error::custom)
    }
}

/// What the index knows about one profile's long-term keys: the access key id is an
/// identifier, not a secret; the secret access key is in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialInfo {
    pub access_key_id: String,
    pub added: u64,
}

/// HKDF info of the key-list MAC's key.
const KEYS_MAC_PURPOSE: &[u8] = b"mfa-agent key list v1";

impl Index {
    /// What the key-list MAC covers: the vault's id and its keys, as stored.
    fn keys_message(&self) -> Vec<u8> {
        let mut message = self.vault_id.as_bytes().to_vec();
        message.push(0);
        message.extend(serde_json::to_vec(&self.keys).expect("keys serialise"));
        message
    }

    /// The seeds, by name.
    pub fn seed_list(&self) -> impl Iterator<Item = (&str, &SeedInfo)> {
        self.seeds.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The profiles whose long-term keys the vault keeps.
    pub fn credential_list(&self) -> impl Iterator<Item = (&str, &CredentialInfo)> {
        self.credentials.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Whether any enrolled key seals the vault (the key list is then authenticated).
    #[must_use]
    pub fn is_sealed(&self) -> bool {
        self.keys.iter().any(|k| k.kind == KeyKind::Seal)
    }

    /// Signs the key list with `data_key` (or drops the MAC once no key seals the vault).
    pub fn sign_keys(&mut self, data_key: &DataKey) {
        self.keys_mac = self
            .is_sealed()
            .then(|| data_key.authenticate(KEYS_MAC_PURPOSE, &self.keys_message()));
    }

    /// Whether `data_key` signed this key list: `Some(true)` yes, `Some(false)` no (it was
    /// changed behind the agent's back), `None` when there is nothing to check (no sealing
    /// key) or no MAC yet (a vault sealed before there was one: sign it now).
    #[must_use]
    pub fn keys_signed_by(&self, data_key: &DataKey) -> Option<bool> {
        if !self.is_sealed() {
            return None;
        }
        let tag = self.keys_mac.as_ref()?;
        Some(data_key.verify(KEYS_MAC_PURPOSE, &self.keys_message(), tag))
    }

    #[must_use]
    pub fn new(store: StoreKind) -> Self {
        let id: [u8; 8] = crate::random::bytes();
        let vault_id = id.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        });
        Self {
            version: FORMAT_VERSION,
            store,
            vault_id,
            seeds: BTreeMap::new(),
            credentials: BTreeMap::new(),
            keys: Vec::new(),
            keys_mac: None,
            generation: 0,
            retired: Vec::new(),
        }
    }

    /// Reads the index, or `None` when no vault exists yet.
    pub fn load(path: &Path) -> Result<Option<Self>, VaultError> {
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let text = match fs::read(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(VaultError::Io {
                    action: "read",
                    path: path.into(),
                    source,
                });
            }
        };
        let corrupt = |e: serde_json::Error| VaultError::CorruptIndex {
            path: path.into(),
            detail: e.to_string(),
        };
        let Version { version } = serde_json::from_slice(&text).map_err(corrupt)?;
        if version > FORMAT_VERSION {
            return Err(VaultError::NewerIndex {
                path: path.into(),
                version,
            });
        }
        serde_json::from_slice(&text).map(Some).map_err(corrupt)
    }

    /// Writes the index atomically, keeping the version it replaces (if sound) in
    /// [`backup_path`]: a damaged index can be restored from it (`seed recover`).
    pub fn save(&self, path: &Path) -> Result<(), VaultError> {
        let io_err = |action, path: &Path| {
            let path = path.to_path_buf();
            move |source| VaultError::Io {
                action,
                path,
                source,
            }
        };
        if let Ok(current) = fs::read(path)
            && serde_json::from_slice::<Self>(&current).is_ok()
        {
            let backup = backup_path(path);
            atomic::write_private(&backup, &current).map_err(io_err("write", &backup))?;
        }
        let current = Self {
            version: FORMAT_VERSION,
            ..self.clone()
        };
        let mut text = serde_json::to_vec_pretty(&current).expect("the index always serialises");
        text.push(b'\n');
        atomic::write_private(path, &text).map_err(io_err("write", path))
    }
}

/// Where the version of the index before its last change is kept.
#[must_use]
pub(super) fn backup_path(index: &Path) -> PathBuf {
    let mut name = index.file_name().unwrap_or_default().to_os_string();
    name.push(".bak");
    index.with_file_name(name)
}

/// An exclusive lock on the vault, held while an index change is read, made and written,
/// so two commands adding seeds at once cannot lose one of them. Re-entrant on one thread:
/// a change that needs another on the way (the key list signed at the first unlock, in the
/// middle of adding a seed) takes it again without waiting for itself.
pub(super) struct VaultLock {
    _file: Option<File>,
    dir: Option<PathBuf>,
}

thread_local! {
    /// The vault directories this thread holds the lock of.
    static HELD: std::cell::RefCell<std::collections::HashSet<PathBuf>> =
        std::cell::RefCell::default();
}

impl Drop for VaultLock {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            HELD.with(|held| held.borrow_mut().remove(&dir));
        }
    }
}

impl VaultLock {
    pub(super) fn acquire(dir: &Path) -> Result<Self, VaultError> {
        if HELD.with(|held| held.borrow().contains(dir)) {
            return Ok(Self {
                _file: None,
                dir: None,
            });
        }
        let path: PathBuf = dir.join(".lock");
        let io_err = |action, source| VaultError::Io {
            action,
            path: path.clone(),
            source,
        };
        atomic::ensure_private_dir(dir).map_err(|e| io_err("create the directory of", e))?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io_err("open", e))?;
        file.lock().map_err(|e| io_err("lock", e))?;
        HELD.with(|held| held.borrow_mut().insert(dir.to_owned()));
        Ok(Self {
            _file: Some(file),
            dir: Some(dir.to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seeds.json");
        assert!(Index::load(&path).unwrap().is_none());
        let mut index = Index::new(StoreKind::File);
        index.seeds.insert(
            "work".into(),
            SeedInfo {
                params: OtpParams::default(),
                issuer: Some("Amazon Web Services".into()),
                account: None,
                serial: Some("arn:aws:iam::123456789012:mfa/alice".into()),
                added: 1,
            },
        );
        index.save(&path).unwrap();
        let loaded = Index::load(&path).unwrap().unwrap();
        assert_eq!(loaded.seeds, index.seeds);
        assert_eq!(loaded.vault_id, index.vault_id);

        fs::write(&path, "{\"version\": 1, \"store\": ").unwrap();
        assert!(matches!(
            Index::load(&path),
            Err(VaultError::CorruptIndex { .. })
        ));
        fs::write(&path, "{\"version\": 99}").unwrap();
        assert!(matches!(
            Index::load(&path),
            Err(VaultError::NewerIndex { version: 99, .. })
        ));
    }
}
