//! The credentials request, the agent's one hot path, and the one way to a session.
//!
//! A fresh cached session that the asking program may use is handed over with nothing to
//! wait for; anything else mints (or joins a mint) through [`session`], which applies
//! `confirm = "each-program"`. Every outcome leaves an audit entry, and a failure is the
//! agent's last error (`status`) until something works again.
//!
//! `confirm = "each-program"` (config.toml, per profile): a cached session is handed only
//! to programs the user approved for it, as ssh-agent's `-c` and gpg-agent's confirmations
//! do for keys, but once per program and session rather than once per use. The program
//! whose request minted the session is its first user; any other asks first, with a touch
//! of an enrolled security key, else a yes at the client's terminal. Approvals last for the
//! session's life: a new session starts with none.

use std::borrow::Cow;
use std::sync::Arc;

use super::super::door::{Visit, Visitor};
use super::super::minter::Minter;
use super::super::peer::Peer;
use super::super::prompt::Progress;
use super::super::{AgentState, MintError};
use crate::aws::context::ContextId;
use crate::protocol::{AskKind, LastError, Response, SessionCredentials};
use crate::vault::KeyKind;

/// Longer than any profile name people write; every name asked for keeps a cache slot, so
/// the bound is also the agent's memory bound for names that do not exist.
pub(crate) const MAX_PROFILE_NAME: usize = 256;

/// One request for a profile's credentials, in its caller's AWS context.
pub(crate) struct Ask<'a> {
    pub profile: &'a str,
    /// `--refresh`: a new session even if the cached one is fresh.
    pub force_refresh: bool,
    pub context: &'a ContextId,
}

impl Ask<'_> {
    /// Refuses a name no profile can have, before it takes a cache slot: why, in words.
    pub(crate) fn check_name(&self) -> Result<(), String> {
        let name = self.profile;
        if !name.is_empty() && name.len() <= MAX_PROFILE_NAME && !name.chars().any(char::is_control)
        {
            return Ok(());
        }
        Err(format!(
            "{:?} is not an AWS profile name (at most {MAX_PROFILE_NAME} printable characters)",
            name.chars().take(40).collect::<String>()
        ))
    }

    /// The cached session, when it is fresh and `peer` may use it without asking: the hot
    /// path, with nothing to wait for.
    #[must_use]
    pub(crate) fn cached(
        &self,
        state: &AgentState,
        peer: &Peer,
    ) -> Option<Arc<SessionCredentials>> {
        if self.force_refresh {
            return None;
        }
        let minter = &state.minter;
        let session = minter.cached(self.context, self.profile)?;
        let may = !minter.config().confirms_each_program(self.profile)
            || minter
                .approvals
                .allow(self.context, self.profile, &session, &peer.program);
        may.then_some(session)
    }

    /// Records a session handed over from the cache (after it was sent: the client may exit
    /// as soon as it has it).
    pub(crate) fn served_from_cache(&self, state: &AgentState, peer: &Peer) {
        state
            .audit
            .record("credentials", &self.subject(), peer, "hit");
    }

    /// The session, minted or from the cache, for the program `progress` names. (The
    /// future of [`session`] itself, not one wrapped around it: a mint's future is deep
    /// enough already.)
    pub(crate) fn mint<'s>(
        &'s self,
        state: &'s AgentState,
        progress: &'s Progress,
    ) -> impl Future<Output = Result<Arc<SessionCredentials>, MintError>> + 's {
        session(&state.minter, self.profile, self.force_refresh, progress)
    }

    /// The reply to a mint's `result`, audited; a failure names the profile once and
    /// becomes the agent's last error, a success clears it.
    pub(crate) fn answer(
        &self,
        state: &AgentState,
        peer: &Peer,
        result: Result<Arc<SessionCredentials>, MintError>,
    ) -> Response {
        let operation = if self.force_refresh {
            "credentials refresh"
        } else {
            "credentials"
        };
        let subject = self.subject();
        let (response, last_error) = match result {
            Ok(credentials) => {
                state.audit.record(operation, &subject, peer, "issued");
                // The last error is news only until something works again.
                (Response::Credentials(credentials), None)
            }
            Err(err) => {
                state.audit.record(operation, &subject, peer, "failed");
                // Named once: most errors name the profile they are about already.
                let said = crate::report::sentence(&err);
                let message = if err.names_profile() == Some(self.profile) {
                    said
                } else {
                    format!("profile {:?}: {said}", self.profile)
                };
                tracing::warn!("{message}");
                let last = LastError {
                    at: crate::clock::unix_now_i64(),
                    profile: self.profile.to_owned(),
                    message: message.clone(),
                };
                (Response::Error { message }, Some(last))
            }
        };
        *state.last_error.lock().expect("last error lock poisoned") = last_error;
        response
    }

    /// The profile as the audit log names it: with its context where that is not the
    /// default.
    fn subject(&self) -> Cow<'_, str> {
        match self.context.label() {
            Some(label) => Cow::Owned(format!("{} ({label})", self.profile)),
            None => Cow::Borrowed(self.profile),
        }
    }
}

