//! The two FIDO2 operations mfa-agent needs, over ctap-hid-fido2: enrolment (a
//! non-resident credential with hmac-secret) and unlocking (an assertion with hmac-secret,
//! its signature checked against the enrolled public key).

use std::time::Duration;

use ctap_hid_fido2::fidokey::credential_management::credential_management_params::CredentialProtectionPolicy;
use ctap_hid_fido2::fidokey::get_assertion::get_assertion_params::Extension as AssertionExtension;
use ctap_hid_fido2::fidokey::make_credential::make_credential_params::Extension as CredentialExtension;
use ctap_hid_fido2::fidokey::{GetAssertionArgsBuilder, MakeCredentialArgsBuilder};
use ctap_hid_fido2::public_key::{PublicKey, PublicKeyType};
use ctap_hid_fido2::{FidoKeyHid, HidParam};

use super::{KeyError, RP_ID, lib_config, run_exclusive, run_exclusive_until};
use crate::secret::{SecretBytes, SecretString};

/// How long the user has to touch the key. Keys time out on their own after ~30 s.
pub const TOUCH_DEADLINE: Duration = Duration::from_secs(45);

/// A silent probe needs no user: a key that takes longer is not answering.
const PROBE_DEADLINE: Duration = Duration::from_secs(5);

/// What enrolment learns about a key, to be stored.
#[derive(Debug, Clone)]
pub struct Credential {
    pub credential_id: Vec<u8>,
    /// The credential's public key, DER (SubjectPublicKeyInfo), ES256.
    pub public_key: Vec<u8>,
    /// PIN/UV auth protocol used with this key (2 when it offers it).
    pub pin_protocol: u8,
    /// Whether the PIN was used: hmac-secret answers differently with and without it, so
    /// unlocking must do the same.
    pub uses_pin: bool,
    /// The credProtect level the key confirmed (CTAP 2.1: 3 = the credential is not used
    /// at all without user verification), if it took the extension.
    pub cred_protect: Option<u8>,
}

/// The CTAP status code in one of ctap-hid-fido2's error strings, which carry it as
/// `0xNN CTAP2_ERR_NAME description` (its ctapdef.rs): the code is read only where it is
/// followed by its CTAP name, never from a number elsewhere in the text (an offset in a
/// parse error, a path).
fn ctap_status(text: &str) -> Option<u8> {
    text.match_indices("0x").find_map(|(at, _)| {
        let rest = &text[at + 2..];
        let hex = rest.get(..2)?;
        let named = rest[2..].strip_prefix(' ')?;
        (named.starts_with("CTAP1_ERR_") || named.starts_with("CTAP2_ERR_"))
            .then(|| u8::from_str_radix(hex, 16).ok())
            .flatten()
    })
}

/// CTAP 2.1 status codes (§8.2) the agent acts on.
mod status {
    pub(super) const OPERATION_DENIED: u8 = 0x27;
    pub(super) const UNSUPPORTED_OPTION: u8 = 0x2B;
    pub(super) const INVALID_OPTION: u8 = 0x2C;
    pub(super) const KEEPALIVE_CANCEL: u8 = 0x2D;
    pub(super) const NO_CREDENTIALS: u8 = 0x2E;
    pub(super) const USER_ACTION_TIMEOUT: u8 = 0x2F;
    pub(super) const PIN_INVALID: u8 = 0x31;
    pub(super) const PIN_BLOCKED: u8 = 0x32;
    pub(super) const PIN_AUTH_BLOCKED: u8 = 0x34;
    pub(super) const PIN_NOT_SET: u8 = 0x35;
    pub(super) const PUAT_REQUIRED: u8 = 0x36;
    pub(super) const UP_REQUIRED: u8 = 0x3B;
    /// CTAP 2.0's name for an expired touch request (CTAP2_ERR_ACTION_TIMEOUT).
    pub(super) const ACTION_TIMEOUT: u8 = 0x3A;
}

/// Turns ctap-hid-fido2's errors into what happened, by their CTAP status code.
fn classify(err: &anyhow::Error) -> KeyError {
    let text = format!("{err:#}");
    match ctap_status(&text) {
        Some(status::PIN_INVALID) => KeyError::WrongPin,
        Some(status::PIN_AUTH_BLOCKED) => KeyError::PinAuthBlocked,
        Some(status::PIN_BLOCKED) => KeyError::PinBlocked,
        Some(status::PUAT_REQUIRED | status::PIN_NOT_SET) => KeyError::PinRequired,
        Some(status::USER_ACTION_TIMEOUT | status::ACTION_TIMEOUT) => KeyError::TouchTimeout,
        Some(status::OPERATION_DENIED) => KeyError::Denied,
        Some(status::KEEPALIVE_CANCEL) => KeyError::Cancelled,
        Some(status::NO_CREDENTIALS) => KeyError::NotEnrolled,
        _ => KeyError::Device(text),
    }
}

