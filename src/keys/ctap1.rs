//! U2F (CTAP1) over CTAPHID, on hidapi: what approve-only keys speak. A U2F key has no
//! hmac-secret, so it cannot seal; it can prove a touch. Registration makes a key pair on the
//! key; each approval is an authentication whose signature is checked against that public
//! key, so a touch on some other key never counts.

use std::ffi::CString;
use std::time::{Duration, Instant};

use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{DerSignature, VerifyingKey};
use sha2::{Digest, Sha256};

use super::{KeyError, RP_ID, run_exclusive_until};

const PACKET: usize = 64;
const CTAPHID_MSG: u8 = 0x80 | 0x03;
const CTAPHID_INIT: u8 = 0x80 | 0x06;
const CTAPHID_KEEPALIVE: u8 = 0x80 | 0x3B;
const CTAPHID_ERROR: u8 = 0x80 | 0x3F;
const BROADCAST: [u8; 4] = [0xFF; 4];

const SW_OK: u16 = 0x9000;
/// "Touch needed" (or, for check-only, "this handle is mine").
const SW_CONDITIONS_NOT_SATISFIED: u16 = 0x6985;
/// "Not my key handle".
const SW_WRONG_DATA: u16 = 0x6A80;

/// How long one packet may take to come back.
const READ_TIMEOUT_MS: i32 = 2000;
/// How often a key waiting for its touch is asked again.
const TOUCH_POLL: Duration = Duration::from_millis(200);

/// What registration leaves to store.
#[derive(Debug, Clone)]
pub struct Registration {
    pub key_handle: Vec<u8>,
    /// Uncompressed SEC1 P-256 point (65 bytes).
    pub public_key: Vec<u8>,
}

/// The application parameter every mfa-agent registration is bound to.
fn app_param() -> [u8; 32] {
    Sha256::digest(RP_ID.as_bytes()).into()
}

struct Channel {
    device: hidapi::HidDevice,
    cid: [u8; 4],
}

impl Channel {
    fn open(path: &str) -> Result<Self, KeyError> {
        let api = hidapi::HidApi::new().map_err(|e| KeyError::HidUnavailable {
            detail: e.to_string(),
        })?;
        let c_path =
            CString::new(path).map_err(|_| KeyError::Device(format!("bad path {path:?}")))?;
        let device = api
            .open_path(&c_path)
            .map_err(|e| KeyError::Device(format!("cannot open {path}: {e}")))?;
        let mut channel = Self {
            device,
            cid: BROADCAST,
        };
        let mut nonce = [0u8; 8];
        crate::random::fill(&mut nonce[..]);
        let reply = channel.transact(CTAPHID_INIT, &nonce)?;
        if reply.len() < 12 || reply[..8] != nonce {
            return Err(KeyError::Device("the key answered INIT oddly".into()));
        }
        channel.cid.copy_from_slice(&reply[8..12]);
        Ok(channel)
    }

    /// One CTAPHID request and its response, split into and joined from 64-byte packets.
    fn transact(&mut self, cmd: u8, data: &[u8]) -> Result<Vec<u8>, KeyError> {
        let io = |e: hidapi::HidError| KeyError::Device(e.to_string());
        let len =
            u16::try_from(data.len()).map_err(|_| KeyError::Device("request too long".into()))?;
        let mut packet = [0u8; PACKET + 1]; // report id 0 first
        packet[1..5].copy_from_slice(&self.cid);
        packet[5] = cmd;
        packet[6..8].copy_from_slice(&len.to_be_bytes());
        let first = data.len().min(PACKET - 7);
        packet[8..8 + first].copy_from_slice(&data[..first]);
        self.device.write(&packet).map_err(io)?;
        for (seq, chunk) in data[first..].chunks(PACKET - 5).enumerate() {
            let mut packet = [0u8; PACKET + 1];
            packet[1..5].copy_from_slice(&self.cid);
            packet[5] =
                u8::try_from(seq).map_err(|_| KeyError::Device("request too long".into()))?;
            packet[6..6 + chunk.len()].copy_from_slice(chunk);
            self.device.write(&packet).map_err(io)?;
        }
        // The answer: skip keep-alives and other channels' packets.
        let mut buf = [0u8; PACKET];
        let (total, mut body) = loop {
            let n = self
                .device
                .read_timeout(&mut buf, READ_TIMEOUT_MS)
                .map_err(io)?;
            if n == 0 {
                return Err(KeyError::Timeout(Duration::from_millis(
                    READ_TIMEOUT_MS.unsigned_abs().into(),
                )));
            }
            if buf[..4] != self.cid[..] && cmd != CTAPHID_INIT {
                continue;
            }
            match buf[4] {
                CTAPHID_KEEPALIVE => {}
                CTAPHID_ERROR => {
                    return Err(KeyError::Device(format!("CTAPHID error 0x{:02x}", buf[7])));
                }
                answer if answer == cmd => {
                    let total = usize::from(u16::from_be_bytes([buf[5], buf[6]]));
                    break (total, buf[7..PACKET].to_vec());
                }
                _ => {}
            }
        };
        while body.len() < total {
            let n = self
                .device
                .read_timeout(&mut buf, READ_TIMEOUT_MS)
                .map_err(io)?;
            if n == 0 {
                return Err(KeyError::Device(
                    "the key stopped answering mid-response".into(),
                ));
            }
            if buf[..4] == self.cid[..] {
                body.extend_from_slice(&buf[5..PACKET]);
            }
        }
        body.truncate(total);
        Ok(body)
    }

