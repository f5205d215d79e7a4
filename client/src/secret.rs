//! Containers for secret bytes: zeroed on drop, kept out of swap where possible, never printed.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use zeroize::Zeroize;

use crate::sys;

/// How many live secrets each locked page holds. The kernel's page locks are not counted:
/// one `munlock` unlocks a page for every secret on it. So a page is locked when its first
/// secret arrives and unlocked when its last one goes, never while another still lives there.
struct LockedPages(Mutex<BTreeMap<usize, usize>>);

static LOCKED_PAGES: LockedPages = LockedPages(Mutex::new(BTreeMap::new()));

impl LockedPages {
    /// The start of each page `buf` spans.
    fn pages(buf: &[u8]) -> impl Iterator<Item = usize> {
        let size = sys::page_size();
        let start = buf.as_ptr() as usize;
        let first = start / size;
        let last = (start + buf.len().max(1) - 1) / size;
        (first..=last).map(move |page| page * size)
    }

    /// Locks the pages of `buf`; all or none (a failure part-way undoes the rest).
    fn lock(&self, buf: &[u8]) -> bool {
        if buf.is_empty() {
            return false;
        }
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut done = Vec::new();
        for page in Self::pages(buf) {
            let count = counts.entry(page).or_insert(0);
            if *count == 0 && !sys::mlock_page(page) {
                counts.remove(&page);
                for page in done {
                    Self::release(&mut counts, page);
                }
                return false;
            }
            *count += 1;
            done.push(page);
        }
        true
    }

    /// Releases the pages of a `buf` that [`LockedPages::lock`] locked.
    fn unlock(&self, buf: &[u8]) {
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for page in Self::pages(buf) {
            Self::release(&mut counts, page);
        }
    }

    fn release(counts: &mut BTreeMap<usize, usize>, page: usize) {
        if let Some(count) = counts.get_mut(&page) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&page);
                sys::munlock_page(page);
            }
        }
    }

    #[cfg(test)]
    fn holders(&self, page: usize) -> usize {
        self.0.lock().unwrap().get(&page).copied().unwrap_or(0)
    }
}

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
        let locked = LOCKED_PAGES.lock(&boxed);
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
            LOCKED_PAGES.unlock(&self.bytes);
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
    fn a_page_stays_locked_while_any_secret_on_it_lives() {
        // Small secrets side by side: the allocator puts several on one page.
        let mut secrets: Vec<Option<SecretBytes>> = (0..64u8)
            .map(|i| Some(SecretBytes::new(vec![i; 24])))
            .collect();
        let page_of = |s: &SecretBytes| LockedPages::pages(s.expose()).next().unwrap();
        let mut pair = None;
        'find: for (i, a) in secrets.iter().enumerate() {
            for (j, b) in secrets.iter().enumerate().skip(i + 1) {
                let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
                if a.locked && b.locked && page_of(a) == page_of(b) {
                    pair = Some((i, j));
                    break 'find;
                }
            }
        }
        let (gone, kept) =
            pair.expect("two small locked secrets share a page (is RLIMIT_MEMLOCK tiny?)");
        let page = page_of(secrets[kept].as_ref().unwrap());
        assert!(LOCKED_PAGES.holders(page) >= 2);
        // One secret goes: the page stays locked for the other.
        secrets[gone] = None;
        assert!(
            LOCKED_PAGES.holders(page) >= 1,
            "the page was unlocked under a live secret"
        );
    }

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
