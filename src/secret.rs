//! Containers for secret bytes: zeroed on drop, kept out of swap where possible, never printed.

use std::fmt;

use zeroize::Zeroize;

use crate::sys;

/// Secret bytes in a fixed heap allocation that is mlocked (best effort) and zeroed on drop.
///
/// The allocation never grows, so no copy of the secret is left behind by a reallocation.
/// `Debug` prints only the length.
pub struct SecretBytes {
    bytes: Box<[u8]>,
    locked: bool,
}

impl SecretBytes {
    /// Takes ownership of `bytes`, zeroing any spare capacity the vector carried.
    #[must_use]
    pub fn new(mut bytes: Vec<u8>) -> Self {
        // `into_boxed_slice` reallocates when len < capacity; copy out first so that the
        // old buffer can be wiped rather than freed with the secret still in it.
        let boxed: Box<[u8]> = bytes.as_slice().into();
        bytes.zeroize();
        let locked = sys::mlock(&boxed);
        Self {
            bytes: boxed,
            locked,
        }
    }

    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl Clone for SecretBytes {
    fn clone(&self) -> Self {
        Self::new(self.bytes.to_vec())
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        self.bytes.zeroize();
        if self.locked {
            sys::munlock(&self.bytes);
        }
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes([redacted; {} bytes])", self.bytes.len())
    }
}

/// A secret UTF-8 string (passphrase, base32 seed, otpauth URI) with the same guarantees
/// as [`SecretBytes`].
#[derive(Clone)]
pub struct SecretString(SecretBytes);

impl SecretString {
    #[must_use]
    pub fn new(s: String) -> Self {
        Self(SecretBytes::new(s.into_bytes()))
    }

    #[must_use]
    pub fn expose(&self) -> &str {
        // The bytes came from a `String`, so they are valid UTF-8.
        std::str::from_utf8(self.0.expose()).unwrap_or_default()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let s = SecretString::new("JBSWY3DPEHPK3PXP".to_owned());
        let b = SecretBytes::new(b"hunter2".to_vec());
        assert!(!format!("{s:?}").contains("JBSW"));
        assert!(!format!("{b:?}").contains("hunter2"));
        assert_eq!(s.expose(), "JBSWY3DPEHPK3PXP");
        assert_eq!(b.expose(), b"hunter2");
    }
}
