//! Minting: AWS profile -> long-term keys -> TOTP code (replay-guarded) -> STS session ->
//! (optionally) AssumeRole. Results live in the session cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::MintError;
use super::cache::{SessionCache, SessionKey};
use super::door::{Door, Visitor};
use super::events::Events;
use super::prompt::{Progress, Prompt};
use super::replay::{ReplayGuard, Use};
use crate::aws::LongTermKeys;
use crate::aws::context::{AwsContext, ContextId, Contexts};
use crate::aws::profile::{CHAINED_ROLE_MAX_DURATION, ProfilePlan, Profiles, RoleSpec};
use crate::aws::sts::{self, Mfa, Sts, StsError};
use crate::clock::unix_now;
use crate::config::{CodeSource, Config, TouchPolicy};
use crate::otp::{self, Seed};
use crate::paths::Paths;
use crate::protocol::{AskKind, Event, SessionCredentials, SessionName};
use crate::secret::SecretString;
use crate::vault;

pub struct Minter {
    config: Config,
    paths: Paths,
    /// The AWS contexts of the callers.
    pub contexts: Contexts,
    replay: Arc<ReplayGuard>,
    pub cache: SessionCache,
    /// One MFA code in flight per device: two profiles sharing a serial take turns.
    serial_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
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
        let replay = Arc::new(ReplayGuard::load(paths.state_dir.join("replay.json")));
        let events = Events::default();
        let door = Door::new(&config, paths.data_dir.clone(), events.clone());
        Self {
            door,
            contexts: Contexts::new(own, Duration::from_secs(config.sts_timeout_seconds)),
            config,
            paths,
            replay,
            cache: SessionCache::default(),
            serial_locks: Mutex::default(),
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
                self.with_fresh_code(plan, profiles, progress, |keys, code| async move {
                    let mfa = Mfa {
                        serial: &plan.mfa_serial,
                        code: &code,
                    };
                    sts(progress)?
                        .get_session_token(&keys, region(progress, plan), &mfa, duration)
                        .await
                })
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
        let sts_error = |source| MintError::Sts {
            profile: profile.to_owned(),
            source,
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
        self.with_fresh_code(plan, profiles, progress, |keys, code| async move {
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
        })
        .await
    }

    /// Runs `call` with a code AWS has not seen: waits for the next window when the current
    /// code was already sent (by a mint or `mfa-agent code`), and records the step before
    /// the call. A code AWS rejects (spent elsewhere, e.g. typed into the console, or a
    /// clock a little off) is followed once by the next window's code.
    async fn with_fresh_code<F, Fut>(
        &self,
        plan: &ProfilePlan,
        profiles: &Profiles,
        progress: &Progress,
        call: F,
    ) -> Result<SessionCredentials, MintError>
    where
        F: Fn(LongTermKeys, String) -> Fut,
        Fut: Future<Output = Result<SessionCredentials, StsError>>,
    {
        let serial = plan.mfa_serial.as_str();
        let lock = self
            .serial_locks
            .lock()
            .expect("serial lock poisoned")
            .entry(serial.to_owned())
            .or_default()
            .clone();
        let _turn = lock.lock().await;
        let (keys, seed) = match self.secrets_for(plan, profiles, progress).await? {
            (keys, Codes::Seed(seed)) => (keys, seed),
            (keys, Codes::Typed) => return self.with_typed_code(plan, &keys, progress, call).await,
            (keys, Codes::Process(command)) => {
                return self
                    .with_process_code(plan, &keys, &command, progress, call)
                    .await;
            }
        };
        let sts_error = |source| MintError::Sts {
            profile: plan.profile.clone(),
            source,
        };
        let mut from = seed.params.step(unix_now());
        let mut rejected_once = false;
        loop {
            let code = self
                .claim_code(&plan.profile, serial, &seed, from, progress)
                .await?;
            tracing::info!(profile = %plan.profile, serial, "calling STS with a fresh MFA code");
            match call(keys.clone(), code.digits.clone()).await {
                Err(StsError::MfaRejected { message }) if rejected_once => {
                    return Err(MintError::CodeRejected {
                        serial: serial.to_owned(),
                        message,
                    });
                }
                Err(StsError::MfaRejected { .. }) => {
                    rejected_once = true;
                    let _ = progress.send(Prompt::Tell(format!(
                        "AWS rejected the MFA code for {serial} (used elsewhere, or the clock is off); trying the next one"
                    )));
                    from = code.step + 1;
                }
                result => return result.map_err(sts_error),
            }
        }
    }

    /// Waits `seconds` for the next code window, saying so to the waiting client and, for
    /// a client without a terminal (an IDE, a GUI), to the tray and a notification.
    async fn wait_for_window(
        &self,
        profile: &str,
        serial: &str,
        seconds: u64,
        progress: &Progress,
    ) {
        let _ = progress.send(Prompt::Tell(format!(
            "waiting {seconds} s for a fresh MFA code for {serial} (AWS rejects a code used twice)"
        )));
        self.events.send(Event::CodeWait {
            profile: profile.to_owned(),
            seconds,
        });
        tokio::time::sleep(Duration::from_secs(seconds)).await;
    }

    /// Records a code the user typed or `mfa_process` printed as sent, on a blocking thread
    /// (the guard fsyncs); `false` when it was sent already.
    async fn spend_code(&self, serial: &str, code: &str) -> Result<bool, MintError> {
        let (replay, spent) = (self.replay.clone(), (serial.to_owned(), code.to_owned()));
        tokio::task::spawn_blocking(move || replay.spend_typed(&spent.0, &spent.1, unix_now()))
            .await
            .map_err(std::io::Error::other)
            .and_then(|saved| saved)
            .map_err(|e| self.replay_save_error(&e))
    }

    /// [`ReplayGuard::next_free`] for a send.
    pub(super) fn replay_free(&self, serials: &[String], from: u64) -> u64 {
        self.replay.next_free(serials, from, Use::Send)
    }

    /// [`ReplayGuard::claim`] on a blocking thread: it fsyncs the guard's file, which must
    /// not stall every other connection on the runtime's one thread.
    pub(super) async fn claim_step(
        &self,
        serials: Vec<String>,
        from: u64,
        latest: u64,
        use_: Use,
    ) -> std::io::Result<Option<u64>> {
        let replay = self.replay.clone();
        tokio::task::spawn_blocking(move || replay.claim(&serials, from, latest, use_))
            .await
            .map_err(std::io::Error::other)?
    }

    /// The code of the first unspent step at or after `from`: its window waited for first
    /// (telling the client why), then the step claimed in the replay guard, so a code is
    /// recorded only once it may leave the agent (see [`ReplayGuard::next_free`]).
    async fn claim_code(
        &self,
        profile: &str,
        serial: &str,
        seed: &Seed,
        from: u64,
        progress: &Progress,
    ) -> Result<otp::Code, MintError> {
        let serials = vec![serial.to_owned()];
        let mut from = from;
        loop {
            let step = self.replay.next_free(&serials, from, Use::Send);
            let starts = step.saturating_mul(seed.params.period);
            let now = unix_now();
            if starts > now {
                self.wait_for_window(profile, serial, starts - now, progress)
                    .await;
            }
            // Another use may have taken the step meanwhile (`mfa-agent code` shows one).
            let claimed = self
                .claim_step(serials.clone(), step, step, Use::Send)
                .await
                .map_err(|e| self.replay_save_error(&e))?;
            if claimed == Some(step) {
                return otp::code_at(&seed.params, &seed.secret, starts).map_err(|e| {
                    MintError::Internal(format!("failed to compute the MFA code: {e}"))
                });
            }
            from = step + 1;
        }
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
    ) -> Result<(LongTermKeys, Codes), MintError> {
        let serial = plan.mfa_serial.clone();
        let configured = self.config.serials.get(&serial).cloned();
        let setting = self.config.code_source.get(&serial).copied();
        let (profile, source) = (plan.profile.clone(), plan.source_profile.clone());
        let visitor = Visitor {
            progress: progress.clone(),
            subject: profile.clone(),
            purpose: progress.approval_of(&profile),
        };
        let keep_unlocked = self.config.touch(&profile) == TouchPolicy::Unlock;
        let process = plan.mfa_process.clone();
        let found = self
            .door
            .enter(&visitor, keep_unlocked, None, move |vault, _| {
                let keys = vault.credentials(&source)?;
                if let Some(command) = process {
                    return Ok((keys, Ok(Codes::Process(command))));
                }
                let linked = vault::seed_for_serial(vault.seeds(), &serial);
                if CodeSource::typed(setting, configured.is_some() || !linked.is_empty()) {
                    return Ok((keys, Ok(Codes::Typed)));
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
                Ok((keys, Ok(Codes::Seed(vault.seed(&name)?))))
            })
            .await;
        let (from_vault, codes) =
            found.map_err(|e| MintError::Vault(crate::report::one_sentence(e.as_ref())))?;
        let keys = from_vault
            .or_else(|| profiles.static_keys(&plan.source_profile))
            .ok_or_else(|| MintError::NoSourceCredentials {
                profile: plan.source_profile.clone(),
            })?;
        Ok((keys, codes?))
    }

    /// Runs `call` with codes the user types (a hardware token, a phone app): asked through
    /// the waiting client, else pinentry; 6 digits, never one already sent for this device,
    /// and asked again (with the reason) when AWS rejects it, [`TYPED_CODE_TRIES`] times.
    async fn with_typed_code<F, Fut>(
        &self,
        plan: &ProfilePlan,
        keys: &LongTermKeys,
        progress: &Progress,
        call: F,
    ) -> Result<SessionCredentials, MintError>
    where
        F: Fn(LongTermKeys, String) -> Fut,
        Fut: Future<Output = Result<SessionCredentials, StsError>>,
    {
        let serial = plan.mfa_serial.as_str();
        let mut retry_because: Option<String> = None;
        for _ in 0..TYPED_CODE_TRIES {
            let question = format!(
                "MFA code for {serial} (profile {})",
                progress.named(&plan.profile)
            );
            let message = match &retry_because {
                Some(why) => format!("{why}; {question}"),
                None => question,
            };
            let typed = self.ask_code(plan, message, progress).await?;
            let code = typed.expose().trim();
            if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
                retry_because = Some("that was not a 6-digit code".into());
                continue;
            }
            if !self.spend_code(serial, code).await? {
                retry_because = Some("this code was already used; wait for the next one".into());
                continue;
            }
            tracing::info!(profile = %plan.profile, serial, "calling STS with a typed MFA code");
            match call(keys.clone(), code.to_owned()).await {
                Err(StsError::MfaRejected { message }) => {
                    retry_because = Some(format!("AWS rejected the code ({message})"));
                }
                result => {
                    return result.map_err(|source| MintError::Sts {
                        profile: plan.profile.clone(),
                        source,
                    });
                }
            }
        }
        Err(MintError::TypedCodeFailed {
            serial: serial.to_owned(),
            tries: TYPED_CODE_TRIES,
            last: retry_because.unwrap_or_default(),
        })
    }

    /// Runs `call` with codes the profile's `mfa_process` prints: run once per code needed,
    /// within `prompt_timeout_seconds` (a YubiKey may wait for a touch). A code already sent
    /// (a second mint in the same window) or rejected by AWS waits for the next window and
    /// runs the command again, [`PROCESS_CODE_TRIES`] times in all.
    async fn with_process_code<F, Fut>(
        &self,
        plan: &ProfilePlan,
        keys: &LongTermKeys,
        command: &str,
        progress: &Progress,
        call: F,
    ) -> Result<SessionCredentials, MintError>
    where
        F: Fn(LongTermKeys, String) -> Fut,
        Fut: Future<Output = Result<SessionCredentials, StsError>>,
    {
        let serial = plan.mfa_serial.as_str();
        let limit = Duration::from_secs(self.config.prompt_timeout_seconds);
        let mut rejected = String::from("the same code twice");
        for attempt in 0..PROCESS_CODE_TRIES {
            if attempt > 0 {
                let wait = AWS_CODE_PERIOD - unix_now() % AWS_CODE_PERIOD + 1;
                self.wait_for_window(&plan.profile, serial, wait, progress)
                    .await;
            }
            let _ = progress.send(Prompt::Tell(format!(
                "running the mfa_process of profile {}",
                progress.named(&plan.profile)
            )));
            let code = super::mfa_process::code_from(command, limit, progress)
                .await
                .map_err(|failure| MintError::MfaProcess {
                    profile: plan.profile.clone(),
                    command: command.to_owned(),
                    failure,
                })?;
            let code = code.expose();
            if self.spend_code(serial, code).await? {
                tracing::info!(profile = %plan.profile, serial, "calling STS with a code from mfa_process");
                match call(keys.clone(), code.to_owned()).await {
                    Err(StsError::MfaRejected { message }) => rejected = message,
                    result => {
                        return result.map_err(|source| MintError::Sts {
                            profile: plan.profile.clone(),
                            source,
                        });
                    }
                }
            }
        }
        Err(MintError::MfaProcessRejected {
            profile: plan.profile.clone(),
            serial: serial.to_owned(),
            message: rejected,
        })
    }

    /// One typed code: asked of the waiting client, which shows the prompt on its terminal;
    /// a client without one leaves it to pinentry. The tray and a notification show that a
    /// code is wanted. Nobody answering within `prompt_timeout_seconds` is an error for
    /// every client waiting on this mint; a client that hangs up cancels its prompt.
    async fn ask_code(
        &self,
        plan: &ProfilePlan,
        message: String,
        progress: &Progress,
    ) -> Result<SecretString, MintError> {
        let seconds = self.config.prompt_timeout_seconds;
        let profile = plan.profile.clone();
        self.events.send(Event::TouchNeeded {
            profile: profile.clone(),
            message: format!("type the MFA code for {} ({profile})", plan.mfa_serial),
        });
        let pinentry = self.config.pinentry.clone();
        let asked = async {
            let (reply, answer) = tokio::sync::oneshot::channel();
            let question = Prompt::Ask {
                kind: AskKind::MfaCode,
                message: message.clone(),
                reply,
            };
            if progress.send(question).is_err() {
                return Err(MintError::Cancelled);
            }
            if let Ok(Some(code)) = answer.await {
                return Ok(code);
            }
            if progress.is_closed() {
                return Err(MintError::Cancelled);
            }
            tokio::task::spawn_blocking(move || {
                crate::desktop::pinentry::ask_code(pinentry.as_deref(), &message, seconds)
            })
            .await
            .map_err(|e| MintError::Internal(format!("the pinentry task failed: {e}")))?
            .map_err(|e| MintError::NoWayToAsk {
                serial: plan.mfa_serial.clone(),
                detail: crate::report::one_sentence(e.as_ref()),
            })
        };
        let answered = tokio::time::timeout(Duration::from_secs(seconds), asked).await;
        self.events.send(Event::Approved { profile });
        answered.unwrap_or_else(|_| {
            Err(MintError::NoCodeTyped {
                serial: plan.mfa_serial.clone(),
                seconds,
            })
        })
    }

    fn replay_save_error(&self, e: &std::io::Error) -> MintError {
        MintError::Internal(format!(
            "could not record which MFA code was sent, in {} ({e}), so none was sent{}",
            self.paths.state_dir.display(),
            crate::atomic::what_to_do(e)
        ))
    }
}

/// How the codes of a mint's MFA device are had.
enum Codes {
    /// Computed from its seed.
    Seed(Seed),
    /// Typed by the user.
    Typed,
    /// Printed by the profile's `mfa_process`.
    Process(String),
}

/// The period of AWS's MFA devices: a code `mfa_process` printed twice is fresh again in
/// the next window of this length.
const AWS_CODE_PERIOD: u64 = 30;

/// How many codes `mfa_process` is asked for in one mint (one spent already, one AWS
/// rejects as used elsewhere).
const PROCESS_CODE_TRIES: usize = 3;

/// How many codes a user may type for one mint (a typo, a reused code, one AWS rejects).
const TYPED_CODE_TRIES: usize = 3;

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
