//! Removing a security key re-keys the vault: what that promises, checked with software
//! keys and a store in memory (the file store's scrypt would make each write take a second;
//! the micro-VM checks the same over real HID with the file store).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use super::*;
use crate::keys::soft::SoftKeys;
use crate::keys::unlock::{self, Prompter};

const SEED: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// Says nothing and has no PIN: these keys are touch-only.
struct Quiet;

impl Prompter for Quiet {
    fn tell(&self, _: &str) {}
    fn pin(&self, _: &EnrolledKey, _: &str) -> Result<SecretString, VaultError> {
        Err(crate::keys::KeyError::PinRequired.into())
    }
}

/// Secrets by id, shared by every vault a test opens.
#[derive(Clone, Default)]
struct Memory(Rc<RefCell<BTreeMap<String, String>>>);

impl SecretStore for Memory {
    fn kind(&self) -> StoreKind {
        StoreKind::File
    }
    fn describe(&self) -> String {
        "memory".into()
    }
    fn put(&mut self, id: &str, _: &str, secret: &SecretString) -> Result<(), VaultError> {
        self.0
            .borrow_mut()
            .insert(id.into(), secret.expose().into());
        Ok(())
    }
    fn get(&mut self, id: &str) -> Result<Option<SecretString>, VaultError> {
        Ok(self.0.borrow().get(id).cloned().map(SecretString::new))
    }
    fn delete(&mut self, id: &str) -> Result<(), VaultError> {
        self.0.borrow_mut().remove(id);
        Ok(())
    }
}

fn passphrase() -> PassphraseSource {
    Box::new(|_| Ok(SecretString::new("correct horse battery".into())))
}

/// The plugged-in soft keys, unsealing the vault as the agent's keys do.
struct SoftUnlocker(Rc<SoftKeys>);

impl Unlocker for SoftUnlocker {
    fn unseal(&mut self, sealing: &[EnrolledKey]) -> Result<DataKey, VaultError> {
        unlock::unlock_with(&*self.0, sealing, &Quiet, "open", None)
    }
    fn approve(&mut self, _: &[EnrolledKey]) -> Result<(), VaultError> {
        unreachable!("these tests enrol no approve-only key")
    }
}

/// A vault opened the way the agent opens it: the plugged-in soft keys unseal it.
fn open_with(dir: &Path, keys: &Rc<SoftKeys>) -> Vault {
    let mut vault = Vault::open(dir, None, passphrase())
        .unwrap()
        .with_unlocker(Box::new(SoftUnlocker(keys.clone())));
    vault.store = Some(Box::new(memory(dir)));
    vault
}

thread_local! {
    /// One store per test directory (tests run on threads of their own).
    static STORES: RefCell<BTreeMap<PathBuf, Memory>> = RefCell::default();
}

fn memory(dir: &Path) -> Memory {
    STORES.with(|stores| stores.borrow_mut().entry(dir.into()).or_default().clone())
}

/// A file-store vault holding seed `work` and keys for profile `base`, sealed by `main`
/// and `backup` (format 2) and `old` (enrolled before public halves were kept).
fn sealed_vault(dir: &Path) -> (Rc<SoftKeys>, Vault) {
    let keys = Rc::new(SoftKeys::default());
    for path in ["/dev/main", "/dev/backup", "/dev/old"] {
        keys.plug(path, None);
    }
    let mut vault = Vault::open(dir, Some(StoreKind::File), passphrase()).unwrap();
    vault.store = Some(Box::new(memory(dir)));
    let seed = Seed::from_secret(otp::decode_base32(SEED).unwrap()).unwrap();
    vault.add("work", &seed, None).unwrap();
    let creds = LongTermKeys {
        access_key_id: "AKIAEXAMPLE".into(),
        secret_access_key: SecretString::new("long-term-secret-key".into()),
    };
    vault.add_credentials("base", &creds, false).unwrap();
    let data_key = DataKey::generate();
    vault
        .add_key(
            keys.enroll("/dev/main", "main", &data_key, false),
            Some(&data_key),
        )
        .unwrap();
    vault
        .add_key(
            keys.enroll("/dev/backup", "backup", &data_key, false),
            Some(&data_key),
        )
        .unwrap();
    vault
        .add_key(
            keys.enroll_v1("/dev/old", "old", &data_key, false),
            Some(&data_key),
        )
        .unwrap();
    vault.set_data_key(data_key).unwrap();
    assert_eq!(vault.reseal_all(true).unwrap(), 2);
    (keys, vault)
}

