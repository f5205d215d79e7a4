//! Sealing seeds so that only an enrolled security key can open them.
//!
//! A random data key seals each secret with XChaCha20-Poly1305, the AAD binding it to its id
//! (a sealed secret moved to another id does not open). The data key is wrapped once per
//! enrolled key under KEK = HKDF-SHA256(the key's hmac-secret output, "mfa-agent kek v1"),
//! with the credential id as AAD; several keys (a backup!) wrap the same data key. A wrong
//! key or a changed byte is an authentication failure, never garbage plaintext.
//!
//! Keys enrolled since vault format 2 wrap it to a public key instead ("v2"): the key's
//! hmac-secret output is the private half of an X25519 key pair (through HKDF, "mfa-agent
//! recipient v1"), whose public half the index keeps. Wrapping is then an ephemeral-static
//! Diffie-Hellman (KEK = HKDF-SHA256(shared, salt = ephemeral || recipient, "mfa-agent wrap
//! v2")), and needs no touch: removing a key re-keys the vault with one touch in all (to
//! open the old data key), not one per remaining key.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::secret::SecretBytes;

const KEK_INFO: &[u8] = b"mfa-agent kek v1";
const RECIPIENT_INFO: &[u8] = b"mfa-agent recipient v1";
const WRAP_TO_INFO: &[u8] = b"mfa-agent wrap v2";
/// An X25519 public key.
pub const RECIPIENT_LEN: usize = 32;
const NONCE_LEN: usize = 24;
pub const KEY_LEN: usize = 32;

/// Why a sealed value does not open. What to do about each is in `crate::advice`.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SealError {
    #[error(
        "the security key's answer does not open this vault (another key, another PIN setting, or a damaged entry)"
    )]
    WrongKey,
    #[error(
        "a sealed secret failed its integrity check (changed on disk or in the keyring, or moved between names)"
    )]
    Tampered,
    #[error("a sealed value is truncated")]
    Truncated,
    /// Not the form mfa-agent writes (not base64, or not text once opened).
    #[error("a sealed value is damaged ({0})")]
    Damaged(String),
    #[error("an enrolled key's public half in the index is damaged")]
    BadRecipient,
}

/// The key that seals every seed of a vault.
#[derive(Clone)]
pub struct DataKey(SecretBytes);

impl DataKey {
    /// A fresh random data key.
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; KEY_LEN];
        crate::random::fill(&mut bytes[..]);
        Self(SecretBytes::new(bytes))
    }

    /// Seals `plaintext` for the secret named `id`.
    #[must_use]
    pub fn seal(&self, id: &str, plaintext: &[u8]) -> Vec<u8> {
        encrypt(self.0.expose(), id.as_bytes(), plaintext)
    }

    /// Opens what [`DataKey::seal`] sealed for `id`.
    pub fn open(&self, id: &str, sealed: &[u8]) -> Result<SecretBytes, SealError> {
        decrypt(self.0.expose(), id.as_bytes(), sealed).map_err(|e| {
            if e == SealError::WrongKey {
                SealError::Tampered
            } else {
                e
            }
        })
    }

    /// Wraps this data key for one enrolled security key, given that key's hmac-secret
    /// output for its salt.
    #[must_use]
    pub fn wrap(&self, hmac_output: &SecretBytes, credential_id: &[u8]) -> Vec<u8> {
        let kek = derive_kek(hmac_output);
        encrypt(kek.expose(), credential_id, self.0.expose())
    }

    /// Recovers the data key from a wrap, given the hmac-secret output of the key it was
    /// wrapped for.
    pub fn unwrap(
        wrapped: &[u8],
        hmac_output: &SecretBytes,
        credential_id: &[u8],
    ) -> Result<Self, SealError> {
        let kek = derive_kek(hmac_output);
        let key = decrypt(kek.expose(), credential_id, wrapped)?;
        if key.len() != KEY_LEN {
            return Err(SealError::WrongKey);
        }
        Ok(Self(key))
    }
}

impl DataKey {
    /// A MAC of `message` under a key derived from this data key for `purpose` (HKDF-SHA256
    /// info), HMAC-SHA256: what the vault's index proves with it cannot be changed by
    /// whoever lacks the data key.
    #[must_use]
    pub fn authenticate(&self, purpose: &[u8], message: &[u8]) -> Vec<u8> {
        self.mac(purpose, message).finalize().into_bytes().to_vec()
    }

    /// Whether `tag` is [`DataKey::authenticate`]'s for `message` (in constant time).
    #[must_use]
    pub fn verify(&self, purpose: &[u8], message: &[u8], tag: &[u8]) -> bool {
        self.mac(purpose, message).verify_slice(tag).is_ok()
    }

