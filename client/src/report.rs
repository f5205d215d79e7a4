//! How an error reads: what happened, each cause once, then what to do about it. Every error
//! here either says its cause in its own message or exposes it as `source()`, never both
//! (`Run::failure` in the tests fails on a clause said twice), so the chain is said as it
//! is. What to do comes last, from the outermost error in the chain that has advice: this
//! crate's own errors' here, the agent's (vault, security keys, mint) from its `advice`
//! module through [`sentence_with`].

use std::borrow::Cow;
use std::error::Error;

use crate::vault_rules::{BadName, StoreMismatch};

/// What to do about one error (not its causes), if it is known.
pub type AdviceFor = fn(&(dyn Error + 'static)) -> Option<Cow<'static, str>>;

/// `err` and its causes, joined by ": ", then "; " and what to do, when that is known:
/// "failed to write seeds.json: No space left on device (os error 28); free some space on
/// that disk, then try again".
#[must_use]
pub fn sentence(err: &(dyn Error + 'static)) -> String {
    sentence_with(err, advice_for)
}

/// [`sentence`], with the advice `advice_for` knows (the agent's, for its own errors).
#[must_use]
pub fn sentence_with(err: &(dyn Error + 'static), advice_for: AdviceFor) -> String {
    let mut sentence = what_happened(err);
    if let Some(advice) = outermost_advice(err, advice_for) {
        sentence.push_str("; ");
        sentence.push_str(&advice);
    }
    sentence
}

/// The advice of the outermost error in `err`'s chain that has one (the one that knows most
/// about what was being done).
#[must_use]
pub fn outermost_advice(
    err: &(dyn Error + 'static),
    advice_for: AdviceFor,
) -> Option<Cow<'static, str>> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(advice) = advice_for(e) {
            return Some(advice);
        }
        next = e.source();
    }
    None
}

/// What to do about one of this crate's errors.
#[must_use]
pub fn advice_for(e: &(dyn Error + 'static)) -> Option<Cow<'static, str>> {
    if e.is::<BadName>() {
        return Some(Cow::Borrowed(BadName::ADVICE));
    }
    if e.is::<StoreMismatch>() {
        return Some(Cow::Borrowed(StoreMismatch::ADVICE));
    }
    None
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
    use crate::protocol::StoreKind;

    #[test]
    fn a_cause_follows_what_happened_once_and_the_advice_of_the_outermost_error_ends_it() {
        let plain = anyhow::anyhow!("gone").context("failed to read x");
        assert_eq!(sentence(plain.as_ref()), "failed to read x: gone");
        let mismatch = anyhow::Error::new(StoreMismatch {
            actual: StoreKind::File,
            requested: StoreKind::Keyring,
        })
        .context("failed to show the code");
        assert_eq!(
            sentence(mismatch.as_ref()),
            "failed to show the code: this vault keeps its seeds in the encrypted file, not the OS keyring asked for; drop --store (moving seeds between stores is not supported yet)"
        );
    }
}
