//! What the user can do about an error, written in one place (as age-plugin-yubikey keeps
//! its `rec-` texts apart from its `err-` ones). The errors of the vault, the security keys
//! and the mint say what happened and nothing more; this is the one module that names the
//! CLI's commands, flags and settings for them. [`crate::report::sentence`] puts the two
//! together.

use std::borrow::Cow;
use std::error::Error;

use crate::agent::MintError;
use crate::keys::KeyError;
use crate::keys::seal::SealError;
use crate::keys::unlock::UnlockError;
use crate::vault::{PassphraseError, VaultError};
use mfa_agent_client::vault_rules::{BadName, StoreMismatch};

/// What to do about `err`, if this module knows: the advice of the outermost error in its
/// chain that has one (the one that knows most about what was being done).
#[must_use]
#[cfg(test)]
pub(crate) fn of(err: &(dyn Error + 'static)) -> Option<Cow<'static, str>> {
    mfa_agent_client::report::outermost_advice(err, of_one)
}

/// What to do about one error (not its causes): the agent's own, then the client's.
pub(crate) fn of_one(e: &(dyn Error + 'static)) -> Option<Cow<'static, str>> {
    if let Some(e) = e.downcast_ref::<VaultError>() {
        return vault(e);
    }
    if let Some(e) = e.downcast_ref::<UnlockError>() {
        return unlock(e);
    }
    if let Some(e) = e.downcast_ref::<KeyError>() {
        return key(e).map(Cow::Borrowed);
    }
    if let Some(e) = e.downcast_ref::<SealError>() {
        return Some(Cow::Borrowed(seal(e)));
    }
    if let Some(e) = e.downcast_ref::<PassphraseError>() {
        return passphrase(e);
    }
    if let Some(e) = e.downcast_ref::<MintError>() {
        return mint(e);
    }
    mfa_agent_client::report::advice_for(e)
}

fn mint(e: &MintError) -> Option<Cow<'static, str>> {
    use MintError as M;
    let fixed = |s: &'static str| Some(Cow::Borrowed(s));
    match e {
        M::NoSeed { serial, .. } => Some(Cow::Owned(format!(
            "add it with `mfa-agent seed add NAME --serial {serial}`, name its seed under [serials], or set it to \"prompt\" to type its codes"
        ))),
        M::AmbiguousSeed { .. } => fixed("name the right one under [serials] in config.toml"),
        M::NoSourceCredentials { profile } => Some(Cow::Owned(format!(
            "store them with `mfa-agent creds add {profile}` (or move them out of ~/.aws/credentials with `mfa-agent creds import {profile}`)"
        ))),
        M::CodeRejected { .. } => fixed(
            "the codes were used elsewhere (typed into the console or another tool), this machine's clock is off, or the seed does not belong to this MFA device: `mfa-agent doctor` checks the clock",
        ),
        M::NoCodeTyped { .. } => fixed(
            "run the command again and type the code from your token or phone (prompt_timeout_seconds in config.toml sets the wait)",
        ),
        M::TypedCodeFailed { .. } => fixed(
            "check the token or phone shows the codes of this MFA device, and run the command again",
        ),
        M::NoWayToAsk { serial, .. } => Some(Cow::Owned(format!(
            "run the command in a terminal, or add the device's seed with `mfa-agent seed add NAME --serial {serial}`"
        ))),
        M::MfaProcess { command, .. } => Some(Cow::Owned(format!(
            "run it yourself (`{command}`) to see why, or remove mfa_process from the profile to use a seed or typed codes"
        ))),
        M::MfaProcessRejected { serial, .. } => Some(Cow::Owned(format!(
            "check that the command shows the codes of {serial}"
        ))),
        M::NotApproved { .. } => fixed(
            "`confirm = \"each-program\"` in config.toml asks before a program other than the one that started a session uses it",
        ),
        M::ReplayNotRecorded { source, .. } => crate::atomic::what_to_do(source).map(Cow::Borrowed),
        // Their own messages say it (STS's, the profile's), or there is nothing to do.
        M::Profile(_)
        | M::Sts { .. }
        | M::Cancelled
        | M::Vault(_)
        | M::Totp { .. }
        | M::PinentryTask { .. } => None,
    }
}

fn vault(e: &VaultError) -> Option<Cow<'static, str>> {
    use VaultError as V;
    let fixed = |s: &'static str| Some(Cow::Borrowed(s));
    match e {
        V::UnknownCredentials { .. } => fixed("`mfa-agent creds list` shows what is stored"),
        V::DuplicateCredentials { .. } => fixed("to rotate them, pass --replace"),
        V::UnknownKey { .. } => fixed("`mfa-agent key list` shows the enrolled keys"),
        V::DuplicateKey { .. } => fixed("pick another name with --name"),
        V::Unlock(e) => unlock(e),
        V::Passphrase(e) => passphrase(e),
        V::Unseal { source, .. } => Some(Cow::Borrowed(seal(source))),
        V::UnknownSeed { .. } => fixed("`mfa-agent seed list` shows the names"),
        V::DuplicateSeed { name } => Some(Cow::Owned(format!(
            "pick another name, or remove it first with `mfa-agent seed remove {name}`"
        ))),
        V::SerialTaken { serial, seed } => Some(Cow::Owned(format!(
            "for a re-created device, add the new seed with --replace (seed {seed:?} is removed once the new one is stored), move the link with `mfa-agent seed link NAME --serial {serial}`, or rename the seed with `mfa-agent seed rename {seed} NEW`"
        ))),
        V::BadName(_) => fixed(BadName::ADVICE),
        V::BadSerial { .. } => fixed(
            "it looks like arn:aws:iam::123456789012:mfa/NAME (IAM console > Security credentials > MFA)",
        ),
        V::KeyringUnavailable { .. } => fixed(
            "start your desktop keyring (GNOME Keyring, KeePassXC), or keep seeds in an encrypted file instead with `--store file`",
        ),
        V::KeyringLocked { .. } => fixed(
            "unlock it (log in to the desktop, or on a headless box run `gnome-keyring-daemon --replace --daemonize --unlock` and type the keyring's password, then Ctrl-D) and try again",
        ),
        V::SecretMissing { name, .. } => Some(Cow::Owned(format!(
            "run `mfa-agent seed remove {name}` and add it again"
        ))),
        V::WrongPassphrase { .. } => fixed(
            "try again (a forgotten passphrase cannot be recovered: move the file away and add the seeds again)",
        ),
        V::CorruptFile { .. } => fixed("restore it from a backup"),
        V::StoreMismatch(_) => fixed(StoreMismatch::ADVICE),
        V::CorruptIndex { .. } => {
            fixed("`mfa-agent seed recover` restores the copy kept before its last change")
        }
        V::NoIndexBackup { .. } => {
            fixed("move it away and add the seeds again (their secrets are still in the store)")
        }
        V::NewerIndex { .. } => fixed("upgrade mfa-agent"),
        V::Io { source, .. } => crate::atomic::what_to_do(source).map(Cow::Borrowed),
        V::KeyListChanged { .. } => fixed(
            "restore the file from a backup you trust, or `mfa-agent seed recover` for the copy kept before its last change",
        ),
        V::Sealed | V::Keyring { .. } | V::BadStoredSeed { .. } => None,
    }
}

fn unlock(e: &UnlockError) -> Option<Cow<'static, str>> {
    use UnlockError as U;
    let fixed = |s: &'static str| Some(Cow::Borrowed(s));
    match e {
        U::Key(e) => key(e).map(Cow::Borrowed),
        U::Seal(e) => Some(Cow::Borrowed(seal(e))),
        U::NoKeyFound { .. } => fixed(
            "plug one in (on Linux, check `mfa-agent key list` and the udev rule in the README)",
        ),
        U::NoneEnrolled => fixed("enrol one with `mfa-agent key enroll`"),
        U::NoEnrolledKeyPlugged { .. } => {
            fixed("plug in an enrolled key (`mfa-agent key list` names them)")
        }
        U::DamagedSalt { .. } => fixed("remove and enrol the key again"),
        U::NeedsOneTouch { .. } => fixed("plug it in and retry, or remove it too"),
        U::PinFile { .. } => {
            fixed("put the key's PIN in that file, or unset MFA_AGENT_PIN_FILE to be asked")
        }
        U::NoWayToAskPin { .. } => fixed(
            "run the command in a terminal, install a pinentry program, or give the agent MFA_AGENT_PIN_FILE (a file holding the PIN)",
        ),
    }
}

fn key(e: &KeyError) -> Option<&'static str> {
    use KeyError as K;
    Some(match e {
        K::HidUnavailable { .. } => {
            "on Linux, check that /dev/hidraw* exist and that you may open them (see the udev rule in the README)"
        }
        K::Timeout(_) | K::Wedged => "unplug it, plug it back in and retry",
        K::Device(_) => {
            "unplug the key, plug it back in and retry, and if it keeps failing use another enrolled key"
        }
        K::Unplugged => "plug it back in and run the command again",
        K::WrongPin => "try again (the key locks itself after a few wrong PINs)",
        K::PinAuthBlocked => {
            "unplug it, plug it back in, then enter the right PIN (each wrong PIN still counts towards blocking it for good)"
        }
        K::PinBlocked => {
            "open the vault with another enrolled key (`mfa-agent key list`), or see \"A lost key\" in the README"
        }
        K::PinRequired => "enter it when asked (or set MFA_AGENT_PIN_FILE)",
        K::TouchTimeout => "run the command again and touch the key when it blinks",
        K::NotEnrolled => "use an enrolled key, or enrol this one with `mfa-agent key enroll`",
        K::NoHmacSecret => {
            "retry, and if it says so again, use another key (the README lists keys that can only approve)"
        }
        K::BadSignature => "retry with an enrolled key",
        K::PinFormat | K::Denied | K::Cancelled => return None,
    })
}

