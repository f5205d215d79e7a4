//! What one unlock keeps open: the data key under `touch = "unlock"` (one touch opens the
//! seeds), and the encrypted file's passphrase. Kept until the unlock TTL passes, or it goes
//! unused for the idle time, or `mfa-agent lock` — whichever first.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A secret held for a while; dropping it (on expiry or lock) zeroes it.
pub struct Unlocked<T: Clone> {
    ttl: Duration,
    idle: Duration,
    held: Mutex<Option<Held<T>>>,
}

struct Held<T> {
    key: T,
    until: Instant,
    until_unix: i64,
    last_used: Instant,
}

impl<T: Clone> Unlocked<T> {
    #[must_use]
    pub fn new(ttl: Duration, idle: Duration) -> Self {
        Self {
            ttl,
            idle,
            held: Mutex::new(None),
        }
    }

    /// The held key, if still unlocked; using it counts as activity for the idle lock.
    pub fn get(&self) -> Option<T> {
        let mut held = self.held.lock().expect("unlock lock poisoned");
        let now = Instant::now();
        if held
            .as_ref()
            .is_some_and(|h| now >= h.until || now.duration_since(h.last_used) >= self.idle)
        {
            // Dropping the key zeroes it.
            *held = None;
            tracing::info!("locked again (unlock time or idle time over)");
        }
        let h = held.as_mut()?;
        h.last_used = now;
        Some(h.key.clone())
    }

    /// Keeps `key` after a touch unlocked it.
    pub fn keep(&self, key: T) {
        let now = Instant::now();
        let until_unix = i64::try_from(crate::clock::unix_now().saturating_add(self.ttl.as_secs()))
            .unwrap_or(i64::MAX);
        // A TTL too long to add to the clock is as good as forever.
        let until = now
            .checked_add(self.ttl)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400));
        *self.held.lock().expect("unlock lock poisoned") = Some(Held {
            key,
            until,
            until_unix,
            last_used: now,
        });
    }

    /// Forgets the key; returns whether one was held.
    pub fn clear(&self) -> bool {
        self.held
            .lock()
            .expect("unlock lock poisoned")
            .take()
            .is_some()
    }

    /// Unix time until which the seeds stay unlocked (at most), if they are.
    pub fn until(&self) -> Option<i64> {
        self.held
            .lock()
            .expect("unlock lock poisoned")
            .as_ref()
            .map(|h| h.until_unix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::seal::DataKey;

    #[test]
    fn kept_until_ttl_idle_or_lock() {
        let unlocked =
            Unlocked::<DataKey>::new(Duration::from_secs(3600), Duration::from_secs(3600));
        assert!(unlocked.get().is_none());
        unlocked.keep(DataKey::generate());
        assert!(unlocked.get().is_some());
        assert!(unlocked.until().is_some());
        assert!(unlocked.clear());
        assert!(unlocked.get().is_none() && unlocked.until().is_none());

        let expired = Unlocked::<DataKey>::new(Duration::ZERO, Duration::from_secs(3600));
        expired.keep(DataKey::generate());
        assert!(expired.get().is_none(), "past the TTL");

        let idle = Unlocked::<DataKey>::new(Duration::from_secs(3600), Duration::ZERO);
        idle.keep(DataKey::generate());
        assert!(idle.get().is_none(), "idle too long");
    }
}
