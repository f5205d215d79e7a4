//! What one unlock keeps open: the data key under `touch = "unlock"` (one touch opens the
//! seeds), and the encrypted file's passphrase. Kept until the unlock TTL passes, or it goes
//! unused for the idle time, or `mfa-agent lock` — whichever first. Both times are counted
//! on a clock that runs while the machine is suspended: an 8-hour unlock before a night's
//! sleep is over in the morning.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Time since some fixed point, counting suspend: [`crate::sys::since_boot`], or a test's.
pub(super) type Clock = Arc<dyn Fn() -> Duration + Send + Sync>;

/// A secret held for a while; dropping it (on expiry or lock) zeroes it.
pub(super) struct Unlocked<T: Clone> {
    ttl: Duration,
    idle: Duration,
    held: Mutex<Option<Held<T>>>,
    clock: Clock,
}

struct Held<T> {
    key: T,
    until: Duration,
    until_unix: i64,
    last_used: Duration,
}

impl<T: Clone> Unlocked<T> {
    #[must_use]
    pub(super) fn new(ttl: Duration, idle: Duration) -> Self {
        Self::with_clock(ttl, idle, Arc::new(crate::sys::since_boot))
    }

    /// [`Unlocked::new`] on another clock (a test's, moved past a suspend).
    #[must_use]
    pub(super) fn with_clock(ttl: Duration, idle: Duration, clock: Clock) -> Self {
        Self {
            ttl,
            idle,
            held: Mutex::new(None),
            clock,
        }
    }

    /// The held key, if still unlocked; using it counts as activity for the idle lock.
    pub(super) fn get(&self) -> Option<T> {
        let mut held = self.held.lock().expect("unlock lock poisoned");
        let now = (self.clock)();
        if held
            .as_ref()
            .is_some_and(|h| now >= h.until || now.saturating_sub(h.last_used) >= self.idle)
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
    pub(super) fn keep(&self, key: T) {
        let now = (self.clock)();
        let until_unix = i64::try_from(crate::clock::unix_now().saturating_add(self.ttl.as_secs()))
            .unwrap_or(i64::MAX);
        // A TTL too long to add to the clock is as good as forever.
        let until = now.checked_add(self.ttl).unwrap_or(Duration::MAX);
        *self.held.lock().expect("unlock lock poisoned") = Some(Held {
            key,
            until,
            until_unix,
            last_used: now,
        });
    }

    /// Forgets the key; returns whether one was held.
    pub(super) fn clear(&self) -> bool {
        self.held
            .lock()
            .expect("unlock lock poisoned")
            .take()
            .is_some()
    }

    /// Unix time until which the seeds stay unlocked (at most), if they are.
    pub(super) fn until(&self) -> Option<i64> {
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

    /// A clock a test moves: the hours a suspended machine sleeps pass on it as on
    /// `CLOCK_BOOTTIME`, while `Instant` would not see them.
    fn moved_clock() -> (Clock, Arc<std::sync::atomic::AtomicU64>) {
        let seconds = Arc::new(std::sync::atomic::AtomicU64::new(1_000));
        let read = seconds.clone();
        let clock: Clock =
            Arc::new(move || Duration::from_secs(read.load(std::sync::atomic::Ordering::Relaxed)));
        (clock, seconds)
    }

    #[test]
    fn a_suspend_counts_towards_the_unlock_and_idle_times() {
        use std::sync::atomic::Ordering::Relaxed;
        let (clock, now) = moved_clock();
        let hour = Duration::from_secs(3600);
        let unlocked = Unlocked::<DataKey>::with_clock(8 * hour, 4 * hour, clock.clone());
        unlocked.keep(DataKey::generate());
        now.fetch_add(3 * 3600, Relaxed);
        assert!(unlocked.get().is_some(), "3 h in, used now and then");
        now.fetch_add(3 * 3600, Relaxed);
        assert!(unlocked.get().is_some(), "6 h in");
        // A night's suspend: 10 hours pass on the clock with no request.
        now.fetch_add(10 * 3600, Relaxed);
        assert!(unlocked.get().is_none(), "locked after the night");

        let idle = Unlocked::<DataKey>::with_clock(24 * hour, hour, clock);
        idle.keep(DataKey::generate());
        now.fetch_add(2 * 3600, Relaxed);
        assert!(
            idle.get().is_none(),
            "a 2-hour suspend is over the idle time"
        );
    }

    #[test]
    fn the_agents_clock_counts_time_suspended() {
        // /proc/uptime is CLOCK_BOOTTIME: the clock that counts suspend.
        let uptime: f64 = std::fs::read_to_string("/proc/uptime")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let ours = crate::sys::since_boot().as_secs_f64();
        assert!(
            (ours - uptime).abs() < 2.0,
            "{ours} s against uptime {uptime} s"
        );
    }
}