/// [`classify`], unless the key's node has gone: then the failure is the unplugging (hidapi
/// reports it only as a failed read or write).
fn classify_at(path: &str, err: &anyhow::Error) -> KeyError {
    if std::path::Path::new(path).exists() {
        classify(err)
    } else {
        KeyError::Unplugged
    }
}

fn open(path: &str) -> Result<FidoKeyHid, KeyError> {
    let key = FidoKeyHid::new(&[HidParam::Path(path.to_owned())], &lib_config())
        .map_err(|e| classify(&e))?;
    // Prefer PIN/UV protocol 2: stronger, and some keys speak only it (ctap-hid-fido2
    // defaults to 1).
    let info = key.get_info().map_err(|e| classify(&e))?;
    let protocol = if info.pin_uv_auth_protocols.contains(&2) {
        2
    } else {
        1
    };
    Ok(key.with_pin_protocol_version(protocol))
}

/// Checks a PIN before sending it: a rejected PIN costs one of the key's few retries.
pub fn check_pin(pin: &SecretString) -> Result<(), KeyError> {
    let chars = pin.expose().chars().count();
    let bytes = pin.expose().len();
    if chars < 4 || bytes > 63 {
        return Err(KeyError::PinFormat);
    }
    Ok(())
}

/// Creates a credential with hmac-secret on the key at `path` (needs a touch). With a PIN,
/// and where the key offers credProtect, the credential is made "user verification
/// required": the key then refuses any use of it without the PIN, a silent request
/// included (without a PIN the level would change nothing for a non-resident credential,
/// whose id mfa-agent always sends).
pub fn enroll(path: &str, pin: Option<SecretString>) -> Result<Credential, KeyError> {
    let path = path.to_owned();
    run_exclusive(TOUCH_DEADLINE, move || {
        let key = open(&path)?;
        let mut challenge = [0u8; 32];
        crate::random::fill(&mut challenge[..]);
        let offers_cred_protect = key
            .get_info()
            .is_ok_and(|info| info.extensions.iter().any(|e| e == "credProtect"));
        let mut extensions = vec![CredentialExtension::HmacSecret(Some(true))];
        if pin.is_some() && offers_cred_protect {
            extensions.push(CredentialExtension::CredProtect(Some(
                CredentialProtectionPolicy::UserVerificationRequired,
            )));
        }
        let builder = MakeCredentialArgsBuilder::new(RP_ID, &challenge).extensions(&extensions);
        let args = match &pin {
            Some(pin) => builder.pin(pin.expose()).build(),
            None => builder.without_pin_and_uv().build(),
        };
        let attestation = key
            .make_credential_with_args(&args)
            .map_err(|e| classify_at(&path, &e))?;
        // What the key did, not what getInfo claimed, decides whether it can seal.
        let hmac = attestation
            .extensions
            .iter()
            .any(|e| matches!(e, CredentialExtension::HmacSecret(Some(true))));
        if !hmac {
            return Err(KeyError::NoHmacSecret);
        }
        if !matches!(
            attestation.credential_publickey.key_type,
            PublicKeyType::Ecdsa256
        ) {
            return Err(KeyError::Device(
                "the key made a non-ES256 credential".into(),
            ));
        }
        Ok(Credential {
            credential_id: attestation.credential_descriptor.id.clone(),
            public_key: attestation.credential_publickey.der.clone(),
            pin_protocol: key.pin_protocol_version,
            uses_pin: pin.is_some(),
            cred_protect: attestation.extensions.iter().find_map(|e| match e {
                CredentialExtension::CredProtect(Some(policy)) => Some(*policy as u8),
                _ => None,
            }),
        })
    })
}

/// How many PIN tries the key at `path` has left; 0 means the PIN is blocked.
pub fn pin_retries(path: &str) -> Result<u32, KeyError> {
    let path = path.to_owned();
    run_exclusive(PROBE_DEADLINE, move || {
        let key = open(&path)?;
        let retries = key.get_pin_retries().map_err(|e| classify(&e))?;
        Ok(u32::try_from(retries).unwrap_or(0))
    })
}