    fn mac(&self, purpose: &[u8], message: &[u8]) -> Hmac<Sha256> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        Hkdf::<Sha256>::new(None, self.0.expose())
            .expand(purpose, &mut key[..])
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&key[..]).expect("HMAC takes any key length");
        mac.update(message);
        mac
    }

    /// Wraps this data key to the public half (`recipient_of`) of an enrolled key's
    /// hmac-secret output: no touch needed. Refuses a recipient that would make the shared
    /// secret predictable (a low-order point, which a damaged index could hold).
    pub fn wrap_to(&self, recipient: &[u8], credential_id: &[u8]) -> Result<Vec<u8>, SealError> {
        let recipient: [u8; RECIPIENT_LEN] =
            recipient.try_into().map_err(|_| SealError::BadRecipient)?;
        let mut ephemeral = Zeroizing::new([0u8; 32]);
        crate::random::fill(&mut ephemeral[..]);
        let ephemeral = StaticSecret::from(*ephemeral);
        let ephemeral_public = PublicKey::from(&ephemeral);
        let shared = ephemeral.diffie_hellman(&PublicKey::from(recipient));
        if !shared.was_contributory() {
            return Err(SealError::BadRecipient);
        }
        let kek = wrap_to_kek(shared.as_bytes(), ephemeral_public.as_bytes(), &recipient);
        let mut out = ephemeral_public.as_bytes().to_vec();
        out.extend(encrypt(kek.expose(), credential_id, self.0.expose()));
        Ok(out)
    }

    /// Recovers the data key from a [`DataKey::wrap_to`] wrap, given the hmac-secret output
    /// of the key it was wrapped to.
    pub fn unwrap_from(
        wrapped: &[u8],
        hmac_output: &SecretBytes,
        credential_id: &[u8],
    ) -> Result<Self, SealError> {
        if wrapped.len() < RECIPIENT_LEN + NONCE_LEN + 16 {
            return Err(SealError::Truncated);
        }
        let (ephemeral, sealed) = wrapped.split_at(RECIPIENT_LEN);
        let ephemeral: [u8; RECIPIENT_LEN] = ephemeral.try_into().expect("split at its length");
        let secret = recipient_secret(hmac_output);
        let recipient = PublicKey::from(&secret);
        let shared = secret.diffie_hellman(&PublicKey::from(ephemeral));
        if !shared.was_contributory() {
            return Err(SealError::WrongKey);
        }
        let kek = wrap_to_kek(shared.as_bytes(), &ephemeral, recipient.as_bytes());
        let key = decrypt(kek.expose(), credential_id, sealed)?;
        if key.len() != KEY_LEN {
            return Err(SealError::WrongKey);
        }
        Ok(Self(key))
    }
}

/// The public half of the X25519 key pair that a security key's hmac-secret output stands
/// for: what the index keeps so that a new data key can be wrapped to it without a touch.
#[must_use]
pub fn recipient_of(hmac_output: &SecretBytes) -> Vec<u8> {
    PublicKey::from(&recipient_secret(hmac_output))
        .as_bytes()
        .to_vec()
}

fn recipient_secret(hmac_output: &SecretBytes) -> StaticSecret {
    let mut bytes = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(None, hmac_output.expose())
        .expand(RECIPIENT_INFO, &mut bytes[..])
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    StaticSecret::from(*bytes)
}

fn wrap_to_kek(shared: &[u8], ephemeral: &[u8], recipient: &[u8]) -> SecretBytes {
    let mut salt = Vec::with_capacity(2 * RECIPIENT_LEN);
    salt.extend_from_slice(ephemeral);
    salt.extend_from_slice(recipient);
    let mut kek = vec![0u8; KEY_LEN];
    Hkdf::<Sha256>::new(Some(&salt), shared)
        .expand(WRAP_TO_INFO, &mut kek)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    SecretBytes::new(kek)
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey([redacted])")
    }
}

fn derive_kek(hmac_output: &SecretBytes) -> SecretBytes {
    let mut kek = vec![0u8; KEY_LEN];
    Hkdf::<Sha256>::new(None, hmac_output.expose())
        .expand(KEK_INFO, &mut kek)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    SecretBytes::new(kek)
}

/// nonce || ciphertext+tag.
fn encrypt(key: &[u8], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new_from_slice(key).expect("keys are 32 bytes");
    let mut nonce = [0u8; NONCE_LEN];
    crate::random::fill(&mut nonce[..]);
    let ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
    let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    out
}

