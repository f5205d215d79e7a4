//! A software authenticator behind [`Authenticators`], for tests: credentials with an
//! hmac-secret, a PIN with a retry counter, and the bad days of hardware on demand (a touch
//! refused or never given, a cancel, a key pulled out mid-operation).

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::fido::Credential;
use super::seal::DataKey;
use super::{Authenticators, KeyError, RP_ID};
use crate::protocol::{Capability, KeyDevice, PinState};
use crate::secret::{SecretBytes, SecretString};
use crate::vault::EnrolledKey;

/// What the next touch request meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touch {
    Given,
    Refused,
    /// The key's own timeout: nobody touched it.
    NeverGiven,
    /// Another party (a client going away) cancelled the request.
    Cancelled,
    /// The key is pulled out while it blinks.
    Unplugged,
    /// Nobody touches; the key waits (up to 5 s) until the request is cancelled.
    UntilCancelled,
}

struct Device {
    pin: Option<String>,
    retries: u32,
    /// Wrong PINs since the last right one or power-up: at 3, the key takes no PIN until it
    /// is power-cycled (CTAP 2.1 PIN_AUTH_BLOCKED).
    wrong_in_a_row: u32,
    /// Credential id -> the credential's secret, as a real key keeps (or derives) it.
    credentials: HashMap<Vec<u8>, [u8; 32]>,
    touch: Touch,
    touches: usize,
}

#[derive(Default)]
pub struct SoftKeys {
    devices: Mutex<HashMap<String, Device>>,
}

impl SoftKeys {
    /// Plugs in a key at `path`, with a PIN or without.
    pub fn plug(&self, path: &str, pin: Option<&str>) {
        self.devices.lock().unwrap().insert(
            path.into(),
            Device {
                pin: pin.map(str::to_owned),
                retries: 8,
                wrong_in_a_row: 0,
                credentials: HashMap::new(),
                touch: Touch::Given,
                touches: 0,
            },
        );
    }

    pub fn unplug(&self, path: &str) {
        self.devices.lock().unwrap().remove(path);
    }

    /// Unplugs the key and plugs it back in: it keeps its credentials, PIN and retries and
    /// forgets the wrong PINs in a row.
    pub fn power_cycle(&self, path: &str) {
        self.devices
            .lock()
            .unwrap()
            .get_mut(path)
            .unwrap()
            .wrong_in_a_row = 0;
    }

    pub fn set_touch(&self, path: &str, touch: Touch) {
        self.devices.lock().unwrap().get_mut(path).unwrap().touch = touch;
    }

    pub fn set_retries(&self, path: &str, retries: u32) {
        self.devices.lock().unwrap().get_mut(path).unwrap().retries = retries;
    }

    pub fn retries(&self, path: &str) -> u32 {
        self.devices.lock().unwrap()[path].retries
    }

    pub fn touches(&self, path: &str) -> usize {
        self.devices.lock().unwrap()[path].touches
    }

    /// Enrols the key at `path` as `name`, wrapping `data_key` to it, as `key enroll` does.
    pub fn enroll(
        &self,
        path: &str,
        name: &str,
        data_key: &DataKey,
        uses_pin: bool,
    ) -> EnrolledKey {
        let mut key = self.enroll_v1(path, name, data_key, uses_pin);
        let output = self.output_for(path, &key);
        let recipient = super::seal::recipient_of(&output);
        key.wrapped_data_key = data_key
            .wrap_to(&recipient, &key.credential_id)
            .expect("a fresh recipient is sound");
        key.recipient = Some(recipient);
        key
    }

    /// The key's hmac-secret answer for an enrolled key, without a touch (tests only).
    fn output_for(&self, path: &str, key: &EnrolledKey) -> SecretBytes {
        let devices = self.devices.lock().unwrap();
        let secret = devices[path].credentials[&key.credential_id];
        hmac_output(&secret, key.uses_pin, &key.salt.clone().try_into().unwrap())
    }

