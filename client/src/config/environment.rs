//! What the process environment sets for automation and tests: read once, when the
//! configuration is loaded, never deep inside a request (a process's environment does not
//! change after it starts, and one place makes every variable easy to find).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// How long to wait for a security key to be plugged in, unless `MFA_AGENT_KEY_WAIT` says.
const KEY_WAIT: Duration = Duration::from_secs(30);
/// How long a new access key may take to work: IAM is eventually consistent, and a key
/// usually works within seconds.
const PROPAGATION_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// `MFA_AGENT_PASSPHRASE_FILE`: the encrypted file store's passphrase comes from this
    /// file instead of a prompt.
    pub passphrase_file: Option<PathBuf>,
    /// `MFA_AGENT_PIN_FILE`: a security key's PIN comes from this file instead of a prompt.
    pub pin_file: Option<PathBuf>,
    /// `MFA_AGENT_KEY_WAIT` (seconds, at most a day): how long to wait for a key.
    pub key_wait: Duration,
    /// `MFA_AGENT_PROPAGATION_WAIT` (seconds, at most an hour): how long `creds rotate`
    /// waits for a new access key to work.
    pub propagation_wait: Duration,
    /// `MFA_AGENT_NO_AUTOSTART` (any value): clients never start an agent.
    pub no_autostart: bool,
}

impl Default for Environment {
    fn default() -> Self {
        Self {
            passphrase_file: None,
            pin_file: None,
            key_wait: KEY_WAIT,
            propagation_wait: PROPAGATION_WAIT,
            no_autostart: false,
        }
    }
}

impl Environment {
    /// The variables of this process.
    #[must_use]
    pub fn read() -> Self {
        Self::from_lookup(|name| std::env::var_os(name))
    }

    /// The variables as `var` gives them (an empty value counts as unset), so the rules can
    /// be tested without touching the process environment.
    #[must_use]
    pub fn from_lookup(var: impl Fn(&str) -> Option<OsString>) -> Self {
        let var = |name: &str| var(name).filter(|v| !v.is_empty());
        // A number too big means "wait long"; capped so that it cannot overflow the clock.
        let seconds = |name: &str, cap: u64| {
            var(name)
                .and_then(|v| v.to_str()?.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s.min(cap)))
        };
        let defaults = Self::default();
        Self {
            passphrase_file: var("MFA_AGENT_PASSPHRASE_FILE").map(PathBuf::from),
            pin_file: var("MFA_AGENT_PIN_FILE").map(PathBuf::from),
            key_wait: seconds("MFA_AGENT_KEY_WAIT", 86_400).unwrap_or(defaults.key_wait),
            propagation_wait: seconds("MFA_AGENT_PROPAGATION_WAIT", 3600)
                .unwrap_or(defaults.propagation_wait),
            no_autostart: var("MFA_AGENT_NO_AUTOSTART").is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(vars: &[(&str, &str)]) -> Environment {
        Environment::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        })
    }

    #[test]
    fn nothing_set_gives_the_defaults() {
        assert_eq!(from(&[]), Environment::default());
        assert_eq!(from(&[]).key_wait, Duration::from_secs(30));
        assert_eq!(from(&[]).propagation_wait, Duration::from_secs(60));
    }

    #[test]
    fn each_variable_sets_its_field() {
        let env = from(&[
            ("MFA_AGENT_PASSPHRASE_FILE", "/run/pass"),
            ("MFA_AGENT_PIN_FILE", "/run/pin"),
            ("MFA_AGENT_KEY_WAIT", "5"),
            ("MFA_AGENT_PROPAGATION_WAIT", "0"),
            ("MFA_AGENT_NO_AUTOSTART", "1"),
        ]);
        assert_eq!(env.passphrase_file, Some(PathBuf::from("/run/pass")));
        assert_eq!(env.pin_file, Some(PathBuf::from("/run/pin")));
        assert_eq!(env.key_wait, Duration::from_secs(5));
        assert_eq!(env.propagation_wait, Duration::ZERO);
        assert!(env.no_autostart);
    }

    #[test]
    fn empty_values_are_unset_and_bad_or_huge_numbers_are_bounded() {
        let env = from(&[
            ("MFA_AGENT_PASSPHRASE_FILE", ""),
            ("MFA_AGENT_NO_AUTOSTART", ""),
            ("MFA_AGENT_KEY_WAIT", "99999999999999"),
            ("MFA_AGENT_PROPAGATION_WAIT", "soon"),
        ]);
        assert_eq!(env.passphrase_file, None);
        assert!(!env.no_autostart);
        assert_eq!(env.key_wait, Duration::from_secs(86_400));
        assert_eq!(env.propagation_wait, Duration::from_secs(60));
    }
}
