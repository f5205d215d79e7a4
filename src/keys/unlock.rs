//! Opening the vault's data key with whichever enrolled security key is plugged in: one
//! touch (and the PIN, if the key was enrolled with one). Used by the CLI and the agent.

use std::time::{Duration, Instant};

use super::ctap1;
use super::fido::{self, Credential};
use super::seal::{self, DataKey};
use super::{Authenticators, Hid, KeyError};
use crate::protocol::{Capability, KeyDevice};
use crate::secret::{SecretBytes, SecretString};
use crate::vault::{EnrolledKey, KeyKind, Unlocker, VaultError};

/// Why the vault's data key could not be had from a security key. What to do about each is
/// in `crate::advice`.
#[derive(Debug, thiserror::Error)]
pub enum UnlockError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Seal(#[from] seal::SealError),
    #[error("no {kind} security key found within {} s", .waited.as_secs())]
    NoKeyFound { kind: String, waited: Duration },
    #[error("no security key is enrolled")]
    NoneEnrolled,
    /// `kind` is "security" or "U2F".
    #[error("none of the plugged-in {kind} keys is enrolled with this vault")]
    NoEnrolledKeyPlugged { kind: &'static str },
    #[error("the salt of enrolled key {name:?} is damaged")]
    DamagedSalt { name: String },
    /// Removing another key re-wraps the data key to each remaining key's public half,
    /// which a key enrolled before the index kept those halves gives only when touched.
    #[error(
        "the security key {name:?} was enrolled by an older mfa-agent and must be touched once to take the new data key"
    )]
    NeedsOneTouch {
        name: String,
        source: Box<VaultError>,
    },
    /// The file `MFA_AGENT_PIN_FILE` names could not be read (the source names it).
    #[error("the agent's PIN file (MFA_AGENT_PIN_FILE) cannot be used")]
    PinFile { source: anyhow::Error },
    #[error(
        "the security key needs its PIN, and neither the client's terminal nor pinentry could ask"
    )]
    NoWayToAskPin { source: anyhow::Error },
}

/// The vault's [`Unlocker`]: a touch of whichever enrolled key is plugged in (and its PIN,
/// where it was enrolled with one), the prompts saying what it is for.
pub struct ByTouch<P> {
    pub prompter: P,
    /// Completes "touch your security key (NAME) to ...": "approve prod".
    pub purpose: String,
}

impl<P: Prompter> Unlocker for ByTouch<P> {
    fn unseal(&mut self, sealing: &[EnrolledKey]) -> Result<DataKey, VaultError> {
        unlock(sealing, &self.prompter, &self.purpose, None)
    }

    fn approve(&mut self, approving: &[EnrolledKey]) -> Result<(), VaultError> {
        approve(approving, &self.prompter, &self.purpose)
    }
}

/// How the caller talks to the user: where prompts go, and how a PIN is obtained.
pub trait Prompter {
    /// Shows `message` (e.g. "insert your security key") to the user.
    fn tell(&self, message: &str);
    /// Asks the user to touch a key (`message` says which, and for what): a touch that
    /// follows is the user's approval.
    fn touch(&self, message: &str) {
        self.tell(message);
    }
    /// The PIN for `key`; `prompt` names the key and the tries left ("PIN of security key
    /// main (7 tries left)").
    fn pin(&self, key: &EnrolledKey, prompt: &str) -> Result<SecretString, VaultError>;
    /// Whether the user went away (the agent's waiting client hung up): a touch request
    /// still blinking on the key is then cancelled.
    fn cancelled(&self) -> bool {
        false
    }
    /// How long to wait for a key to be plugged in (the agent's `MFA_AGENT_KEY_WAIT`).
    fn key_wait(&self) -> Duration {
        crate::config::Environment::default().key_wait
    }
}

/// The FIDO2 keys plugged in, waiting a bounded time for one to appear.
pub fn wait_for_keys(prompter: &dyn Prompter) -> Result<Vec<KeyDevice>, VaultError> {
    wait_for_keys_with(&Hid, prompter)
}

/// Any plugged-in security key, FIDO2 or U2F-only, waiting a bounded time (enrolment).
pub fn wait_for_any_key(prompter: &dyn Prompter) -> Result<Vec<KeyDevice>, VaultError> {
    wait_for_capability(
        &Hid,
        prompter,
        &[Capability::SealAndApprove, Capability::ApproveOnly],
        "FIDO",
    )
}

