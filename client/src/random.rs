//! Random bytes from the OS (getrandom(2), the source `rand` would wrap): salts, nonces,
//! challenges, ids, temporary names.

/// Fills `buf`. The OS generator does not fail once the kernel has seeded it (getrandom(2)
/// blocks until then); a failure means a broken system, where no secret should be made.
pub fn fill(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the operating system's random number generator failed");
}

/// `N` random bytes.
#[must_use]
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    fill(&mut out);
    out
}

/// A random `u64`.
#[must_use]
pub fn u64() -> u64 {
    u64::from_ne_bytes(bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn draws_differ() {
        // 2^-128 odds of a false failure; a constant source fails at once.
        assert_ne!(super::bytes::<16>(), super::bytes::<16>());
        assert_ne!(super::u64(), super::u64());
    }
}