fn remaining(vault: &Vault, without: &str) -> Vec<EnrolledKey> {
    vault
        .enrolled_keys()
        .iter()
        .filter(|k| k.name != without)
        .cloned()
        .collect()
}

fn stored(vault: &mut Vault, id: &str) -> Option<SecretString> {
    vault.store().unwrap().get(id).unwrap()
}

#[test]
fn a_removed_key_with_an_old_copy_of_the_index_opens_nothing_current() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, mut vault) = sealed_vault(dir.path());
    let old_index = std::fs::read(dir.path().join(INDEX_FILE)).unwrap();
    let old_id = vault.secret_id("work");
    let old_sealed = stored(&mut vault, &old_id).unwrap();

    // Remove `backup`: one touch opens the data key in use (main, the first enrolled);
    // `main` takes the new one with no further touch; `old` kept no public half and is
    // asked once.
    let touches_before = ["/dev/main", "/dev/backup", "/dev/old"].map(|p| keys.touches(p));
    let plan =
        unlock::plan_rekey_with(&*keys, &remaining(&vault, "backup"), None, &Quiet, "re-key")
            .unwrap();
    let touches = ["/dev/main", "/dev/backup", "/dev/old"]
        .map(|p| keys.touches(p))
        .iter()
        .zip(touches_before)
        .map(|(after, before)| after - before)
        .collect::<Vec<_>>();
    assert_eq!(touches, [1, 0, 1], "main to open, old for its public half");
    assert_eq!(vault.rekey(plan.old, &plan.new, plan.keys).unwrap(), 2);

    // The index names the two remaining keys, each with its public half now.
    let names: Vec<_> = vault
        .enrolled_keys()
        .iter()
        .map(|k| k.name.as_str())
        .collect();
    assert_eq!(names, ["main", "old"]);
    assert!(vault.enrolled_keys().iter().all(|k| k.recipient.is_some()));
    assert_eq!(vault.index.generation, 1);
    assert!(vault.index.retired.is_empty(), "old copies deleted");
    assert!(
        stored(&mut vault, &old_id).is_none(),
        "the old sealed seed is gone"
    );

    // The attack: the removed key's answer unwraps the data key from the old index...
    let old: Index = serde_json::from_slice(&old_index).unwrap();
    let backup = old.keys.iter().find(|k| k.name == "backup").unwrap();
    let answer =
        unlock::answer_with(&*keys, std::slice::from_ref(backup), &Quiet, "attack", None).unwrap();
    let stolen = answer.data_key;
    assert!(stolen.open(&old_id, &sealed_bytes(&old_sealed)).is_ok());
    // ...which opens no current secret.
    let new_id = vault.secret_id("work");
    assert_ne!(new_id, old_id);
    let current = stored(&mut vault, &new_id).unwrap();
    assert_eq!(
        stolen.open(&new_id, &sealed_bytes(&current)).unwrap_err(),
        crate::keys::seal::SealError::Tampered
    );
    // Putting the old index back gets nothing either: its secrets were deleted.
    std::fs::write(dir.path().join(INDEX_FILE), &old_index).unwrap();
    let mut restored = open_with(dir.path(), &keys);
    assert!(matches!(
        restored.seed("work"),
        Err(VaultError::SecretMissing { .. })
    ));
    vault.index.save(&dir.path().join(INDEX_FILE)).unwrap();

    // Each remaining key opens the re-keyed vault: `main` (asked first)...
    let mut reopened = open_with(dir.path(), &keys);
    assert_eq!(
        otp::encode_base32(&reopened.seed("work").unwrap().secret).expose(),
        SEED
    );
    // ...and `old` alone, seeds and long-term keys.
    keys.unplug("/dev/main");
    let mut reopened = open_with(dir.path(), &keys);
    assert_eq!(
        otp::encode_base32(&reopened.seed("work").unwrap().secret).expose(),
        SEED
    );
    let creds = reopened.credentials("base").unwrap().unwrap();
    assert_eq!(creds.secret_access_key.expose(), "long-term-secret-key");
}

/// The stored form `sealed:v1:BASE64` as bytes.
fn sealed_bytes(stored: &SecretString) -> Vec<u8> {
    BASE64
        .decode(stored.expose().strip_prefix(SEALED_PREFIX).unwrap())
        .unwrap()
}