/// The session of `profile`, from the cache or freshly minted, for the program that asked
/// (`progress` names it): the one way to a session, for the credentials request and for
/// every action that uses one (console login, key rotation, MFA enrolment). Under `confirm
/// = "each-program"`, a program that neither minted the session nor was approved for it is
/// asked about first; a forced refresh (`--refresh`) is a use of the session it replaces,
/// so it is asked about too, and the programs approved for that session stay approved for
/// the new one.
pub(crate) async fn session(
    minter: &Minter,
    profile: &str,
    force: bool,
    progress: &Progress,
) -> Result<Arc<SessionCredentials>, MintError> {
    let program = progress.program();
    let context = progress.context().id();
    let confirms = minter.config().confirms_each_program(profile);
    let approvals = &minter.approvals;
    let replaced = if confirms && force {
        minter.cached(context, profile)
    } else {
        None
    };
    if let Some(current) = &replaced
        && !approvals.allow(context, profile, current, program)
    {
        ask_approval(minter, profile, progress).await?;
    }
    let (session, minted_here) = minter.credentials_minted(profile, force, progress).await;
    let session = session?;
    if !confirms {
        return Ok(session);
    }
    if replaced.is_some() {
        approvals.renew(context, profile, &session);
    } else if !minted_here && !approvals.allow(context, profile, &session, program) {
        ask_approval(minter, profile, progress).await?;
    }
    approvals.grant(context, profile, &session, program);
    Ok(session)
}

/// A touch of an enrolled security key (sealing or approve-only), else a yes at the
/// client's terminal.
async fn ask_approval(
    minter: &Minter,
    profile: &str,
    progress: &Progress,
) -> Result<(), MintError> {
    let asker = progress.asker().unwrap_or("a program").to_owned();
    let shown = progress.named(profile);
    let purpose = format!("let {asker} use the session of {shown}");
    let visitor = Visitor {
        progress: progress.clone(),
        subject: profile.to_owned(),
        purpose: purpose.clone(),
    };
    let question = format!("Let {asker} use the AWS session of {shown}?");
    let approved = minter
        .door
        .enter(&visitor, Visit::MANAGE, move |vault, prompter| {
            let keys = vault.enrolled_keys().to_vec();
            if keys.iter().any(|k| k.kind == KeyKind::Seal) {
                crate::keys::unlock::unlock(&keys, prompter, &purpose, None)?;
            } else if !keys.is_empty() {
                crate::keys::unlock::approve(&keys, prompter, &purpose)?;
            } else {
                match prompter.ask(AskKind::Confirm, &question) {
                    Some(answer) if answer.expose() == "yes" => {}
                    Some(_) => anyhow::bail!("you answered no"),
                    None => anyhow::bail!(
                        "there is no security key to touch and no terminal to ask on; run it once from a terminal to approve it"
                    ),
                }
            }
            Ok(())
        })
        .await;
    approved.map_err(|e| MintError::NotApproved {
        profile: profile.to_owned(),
        asker,
        why: crate::report::sentence(e.as_ref()),
    })
}

#[cfg(test)]
mod tests {
    use super::super::super::mfa_process::ProcessFailure;
    use super::*;
    use crate::aws::profile::ProfileError;
    use crate::aws::sts::StsError;

    /// `names_profile` is what decides whether a reply names its profile again; it must
    /// agree with the wording, or a user reads the profile twice, or not at all.
    #[test]
    fn an_error_names_a_profile_exactly_when_its_message_does() {
        let p = || "prod".to_owned();
        let s = || "arn:aws:iam::123456789012:mfa/alice".to_owned();
        let errors = [
            MintError::Profile(ProfileError::Load("bad line".into())),
            MintError::Profile(ProfileError::Unknown {
                profile: p(),
                suggestion: None,
            }),
            MintError::Profile(ProfileError::NoMfaSerial { profile: p() }),
            MintError::Profile(ProfileError::NoSourceProfile { profile: p() }),
            MintError::Profile(ProfileError::SourceLoop { profile: p() }),
            MintError::Profile(ProfileError::ChainTooLong { profile: p() }),
            MintError::Profile(ProfileError::OtherProcess {
                profile: p(),
                command: "aws-vault".into(),
            }),
            MintError::Profile(ProfileError::ProcessLoop {
                profile: p(),
                target: "base".into(),
            }),
            MintError::Profile(ProfileError::Sso { profile: p() }),
            MintError::Profile(ProfileError::BadDuration {
                profile: p(),
                value: "x".into(),
                hint: "use seconds".into(),
            }),
            MintError::Sts {
                profile: p(),
                error: StsError::Throttled {
                    message: "slow down".into(),
                },
            },
            MintError::NoSeed {
                serial: s(),
                profile: p(),
            },
            MintError::AmbiguousSeed {
                serial: s(),
                seeds: vec!["a".into(), "b".into()],
            },
            MintError::NoSourceCredentials { profile: p() },
            MintError::CodeRejected {
                serial: s(),
                message: "no".into(),
            },
            MintError::NoCodeTyped {
                serial: s(),
                seconds: 60,
            },
            MintError::TypedCodeFailed {
                serial: s(),
                tries: 3,
                last: "denied".into(),
            },
            MintError::NoWayToAsk {
                serial: s(),
                detail: "no tty".into(),
            },
            MintError::MfaProcess {
                profile: p(),
                command: "ykman".into(),
                failure: ProcessFailure::NotACode,
            },
            MintError::MfaProcessRejected {
                profile: p(),
                serial: s(),
                message: "no".into(),
            },
            MintError::Cancelled,
            MintError::Vault(std::sync::Arc::new(anyhow::anyhow!("the vault is sealed"))),
            MintError::NotApproved {
                profile: p(),
                asker: "terraform (pid 1)".into(),
                why: "you answered no".into(),
            },
            MintError::ReplayNotRecorded {
                dir: "/state".into(),
                source: std::sync::Arc::new(std::io::Error::from_raw_os_error(28)),
            },
            MintError::Totp {
                source: crate::otp::OtpError::InvalidDigits { digits: 9 },
            },
            MintError::PinentryTask {
                detail: "panicked".into(),
            },
        ];
        for error in &errors {
            let worded = error.to_string().contains("profile \"prod\"");
            assert_eq!(
                worded,
                error.names_profile() == Some("prod"),
                "names_profile disagrees with the message: {error}"
            );
        }
    }
}
