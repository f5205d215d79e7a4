//! Minting: AWS profile -> long-term keys -> MFA code (from `codes`, replay-guarded) -> STS
//! session -> (optionally) AssumeRole. Results live in the session cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::MintError;
use super::cache::{SessionCache, SessionKey};
use super::codes::{Codes, Origin, StsCall};
use super::door::{Door, Visit, Visitor};
use super::events::Events;
use super::prompt::Progress;
use crate::aws::LongTermKeys;
use crate::aws::context::{AwsContext, ContextId, Contexts};
use crate::aws::profile::{CHAINED_ROLE_MAX_DURATION, ProfilePlan, Profiles, RoleSpec};
use crate::aws::sts::{self, Mfa, Sts, StsError};
use crate::clock::unix_now;
use crate::config::{CodeSource, Config};
use crate::paths::Paths;
use crate::protocol::{Event, SessionCredentials, SessionName};
use crate::vault;

pub struct Minter {
    config: Config,
    paths: Paths,
    /// The AWS contexts of the callers.
    pub contexts: Contexts,
    pub cache: SessionCache,
    /// Where each code comes from, and that none is sent twice.
    pub(super) codes: Codes,
    /// The way to the vault and the security keys, one request at a time.
    pub door: Door,
    /// Which programs may use each profile's session (`confirm = "each-program"`).
    pub approvals: super::approvals::Approvals,
    /// What happens, for the tray and notifications.
    pub events: Events,
}

impl Minter {
    #[must_use]
    pub fn new(config: Config, paths: Paths, own: AwsContext) -> Self {
        let events = Events::default();
        let door = Door::new(&config, paths.data_dir.clone(), events.clone());
        Self {
            door,
            contexts: Contexts::new(own, Duration::from_secs(config.sts_timeout_seconds)),
            codes: Codes::new(&config, &paths, events.clone()),
            config,
            paths,
            cache: SessionCache::default(),
            approvals: super::approvals::Approvals::default(),
            events,
        }
    }

    /// Where the agent's files are.
    #[must_use]
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// The agent's settings, as loaded at start.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Tells subscribers the sessions (or the unlock state) changed.
    fn publish_sessions(&self) {
        self.events.send(Event::Sessions {
            sessions: self.cache.summaries(),
            unlocked_until: self.door.unlocked_until(),
        });
    }

    /// Drops every cached session and locks the seeds; returns how many sessions there were.
    pub fn lock(&self) -> usize {
        self.door.lock();
        let dropped = self.cache.clear();
        self.publish_sessions();
        dropped
    }

    /// Until when the seeds stay unlocked under `touch = "unlock"`, if they are.
    #[must_use]
    pub fn unlocked_until(&self) -> Option<i64> {
        self.door.unlocked_until()
    }

    /// Session credentials for `profile`, from the cache or freshly minted, and whether this
    /// call minted them (rather than found them cached or joined another caller's mint).
    /// Private: every use of a session goes through `actions::credentials::session`, which
    /// applies `confirm = "each-program"` to the program that asked.
    pub(super) async fn credentials_minted(
        &self,
        profile: &str,
        force: bool,
        progress: &Progress,
    ) -> (Result<Arc<SessionCredentials>, MintError>, bool) {
        let margin = self.config.refresh_margin_seconds;
        // Whether this call minted (rather than found the session cached or joined another
        // caller's mint): only a mint is news for subscribers.
        let minted_here = AtomicBool::new(false);
        let result = self
            .cache
            .get_or_mint(&profile_key(progress, profile), margin, force, || async {
                minted_here.store(true, Ordering::Relaxed);
                self.mint(profile, force, progress).await
            })
            .await;
        if minted_here.load(Ordering::Relaxed) {
            let profile = profile.to_owned();
            match &result {
                Ok(credentials) => {
                    self.events.send(Event::Issued {
                        profile,
                        expiration: credentials.expiration,
                    });
                    self.publish_sessions();
                }
                Err(e) => self.events.send(Event::Failed {
                    profile,
                    message: e.to_string(),
                }),
            }
        }
        (result, minted_here.load(Ordering::Relaxed))
    }

