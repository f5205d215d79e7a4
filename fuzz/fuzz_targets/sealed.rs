//! Sealed blobs and wrapped data keys from a tampered store or index: they fail to open
//! (authentication), never open to something, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfa_agent::keys::seal::DataKey;
use mfa_agent::secret::SecretBytes;

fuzz_target!(|bytes: &[u8]| {
    let key = DataKey::generate();
    assert!(
        key.open("seed", bytes).is_err(),
        "a random key opens no blob"
    );
    let output = SecretBytes::new(vec![7; 32]);
    assert!(DataKey::unwrap(bytes, &output, b"credential").is_err());
    // What we seal opens, under its own id only.
    let sealed = key.seal("seed", bytes);
    assert_eq!(key.open("seed", &sealed).unwrap().expose(), bytes);
    assert!(key.open("other", &sealed).is_err());
});