#[test]
fn a_second_removal_needs_one_touch_in_all() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, mut vault) = sealed_vault(dir.path());
    let plan =
        unlock::plan_rekey_with(&*keys, &remaining(&vault, "backup"), None, &Quiet, "re-key")
            .unwrap();
    vault.rekey(plan.old, &plan.new, plan.keys).unwrap();
    // Now every key has its public half: removing `main` takes one touch (of `main`, the
    // first enrolled, still plugged in), and `old` is not asked.
    let before = (keys.touches("/dev/main"), keys.touches("/dev/old"));
    let plan = unlock::plan_rekey_with(&*keys, &remaining(&vault, "main"), None, &Quiet, "re-key")
        .unwrap();
    // With the data key unlocked already (touch = "unlock"), none at all.
    let held = unlock::plan_rekey_with(
        &*keys,
        &remaining(&vault, "main"),
        Some(plan.old.clone()),
        &Quiet,
        "re-key",
    )
    .unwrap();
    drop(held);
    assert_eq!(
        (
            keys.touches("/dev/main") - before.0,
            keys.touches("/dev/old") - before.1
        ),
        (0, 1),
        "`old` is the only remaining key, so it is the one that opens"
    );
    vault.rekey(plan.old, &plan.new, plan.keys).unwrap();
    assert_eq!(vault.index.generation, 2);
    keys.unplug("/dev/main");
    let mut reopened = open_with(dir.path(), &keys);
    assert_eq!(
        otp::encode_base32(&reopened.seed("work").unwrap().secret).expose(),
        SEED
    );
}

#[test]
fn an_interrupted_rekeying_leaves_the_vault_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, mut vault) = sealed_vault(dir.path());
    // A second seed whose secret has gone missing from the store: copying it fails after
    // `work` (sorted first) was written under the new generation.
    let seed = Seed::from_secret(otp::decode_base32(SEED).unwrap()).unwrap();
    vault.add("zz-lost", &seed, None).unwrap();
    let lost = vault.secret_id("zz-lost");
    vault.store().unwrap().delete(&lost).unwrap();
    let index_before = std::fs::read(dir.path().join(INDEX_FILE)).unwrap();

    let plan =
        unlock::plan_rekey_with(&*keys, &remaining(&vault, "backup"), None, &Quiet, "re-key")
            .unwrap();
    let err = vault.rekey(plan.old, &plan.new, plan.keys).unwrap_err();
    assert!(matches!(err, VaultError::SecretMissing { .. }), "{err}");
    assert_eq!(
        std::fs::read(dir.path().join(INDEX_FILE)).unwrap(),
        index_before,
        "the index is untouched"
    );
    assert_eq!(vault.enrolled_keys().len(), 3);
    let written = vault.id_in(1, "work");
    assert!(
        stored(&mut vault, &written).is_none(),
        "what was written under the new generation is rolled back"
    );
    let mut reopened = open_with(dir.path(), &keys);
    reopened.seed("work").unwrap();
}

#[test]
fn copies_left_by_an_interruption_after_the_switch_go_with_the_next_change() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, mut vault) = sealed_vault(dir.path());
    let old_id = vault.secret_id("work");
    let old_sealed = stored(&mut vault, &old_id).unwrap();
    let plan =
        unlock::plan_rekey_with(&*keys, &remaining(&vault, "backup"), None, &Quiet, "re-key")
            .unwrap();
    vault.rekey(plan.old, &plan.new, plan.keys).unwrap();
    // As if killed right after the index switched: the old copy is still there, and the
    // index lists it as retired.
    vault
        .store()
        .unwrap()
        .put(&old_id, "x", &old_sealed)
        .unwrap();
    let mut index = Index::load(&dir.path().join(INDEX_FILE)).unwrap().unwrap();
    index.retired = vec![old_id.clone()];
    index.save(&dir.path().join(INDEX_FILE)).unwrap();

    let mut next = open_with(dir.path(), &keys);
    next.link("work", "arn:aws:iam::123456789012:mfa/alice")
        .unwrap();
    assert!(stored(&mut next, &old_id).is_none());
    let index = Index::load(&dir.path().join(INDEX_FILE)).unwrap().unwrap();
    assert!(index.retired.is_empty());
}

/// The index as a JSON value, changed by `change`, written back as another program would.
fn edit_index(dir: &Path, change: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join(INDEX_FILE);
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    change(&mut index);
    std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
}

