//! The replay guard: AWS accepts each TOTP code once (and none older than the last it
//! accepted), so the agent remembers, per MFA serial and on disk across restarts, the last
//! time step it sent to AWS and the last one it showed the user (`mfa-agent code`, the
//! tray). A mint skips both; a code shown to the user skips only what the agent sent.
//! Codes the user types (no seed held) are remembered by digest for a while, so that one
//! already sent is refused before it reaches AWS.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::atomic;

/// Past this many steps ahead of the clock, a recorded step is taken to come from a clock
/// that was set back, and ignored rather than making the user wait for hours.
const MAX_STEPS_AHEAD: u64 = 2;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Steps {
    /// The last step whose code the agent sent to AWS, per serial.
    sent: BTreeMap<String, u64>,
    /// The last step whose code the user was shown, per serial (it may be typed anywhere).
    #[serde(default)]
    shown: BTreeMap<String, u64>,
    /// Codes the user typed and the agent sent, per serial: a digest of serial and code,
    /// and when (Unix seconds). Kept [`TYPED_CODE_MEMORY`] seconds, past any window AWS
    /// would accept them in.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    typed: BTreeMap<String, Vec<(String, u64)>>,
}

/// How long a typed code is remembered as spent (AWS accepts a code for a window or two).
const TYPED_CODE_MEMORY: u64 = 600;

/// The file as written before codes shown to the user were tracked: steps sent, by serial.
#[derive(Deserialize)]
#[serde(untagged)]
enum OnDisk {
    Steps(Steps),
    SentOnly(BTreeMap<String, u64>),
}

/// Who gets the code a step is claimed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Use {
    /// The agent sends it to AWS (a mint): it must be one no one has seen.
    Send,
    /// The user is shown it: any the agent has not sent. Showing it twice is what a phone
    /// app does too; the agent's own mints skip it either way.
    Show,
}

pub(super) struct ReplayGuard {
    path: PathBuf,
    steps: Mutex<Steps>,
}

impl ReplayGuard {
    /// Loads the guard's state; a missing file is a fresh start, a damaged one is logged
    /// and replaced (at worst AWS rejects one reused code, and the mint tries the next).
    #[must_use]
    pub(super) fn load(path: PathBuf) -> Self {
        let steps = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(OnDisk::Steps(steps)) => steps,
                Ok(OnDisk::SentOnly(sent)) => Steps {
                    sent,
                    ..Steps::default()
                },
                Err(e) => {
                    tracing::warn!(
                        "ignoring the damaged replay guard file {}: {e}",
                        path.display()
                    );
                    Steps::default()
                }
            },
            Err(_) => Steps::default(),
        };
        Self {
            path,
            steps: Mutex::new(steps),
        }
    }

    /// Claims the first step at or after `from` that `serials` allow for `use_`, if it is
    /// no later than `latest`, and records it for all of them before returning: two mints
    /// are never handed the same code. Saved before the code leaves the agent, so a crash
    /// mid-call still never reuses it. `None`: every step up to `latest` is spent.
    pub(super) fn claim(
        &self,
        serials: &[String],
        from: u64,
        latest: u64,
        use_: Use,
    ) -> std::io::Result<Option<u64>> {
        let mut steps = self.steps.lock().expect("replay lock poisoned");
        let step = free_step(&steps, serials, from, use_);
        if step > latest {
            return Ok(None);
        }
        let record = match use_ {
            Use::Send => &mut steps.sent,
            Use::Show => &mut steps.shown,
        };
        for serial in serials {
            let last = record.entry(serial.clone()).or_insert(step);
            // A code shown earlier for a later window stays remembered.
            if use_ == Use::Send || *last < step || *last > step + MAX_STEPS_AHEAD {
                *last = step;
            }
        }
        self.save(&steps)?;
        Ok(Some(step))
    }

    /// Records `code`, typed by the user for `serial`, as sent; `false` (nothing recorded)
    /// when it was sent already. Saved before the code leaves the agent.
    pub(super) fn spend_typed(&self, serial: &str, code: &str, now: u64) -> std::io::Result<bool> {
        use sha2::Digest as _;
        let digest = sha2::Sha256::new()
            .chain_update(serial)
            .chain_update([0])
            .chain_update(code)
            .finalize();
        let digest = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            &digest[..16],
        );
        let mut steps = self.steps.lock().expect("replay lock poisoned");
        for spent in steps.typed.values_mut() {
            spent.retain(|(_, at)| at.saturating_add(TYPED_CODE_MEMORY) > now);
        }
        steps.typed.retain(|_, spent| !spent.is_empty());
        let spent = steps.typed.entry(serial.to_owned()).or_default();
        if spent.iter().any(|(d, _)| *d == digest) {
            return Ok(false);
        }
        spent.push((digest, now));
        self.save(&steps)?;
        Ok(true)
    }

    /// The step [`ReplayGuard::claim`] would hand out, without recording it. A mint waits
    /// for that step's window *before* claiming it: a claim is a promise that the code may
    /// have reached AWS, and an agent killed while it waits never sent it. (Claiming first
    /// let kills during the wait push the record ahead, step by step, until it looked like
    /// a clock set back and was ignored: a code then went out twice.)
    #[must_use]
    pub(super) fn next_free(&self, serials: &[String], from: u64, use_: Use) -> u64 {
        free_step(
            &self.steps.lock().expect("replay lock poisoned"),
            serials,
            from,
            use_,
        )
    }

    fn save(&self, steps: &Steps) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(steps).expect("maps of numbers and strings serialise");
        atomic::write_private(&self.path, &json)
    }
}