fn seal(e: &SealError) -> &'static str {
    match e {
        SealError::WrongKey => "use an enrolled key",
        SealError::Tampered | SealError::Truncated | SealError::Damaged(_) => {
            "restore it from a backup"
        }
        SealError::BadRecipient => {
            "restore seeds.json from its backup (`mfa-agent seed recover`) or enrol the key again"
        }
    }
}

fn passphrase(e: &PassphraseError) -> Option<Cow<'static, str>> {
    use PassphraseError as P;
    match e {
        P::WrongInFile { .. } => Some(Cow::Borrowed("put the right one there and try again")),
        P::File { .. } | P::EmptyFile { .. } => Some(Cow::Borrowed(
            "put the passphrase in that file, or unset MFA_AGENT_PASSPHRASE_FILE to be asked",
        )),
        P::NoWayToAsk => Some(Cow::Borrowed(
            "run the command in a terminal, or give the agent MFA_AGENT_PASSPHRASE_FILE (a file holding it)",
        )),
        P::NoneTyped => None,
        P::TooShort { min } => Some(Cow::Owned(format!("use at least {min} characters"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages of the vault's and the keys' errors, as written in their `#[error]`s.
    fn messages_of(source: &str) -> Vec<&str> {
        source
            .split("#[error(")
            .skip(1)
            .map(|rest| rest.split(")]").next().unwrap_or(rest))
            .collect()
    }

    #[test]
    fn the_vault_and_the_keys_say_what_happened_and_leave_the_commands_to_this_module() {
        let sources = [
            ("vault/error.rs", include_str!("vault/error.rs")),
            ("keys/mod.rs", include_str!("keys/mod.rs")),
            ("keys/seal.rs", include_str!("keys/seal.rs")),
            ("keys/unlock.rs", include_str!("keys/unlock.rs")),
            ("agent/mod.rs", include_str!("agent/mod.rs")),
        ];
        let mut seen = 0;
        for (file, source) in sources {
            for message in messages_of(source) {
                seen += 1;
                let names_a_flag = message
                    .match_indices(" --")
                    .any(|(at, _)| message[at + 3..].starts_with(|c: char| c.is_ascii_lowercase()));
                assert!(
                    !message.contains("`mfa-agent") && !names_a_flag,
                    "{file}: an error names a command or flag; put that in advice.rs: {message}"
                );
            }
        }
        assert!(seen > 50, "the #[error]s were found ({seen})");
    }

    #[test]
    fn advice_comes_from_the_outermost_error_that_has_some() {
        let inner = VaultError::from(KeyError::Unplugged);
        assert_eq!(
            of(&inner).as_deref(),
            Some("plug it back in and run the command again")
        );
        let outer: VaultError = UnlockError::NeedsOneTouch {
            name: "old".into(),
            source: Box::new(inner),
        }
        .into();
        assert_eq!(
            of(&outer).as_deref(),
            Some("plug it in and retry, or remove it too"),
            "the outer error knows what was being done"
        );
        let none = anyhow::anyhow!("no advice here");
        assert_eq!(of(none.as_ref()), None);
    }
}