    /// One APDU (extended length); returns the response data and the status word.
    fn apdu(&mut self, ins: u8, p1: u8, data: &[u8]) -> Result<(Vec<u8>, u16), KeyError> {
        let len =
            u16::try_from(data.len()).map_err(|_| KeyError::Device("APDU too long".into()))?;
        let mut apdu = vec![0x00, ins, p1, 0x00, 0x00];
        apdu.extend_from_slice(&len.to_be_bytes());
        apdu.extend_from_slice(data);
        apdu.extend_from_slice(&[0x00, 0x00]);
        let mut reply = self.transact(CTAPHID_MSG, &apdu)?;
        if reply.len() < 2 {
            return Err(KeyError::Device("the key sent a short U2F answer".into()));
        }
        let sw = u16::from_be_bytes([reply[reply.len() - 2], reply[reply.len() - 1]]);
        reply.truncate(reply.len() - 2);
        Ok((reply, sw))
    }

    /// Repeats an APDU while the key waits for its touch (U2F keys answer "conditions not
    /// satisfied" until touched), until `deadline` or a cancel.
    fn with_touch(
        &mut self,
        ins: u8,
        p1: u8,
        data: &[u8],
        deadline: Instant,
    ) -> Result<Vec<u8>, KeyError> {
        loop {
            match self.apdu(ins, p1, data)? {
                (reply, SW_OK) => return Ok(reply),
                (_, SW_CONDITIONS_NOT_SATISFIED) if Instant::now() < deadline => {
                    std::thread::sleep(TOUCH_POLL);
                }
                (_, SW_CONDITIONS_NOT_SATISFIED) => return Err(KeyError::TouchTimeout),
                (_, SW_WRONG_DATA) => return Err(KeyError::NotEnrolled),
                (_, sw) => return Err(KeyError::Device(format!("U2F status 0x{sw:04x}"))),
            }
        }
    }
}

/// Whether the key at `path` speaks U2F (answers U2F_VERSION with "U2F_V2").
#[must_use]
pub fn speaks_u2f(path: &str) -> bool {
    let path = path.to_owned();
    super::run_exclusive(Duration::from_secs(5), move || {
        let (version, sw) = Channel::open(&path)?.apdu(0x03, 0, &[])?;
        Ok(sw == SW_OK && version == b"U2F_V2")
    })
    .unwrap_or(false)
}

/// Registers with the key at `path` (one touch).
pub fn register(path: &str, touch_deadline: Duration) -> Result<Registration, KeyError> {
    let path = path.to_owned();
    super::run_exclusive(touch_deadline + Duration::from_secs(5), move || {
        let mut channel = Channel::open(&path)?;
        let mut data = challenge().to_vec();
        data.extend_from_slice(&app_param());
        let reply = channel.with_touch(0x01, 0x03, &data, Instant::now() + touch_deadline)?;
        parse_registration(&reply)
    })
}

/// A U2F registration response: `0x05 | public key (65) | handle length | handle |
/// certificate | signature`. Whatever a device sends is checked, never trusted.
pub fn parse_registration(reply: &[u8]) -> Result<Registration, KeyError> {
    let bad = || KeyError::Device("the key sent a malformed U2F registration".into());
    if reply.first() != Some(&0x05) || reply.len() < 67 {
        return Err(bad());
    }
    let public_key = reply[1..66].to_vec();
    let handle_len = usize::from(reply[66]);
    let key_handle = reply.get(67..67 + handle_len).ok_or_else(bad)?.to_vec();
    VerifyingKey::from_sec1_bytes(&public_key).map_err(|_| bad())?;
    Ok(Registration {
        key_handle,
        public_key,
    })
}

/// Whether the key at `path` holds `key_handle`, asked without a touch (check-only).
pub fn holds(path: &str, key_handle: &[u8]) -> Result<bool, KeyError> {
    let (path, data) = (
        path.to_owned(),
        authenticate_data(&challenge(), key_handle)?,
    );
    super::run_exclusive(Duration::from_secs(5), move || {
        match Channel::open(&path)?.apdu(0x02, 0x07, &data)?.1 {
            SW_CONDITIONS_NOT_SATISFIED => Ok(true),
            _ => Ok(false),
        }
    })
}

