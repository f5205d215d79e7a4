//! otpauth:// URIs and base32 secrets as users paste them: an error or a valid seed, and a
//! seed that parses formats back to a URI that parses to the same parameters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfa_agent::otp::{decode_base32, uri};

fuzz_target!(|text: &str| {
    let _ = decode_base32(text);
    if let Ok(seed) = uri::parse(text) {
        let again = uri::parse(uri::format(&seed, "fuzz").expose()).expect("our own URI parses");
        assert_eq!(again.params, seed.params);
        assert_eq!(again.secret.expose(), seed.secret.expose());
    }
});
