//! A damaged or hostile seeds.json: an error, or an index that round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfa_agent::vault::Index;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(index) = serde_json::from_slice::<Index>(bytes) {
        let text = serde_json::to_vec(&index).expect("an index serialises");
        serde_json::from_slice::<Index>(&text).expect("and reads back");
    }
});