    async fn mint(
        &self,
        profile: &str,
        force: bool,
        progress: &Progress,
    ) -> Result<SessionCredentials, MintError> {
        let profiles = progress.context().profiles().await?;
        let plan = profiles.plan(profile)?;
        // A profile that stands for another (its credential_process runs mfa-agent for
        // it) shares that profile's session: `exec prod` and `exec prod-admin` make one
        // AssumeRole, not two.
        if plan.profile != profile {
            let (shared, _) =
                Box::pin(self.credentials_minted(&plan.profile, force, progress)).await;
            return shared.map(|session| SessionCredentials::clone(&session));
        }
        match &plan.role {
            None => {
                let session = self.mfa_session(&plan, &profiles, force, progress).await?;
                Ok(SessionCredentials::clone(&session))
            }
            Some(_) if plan.via.is_empty() && self.config.profile(profile).assume_role_with_mfa => {
                self.role_with_mfa(&plan, &profiles, progress).await
            }
            Some(role) => {
                let mut session = self.mfa_session(&plan, &profiles, false, progress).await?;
                // A chain: each role on the way is assumed with the one before, and cached
                // as its own profile's session.
                for hop in &plan.via {
                    let margin = self.config.refresh_margin_seconds;
                    let from = session.clone();
                    session = self
                        .cache
                        .get_or_mint(
                            &profile_key(progress, &hop.profile),
                            margin,
                            false,
                            || async {
                                self.chained_role(
                                    &hop.profile,
                                    hop.region.as_deref(),
                                    &hop.role,
                                    &from,
                                    progress,
                                )
                                .await
                            },
                        )
                        .await?;
                }
                self.chained_role(
                    &plan.profile,
                    plan.region.as_deref(),
                    role,
                    &session,
                    progress,
                )
                .await
            }
        }
    }

    /// The cached credentials for `profile`, if fresh: a cache hit without any waiting.
    #[must_use]
    pub fn cached(&self, context: &ContextId, profile: &str) -> Option<Arc<SessionCredentials>> {
        let key = (context.clone(), SessionName::Profile(profile.to_owned()));
        self.cache.fresh(&key, self.config.refresh_margin_seconds)
    }

    /// The MFA session of the plan's source profile: one GetSessionToken, shared by the
    /// source profile and every role profile built on it.
    async fn mfa_session(
        &self,
        plan: &ProfilePlan,
        profiles: &Profiles,
        force: bool,
        progress: &Progress,
    ) -> Result<Arc<SessionCredentials>, MintError> {
        let key = (
            progress.context().id().clone(),
            SessionName::MfaSession(plan.source_profile.clone()),
        );
        self.cache
            .get_or_mint(&key, self.config.refresh_margin_seconds, force, || async {
                let duration = plan
                    .session_duration
                    .or(self.config.session_duration_seconds);
                self.with_fresh_code(
                    plan,
                    profiles,
                    progress,
                    |keys: LongTermKeys, code: String| async move {
                        let mfa = Mfa {
                            serial: &plan.mfa_serial,
                            code: &code,
                        };
                        sts(progress)?
                            .get_session_token(&keys, region(progress, plan), &mfa, duration)
                            .await
                    },
                )
                .await
            })
            .await
    }

    /// AssumeRole of `profile`'s role, signed by `session` (the MFA session, or the role
    /// before it in a chain); AWS caps such chained sessions at 1 hour.
    async fn chained_role(
        &self,
        profile: &str,
        region: Option<&str>,
        role: &RoleSpec,
        session: &SessionCredentials,
        progress: &Progress,
    ) -> Result<SessionCredentials, MintError> {
        let duration = role
            .duration
            .unwrap_or(CHAINED_ROLE_MAX_DURATION)
            .min(CHAINED_ROLE_MAX_DURATION);
        let sts_error = |error| MintError::Sts {
            profile: profile.to_owned(),
            error,
        };
        sts(progress)
            .map_err(sts_error)?
            .assume_role(
                sts::signing_credentials(session),
                progress.context().region(region),
                role,
                &session_name(role.session_name.as_deref()),
                Some(duration),
                None,
            )
            .await
            .map_err(sts_error)
    }

    /// AssumeRole with the long-term keys and an MFA code: sessions up to the role's maximum.
    async fn role_with_mfa(
        &self,
        plan: &ProfilePlan,
        profiles: &Profiles,
        progress: &Progress,
    ) -> Result<SessionCredentials, MintError> {
        let role = plan.role.as_ref().expect("role profiles only");
        self.with_fresh_code(
            plan,
            profiles,
            progress,
            |keys: LongTermKeys, code: String| async move {
                let mfa = Mfa {
                    serial: &plan.mfa_serial,
                    code: &code,
                };
                let name = session_name(role.session_name.as_deref());
                sts(progress)?
                    .assume_role(
                        sts::long_term_credentials(&keys),
                        region(progress, plan),
                        role,
                        &name,
                        role.duration,
                        Some(&mfa),
                    )
                    .await
            },
        )
        .await
    }