    /// Enrols as an mfa-agent before vault format 2 did: the data key wrapped under a KEK
    /// from the key's answer, and no public half recorded.
    pub fn enroll_v1(
        &self,
        path: &str,
        name: &str,
        data_key: &DataKey,
        uses_pin: bool,
    ) -> EnrolledKey {
        let mut credential_id = vec![0u8; 32];
        crate::random::fill(&mut credential_id[..]);
        let mut secret = [0u8; 32];
        crate::random::fill(&mut secret[..]);
        let mut salt = [0u8; 32];
        crate::random::fill(&mut salt[..]);
        self.devices
            .lock()
            .unwrap()
            .get_mut(path)
            .unwrap()
            .credentials
            .insert(credential_id.clone(), secret);
        let output = hmac_output(&secret, uses_pin, &salt);
        EnrolledKey {
            name: name.into(),
            kind: crate::vault::KeyKind::Seal,
            wrapped_data_key: data_key.wrap(&output, &credential_id),
            recipient: None,
            credential_id,
            public_key: Vec::new(),
            rp_id: RP_ID.into(),
            salt: salt.to_vec(),
            uses_pin,
            pin_protocol: 2,
            added: 0,
            touch_gated: Some(true),
            cred_protect: None,
        }
    }
}

/// hmac-secret's answer: a function of the credential's secret, whether the PIN was used
/// (real keys keep two secrets per credential), and the salt.
fn hmac_output(secret: &[u8; 32], with_pin: bool, salt: &[u8; 32]) -> SecretBytes {
    let mut hash = Sha256::new();
    hash.update(secret);
    hash.update([u8::from(with_pin)]);
    hash.update(salt);
    SecretBytes::new(hash.finalize().to_vec())
}

impl Authenticators for SoftKeys {
    fn devices(&self) -> Result<Vec<KeyDevice>, KeyError> {
        let devices = self.devices.lock().unwrap();
        let mut paths: Vec<&String> = devices.keys().collect();
        paths.sort();
        Ok(paths
            .into_iter()
            .map(|path| KeyDevice {
                path: path.clone(),
                vendor_id: 0,
                product_id: 0,
                product: "soft key".into(),
                versions: vec!["FIDO_2_0".into()],
                extensions: vec!["hmac-secret".into()],
                pin: if devices[path].pin.is_some() {
                    PinState::Set
                } else {
                    PinState::NotSet
                },
                pin_retries: devices[path].pin.is_some().then_some(devices[path].retries),
                pin_protocols: vec![2],
                capability: Capability::SealAndApprove,
                error: None,
                enrolled_as: None,
            })
            .collect())
    }

    fn holds(&self, path: &str, credential_id: &[u8]) -> Result<bool, KeyError> {
        let devices = self.devices.lock().unwrap();
        let device = devices.get(path).ok_or_else(gone)?;
        Ok(device.credentials.contains_key(credential_id))
    }

    fn pin_retries(&self, path: &str) -> Result<u32, KeyError> {
        let devices = self.devices.lock().unwrap();
        Ok(devices.get(path).ok_or_else(gone)?.retries)
    }

    fn hmac_secret(
        &self,
        path: &str,
        credential: &Credential,
        salt: [u8; 32],
        pin: Option<SecretString>,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<SecretBytes, KeyError> {
        let mut devices = self.devices.lock().unwrap();
        let device = devices.get_mut(path).ok_or_else(gone)?;
        if credential.uses_pin {
            let pin = pin.ok_or(KeyError::PinRequired)?;
            if device.retries == 0 {
                return Err(KeyError::PinBlocked);
            }
            if device.wrong_in_a_row >= 3 {
                return Err(KeyError::PinAuthBlocked);
            }
            if device.pin.as_deref() != Some(pin.expose()) {
                device.retries -= 1;
                device.wrong_in_a_row += 1;
                return Err(if device.retries == 0 {
                    KeyError::PinBlocked
                } else if device.wrong_in_a_row >= 3 {
                    KeyError::PinAuthBlocked
                } else {
                    KeyError::WrongPin
                });
            }
            device.retries = 8;
            device.wrong_in_a_row = 0;
        }
        let Some(secret) = device.credentials.get(&credential.credential_id).copied() else {
            return Err(KeyError::NotEnrolled);
        };
        device.touches += 1;
        match device.touch {
            Touch::Given => Ok(hmac_output(&secret, credential.uses_pin, &salt)),
            Touch::Refused => Err(KeyError::Denied),
            Touch::NeverGiven => Err(KeyError::TouchTimeout),
            Touch::Cancelled => Err(KeyError::Cancelled),
            Touch::Unplugged => {
                devices.remove(path);
                Err(gone())
            }
            Touch::UntilCancelled => {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
                while !cancelled() {
                    if std::time::Instant::now() >= deadline {
                        return Err(KeyError::TouchTimeout);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(KeyError::Cancelled)
            }
        }
    }
}

fn gone() -> KeyError {
    KeyError::Device("the security key is gone (unplugged?)".into())
}
