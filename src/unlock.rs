//! Opening the vault's data key with whichever enrolled security key is plugged in: one
//! touch (and the PIN, if the key was enrolled with one). Used by the CLI and the agent.

use std::time::{Duration, Instant};

use crate::keys::fido::{self, Credential};
use crate::keys::seal::DataKey;
use crate::keys::{self, KeyDevice, KeyError};
use crate::secret::SecretString;
use crate::vault::{EnrolledKey, VaultError};

/// How the caller talks to the user: where prompts go, and how a PIN is obtained.
pub trait Prompter {
    /// Shows `message` (e.g. "touch your security key") to the user.
    fn tell(&self, message: &str);
    /// The PIN for `key`; `prompt` names the key and the tries left ("PIN of security key
    /// main (7 tries left)").
    fn pin(&self, key: &EnrolledKey, prompt: &str) -> Result<SecretString, VaultError>;
}

/// How long to wait for a key to be plugged in (`MFA_AGENT_KEY_WAIT` seconds overrides).
#[must_use]
pub fn insert_deadline() -> Duration {
    let seconds = std::env::var("MFA_AGENT_KEY_WAIT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    Duration::from_secs(seconds)
}

/// The FIDO2 keys plugged in, waiting a bounded time for one to appear.
pub fn wait_for_keys(prompter: &dyn Prompter) -> Result<Vec<KeyDevice>, VaultError> {
    let wait = insert_deadline();
    let deadline = Instant::now() + wait;
    let mut told = false;
    loop {
        let found: Vec<KeyDevice> = keys::list()
            .map_err(unlock_error)?
            .into_iter()
            .filter(|d| d.capability == "seal and approve")
            .collect();
        if !found.is_empty() {
            return Ok(found);
        }
        if Instant::now() >= deadline {
            return Err(VaultError::Unlock(format!(
                "no FIDO2 security key found within {} s; plug one in (on Linux, check `mfa-agent key list` and the udev rule in the README)",
                wait.as_secs()
            )));
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
    }
}

pub fn salt_of(key: &EnrolledKey) -> Result<[u8; 32], VaultError> {
    key.salt.as_slice().try_into().map_err(|_| {
        VaultError::Unlock(format!(
            "the salt of enrolled key {:?} is damaged; remove and enrol the key again",
            key.name
        ))
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
    if enrolled.is_empty() {
        return Err(VaultError::Unlock("no security key is enrolled".into()));
    }
    let devices: Vec<KeyDevice> = wait_for_keys(prompter)?
        .into_iter()
        .filter(|d| Some(d.path.as_str()) != skip_path)
        .collect();
    for (key, device) in touch_order(enrolled, &devices) {
        let pin = if key.uses_pin {
            Some(prompter.pin(key, &pin_prompt(key, &device.path)?)?)
        } else {
            None
        };
        if let Some(pin) = &pin {
            fido::check_pin(pin).map_err(unlock_error)?;
        }
        prompter.tell(&format!("touch your security key ({}) to {why}", key.name));
        match fido::hmac_secret(
            &device.path,
            &credential_of(key),
            salt_of(key)?,
            pin.clone(),
        ) {
            Ok(output) => {
                return DataKey::unwrap(&key.wrapped_data_key, &output, &key.credential_id)
                    .map_err(|e| VaultError::Unlock(e.to_string()));
            }
            Err(KeyError::NotEnrolled) => {}
            Err(e) => return Err(unlock_error(e)),
        }
    }
    Err(VaultError::Unlock(
        "none of the plugged-in security keys is enrolled with this vault; plug in an enrolled key (`mfa-agent key list` names them)".into(),
    ))
}

/// "PIN of security key NAME (N tries left)", after checking the PIN is not blocked: a
/// blocked PIN is an error before the user types anything.
fn pin_prompt(key: &EnrolledKey, path: &str) -> Result<String, VaultError> {
    let name = &key.name;
    match fido::pin_retries(path) {
        Ok(0) => Err(unlock_error(KeyError::PinBlocked)),
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
    enrolled: &'a [EnrolledKey],
    devices: &'a [KeyDevice],
) -> Vec<(&'a EnrolledKey, &'a KeyDevice)> {
    let every_pair = || {
        enrolled
            .iter()
            .flat_map(|k| devices.iter().map(move |d| (k, d)))
            .collect::<Vec<_>>()
    };
    let mut order = Vec::new();
    for device in devices {
        for key in enrolled {
            match fido::holds(&device.path, &key.credential_id) {
                Ok(true) => {
                    order.push((key, device));
                    break;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::debug!(path = %device.path, "no silent answer ({e}); trying each key");
                    order.extend(enrolled.iter().map(|k| (k, device)));
                    break;
                }
            }
        }
    }
    if order.is_empty() {
        every_pair()
    } else {
        order
    }
}

/// The name of the enrolled key the device at `path` holds, asked silently.
#[must_use]
pub fn enrolled_on(enrolled: &[EnrolledKey], path: &str) -> Option<String> {
    enrolled
        .iter()
        .find(|key| fido::holds(path, &key.credential_id).unwrap_or(false))
        .map(|key| key.name.clone())
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(unlock_error)`
fn unlock_error(e: KeyError) -> VaultError {
    VaultError::Unlock(e.to_string())
}