/// The first step at or after `from` that none of `serials` has spent for `use_` (a code
/// to send must also not have been shown).
fn free_step(steps: &Steps, serials: &[String], from: u64, use_: Use) -> u64 {
    serials
        .iter()
        .map(|serial| {
            let after_sent = first_unused(&steps.sent, serial, from);
            match use_ {
                Use::Send => after_sent.max(first_unused(&steps.shown, serial, from)),
                Use::Show => after_sent,
            }
        })
        .max()
        .unwrap_or(from)
}

fn first_unused(last_used: &BTreeMap<String, u64>, serial: &str, current: u64) -> u64 {
    match last_used.get(serial) {
        Some(&last) if last >= current && last - current < MAX_STEPS_AHEAD => last + 1,
        _ => current,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serials(names: &[&str]) -> Vec<String> {
        names.iter().map(|&n| n.to_owned()).collect()
    }

    #[test]
    fn sent_steps_are_skipped_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay.json");
        let guard = ReplayGuard::load(path.clone());
        let send = |g: &ReplayGuard, s: &[&str], from| {
            g.claim(&serials(s), from, u64::MAX, Use::Send)
                .unwrap()
                .unwrap()
        };
        assert_eq!(send(&guard, &["a"], 100), 100);
        assert_eq!(send(&guard, &["a"], 100), 101, "never the same code twice");
        assert_eq!(send(&guard, &["b"], 100), 100, "serials are independent");

        let restarted = ReplayGuard::load(path.clone());
        assert_eq!(send(&restarted, &["a"], 100), 102);
        assert_eq!(
            send(&restarted, &["a"], 50),
            50,
            "a clock set back is not waited out"
        );

        std::fs::write(&path, "garbage").unwrap();
        assert_eq!(send(&ReplayGuard::load(path), &["a"], 100), 100);
    }

    #[test]
    fn shown_codes_are_skipped_by_mints_and_sent_ones_by_the_user() {
        let dir = tempfile::tempdir().unwrap();
        let guard = ReplayGuard::load(dir.path().join("replay.json"));
        let claim = |s: &[&str], from, latest, use_| guard.claim(&serials(s), from, latest, use_);
        // `code` twice in a window shows the same code; a mint then takes the next one.
        assert_eq!(claim(&["a"], 100, 101, Use::Show).unwrap(), Some(100));
        assert_eq!(claim(&["a"], 100, 101, Use::Show).unwrap(), Some(100));
        assert_eq!(
            claim(&["a", "c"], 100, u64::MAX, Use::Send).unwrap(),
            Some(101)
        );
        // After the mint, the user is shown the one after: AWS takes none older.
        assert_eq!(claim(&["c"], 100, 102, Use::Show).unwrap(), Some(102));
        assert_eq!(
            claim(&["a"], 100, 101, Use::Show).unwrap(),
            None,
            "the current and the next code are spent"
        );
    }

    #[test]
    fn a_typed_code_is_spent_once_per_serial_and_forgotten_later() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay.json");
        let guard = ReplayGuard::load(path.clone());
        assert!(guard.spend_typed("a", "123456", 1000).unwrap());
        assert!(
            !guard.spend_typed("a", "123456", 1030).unwrap(),
            "refused twice"
        );
        assert!(
            guard.spend_typed("b", "123456", 1030).unwrap(),
            "per serial"
        );
        let restarted = ReplayGuard::load(path.clone());
        assert!(!restarted.spend_typed("a", "123456", 1060).unwrap());
        assert!(
            !std::fs::read_to_string(&path).unwrap().contains("123456"),
            "only digests are kept"
        );
        assert!(
            restarted
                .spend_typed("a", "123456", 1000 + TYPED_CODE_MEMORY)
                .unwrap(),
            "long after, the same digits are a new code"
        );
    }

    #[test]
    fn the_old_file_format_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay.json");
        std::fs::write(&path, r#"{"a": 100}"#).unwrap();
        let guard = ReplayGuard::load(path);
        assert_eq!(
            guard
                .claim(&serials(&["a"]), 100, u64::MAX, Use::Send)
                .unwrap(),
            Some(101)
        );
    }
}
