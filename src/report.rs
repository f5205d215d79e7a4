//! How an error reads: what happened, each cause once, then what to do about it. Every error
//! here either says its cause in its own message or exposes it as `source()`, never both
//! (`Run::failure` in the tests fails on a clause said twice), so the chain is said as it
//! is; the advice comes from [`crate::advice`].

use std::error::Error;

/// `err` and its causes, joined by ": ", then "; " and what to do, when that is known:
/// "failed to write seeds.json: No space left on device (os error 28); free some space on
/// that disk, then try again".
#[must_use]
pub fn sentence(err: &(dyn Error + 'static)) -> String {
    let mut sentence = what_happened(err);
    if let Some(advice) = crate::advice::of(err) {
        sentence.push_str("; ");
        sentence.push_str(&advice);
    }
    sentence
}

/// `err` and its causes, joined by ": ", without the advice: for a caller that says what to
/// do itself (`mfa-agent doctor`'s findings each have their own fix).
#[must_use]
pub fn what_happened(err: &(dyn Error + 'static)) -> String {
    let mut said = String::new();
    let mut next = Some(err);
    while let Some(e) = next {
        if !said.is_empty() {
            said.push_str(": ");
        }
        // One line: a cause from another crate may span several.
        let text = e.to_string();
        said.push_str(&text.split_whitespace().collect::<Vec<_>>().join(" "));
        next = e.source();
    }
    said
}

/// `mfa-agent status | head -1`: once the reader has gone, the rest of the output has nowhere
/// to go, and the program ends at once and quietly, as Unix tools killed by SIGPIPE do (exit
/// 141), instead of panicking in `println!` with a backtrace. (SIGPIPE itself stays ignored,
/// so that a hang-up of the agent's socket is an error the client reports.)
pub fn exit_quietly_when_stdout_closes() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
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