/// Whether the key at `path` made the credential `credential_id`, asked silently: an
/// assertion with user presence off and no PIN, so no touch and no blink. A key answers "no
/// credentials" for an id another key made (non-resident ids only decrypt on their maker).
pub fn holds(path: &str, credential_id: &[u8]) -> Result<bool, KeyError> {
    let (path, credential_id) = (path.to_owned(), credential_id.to_vec());
    run_exclusive(PROBE_DEADLINE, move || {
        let key = open(&path)?;
        let mut challenge = [0u8; 32];
        crate::random::fill(&mut challenge[..]);
        let args = GetAssertionArgsBuilder::new(RP_ID, &challenge)
            .credential_id(&credential_id)
            .without_pin_and_uv()
            .without_up()
            .build();
        match key.get_assertion_with_args(&args) {
            Ok(_) => Ok(true),
            Err(e) => match classify(&e) {
                KeyError::NotEnrolled => Ok(false),
                other => Err(other),
            },
        }
    })
}

/// The credential's hmac-secret output for `salt` asked *without* user presence and
/// without PIN/UV: what any program of the user could get from the key while it is plugged
/// in, no touch asked. `None` when the key refuses (it gates hmac-secret on a touch, as the
/// Nitrokey 3 / SoloKeys 2 firmware does, CTAP2_ERR_UNSUPPORTED_OPTION) or answers without
/// the extension. CTAP 2.1 allows either behaviour, so enrolment asks, once.
pub fn silent_hmac_secret(
    path: &str,
    credential_id: &[u8],
    salt: [u8; 32],
) -> Result<Option<SecretBytes>, KeyError> {
    let (path, credential_id) = (path.to_owned(), credential_id.to_vec());
    run_exclusive(PROBE_DEADLINE, move || {
        let key = open(&path)?;
        let mut challenge = [0u8; 32];
        crate::random::fill(&mut challenge[..]);
        let extensions = [AssertionExtension::HmacSecret(Some(salt))];
        let args = GetAssertionArgsBuilder::new(RP_ID, &challenge)
            .credential_id(&credential_id)
            .extensions(&extensions)
            .without_pin_and_uv()
            .without_up()
            .build();
        let assertions = match key.get_assertion_with_args(&args) {
            Ok(assertions) => assertions,
            Err(e) => {
                // Unsupported option, invalid option, or no answer without a touch: gated.
                if matches!(
                    ctap_status(&format!("{e:#}")),
                    Some(
                        status::UNSUPPORTED_OPTION
                            | status::INVALID_OPTION
                            | status::OPERATION_DENIED
                            | status::NO_CREDENTIALS
                            | status::UP_REQUIRED
                    )
                ) {
                    return Ok(None);
                }
                return Err(classify(&e));
            }
        };
        Ok(assertions.first().and_then(|a| {
            a.extensions.iter().find_map(|e| match e {
                AssertionExtension::HmacSecret(Some(output)) => {
                    Some(SecretBytes::new(output.to_vec()))
                }
                _ => None,
            })
        }))
    })
}

/// Whether the key at `path` holds back `credential_id`'s hmac-secret until touched,
/// asked with a throwaway salt (nothing of the vault's goes to the key).
pub fn gates_hmac_secret_on_touch(path: &str, credential_id: &[u8]) -> Result<bool, KeyError> {
    let mut salt = [0u8; 32];
    crate::random::fill(&mut salt[..]);
    Ok(silent_hmac_secret(path, credential_id, salt)?.is_none())
}

