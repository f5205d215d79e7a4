//! Any line a client or an agent could send: parsed, never a panic; what parses serialises.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfa_agent::protocol::{Request, Response};

fuzz_target!(|line: &[u8]| {
    if let Ok(request) = serde_json::from_slice::<Request>(line) {
        serde_json::to_vec(&request).expect("a parsed request serialises");
    }
    if let Ok(response) = serde_json::from_slice::<Response>(line) {
        let _ = response.kind();
        serde_json::to_vec(&response).expect("a parsed response serialises");
    }
});