    /// Runs `sts` with a code AWS has not seen, from wherever the plan's MFA device has
    /// its codes ([`Codes`]), in the device's turn: the vault visit for the keys and the
    /// seed, the code and the call, one mint per device at a time.
    async fn with_fresh_code(
        &self,
        plan: &ProfilePlan,
        profiles: &Profiles,
        progress: &Progress,
        sts: impl StsCall,
    ) -> Result<SessionCredentials, MintError> {
        let _turn = self.codes.turn(&plan.mfa_serial).await;
        let (keys, origin) = self.secrets_for(plan, profiles, progress).await?;
        // Boxed: nested in the credentials request's future, the three ways to a code made
        // its layout too deep for rustc (a build without default features, `cargo doc`:
        // "queries overflow the depth limit"). One allocation per mint, beside an STS call.
        Box::pin(
            self.codes
                .call_with_code(plan, &keys, origin, progress, sts),
        )
        .await
    }

    /// The source profile's long-term keys (from the vault, else the AWS files) and where
    /// the codes of the plan's MFA device come from (its seed, read in the same visit to the
    /// vault, or the user). Sealed, they open with one touch of an enrolled security key,
    /// asked through the waiting client (the approval for this mint).
    async fn secrets_for(
        &self,
        plan: &ProfilePlan,
        profiles: &Profiles,
        progress: &Progress,
    ) -> Result<(LongTermKeys, Origin), MintError> {
        let serial = plan.mfa_serial.clone();
        let configured = self.config.serials.get(&serial).cloned();
        let setting = self.config.code_source.get(&serial).copied();
        let (profile, source) = (plan.profile.clone(), plan.source_profile.clone());
        let visitor = Visitor {
            progress: progress.clone(),
            subject: profile.clone(),
            purpose: progress.approval_of(&profile),
        };
        let process = plan.mfa_process.clone();
        let found = self
            .door
            .enter(&visitor, Visit::UseFor(&plan.profile), move |vault, _| {
                let keys = vault.credentials(&source)?;
                if let Some(command) = process {
                    return Ok((keys, Ok(Origin::Process(command))));
                }
                let linked = vault::seed_for_serial(vault.seeds(), &serial);
                if CodeSource::typed(setting, configured.is_some() || !linked.is_empty()) {
                    return Ok((keys, Ok(Origin::Typed)));
                }
                let name = if let Some(name) = configured {
                    name
                } else {
                    match linked.as_slice() {
                        [one] => (*one).to_owned(),
                        [] => return Ok((keys, Err(MintError::NoSeed { serial, profile }))),
                        _ => {
                            let seeds = linked.iter().map(|s| (*s).to_owned()).collect();
                            let ambiguous = MintError::AmbiguousSeed { serial, seeds };
                            return Ok((keys, Err(ambiguous)));
                        }
                    }
                };
                Ok((keys, Ok(Origin::Seed(vault.seed(&name)?))))
            })
            .await;
        let (from_vault, codes) = found.map_err(|e| MintError::Vault(Arc::new(e)))?;
        let keys = from_vault
            .or_else(|| profiles.static_keys(&plan.source_profile))
            .ok_or_else(|| MintError::NoSourceCredentials {
                profile: plan.source_profile.clone(),
            })?;
        Ok((keys, codes?))
    }
}

/// The cache key of `profile`'s own session, in the caller's context.
fn profile_key(progress: &Progress, profile: &str) -> SessionKey {
    (
        progress.context().id().clone(),
        SessionName::Profile(profile.to_owned()),
    )
}

/// STS as the caller reaches it; a proxy or CA bundle it cannot use fails the call.
fn sts(progress: &Progress) -> Result<&Sts, StsError> {
    Ok(progress.context().sts()?)
}

/// The region of a call for `plan`: the caller's, else the profile's.
fn region<'a>(progress: &'a Progress, plan: &'a ProfilePlan) -> Option<&'a str> {
    progress.context().region(plan.region.as_deref())
}

fn session_name(configured: Option<&str>) -> String {
    configured.map_or_else(|| format!("mfa-agent-{}", unix_now()), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::CallerEnv;

    /// A touch or approval prompt names a caller's context that is not the agent's own: an
    /// unexpected endpoint shows before the touch (SECURITY.md).
    #[test]
    fn prompts_name_a_context_that_is_not_the_agents_own() {
        let timeout = Duration::from_secs(1);
        let contexts = Contexts::new(AwsContext::new(CallerEnv::default(), timeout), timeout);
        let (client, _prompts) = tokio::sync::mpsc::unbounded_channel();
        let own = Progress::new(client.clone(), contexts.get(None));
        assert_eq!(own.approval_of("ops"), "approve ops");
        let elsewhere =
            CallerEnv::from_pairs([("AWS_ENDPOINT_URL", "http://sts.example".to_owned())]);
        let other = Progress::new(client, contexts.get(Some(elsewhere)));
        assert_eq!(
            other.approval_of("ops"),
            "approve ops (AWS_ENDPOINT_URL=http://sts.example)"
        );
    }
}
