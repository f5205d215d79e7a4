//! `--u2f`: a U2F-only (CTAP1) key, as older keys are: register and authenticate APDUs over
//! CTAPHID_MSG, no CTAP2 at all. Signatures are real ES256 (soft-fido2-crypto), so the
//! agent's check against the registered public key is a real check.

use std::collections::HashMap;

use soft_fido2_crypto::ecdsa;
use soft_fido2_transport::{Cmd, CommandHandler};

use crate::Presence;

const SW_OK: [u8; 2] = [0x90, 0x00];
const SW_CONDITIONS_NOT_SATISFIED: [u8; 2] = [0x69, 0x85];
const SW_WRONG_DATA: [u8; 2] = [0x6A, 0x80];
const SW_INS_NOT_SUPPORTED: [u8; 2] = [0x6D, 0x00];

pub struct U2fHandler {
    pub presence: Presence,
    /// Key handle -> private key.
    keys: HashMap<Vec<u8>, [u8; 32]>,
    counter: u32,
    /// `--replay-file FILE`: while FILE exists, a touched authentication is answered with
    /// the first answer this key ever gave (an attacker's recording of one approval),
    /// whatever it was asked to sign.
    replay_file: Option<std::path::PathBuf>,
    first_answer: Option<Vec<u8>>,
}

impl U2fHandler {
    pub fn new(presence: Presence, replay_file: Option<std::path::PathBuf>) -> Self {
        Self { presence, keys: HashMap::new(), counter: 0, replay_file, first_answer: None }
    }

    fn register(&mut self, data: &[u8]) -> Vec<u8> {
        let (Some(challenge), Some(app)) = (data.get(..32), data.get(32..64)) else {
            return SW_WRONG_DATA.to_vec();
        };
        if !self.presence.touch() {
            return SW_CONDITIONS_NOT_SATISFIED.to_vec();
        }
        let (private, public) = ecdsa::generate_keypair();
        let handle: Vec<u8> = ecdsa::generate_keypair().1[1..33].to_vec(); // 32 random bytes
        let mut signed = vec![0x00];
        signed.extend_from_slice(app);
        signed.extend_from_slice(challenge);
        signed.extend_from_slice(&handle);
        signed.extend_from_slice(&public);
        let signature = ecdsa::sign(&private, &signed).expect("signing works");
        self.keys.insert(handle.clone(), *private);
        let mut out = vec![0x05];
        out.extend_from_slice(&public);
        out.push(u8::try_from(handle.len()).unwrap());
        out.extend_from_slice(&handle);
        // A stand-in attestation certificate: an empty DER SEQUENCE (nobody checks it).
        out.extend_from_slice(&[0x30, 0x00]);
        out.extend_from_slice(&signature);
        out.extend_from_slice(&SW_OK);
        out
    }

    fn authenticate(&mut self, p1: u8, data: &[u8]) -> Vec<u8> {
        let (Some(challenge), Some(app), Some(&len)) = (data.get(..32), data.get(32..64), data.get(64)) else {
            return SW_WRONG_DATA.to_vec();
        };
        let Some(handle) = data.get(65..65 + usize::from(len)) else {
            return SW_WRONG_DATA.to_vec();
        };
        let Some(private) = self.keys.get(handle).copied() else {
            return SW_WRONG_DATA.to_vec();
        };
        // 0x07 check-only: "this handle is mine", answered as the spec says, without a touch.
        if p1 == 0x07 || !self.presence.touch() {
            return SW_CONDITIONS_NOT_SATISFIED.to_vec();
        }
        if let (Some(recorded), Some(file)) = (&self.first_answer, &self.replay_file)
            && file.exists()
        {
            return recorded.clone();
        }
        self.counter += 1;
        let mut signed = app.to_vec();
        signed.push(0x01);
        signed.extend_from_slice(&self.counter.to_be_bytes());
        signed.extend_from_slice(challenge);
        let signature = ecdsa::sign(&private, &signed).expect("signing works");
        let mut out = vec![0x01];
        out.extend_from_slice(&self.counter.to_be_bytes());
        out.extend_from_slice(&signature);
        out.extend_from_slice(&SW_OK);
        self.first_answer.get_or_insert_with(|| out.clone());
        out
    }
}

impl CommandHandler for U2fHandler {
    fn handle_command(&mut self, cmd: Cmd, apdu: &[u8]) -> soft_fido2_transport::Result<Vec<u8>> {
        if cmd != Cmd::Msg {
            // No CTAP2 here: getInfo and friends are unknown commands, as on a U2F-only key.
            return Err(soft_fido2_transport::Error::InvalidCommand);
        }
        let [_cla, ins, p1, _p2, rest @ ..] = apdu else {
            return Ok(SW_WRONG_DATA.to_vec());
        };
        // Extended length: 00 LL LL, then the data (a trailing Le is ignored).
        let data = match rest {
            [0, hi, lo, tail @ ..] => {
                let len = usize::from(*hi) << 8 | usize::from(*lo);
                tail.get(..len).unwrap_or(tail)
            }
            _ => &[],
        };
        Ok(match ins {
            0x01 => self.register(data),
            0x02 => self.authenticate(*p1, data),
            0x03 => [b"U2F_V2".as_slice(), &SW_OK].concat(),
            _ => SW_INS_NOT_SUPPORTED.to_vec(),
        })
    }
}
