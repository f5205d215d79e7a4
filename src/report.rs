//! How the agent's errors read: [`mfa_agent_client::report`]'s sentence (what happened, each
//! cause once), ended by what to do from `crate::advice`, which knows the vault's, the
//! security keys' and the mint's errors as well as the client's.

use std::error::Error;

pub use mfa_agent_client::report::{exit_quietly_when_stdout_closes, what_happened};

/// `err` and its causes, joined by ": ", then "; " and what to do, when that is known:
/// "failed to write seeds.json: No space left on device (os error 28); free some space on
/// that disk, then try again".
#[must_use]
pub fn sentence(err: &(dyn Error + 'static)) -> String {
    mfa_agent_client::report::sentence_with(err, crate::advice::of_one)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::VaultError;

    #[test]
    fn a_cause_follows_what_happened_once_and_the_advice_ends_the_sentence() {
        let full = VaultError::Io {
            action: "write",
            path: "/v/seeds.json".into(),
            source: std::io::Error::from_raw_os_error(28),
        };
        let wrapped = anyhow::Error::new(full).context("failed to add seed \"work\"");
        assert_eq!(
            sentence(wrapped.as_ref()),
            "failed to add seed \"work\": failed to write /v/seeds.json: No space left on device (os error 28); free some space on that disk, then try again"
        );
    }

    #[test]
    fn an_error_from_the_vault_or_a_key_gets_the_advice_written_for_it() {
        let duplicate = VaultError::DuplicateCredentials {
            profile: "prod".into(),
        };
        assert_eq!(
            duplicate.to_string(),
            "the vault already holds keys for profile \"prod\"",
            "the vault's error says what happened, not which flag to pass"
        );
        assert_eq!(
            sentence(&duplicate),
            "the vault already holds keys for profile \"prod\"; to rotate them, pass --replace"
        );
        let key: VaultError =
            crate::keys::unlock::UnlockError::Key(crate::keys::KeyError::Unplugged).into();
        assert_eq!(
            sentence(&key),
            "the security key was unplugged before it answered; plug it back in and run the command again"
        );
        let plain = anyhow::anyhow!("gone").context("failed to read x");
        assert_eq!(sentence(plain.as_ref()), "failed to read x: gone");
    }
}
