//! The replay guard: AWS rejects a TOTP code that was already used, so the agent remembers
//! the last time step it sent per MFA serial, on disk, across restarts.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::atomic;

/// Past this many steps ahead of the clock, a recorded step is taken to come from a clock
/// that was set back, and ignored rather than making the user wait for hours.
const MAX_STEPS_AHEAD: u64 = 2;

pub struct ReplayGuard {
    path: PathBuf,
    last_used: Mutex<BTreeMap<String, u64>>,
}

impl ReplayGuard {
    /// Loads the guard's state; a missing file is a fresh start, a damaged one is logged
    /// and replaced (at worst AWS rejects one reused code, with a clear error).
    #[must_use]
    pub fn load(path: PathBuf) -> Self {
        let last_used = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(
                    "ignoring the damaged replay guard file {}: {e}",
                    path.display()
                );
                BTreeMap::new()
            }),
            Err(_) => BTreeMap::new(),
        };
        Self {
            path,
            last_used: Mutex::new(last_used),
        }
    }

    /// The first time step at or after `current` whose code has not been sent for `serial`.
    pub fn first_unused_step(&self, serial: &str, current: u64) -> u64 {
        match self
            .last_used
            .lock()
            .expect("replay lock poisoned")
            .get(serial)
        {
            Some(&last) if last >= current && last - current < MAX_STEPS_AHEAD => last + 1,
            _ => current,
        }
    }

    /// Records that the code of `step` is about to be sent for `serial`. Saved before the
    /// call, so a crash mid-call still never reuses the code.
    pub fn record(&self, serial: &str, step: u64) -> std::io::Result<()> {
        let mut last_used = self.last_used.lock().expect("replay lock poisoned");
        last_used.insert(serial.to_owned(), step);
        let json = serde_json::to_vec_pretty(&*last_used).expect("a map of numbers serialises");
        atomic::write_private(&self.path, &json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn used_steps_are_skipped_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay.json");
        let guard = ReplayGuard::load(path.clone());
        assert_eq!(guard.first_unused_step("a", 100), 100);
        guard.record("a", 100).unwrap();
        assert_eq!(guard.first_unused_step("a", 100), 101);
        assert_eq!(
            guard.first_unused_step("b", 100),
            100,
            "serials are independent"
        );

        let restarted = ReplayGuard::load(path.clone());
        assert_eq!(restarted.first_unused_step("a", 100), 101);
        assert_eq!(restarted.first_unused_step("a", 101), 101);
        assert_eq!(
            restarted.first_unused_step("a", 50),
            50,
            "a clock set back is not waited out"
        );

        std::fs::write(&path, "garbage").unwrap();
        assert_eq!(ReplayGuard::load(path).first_unused_step("a", 100), 100);
    }
}
