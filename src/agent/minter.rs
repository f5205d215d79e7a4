//! Minting: AWS profile -> long-term keys -> TOTP code (replay-guarded) -> STS session ->
//! (optionally) AssumeRole. Results live in the session cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use super::MintError;
use super::cache::SessionCache;
use super::events::Events;
use super::replay::ReplayGuard;
use super::unlocked::UnlockedKey;
use crate::aws::LongTermKeys;
use crate::aws::profile::{CHAINED_ROLE_MAX_DURATION, ProfilePlan, Profiles};
use crate::aws::sts::{self, Mfa, Sts};
use crate::clock::unix_now;
use crate::config::{Config, TouchPolicy};
use crate::otp::{self, Seed};
use crate::paths::Paths;
use crate::protocol::{Event, SessionCredentials};
use crate::secret::SecretString;
use crate::vault::{self, EnrolledKey, Vault, VaultError};

/// What a mint needs the waiting client to show or ask.
pub enum Prompt {
    /// "waiting 12 s for a fresh MFA code", "touch your security key (main) to approve base".
    Tell(String),
    /// A security key's PIN: the client asks its user and the answer comes back on `reply`
    /// (`None`: the client cannot ask, it has no terminal).
    Pin {
        message: String,
        reply: tokio::sync::oneshot::Sender<Option<SecretString>>,
    },
}

/// The waiting client, for the mint's prompts.
pub type Progress = UnboundedSender<Prompt>;

pub struct Minter {
    config: Config,
    paths: Paths,
    sts: Sts,
    replay: ReplayGuard,
    pub cache: SessionCache,
    /// One MFA code in flight per device: two profiles sharing a serial take turns.
    serial_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The data key, while unlocked under `touch = "unlock"`.
    unlocked: UnlockedKey,
    /// What happens, for the tray and notifications.
    pub events: Events,
}

