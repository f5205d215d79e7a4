//! `confirm = "each-program"` (config.toml, per profile): a cached session is handed only
//! to programs the user approved for it, as ssh-agent's `-c` and gpg-agent's confirmations
//! do for keys, but once per program and session rather than once per use. The program
//! whose request minted the session is its first user; any other asks first, with a touch
//! of an enrolled security key, else a yes at the client's terminal. Approvals last for the
//! session's life: a new session starts with none.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use super::MintError;
use super::door::Visitor;
use super::minter::{Minter, Progress};
use crate::aws::context::ContextId;
use crate::protocol::{AskKind, SessionCredentials};
use crate::vault::KeyKind;

/// Per profile (in its caller's context): the session (by access key id) and the programs
/// approved for it.
#[derive(Default)]
pub struct Approvals(Mutex<HashMap<ProfileInContext, (String, HashSet<String>)>>);

/// A profile name in a caller's context.
type ProfileInContext = (ContextId, String);

impl Approvals {
    /// Whether `program` was approved for `session` of `profile`.
    #[must_use]
    pub fn allow(
        &self,
        context: &ContextId,
        profile: &str,
        session: &SessionCredentials,
        program: &str,
    ) -> bool {
        self.0
            .lock()
            .expect("approvals lock poisoned")
            .get(&(context.clone(), profile.to_owned()))
            .is_some_and(|(key, programs)| {
                *key == session.access_key_id && programs.contains(program)
            })
    }

    /// Moves the programs approved for `profile`'s session to `renewed`, its forced refresh:
    /// a refresh replaces the session, not the user's approvals.
    pub fn renew(&self, context: &ContextId, profile: &str, renewed: &SessionCredentials) {
        if let Some(entry) = self
            .0
            .lock()
            .expect("approvals lock poisoned")
            .get_mut(&(context.clone(), profile.to_owned()))
        {
            entry.0.clone_from(&renewed.access_key_id);
        }
    }

    /// Approves `program` for `session` of `profile` (forgetting approvals of an older one).
    pub fn grant(
        &self,
        context: &ContextId,
        profile: &str,
        session: &SessionCredentials,
        program: &str,
    ) {
        let mut approvals = self.0.lock().expect("approvals lock poisoned");
        let entry = approvals
            .entry((context.clone(), profile.to_owned()))
            .or_insert_with(|| (session.access_key_id.clone(), HashSet::new()));
        if entry.0 != session.access_key_id {
            *entry = (session.access_key_id.clone(), HashSet::new());
        }
        entry.1.insert(program.to_owned());
    }
}

impl Minter {
    /// Whether a cached session of `profile` may go to `program` without asking.
    #[must_use]
    pub fn may_serve(
        &self,
        context: &ContextId,
        profile: &str,
        session: &SessionCredentials,
        program: &str,
    ) -> bool {
        !self.config().confirms_each_program(profile)
            || self.approvals.allow(context, profile, session, program)
    }

    /// The session of `profile`, from the cache or freshly minted, for the program that
    /// asked (`progress` names it): the one way to a session. Under `confirm =
    /// "each-program"`, a program that neither minted the session nor was approved for it is
    /// asked about first; a forced refresh (`--refresh`) is a use of the session it
    /// replaces, so it is asked about too, and the programs approved for that session stay
    /// approved for the new one.
    pub async fn credentials_for(
        &self,
        profile: &str,
        force: bool,
        progress: &Progress,
    ) -> Result<Arc<SessionCredentials>, MintError> {
        let program = progress.program();
        let context = progress.context().id();
        let confirms = self.config().confirms_each_program(profile);
        let replaced = if confirms && force {
            self.cached(context, profile)
        } else {
            None
        };
        if let Some(current) = &replaced
            && !self.approvals.allow(context, profile, current, program)
        {
            self.ask_approval(profile, progress).await?;
        }
        let (session, minted) = self.credentials_minted(profile, force, progress).await;
        let session = session?;
        if !confirms {
            return Ok(session);
        }
        if replaced.is_some() {
            self.approvals.renew(context, profile, &session);
        } else if !minted && !self.approvals.allow(context, profile, &session, program) {
            self.ask_approval(profile, progress).await?;
        }
        self.approvals.grant(context, profile, &session, program);
        Ok(session)
    }

    /// A touch of an enrolled security key (sealing or approve-only), else a yes at the
    /// client's terminal.
    async fn ask_approval(&self, profile: &str, progress: &Progress) -> Result<(), MintError> {
        let asker = progress.asker().unwrap_or("a program").to_owned();
        let shown = progress.named(profile);
        let purpose = format!("let {asker} use the session of {shown}");
        let visitor = Visitor {
            progress: progress.clone(),
            subject: profile.to_owned(),
            purpose: purpose.clone(),
        };
        let question = format!("Let {asker} use the AWS session of {shown}?");
        let approved = self
            .door
            .enter(&visitor, false, None, move |vault, prompter| {
                let keys = vault.enrolled_keys().to_vec();
                if keys.iter().any(|k| k.kind == KeyKind::Seal) {
                    crate::unlock::unlock(&keys, prompter, &purpose, None)?;
                } else if !keys.is_empty() {
                    crate::unlock::approve(&keys, prompter, &purpose)?;
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
            why: crate::report::one_sentence(e.as_ref()),
        })
    }
}