/// A key entry added to the index behind the agent's back (an attacker's recipient, from a
/// program of the user or a synced copy) is refused when the data key is next opened: the
/// vault opens nothing, and a re-key never wraps the data key to it.
#[test]
fn a_key_entry_added_behind_the_agents_back_is_refused_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, vault) = sealed_vault(dir.path());
    let mut intruder = vault.enrolled_keys()[0].clone();
    intruder.name = "intruder".into();
    intruder.recipient = Some(crate::keys::seal::recipient_of(
        &crate::secret::SecretBytes::new(vec![7; 32]),
    ));
    edit_index(dir.path(), |index| {
        let entry = serde_json::to_value(&intruder).unwrap();
        index["keys"].as_array_mut().unwrap().push(entry);
    });
    let mut opened = open_with(dir.path(), &keys);
    let err = opened.seed("work").unwrap_err();
    assert!(matches!(err, VaultError::KeyListChanged { .. }), "{err}");
    assert!(err.to_string().contains("outside mfa-agent"), "{err}");
    // Nor does a re-key (removing `backup`) hand the new data key to the intruder.
    let mut vault = open_with(dir.path(), &keys);
    let plan =
        unlock::plan_rekey_with(&*keys, &remaining(&vault, "backup"), None, &Quiet, "re-key")
            .unwrap();
    let err = vault.rekey(plan.old, &plan.new, plan.keys).unwrap_err();
    assert!(matches!(err, VaultError::KeyListChanged { .. }), "{err}");
    // A held data key (an unlock) is checked too.
    let mut held = open_with(dir.path(), &keys);
    let key =
        unlock::unlock_with(&*keys, &remaining(&held, "intruder"), &Quiet, "open", None).unwrap();
    assert!(matches!(
        held.set_data_key(key),
        Err(VaultError::KeyListChanged { .. })
    ));
}

/// Dropping the key list from the index would make the vault look unsealed, and the next
/// secret be stored in the clear: refused instead.
#[test]
fn a_key_list_dropped_from_the_index_stores_nothing_unsealed() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, _) = sealed_vault(dir.path());
    let seed = Seed::from_secret(otp::decode_base32(SEED).unwrap()).unwrap();
    for change in [
        // The keys alone: the MAC is left, which only a sealed vault has.
        |index: &mut serde_json::Value| {
            index.as_object_mut().unwrap().remove("keys");
        },
        // Keys and MAC: the sealed secrets in the store give it away.
        |index: &mut serde_json::Value| {
            let index = index.as_object_mut().unwrap();
            index.remove("keys");
            index.remove("keys_mac");
        },
    ] {
        let copy = tempfile::tempdir().unwrap();
        std::fs::copy(dir.path().join(INDEX_FILE), copy.path().join(INDEX_FILE)).unwrap();
        STORES.with(|stores| {
            let shared = stores.borrow()[dir.path()].0.borrow().clone();
            *memory(copy.path()).0.borrow_mut() = shared;
        });
        edit_index(copy.path(), change);
        let mut vault = open_with(copy.path(), &keys);
        let err = vault.add("new", &seed, None).unwrap_err();
        assert!(matches!(err, VaultError::KeyListChanged { .. }), "{err}");
        let plain = memory(copy.path())
            .0
            .borrow()
            .values()
            .any(|stored| !stored.starts_with(SEALED_PREFIX));
        assert!(!plain, "nothing was stored unsealed");
    }
}

/// A vault sealed before key lists were signed is signed at its next unlock, and refuses
/// a changed list from then on.
#[test]
fn a_vault_sealed_before_key_lists_were_signed_is_signed_at_its_next_unlock() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, _) = sealed_vault(dir.path());
    edit_index(dir.path(), |index| {
        index.as_object_mut().unwrap().remove("keys_mac");
    });
    // Its first unlock may come in the middle of a change of the index (a seed added).
    let mut vault = open_with(dir.path(), &keys);
    let seed = Seed::from_secret(otp::decode_base32(SEED).unwrap()).unwrap();
    vault.add("second", &seed, None).unwrap();
    assert_eq!(
        otp::encode_base32(&vault.seed("work").unwrap().secret).expose(),
        SEED
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(INDEX_FILE)).unwrap()).unwrap();
    assert!(index["keys_mac"].is_string(), "signed: {index}");
    edit_index(dir.path(), |index| {
        index["keys"][1]["name"] = serde_json::Value::String("renamed".into());
    });
    let mut changed = open_with(dir.path(), &keys);
    assert!(matches!(
        changed.seed("work"),
        Err(VaultError::KeyListChanged { .. })
    ));
}