/// The plugged-in keys with `capability`, waiting a bounded time.
fn wait_for(
    prompter: &dyn Prompter,
    capability: Capability,
    kind: &str,
) -> Result<Vec<KeyDevice>, VaultError> {
    wait_for_capability(&Hid, prompter, &[capability], kind)
}

fn wait_for_keys_with(
    keys: &dyn Authenticators,
    prompter: &dyn Prompter,
) -> Result<Vec<KeyDevice>, VaultError> {
    wait_for_capability(keys, prompter, &[Capability::SealAndApprove], "FIDO2")
}

fn wait_for_capability(
    keys: &dyn Authenticators,
    prompter: &dyn Prompter,
    capabilities: &[Capability],
    kind: &str,
) -> Result<Vec<KeyDevice>, VaultError> {
    let wait = prompter.key_wait();
    let deadline = Instant::now() + wait;
    let mut told = false;
    loop {
        let found: Vec<KeyDevice> = keys
            .devices()
            .map_err(VaultError::from)?
            .into_iter()
            .filter(|d| capabilities.contains(&d.capability))
            .collect();
        if !found.is_empty() {
            return Ok(found);
        }
        if Instant::now() >= deadline {
            return Err(UnlockError::NoKeyFound {
                kind: kind.to_owned(),
                waited: wait,
            }
            .into());
        }
        if !told {
            prompter.tell(&format!(
                "insert your security key (waiting up to {} s)",
                wait.as_secs()
            ));
            told = true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[must_use]
pub fn credential_of(key: &EnrolledKey) -> Credential {
    Credential {
        credential_id: key.credential_id.clone(),
        public_key: key.public_key.clone(),
        pin_protocol: key.pin_protocol,
        uses_pin: key.uses_pin,
        cred_protect: key.cred_protect,
    }
}

pub fn salt_of(key: &EnrolledKey) -> Result<[u8; 32], VaultError> {
    key.salt.as_slice().try_into().map_err(|_| {
        UnlockError::DamagedSalt {
            name: key.name.clone(),
        }
        .into()
    })
}

/// Unlocks the data key with the first enrolled key found among the plugged-in devices
/// (skipping `skip_path`). `why` completes "touch your security key (NAME) to ...".
pub fn unlock(
    enrolled: &[EnrolledKey],
    prompter: &dyn Prompter,
    why: &str,
    skip_path: Option<&str>,
) -> Result<DataKey, VaultError> {
    unlock_with(&Hid, enrolled, prompter, why, skip_path)
}

/// [`unlock`] with the given authenticators.
pub fn unlock_with(
    keys: &dyn Authenticators,
    enrolled: &[EnrolledKey],
    prompter: &dyn Prompter,
    why: &str,
    skip_path: Option<&str>,
) -> Result<DataKey, VaultError> {
    answer_with(keys, enrolled, prompter, why, skip_path).map(|answer| answer.data_key)
}

/// What an enrolled key gave for its touch: the data key it wraps, and its hmac-secret
/// output (from which its public half follows, for keys enrolled before that was kept).
pub struct Answer {
    pub key: EnrolledKey,
    pub output: SecretBytes,
    pub data_key: DataKey,
}

/// [`unlock_with`], keeping which key answered and what it answered.
pub fn answer_with(
    keys: &dyn Authenticators,
    enrolled: &[EnrolledKey],
    prompter: &dyn Prompter,
    why: &str,
    skip_path: Option<&str>,
) -> Result<Answer, VaultError> {
    if enrolled.is_empty() {
        return Err(UnlockError::NoneEnrolled.into());
    }
    let devices: Vec<KeyDevice> = wait_for_keys_with(keys, prompter)?
        .into_iter()
        .filter(|d| Some(d.path.as_str()) != skip_path)
        .collect();
    for (key, device) in touch_order(keys, enrolled, &devices) {
        let pin = if key.uses_pin {
            Some(prompter.pin(key, &pin_prompt(keys, key, &device.path)?)?)
        } else {
            None
        };
        if let Some(pin) = &pin {
            fido::check_pin(pin).map_err(VaultError::from)?;
        }
        prompter.touch(&format!("touch your security key ({}) to {why}", key.name));
        match keys.hmac_secret(
            &device.path,
            &credential_of(key),
            salt_of(key)?,
            pin.clone(),
            &|| prompter.cancelled(),
        ) {
            Ok(output) => {
                let data_key = key.unwrap_data_key(&output).map_err(UnlockError::Seal)?;
                return Ok(Answer {
                    key: key.clone(),
                    output,
                    data_key,
                });
            }
            Err(KeyError::NotEnrolled) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(UnlockError::NoEnrolledKeyPlugged { kind: "security" }.into())
}

/// What removing a sealing key (not the last) needs: the data key in use now, a fresh one,
/// and the remaining keys each wrapping the fresh one.
pub struct Rekeying {
    pub old: DataKey,
    pub new: DataKey,
    pub keys: Vec<EnrolledKey>,
}

/// Plans the re-keying that removing a key needs. The data key in use comes from `held`
/// (unlocked already) or one touch of a remaining key; each remaining key is wrapped to its
/// public half, with no touch. A key enrolled before the index kept public halves needs
/// its own touch, once (the answer gives its public half, kept from then on).
pub fn plan_rekey_with(
    keys: &dyn Authenticators,
    remaining: &[EnrolledKey],
    held: Option<DataKey>,
    prompter: &dyn Prompter,
    why: &str,
) -> Result<Rekeying, VaultError> {
    let sealing: Vec<EnrolledKey> = remaining
        .iter()
        .filter(|k| k.kind == KeyKind::Seal)
        .cloned()
        .collect();
    let mut answered = None;
    let old = if let Some(key) = held {
        key
    } else {
        let answer = answer_with(keys, &sealing, prompter, why, None)?;
        answered = Some((answer.key.name, answer.output));
        answer.data_key
    };
    let new = DataKey::generate();
    let mut rewrapped = Vec::with_capacity(remaining.len());
    for key in remaining {
        let mut key = key.clone();
        if key.kind == KeyKind::Seal {
            let recipient = match (&key.recipient, &answered) {
                (Some(recipient), _) => recipient.clone(),
                (None, Some((name, output))) if *name == key.name => seal::recipient_of(output),
                (None, _) => {
                    let answer = answer_with(keys, std::slice::from_ref(&key), prompter, why, None)
                        .map_err(|e| UnlockError::NeedsOneTouch {
                            name: key.name.clone(),
                            source: Box::new(e),
                        })?;
                    seal::recipient_of(&answer.output)
                }
            };
            key.wrapped_data_key = new
                .wrap_to(&recipient, &key.credential_id)
                .map_err(UnlockError::Seal)?;
            key.recipient = Some(recipient);
        }
        rewrapped.push(key);
    }
    Ok(Rekeying {
        old,
        new,
        keys: rewrapped,
    })
}

/// [`plan_rekey_with`] on the plugged-in keys.
pub fn plan_rekey(
    remaining: &[EnrolledKey],
    held: Option<DataKey>,
    prompter: &dyn Prompter,
    why: &str,
) -> Result<Rekeying, VaultError> {
    plan_rekey_with(&Hid, remaining, held, prompter, why)
}

/// A touch on one of the approve-only (U2F) keys in `enrolled`, proven by its signature.
/// The plugged-in U2F keys are asked silently which one holds an enrolled key handle; that
/// one is asked for the touch.
pub fn approve(
    enrolled: &[EnrolledKey],
    prompter: &dyn Prompter,
    why: &str,
) -> Result<(), VaultError> {
    let devices = wait_for(prompter, Capability::ApproveOnly, "U2F")?;
    for device in &devices {
        let Some(key) = enrolled
            .iter()
            .find(|k| ctap1::holds(&device.path, &k.credential_id).unwrap_or(false))
        else {
            continue;
        };
        prompter.touch(&format!("touch your security key ({}) to {why}", key.name));
        let registration = ctap1::Registration {
            key_handle: key.credential_id.clone(),
            public_key: key.public_key.clone(),
        };
        return ctap1::approve(&device.path, &registration, fido::TOUCH_DEADLINE, &|| {
            prompter.cancelled()
        })
        .map_err(VaultError::from);
    }
    Err(UnlockError::NoEnrolledKeyPlugged { kind: "U2F" }.into())
}

/// "PIN of security key NAME (N tries left)", after checking the PIN is not blocked: a
/// blocked PIN is an error before the user types anything.
fn pin_prompt(
    keys: &dyn Authenticators,
    key: &EnrolledKey,
    path: &str,
) -> Result<String, VaultError> {
    let name = &key.name;
    match keys.pin_retries(path) {
        Ok(0) => Err(KeyError::PinBlocked.into()),
        Ok(1) => Ok(format!(
            "PIN of security key {name} (1 try left: a wrong PIN now blocks it)"
        )),
        Ok(n) => Ok(format!("PIN of security key {name} ({n} tries left)")),
        // Not every key reports retries; the PIN is still worth asking for.
        Err(_) => Ok(format!("PIN of security key {name}")),
    }
}

/// Which (enrolled key, device) pairs to ask for a touch, in order. Each device is first
/// asked silently which enrolled credential it holds, so with several keys plugged in only
/// the enrolled one blinks and the user is asked once, for the right key. A device that
/// cannot answer silently stays a candidate for every key, and so does every device when
/// none admits to a credential: some keys hide credentials made with a PIN from a silent
/// request, so "no" is not proof.
fn touch_order<'a>(
    keys: &dyn Authenticators,
    enrolled: &'a [EnrolledKey],
    devices: &'a [KeyDevice],
) -> Vec<(&'a EnrolledKey, &'a KeyDevice)> {
    // Per device: the index of the enrolled key it holds, or why it could not say.
    let mut holding = Vec::new();
    let mut unsure = Vec::new();
    for device in devices {
        for (i, key) in enrolled.iter().enumerate() {
            match keys.holds(&device.path, &key.credential_id) {
                Ok(true) => {
                    holding.push((i, device));
                    break;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::debug!(path = %device.path, "no silent answer ({e}); trying each key");
                    unsure.push(device);
                    break;
                }
            }
        }
    }
    // Enrolment order: "main" before "backup" when both are plugged in.
    holding.sort_by_key(|(i, _)| *i);
    let mut order: Vec<_> = holding
        .into_iter()
        .map(|(i, d)| (&enrolled[i], d))
        .collect();
    order.extend(
        unsure
            .into_iter()
            .flat_map(|d| enrolled.iter().map(move |k| (k, d))),
    );
    if order.is_empty() {
        order = enrolled
            .iter()
            .flat_map(|k| devices.iter().map(move |d| (k, d)))
            .collect();
    }
    order
}

/// The name of the enrolled key the device at `path` holds, asked silently (CTAP2, or U2F
/// check-only for approve-only keys).
#[must_use]
pub fn enrolled_on(enrolled: &[EnrolledKey], path: &str) -> Option<String> {
    enrolled
        .iter()
        .find(|key| match key.kind {
            KeyKind::Seal => Hid.holds(path, &key.credential_id).unwrap_or(false),
            KeyKind::Approve => ctap1::holds(path, &key.credential_id).unwrap_or(false),
        })
        .map(|key| key.name.clone())
}

/// A key's failure, met while opening the vault.
impl From<KeyError> for VaultError {
    fn from(e: KeyError) -> Self {
        UnlockError::Key(e).into()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::keys::soft::{SoftKeys, Touch};

    /// Records what the user was told and asked to touch; answers PIN prompts with `pin`.
    #[derive(Default)]
    struct User {
        told: Mutex<Vec<String>>,
        touch_requests: Mutex<Vec<String>>,
        pin: Option<&'static str>,
        asked_pin: Mutex<Vec<String>>,
        /// Set when the user "walks away" (the agent's client hangs up).
        gone: std::sync::atomic::AtomicBool,
    }

    impl Prompter for User {
        fn tell(&self, message: &str) {
            self.told.lock().unwrap().push(message.to_owned());
        }

        fn touch(&self, message: &str) {
            self.touch_requests.lock().unwrap().push(message.to_owned());
        }

        fn pin(&self, _: &EnrolledKey, prompt: &str) -> Result<SecretString, VaultError> {
            self.asked_pin.lock().unwrap().push(prompt.to_owned());
            Ok(SecretString::new(self.pin.unwrap_or("").to_owned()))
        }

        fn cancelled(&self) -> bool {
            self.gone.load(std::sync::atomic::Ordering::Relaxed)
        }
    }

    /// Whether `opened` is `data_key`: what one seals, the other opens.
    fn same(data_key: &DataKey, opened: &DataKey) -> bool {
        let sealed = data_key.seal("seed", b"JBSWY3DPEHPK3PXP");
        opened
            .open("seed", &sealed)
            .is_ok_and(|plain| plain.expose() == b"JBSWY3DPEHPK3PXP")
    }

    fn open(keys: &SoftKeys, enrolled: &[EnrolledKey], user: &User) -> Result<DataKey, VaultError> {
        unlock_with(keys, enrolled, user, "open your seeds", None)
    }

    #[test]
    fn either_enrolled_key_opens_and_only_the_right_one_is_asked() {
        let keys = SoftKeys::default();
        let data_key = DataKey::generate();
        keys.plug("/dev/main", None);
        keys.plug("/dev/backup", None);
        let enrolled = [
            keys.enroll("/dev/main", "main", &data_key, false),
            keys.enroll("/dev/backup", "backup", &data_key, false),
        ];
        let user = User::default();
        assert!(same(&data_key, &open(&keys, &enrolled, &user).unwrap()));
        // Both plugged in: one touch request, for the first enrolled key (asked as a touch:
        // the agent counts what follows as the user's approval).
        assert_eq!(
            *user.touch_requests.lock().unwrap(),
            ["touch your security key (main) to open your seeds"]
        );
        assert!(user.told.lock().unwrap().is_empty());
        assert_eq!(
            (keys.touches("/dev/main"), keys.touches("/dev/backup")),
            (1, 0)
        );

        // The main key lost: the backup alone opens, and is the one asked for.
        keys.unplug("/dev/main");
        let user = User::default();
        assert!(same(&data_key, &open(&keys, &enrolled, &user).unwrap()));
        assert_eq!(
            *user.touch_requests.lock().unwrap(),
            ["touch your security key (backup) to open your seeds"]
        );
    }

    #[test]
    fn a_stranger_key_or_a_tampered_wrap_opens_nothing() {
        let keys = SoftKeys::default();
        let data_key = DataKey::generate();
        keys.plug("/dev/main", None);
        let mut enrolled = vec![keys.enroll("/dev/main", "main", &data_key, false)];
        // The key's answer is right, the wrapped data key was altered: an authentication
        // failure, never a wrong key used as if it were right.
        let last = enrolled[0].wrapped_data_key.len() - 1;
        enrolled[0].wrapped_data_key[last] ^= 1;
        let err = open(&keys, &enrolled, &User::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tampered") || err.contains("does not open"),
            "{err}"
        );

        keys.unplug("/dev/main");
        keys.plug("/dev/stranger", None);
        let err = open(&keys, &enrolled, &User::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("none of the plugged-in security keys is enrolled"),
            "{err}"
        );
    }

    #[test]
    fn a_refused_missed_or_cancelled_touch_is_a_clear_error() {
        let keys = SoftKeys::default();
        let data_key = DataKey::generate();
        keys.plug("/dev/main", None);
        let enrolled = [keys.enroll("/dev/main", "main", &data_key, false)];
        for (touch, says) in [
            (Touch::Refused, "touch denied"),
            (Touch::NeverGiven, "not touched in time"),
            (Touch::Cancelled, "cancelled"),
        ] {
            keys.set_touch("/dev/main", touch);
            let err = open(&keys, &enrolled, &User::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{touch:?}: {err}");
        }
        // Nothing was spoiled: the next touch opens.
        keys.set_touch("/dev/main", Touch::Given);
        assert!(same(
            &data_key,
            &open(&keys, &enrolled, &User::default()).unwrap()
        ));
    }

    #[test]
    fn a_touch_request_is_cancelled_when_the_user_goes_away() {
        let keys = SoftKeys::default();
        let data_key = DataKey::generate();
        keys.plug("/dev/main", None);
        let enrolled = [keys.enroll("/dev/main", "main", &data_key, false)];
        keys.set_touch("/dev/main", Touch::UntilCancelled);
        let user = User::default();
        let started = std::time::Instant::now();
        let err = std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(100));
                user.gone.store(true, std::sync::atomic::Ordering::Relaxed);
            });
            open(&keys, &enrolled, &user).unwrap_err().to_string()
        });
        assert!(err.contains("cancelled"), "{err}");
        // Ended by the cancel, not by the key's 5 s wait running out.
        assert!(started.elapsed() < Duration::from_secs(4));
    }

    #[test]
    fn a_key_pulled_out_mid_operation_fails_cleanly_and_the_next_try_waits_for_one() {
        let keys = SoftKeys::default();
        let data_key = DataKey::generate();
        keys.plug("/dev/main", None);
        let enrolled = [keys.enroll("/dev/main", "main", &data_key, false)];
        keys.set_touch("/dev/main", Touch::Unplugged);
        let err = open(&keys, &enrolled, &User::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("gone"), "{err}");
        assert!(keys.devices().unwrap().is_empty());
    }

    #[test]
    fn three_wrong_pins_in_a_row_need_a_replug_and_then_the_right_pin_opens_the_vault() {
        let keys = SoftKeys::default();
        let data_key = DataKey::generate();
        keys.plug("/dev/main", Some("123456"));
        let enrolled = [keys.enroll("/dev/main", "main", &data_key, true)];
        let wrong = User {
            pin: Some("654321"),
            ..User::default()
        };
        for _ in 0..2 {
            let err = crate::report::sentence(&open(&keys, &enrolled, &wrong).unwrap_err());
            assert!(err.contains("wrong PIN"), "{err}");
        }
        let err = crate::report::sentence(&open(&keys, &enrolled, &wrong).unwrap_err());
        assert!(err.contains("unplug it, plug it back in"), "{err}");
        // Until the replug even the right PIN is refused, and costs no try.
        let right = User {
            pin: Some("123456"),
            ..User::default()
        };
        let err = crate::report::sentence(&open(&keys, &enrolled, &right).unwrap_err());
        assert!(err.contains("unplug it, plug it back in"), "{err}");
        assert_eq!(keys.retries("/dev/main"), 5);

        keys.power_cycle("/dev/main");
        assert!(same(&data_key, &open(&keys, &enrolled, &right).unwrap()));
        assert_eq!(
            keys.retries("/dev/main"),
            8,
            "a right PIN restores the tries"
        );
    }

    #[test]
    fn pin_prompts_show_the_tries_left_and_a_blocked_pin_is_refused_before_asking() {
        let keys = SoftKeys::default();
        let data_key = DataKey::generate();
        keys.plug("/dev/main", Some("123456"));
        let enrolled = [keys.enroll("/dev/main", "main", &data_key, true)];

        let right = User {
            pin: Some("123456"),
            ..User::default()
        };
        assert!(same(&data_key, &open(&keys, &enrolled, &right).unwrap()));
        assert_eq!(
            *right.asked_pin.lock().unwrap(),
            ["PIN of security key main (8 tries left)"]
        );

        let wrong = User {
            pin: Some("654321"),
            ..User::default()
        };
        let err = crate::report::sentence(&open(&keys, &enrolled, &wrong).unwrap_err());
        assert!(err.contains("wrong PIN"), "{err}");
        assert_eq!(keys.retries("/dev/main"), 7);
        let err = crate::report::sentence(&open(&keys, &enrolled, &wrong).unwrap_err());
        assert!(err.contains("wrong PIN"), "{err}");
        assert_eq!(
            wrong.asked_pin.lock().unwrap()[1],
            "PIN of security key main (7 tries left)"
        );

        // Too short never reaches the key (and costs no try).
        let short = User {
            pin: Some("12"),
            ..User::default()
        };
        let err = open(&keys, &enrolled, &short).unwrap_err().to_string();
        assert!(err.contains("4 to 63 characters"), "{err}");
        assert_eq!(keys.retries("/dev/main"), 6);

        keys.set_retries("/dev/main", 1);
        let last = User {
            pin: Some("123456"),
            ..User::default()
        };
        open(&keys, &enrolled, &last).unwrap();
        assert!(last.asked_pin.lock().unwrap()[0].contains("1 try left"));

        keys.set_retries("/dev/main", 0);
        let blocked = User {
            pin: Some("123456"),
            ..User::default()
        };
        let err = open(&keys, &enrolled, &blocked).unwrap_err().to_string();
        assert!(err.contains("blocked"), "{err}");
        assert!(
            blocked.asked_pin.lock().unwrap().is_empty(),
            "no PIN is asked for a blocked key"
        );
    }
}
