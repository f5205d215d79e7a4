//! A key that answers with damaged CTAP2 messages, to fuzz the platform side (hidapi,
//! ctap-hid-fido2 and mfa-agent) with the answers a faulty, counterfeit or malicious key
//! could send. The HID framing stays intact, so each damaged answer reaches the CBOR and
//! COSE parsers of the real stack, which is where a key's bytes are trusted most.
//!
//! While the file given to --garble-file exists, each CTAP2 answer is damaged with
//! probability 1/3 (an operation takes several answers, so most operations meet one damaged
//! answer at some step, early or late). The file holds the random seed, so a run that found
//! something can be repeated; every damage done is logged (--garble-log) with the command
//! it answered.

use std::io::Write as _;

/// CBOR initial bytes that parsers treat specially: the ends of the small-integer range, the
/// one-to-eight-byte length prefixes, indefinite lengths, each major type's first byte,
/// false/true/null/undefined and "break".
const TELLING_BYTES: [u8; 20] = [
    0x00, 0x17, 0x18, 0x19, 0x1A, 0x1B, 0x1F, 0x20, 0x40, 0x5F, 0x60, 0x7F, 0x80, 0x9F, 0xA0,
    0xBF, 0xF4, 0xF5, 0xF6, 0xFF,
];

pub struct Garbler {
    file: String,
    log: Option<String>,
    /// splitmix64 state; None until the file is first seen.
    state: Option<u64>,
}

impl Garbler {
    pub fn new(file: String, log: Option<String>) -> Self {
        Self { file, log, state: None }
    }

    /// Damages `answer` (status byte first, then CBOR) to `request`, or leaves it alone.
    pub fn apply(&mut self, request: &[u8], answer: &mut Vec<u8>) {
        let Ok(seed) = std::fs::read_to_string(&self.file) else {
            self.state = None;
            return;
        };
        let state = self
            .state
            .get_or_insert_with(|| seed.trim().parse().expect("the garble file holds a decimal seed"));
        let mut random = || {
            *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = *state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        if random() % 3 != 0 || answer.is_empty() {
            return;
        }
        let below = |random: &mut dyn FnMut() -> u64, n: usize| (random() % n.max(1) as u64) as usize;
        let body = answer.len() - 1;
        let what = match random() % 8 {
            // The status byte: an error code where the request succeeded (or another one).
            0 => {
                let status = 1 + below(&mut random, 0x7F) as u8;
                answer.truncate(1);
                answer[0] = status;
                format!("status {status:#04x}, no body")
            }
            1 if body > 0 => {
                let at = 1 + below(&mut random, body);
                let bit = below(&mut random, 8);
                answer[at] ^= 1 << bit;
                format!("bit {bit} of byte {at} flipped")
            }
            2 if body > 0 => {
                let at = 1 + below(&mut random, body);
                let byte = TELLING_BYTES[below(&mut random, TELLING_BYTES.len())];
                answer[at] = byte;
                format!("byte {at} set to {byte:#04x}")
            }
            3 if body > 0 => {
                let len = 1 + below(&mut random, body);
                answer.truncate(len);
                format!("cut to {len} bytes")
            }
            4 => {
                let extra = 1 + below(&mut random, 16);
                answer.extend((0..extra).map(|_| random() as u8));
                format!("{extra} random bytes appended")
            }
            5 if body > 0 => {
                let at = 1 + below(&mut random, body);
                let run = (1 + below(&mut random, 8)).min(answer.len() - at);
                for byte in &mut answer[at..at + run] {
                    *byte = random() as u8;
                }
                format!("{run} random bytes at {at}")
            }
            6 if body > 0 => {
                let from = 1 + below(&mut random, body);
                let len = 1 + below(&mut random, (answer.len() - from).min(32));
                let to = 1 + below(&mut random, body);
                let copy = answer[from..from + len].to_vec();
                answer.splice(to..to, copy);
                format!("{len} bytes from {from} repeated at {to}")
            }
            _ => {
                answer.truncate(1);
                answer[0] = 0;
                "success with no body".to_owned()
            }
        };
        let command = request.first().copied().unwrap_or(0);
        if let Some(log) = &self.log
            && let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(log)
        {
            let _ = writeln!(file, "answer to command {command:#04x} ({} bytes): {what}", body + 1);
        }
    }
}