/// A touch on the key at `path`, proven by a signature of `registration`'s key over a fresh
/// challenge. `cancelled` ends the wait early.
pub fn approve(
    path: &str,
    registration: &Registration,
    touch_deadline: Duration,
    cancelled: &dyn Fn() -> bool,
) -> Result<(), KeyError> {
    let challenge = challenge();
    let data = authenticate_data(&challenge, &registration.key_handle)?;
    let path = path.to_owned();
    // U2F has no cancel message to send: the polling loop stops at this flag instead.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_seen = stop.clone();
    let poll_until_touched = move || {
        let mut channel = Channel::open(&path)?;
        let deadline = Instant::now() + touch_deadline;
        loop {
            if stop_seen.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(KeyError::Cancelled);
            }
            match channel.with_touch(
                0x02,
                0x03,
                &data,
                (Instant::now() + TOUCH_POLL).min(deadline),
            ) {
                Err(KeyError::TouchTimeout) if Instant::now() < deadline => {}
                other => return other,
            }
        }
    };
    let reply = run_exclusive_until(
        touch_deadline + Duration::from_secs(5),
        poll_until_touched,
        cancelled,
        move || stop.store(true, std::sync::atomic::Ordering::Relaxed),
    )?;
    check_authentication(&reply, registration, &challenge)
}

/// A U2F authentication response: `user presence (1) | counter (4) | signature` over app,
/// presence, counter and `challenge`, checked against the registered key.
pub fn check_authentication(
    reply: &[u8],
    registration: &Registration,
    challenge: &[u8; 32],
) -> Result<(), KeyError> {
    if reply.len() < 6 || reply[0] & 0x01 == 0 {
        return Err(KeyError::Device("the key did not confirm the touch".into()));
    }
    let mut signed = app_param().to_vec();
    signed.extend_from_slice(&reply[..5]);
    signed.extend_from_slice(challenge);
    let key = VerifyingKey::from_sec1_bytes(&registration.public_key)
        .map_err(|_| KeyError::BadSignature)?;
    let signature = DerSignature::from_bytes(&reply[5..]).map_err(|_| KeyError::BadSignature)?;
    key.verify(&signed, &signature)
        .map_err(|_| KeyError::BadSignature)
}

fn challenge() -> [u8; 32] {
    let mut nonce = [0u8; 32];
    crate::random::fill(&mut nonce[..]);
    Sha256::digest(nonce).into()
}

fn authenticate_data(challenge: &[u8; 32], key_handle: &[u8]) -> Result<Vec<u8>, KeyError> {
    let len = u8::try_from(key_handle.len())
        .map_err(|_| KeyError::Device("the enrolled key handle is damaged".into()))?;
    let mut data = challenge.to_vec();
    data.extend_from_slice(&app_param());
    data.push(len);
    data.extend_from_slice(key_handle);
    Ok(data)
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::signature::Signer as _;
    use p256::ecdsa::{Signature, SigningKey};

    use super::*;

    /// What a U2F key with `key` answers to an authentication for `challenge`.
    fn answer(key: &SigningKey, counter: u32, challenge: &[u8; 32]) -> Vec<u8> {
        let mut reply = vec![0x01];
        reply.extend_from_slice(&counter.to_be_bytes());
        let mut signed = app_param().to_vec();
        signed.extend_from_slice(&reply);
        signed.extend_from_slice(challenge);
        let signature: Signature = key.sign(&signed);
        reply.extend_from_slice(signature.to_der().as_bytes());
        reply
    }

    fn registration_of(key: &SigningKey) -> Registration {
        Registration {
            key_handle: vec![1; 32],
            public_key: key
                .verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
        }
    }

    #[test]
    fn a_recorded_approval_does_not_approve_again() {
        let key = SigningKey::from_bytes(&[7u8; 32].into()).unwrap();
        let registration = registration_of(&key);
        let (first, second) = (challenge(), challenge());
        assert_ne!(first, second, "each approval signs a fresh challenge");
        let recorded = answer(&key, 1, &first);
        check_authentication(&recorded, &registration, &first).unwrap();
        assert!(matches!(
            check_authentication(&recorded, &registration, &second),
            Err(KeyError::BadSignature)
        ));
    }

    #[test]
    fn an_answer_without_presence_or_from_another_key_is_refused() {
        let key = SigningKey::from_bytes(&[7u8; 32].into()).unwrap();
        let challenge = challenge();
        let mut untouched = answer(&key, 1, &challenge);
        untouched[0] = 0x00;
        assert!(check_authentication(&untouched, &registration_of(&key), &challenge).is_err());
        let stranger = SigningKey::from_bytes(&[9u8; 32].into()).unwrap();
        assert!(matches!(
            check_authentication(
                &answer(&stranger, 1, &challenge),
                &registration_of(&key),
                &challenge
            ),
            Err(KeyError::BadSignature)
        ));
    }
}
