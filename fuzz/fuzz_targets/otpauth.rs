//! otpauth:// URIs, base32 secrets and Google Authenticator export links as users paste
//! them: an error or valid seeds, and a seed that parses formats back to a URI that parses
//! to the same parameters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfa_agent::otp::{decode_base32, migration, uri};

fuzz_target!(|text: &str| {
    let _ = decode_base32(text);
    // With the prefix, so that the data itself gets fuzzed.
    for seed in migration::parse(&format!("otpauth-migration://offline?data={text}"))
        .map(|export| export.seeds)
        .unwrap_or_default()
    {
        seed.validate().expect("an imported seed is valid");
    }
    if let Ok(seed) = uri::parse(text) {
        let again = uri::parse(uri::format(&seed, "fuzz").expose()).expect("our own URI parses");
        assert_eq!(again.params, seed.params);
        assert_eq!(again.secret.expose(), seed.secret.expose());
    }
});