impl Minter {
    #[must_use]
    pub fn new(config: Config, paths: Paths, sts: Sts) -> Self {
        let replay = ReplayGuard::load(paths.state_dir.join("replay.json"));
        let unlocked = UnlockedKey::new(
            Duration::from_secs(config.unlock_ttl_seconds),
            Duration::from_secs(config.unlock_idle_seconds),
        );
        Self {
            unlocked,
            config,
            paths,
            sts,
            replay,
            cache: SessionCache::default(),
            serial_locks: Mutex::default(),
            events: Events::default(),
        }
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
            unlocked_until: self.unlocked.until(),
        });
    }

    /// Drops every cached session and locks the seeds; returns how many sessions there were.
    pub fn lock(&self) -> usize {
        self.unlocked.clear();
        let dropped = self.cache.clear();
        self.publish_sessions();
        dropped
    }

    /// Until when the seeds stay unlocked under `touch = "unlock"`, if they are.
    #[must_use]
    pub fn unlocked_until(&self) -> Option<i64> {
        self.unlocked.until()
    }

    /// Session credentials for `profile`, from the cache or freshly minted.
    pub async fn credentials(
        &self,
        profile: &str,
        force: bool,
        progress: &Progress,
    ) -> Result<Arc<SessionCredentials>, MintError> {
        let margin = self.config.refresh_margin_seconds;
        // Whether this call minted (rather than found the session cached or joined another
        // caller's mint): only a mint is news for subscribers.
        let minted_here = AtomicBool::new(false);
        let result = self
            .cache
            .get_or_mint(&profile_key(profile), margin, force, || async {
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
        result
    }

    async fn mint(
        &self,
        profile: &str,
        force: bool,
        progress: &Progress,
    ) -> Result<SessionCredentials, MintError> {
        let profiles = Profiles::load().await?;
        let plan = profiles.plan(profile)?;
        match &plan.role {
            None => {
                let session = self.mfa_session(&plan, &profiles, force, progress).await?;
                Ok(SessionCredentials::clone(&session))
            }
            Some(_) if self.config.profile(profile).assume_role_with_mfa => {
                self.role_with_mfa(&plan, &profiles, progress).await
            }
            Some(_) => {
                let session = self.mfa_session(&plan, &profiles, false, progress).await?;
                self.chained_role(&plan, &session).await
            }
        }
    }

    /// The cached credentials for `profile`, if fresh: a cache hit without any waiting.
    #[must_use]
    pub fn cached(&self, profile: &str) -> Option<Arc<SessionCredentials>> {
        self.cache
            .fresh(&profile_key(profile), self.config.refresh_margin_seconds)
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
        let key = format!("mfa-session {}", plan.source_profile);
        self.cache
            .get_or_mint(&key, self.config.refresh_margin_seconds, force, || async {
                let keys = self.long_term_keys(&plan.source_profile, profiles).await?;
                let duration = plan
                    .session_duration
                    .or(self.config.session_duration_seconds);
                self.with_fresh_code(plan, progress, |code| async move {
                    let mfa = Mfa {
                        serial: &plan.mfa_serial,
                        code: &code,
                    };
                    self.sts
                        .get_session_token(&keys, plan.region.as_deref(), &mfa, duration)
                        .await
                })
                .await
            })
            .await
    }

    /// AssumeRole signed by the MFA session; AWS caps such chained sessions at 1 hour.
    async fn chained_role(
        &self,
        plan: &ProfilePlan,
        session: &SessionCredentials,
    ) -> Result<SessionCredentials, MintError> {
        let role = plan.role.as_ref().expect("role profiles only");
        let duration = role
            .duration
            .unwrap_or(CHAINED_ROLE_MAX_DURATION)
            .min(CHAINED_ROLE_MAX_DURATION);
        self.sts
            .assume_role(
                sts::signing_credentials(session),
                plan.region.as_deref(),
                role,
                &session_name(role.session_name.as_deref()),
                Some(duration),
                None,
            )
            .await
            .map_err(|e| MintError::Sts {
                profile: plan.profile.clone(),
                source: e,
            })
    }

    /// AssumeRole with the long-term keys and an MFA code: sessions up to the role's maximum.
    async fn role_with_mfa(
        &self,
        plan: &ProfilePlan,
        profiles: &Profiles,
        progress: &Progress,
    ) -> Result<SessionCredentials, MintError> {
        let role = plan.role.as_ref().expect("role profiles only");
        let keys = self.long_term_keys(&plan.source_profile, profiles).await?;
        self.with_fresh_code(plan, progress, |code| async move {
            let mfa = Mfa {
                serial: &plan.mfa_serial,
                code: &code,
            };
            let name = session_name(role.session_name.as_deref());
            self.sts
                .assume_role(
                    sts::long_term_credentials(&keys),
                    plan.region.as_deref(),
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
    /// code was already sent, and records the step before the call.
    async fn with_fresh_code<F, Fut>(
        &self,
        plan: &ProfilePlan,
        progress: &Progress,
        call: F,
    ) -> Result<SessionCredentials, MintError>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<SessionCredentials, sts::StsError>>,
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
        let seed = self
            .seed_for_serial(serial, &plan.profile, progress)
            .await?;

        let now = unix_now();
        let step = seed.params.step(now);
        let usable = self.replay.first_unused_step(serial, step);
        if usable > step {
            let wait = usable * seed.params.period - now;
            let _ = progress.send(Prompt::Tell(format!(
                "waiting {wait} s for a fresh MFA code for {serial} (AWS rejects a code used twice)"
            )));
            tokio::time::sleep(Duration::from_secs(wait)).await;
        }
        let code = otp::code_at(&seed.params, &seed.secret, usable * seed.params.period)
            .map_err(|e| MintError::Internal(format!("failed to compute the MFA code: {e}")))?;
        self.replay.record(serial, usable).map_err(|e| {
            MintError::Internal(format!(
                "failed to save the replay guard in {}: {e}",
                self.paths.state_dir.display()
            ))
        })?;
        tracing::info!(profile = %plan.profile, serial, "calling STS with a fresh MFA code");
        call(code.digits.clone()).await.map_err(|e| MintError::Sts {
            profile: plan.profile.clone(),
            source: e,
        })
    }

    /// The seed of `serial`. A sealed seed asks the user, through the waiting client, to
    /// touch an enrolled security key: the approval for this mint.
    async fn seed_for_serial(
        &self,
        serial: &str,
        profile: &str,
        progress: &Progress,
    ) -> Result<Seed, MintError> {
        let configured = self.config.serials.get(serial).cloned();
        let (serial, profile) = (serial.to_owned(), profile.to_owned());
        let approved = Event::Approved {
            profile: profile.clone(),
        };
        let asked = Arc::new(AtomicBool::new(false));
        let prompter = AgentPrompter {
            progress: progress.clone(),
            pinentry: self.config.pinentry.clone(),
            profile: profile.clone(),
            events: self.events.clone(),
            asked: asked.clone(),
        };
        let keep_unlocked = self.config.touch(&profile) == TouchPolicy::Unlock;
        let held = if keep_unlocked {
            self.unlocked.get()
        } else {
            None
        };
        let was_held = held.is_some();
        let (seed, opened) = self
            .with_vault(move |vault| {
                let u2f_prompter = prompter.clone();
                let mut vault = vault
                    .with_unsealer(Box::new(move |keys| {
                        crate::unlock::unlock(
                            keys,
                            &prompter,
                            &format!("approve {}", prompter.profile),
                            None,
                        )
                    }))
                    .with_approver(Box::new(move |keys| {
                        crate::unlock::approve(
                            keys,
                            &u2f_prompter,
                            &format!("approve {}", u2f_prompter.profile),
                        )
                    }));
                if let Some(key) = held {
                    vault.set_data_key(key);
                }
                let name = if let Some(name) = configured {
                    name
                } else {
                    let linked = vault::seed_for_serial(vault.seeds(), &serial);
                    match linked.as_slice() {
                        [one] => (*one).to_owned(),
                        [] => return Err(MintError::NoSeed { serial, profile }),
                        _ => {
                            let seeds = linked.iter().map(|s| (*s).to_owned()).collect();
                            return Err(MintError::AmbiguousSeed { serial, seeds });
                        }
                    }
                };
                let seed = vault
                    .seed(&name)
                    .map_err(|e| MintError::Vault(e.to_string()))?;
                Ok((seed, vault.take_data_key()))
            })
            .await?;
        if asked.load(Ordering::Relaxed) {
            self.events.send(approved);
        }
        if keep_unlocked
            && !was_held
            && let Some(key) = opened
        {
            self.unlocked.keep(key);
        }
        Ok(seed)
    }

    async fn long_term_keys(
        &self,
        source_profile: &str,
        profiles: &Profiles,
    ) -> Result<LongTermKeys, MintError> {
        let profile = source_profile.to_owned();
        let from_vault = self
            .with_vault(move |mut vault| {
                vault
                    .credentials(&profile)
                    .map_err(|e| MintError::Vault(e.to_string()))
            })
            .await?;
        from_vault
            .or_else(|| profiles.static_keys(source_profile))
            .ok_or_else(|| MintError::NoSourceCredentials {
                profile: source_profile.to_owned(),
            })
    }

    /// Opens the vault on a blocking thread: keyring calls are synchronous D-Bus round trips.
    async fn with_vault<T, F>(&self, f: F) -> Result<T, MintError>
    where
        T: Send + 'static,
        F: FnOnce(Vault) -> Result<T, MintError> + Send + 'static,
    {
        let data_dir = self.paths.data_dir.clone();
        tokio::task::spawn_blocking(move || {
            let vault = Vault::open(&data_dir, None, crate::cli::input::passphrase_source())
                .map_err(|e| MintError::Vault(e.to_string()))?;
            f(vault)
        })
        .await
        .map_err(|e| MintError::Internal(format!("vault task failed: {e}")))?
    }
}

/// Prompts from the agent reach the user through the waiting client ("touch your key"),
/// and through the event feed the tray and notifications.
#[derive(Clone)]
struct AgentPrompter {
    progress: Progress,
    /// The pinentry program for when the client cannot ask for a PIN.
    pinentry: Option<String>,
    profile: String,
    events: Events,
    /// Set once the user was asked for something: the answer is an approval.
    asked: Arc<AtomicBool>,
}

impl crate::unlock::Prompter for AgentPrompter {
    fn tell(&self, message: &str) {
        let _ = self.progress.send(Prompt::Tell(message.to_owned()));
        self.asked.store(true, Ordering::Relaxed);
        self.events.send(Event::TouchNeeded {
            profile: self.profile.clone(),
            message: message.to_owned(),
        });
    }

    /// From `MFA_AGENT_PIN_FILE` if set (automation), else the client's terminal, else a
    /// pinentry dialog, as gpg-agent does. Runs on the blocking thread of the unlock.
    fn pin(&self, _: &EnrolledKey, prompt: &str) -> Result<SecretString, VaultError> {
        if let Some(path) = std::env::var_os("MFA_AGENT_PIN_FILE") {
            return crate::cli::input::secret_from_file(std::path::Path::new(&path))
                .map_err(|e| VaultError::Unlock(format!("{e:#}")));
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let message = format!("{prompt} to approve {}", self.profile);
        if self
            .progress
            .send(Prompt::Pin {
                message: message.clone(),
                reply,
            })
            .is_ok()
            && let Ok(Some(pin)) = answer.blocking_recv()
        {
            return Ok(pin);
        }
        crate::desktop::pinentry::ask(self.pinentry.as_deref(), &message).map_err(|e| {
            VaultError::Unlock(format!(
                "the security key needs its PIN, and neither the client's terminal nor pinentry could ask: {e:#}"
            ))
        })
    }

    /// The client that asked hung up (its connection dropped the progress channel).
    fn cancelled(&self) -> bool {
        self.progress.is_closed()
    }
}

fn profile_key(profile: &str) -> String {
    format!("profile {profile}")
}

fn session_name(configured: Option<&str>) -> String {
    configured.map_or_else(|| format!("mfa-agent-{}", unix_now()), str::to_owned)
}