fn decrypt(key: &[u8], aad: &[u8], sealed: &[u8]) -> Result<SecretBytes, SealError> {
    if sealed.len() < NONCE_LEN + 16 {
        return Err(SealError::Truncated);
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let cipher = XChaCha20Poly1305::new_from_slice(key).expect("keys are 32 bytes");
    let plaintext = cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| SealError::WrongKey)?;
    // SecretBytes copies into its own locked buffer and wipes this one.
    Ok(SecretBytes::new(plaintext))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hmac(byte: u8) -> SecretBytes {
        SecretBytes::new(vec![byte; 32])
    }

    #[test]
    fn seeds_round_trip_through_every_enrolled_key() {
        let data_key = DataKey::generate();
        let sealed = data_key.seal("vault/work", b"ABCDEFGHIJKLMNOP");
        assert!(
            !sealed.windows(8).any(|w| w == b"ABCDEFGH"),
            "no plaintext in the sealed form"
        );

        // Two keys (main and backup) wrap the same data key; either one opens the seeds.
        let main = data_key.wrap(&hmac(1), b"cred-main");
        let backup = data_key.wrap(&hmac(2), b"cred-backup");
        for (wrapped, output, id) in [
            (&main, hmac(1), b"cred-main".as_slice()),
            (&backup, hmac(2), b"cred-backup"),
        ] {
            let opened = DataKey::unwrap(wrapped, &output, id).unwrap();
            assert_eq!(
                opened.open("vault/work", &sealed).unwrap().expose(),
                b"ABCDEFGHIJKLMNOP"
            );
        }
    }

    #[test]
    fn a_wrap_to_a_public_half_opens_only_with_that_keys_answer() {
        let data_key = DataKey::generate();
        let sealed = data_key.seal("vault/work", b"ABCDEFGHIJKLMNOP");
        // Wrapped with no answer from the key at hand: only its public half.
        let wrapped = data_key.wrap_to(&recipient_of(&hmac(1)), b"cred").unwrap();
        let opened = DataKey::unwrap_from(&wrapped, &hmac(1), b"cred").unwrap();
        assert_eq!(
            opened.open("vault/work", &sealed).unwrap().expose(),
            b"ABCDEFGHIJKLMNOP"
        );
        // Fresh ephemeral each time: two wraps of one key differ.
        assert_ne!(
            wrapped,
            data_key.wrap_to(&recipient_of(&hmac(1)), b"cred").unwrap()
        );
        for (output, id) in [(hmac(2), b"cred".as_slice()), (hmac(1), b"other")] {
            assert_eq!(
                DataKey::unwrap_from(&wrapped, &output, id).unwrap_err(),
                SealError::WrongKey
            );
        }
        let mut tampered = wrapped.clone();
        tampered[3] ^= 1;
        assert!(DataKey::unwrap_from(&tampered, &hmac(1), b"cred").is_err());
        // A damaged index holding a low-order point (or a short one) wraps nothing: the
        // shared secret would be known to anyone.
        for bad in [vec![0u8; 32], vec![1u8; 31]] {
            assert_eq!(
                data_key.wrap_to(&bad, b"cred").unwrap_err(),
                SealError::BadRecipient
            );
        }
    }

    #[test]
    fn a_wrong_key_or_a_changed_byte_is_refused() {
        let data_key = DataKey::generate();
        let wrapped = data_key.wrap(&hmac(1), b"cred");
        // Another key's answer, or the same key with PIN/UV on when it was off (which makes
        // hmac-secret answer differently), does not unwrap.
        assert_eq!(
            DataKey::unwrap(&wrapped, &hmac(9), b"cred").unwrap_err(),
            SealError::WrongKey
        );
        assert_eq!(
            DataKey::unwrap(&wrapped, &hmac(1), b"other-cred").unwrap_err(),
            SealError::WrongKey
        );

        let sealed = data_key.seal("vault/work", b"secret-seed-bytes");
        for i in [0, 30, sealed.len() - 1] {
            let mut tampered = sealed.clone();
            tampered[i] ^= 1;
            assert_eq!(
                data_key.open("vault/work", &tampered).unwrap_err(),
                SealError::Tampered,
                "byte {i}"
            );
        }
        assert_eq!(
            data_key.open("vault/other", &sealed).unwrap_err(),
            SealError::Tampered,
            "bound to its id"
        );
        assert_eq!(
            data_key.open("vault/work", &sealed[..20]).unwrap_err(),
            SealError::Truncated
        );
        let stranger = DataKey::generate();
        assert_eq!(
            stranger.open("vault/work", &sealed).unwrap_err(),
            SealError::Tampered
        );
    }
}