/// Asks the key for its hmac-secret output for `salt` (needs a touch), after checking the
/// assertion's signature against the enrolled public key.
pub fn hmac_secret(
    path: &str,
    credential: &Credential,
    salt: [u8; 32],
    pin: Option<SecretString>,
    cancelled: &dyn Fn() -> bool,
) -> Result<SecretBytes, KeyError> {
    if credential.uses_pin && pin.is_none() {
        return Err(KeyError::PinRequired);
    }
    // The channel the request goes out on, for a cancel to name it.
    let channel = std::sync::Arc::new(std::sync::Mutex::new(None::<[u8; 4]>));
    let cancel = {
        let (path, channel) = (path.to_owned(), channel.clone());
        move || {
            if let Some(cid) = *channel.lock().expect("channel lock poisoned") {
                send_cancel(&path, cid);
            }
        }
    };
    let (path, credential) = (path.to_owned(), credential.clone());
    let op = move || {
        let key = open(&path)?;
        *channel.lock().expect("channel lock poisoned") = key.get_cid().ok();
        let mut challenge = [0u8; 32];
        crate::random::fill(&mut challenge[..]);
        let extensions = [AssertionExtension::HmacSecret(Some(salt))];
        let builder = GetAssertionArgsBuilder::new(RP_ID, &challenge)
            .credential_id(&credential.credential_id)
            .extensions(&extensions);
        let args = match (&pin, credential.uses_pin) {
            (Some(pin), true) => builder.pin(pin.expose()).build(),
            _ => builder.without_pin_and_uv().build(),
        };
        let assertions = key
            .get_assertion_with_args(&args)
            .map_err(|e| classify_at(&path, &e))?;
        let assertion = assertions.first().ok_or(KeyError::NotEnrolled)?;
        let public_key = PublicKey::with_der(&credential.public_key, PublicKeyType::Ecdsa256);
        if !ctap_hid_fido2::verifier::verify_assertion(RP_ID, &public_key, &challenge, assertion) {
            return Err(KeyError::BadSignature);
        }
        assertion
            .extensions
            .iter()
            .find_map(|e| match e {
                AssertionExtension::HmacSecret(Some(output)) => {
                    Some(SecretBytes::new(output.to_vec()))
                }
                _ => None,
            })
            // The credential was made with hmac-secret (enrolment checks): an answer
            // without its output is the key answering wrongly, not a key that cannot seal.
            .ok_or_else(|| {
                KeyError::Device(
                    "the key answered without the hmac-secret output its credential was made with"
                        .into(),
                )
            })
    };
    run_exclusive_until(TOUCH_DEADLINE, op, cancelled, cancel)
}

/// CTAPHID_CANCEL on channel `cid`: the key abandons the request waiting for a touch and
/// answers it with KEEPALIVE_CANCEL. Written to the hidraw node directly (a second open of
/// the device is allowed there), since the request's own handle is busy waiting.
fn send_cancel(path: &str, cid: [u8; 4]) {
    const CTAPHID_CANCEL: u8 = 0x80 | 0x11;
    // Report id 0, then one 64-byte initialisation packet with no payload.
    let mut packet = [0u8; 65];
    packet[1..5].copy_from_slice(&cid);
    packet[5] = CTAPHID_CANCEL;
    let sent = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut device| std::io::Write::write_all(&mut device, &packet));
    if let Err(e) = sent {
        tracing::warn!("failed to cancel the request on {path}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ctap-hid-fido2 reports a CTAP status as its code and name (ctapdef.rs).
    fn status(code: &str) -> KeyError {
        classify(&anyhow::anyhow!("get_assertion failed: {code}"))
    }

    #[test]
    fn three_wrong_pins_in_a_row_ask_for_a_replug_not_a_reset() {
        // CTAP 2.1 §6.5.5.5: PIN_AUTH_BLOCKED lasts until the key is power-cycled, while
        // PIN_BLOCKED (no retries left) lasts until the key is reset.
        let replug =
            status("0x34 CTAP2_ERR_PIN_AUTH_BLOCKED PIN authentication, pinAuth, blocked.");
        assert_eq!(replug, KeyError::PinAuthBlocked);
        // As the user reads them: what happened, and what to do.
        let said = crate::report::sentence(&replug);
        assert!(said.contains("unplug"), "{said}");
        assert!(!said.contains("reset"), "{said}");
        let blocked = status("0x32 CTAP2_ERR_PIN_BLOCKED PIN is blocked.");
        assert_eq!(blocked, KeyError::PinBlocked);
        let said = crate::report::sentence(&blocked);
        assert!(said.contains("reset"), "{said}");
        assert!(!said.contains("replug"), "{said}");
        assert_eq!(status("0x31 CTAP2_ERR_PIN_INVALID"), KeyError::WrongPin);
    }

    /// A number in the text that is no status (an offset in a parse error, a byte of a
    /// path) is not read as one; only `0xNN CTAP..._ERR_...` is.
    #[test]
    fn only_a_named_ctap_status_is_read_as_one() {
        for text in [
            "ciborium parse error at offset 0x31",
            "unexpected byte 0x2E in the answer",
            "read err = 0x2F",
            "/dev/hidraw0x34",
        ] {
            assert!(
                matches!(status(text), KeyError::Device(_)),
                "{text}: {:?}",
                status(text)
            );
        }
        assert_eq!(
            status("0x2F CTAP2_ERR_USER_ACTION_TIMEOUT"),
            KeyError::TouchTimeout
        );
        assert_eq!(
            status("0x2E CTAP2_ERR_NO_CREDENTIALS"),
            KeyError::NotEnrolled
        );
        assert_eq!(
            status("x 0x36 CTAP2_ERR_PUAT_REQUIRED"),
            KeyError::PinRequired
        );
        assert_eq!(ctap_status("0x6F"), None, "an unknown status has no name");
    }
}
