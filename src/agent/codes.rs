//! Where a mint's MFA code comes from, and that AWS never sees one twice: the device's seed
//! (the code of the first step no use has claimed, after waiting for its window), the user
//! typing it, or the profile's `mfa_process`; each code recorded as sent in the replay guard
//! before it leaves, and one code in flight per device.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::MintError;
use super::events::Events;
use super::prompt::{Progress, Prompt};
use super::replay::{ReplayGuard, Use};
use crate::aws::LongTermKeys;
use crate::aws::profile::ProfilePlan;
use crate::aws::sts::StsError;
use crate::clock::unix_now;
use crate::config::Config;
use crate::otp::{self, Seed};
use crate::paths::Paths;
use crate::protocol::{AskKind, Event, SessionCredentials};
use crate::secret::SecretString;

/// How the codes of a mint's MFA device are had.
pub(super) enum Origin {
    /// Computed from its seed.
    Seed(Seed),
    /// Typed by the user.
    Typed,
    /// Printed by the profile's `mfa_process`.
    Process(String),
}

/// The agent's MFA codes: the replay guard, the turn each device's codes take, and the
/// settings for asking a person or a command for one.
pub(super) struct Codes {
    replay: Arc<ReplayGuard>,
    /// One MFA code in flight per device: two profiles sharing a serial take turns.
    serial_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    events: Events,
    prompt_timeout_seconds: u64,
    pinentry: Option<String>,
    /// Where the replay guard lives, for its errors.
    state_dir: PathBuf,
}

impl Codes {
    pub(super) fn new(config: &Config, paths: &Paths, events: Events) -> Self {
        Self {
            replay: Arc::new(ReplayGuard::load(paths.state_dir.join("replay.json"))),
            serial_locks: Mutex::default(),
            events,
            prompt_timeout_seconds: config.prompt_timeout_seconds,
            pinentry: config.pinentry.clone(),
            state_dir: paths.state_dir.clone(),
        }
    }

    /// Waits for `serial`'s turn: held for a whole mint (the visit to the vault, the code,
    /// the STS call), so two mints for one device never race for one code.
    pub(super) async fn turn(&self, serial: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .serial_locks
            .lock()
            .expect("serial lock poisoned")
            .entry(serial.to_owned())
            .or_default()
            .clone();
        lock.lock_owned().await
    }

    /// Runs `sts` with a code from `origin` that AWS has not seen (see each way below).
    pub(super) async fn call_with_code(
        &self,
        plan: &ProfilePlan,
        keys: &LongTermKeys,
        origin: Origin,
        progress: &Progress,
        sts: impl StsCall,
    ) -> Result<SessionCredentials, MintError> {
        match origin {
            Origin::Seed(seed) => self.with_seed_code(plan, keys, &seed, progress, sts).await,
            Origin::Typed => self.with_typed_code(plan, keys, progress, sts).await,
            Origin::Process(command) => {
                self.with_process_code(plan, keys, &command, progress, sts)
                    .await
            }
        }
    }

    /// Runs `sts` with a code computed from `seed`: waits for the next window when the
    /// current code was already sent (by a mint or `mfa-agent code`), and records the step
    /// before the call. A code AWS rejects (spent elsewhere, e.g. typed into the console, or
    /// a clock a little off) is followed once by the next window's code.
    async fn with_seed_code(
        &self,
        plan: &ProfilePlan,
        keys: &LongTermKeys,
        seed: &Seed,
        progress: &Progress,
        sts: impl StsCall,
    ) -> Result<SessionCredentials, MintError> {
        let serial = plan.mfa_serial.as_str();
        let sts_error = |error| MintError::Sts {
            profile: plan.profile.clone(),
            error,
        };
        let mut from = seed.params.step(unix_now());
        let mut rejected_once = false;
        loop {
            let code = self
                .claim_code(&plan.profile, serial, seed, from, progress)
                .await?;
            tracing::info!(profile = %plan.profile, serial, "calling STS with a fresh MFA code");
            match sts.call(keys.clone(), code.digits.clone()).await {
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
            .map_err(|e| self.replay_save_error(e))
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
                .map_err(|e| self.replay_save_error(e))?;
            if claimed == Some(step) {
                return otp::code_at(&seed.params, &seed.secret, starts)
                    .map_err(|source| MintError::Totp { source });
            }
            from = step + 1;
        }
    }

    /// Runs `sts` with codes the user types (a hardware token, a phone app): asked through
    /// the waiting client, else pinentry; 6 digits, never one already sent for this device,
    /// and asked again (with the reason) when AWS rejects it, [`TYPED_CODE_TRIES`] times.
    async fn with_typed_code(
        &self,
        plan: &ProfilePlan,
        keys: &LongTermKeys,
        progress: &Progress,
        sts: impl StsCall,
    ) -> Result<SessionCredentials, MintError> {
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
            match sts.call(keys.clone(), code.to_owned()).await {
                Err(StsError::MfaRejected { message }) => {
                    retry_because = Some(format!("AWS rejected the code ({message})"));
                }
                result => {
                    return result.map_err(|error| MintError::Sts {
                        profile: plan.profile.clone(),
                        error,
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

    /// Runs `sts` with codes the profile's `mfa_process` prints: run once per code needed,
    /// within `prompt_timeout_seconds` (a YubiKey may wait for a touch). A code already sent
    /// (a second mint in the same window) or rejected by AWS waits for the next window and
    /// runs the command again, [`PROCESS_CODE_TRIES`] times in all.
    async fn with_process_code(
        &self,
        plan: &ProfilePlan,
        keys: &LongTermKeys,
        command: &str,
        progress: &Progress,
        sts: impl StsCall,
    ) -> Result<SessionCredentials, MintError> {
        let serial = plan.mfa_serial.as_str();
        let limit = Duration::from_secs(self.prompt_timeout_seconds);
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
                match sts.call(keys.clone(), code.to_owned()).await {
                    Err(StsError::MfaRejected { message }) => rejected = message,
                    result => {
                        return result.map_err(|error| MintError::Sts {
                            profile: plan.profile.clone(),
                            error,
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
        let seconds = self.prompt_timeout_seconds;
        let profile = plan.profile.clone();
        self.events.send(Event::TouchNeeded {
            profile: profile.clone(),
            message: format!("type the MFA code for {} ({profile})", plan.mfa_serial),
        });
        let pinentry = self.pinentry.clone();
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
            .map_err(|e| MintError::PinentryTask {
                detail: e.to_string(),
            })?
            .map_err(|e| MintError::NoWayToAsk {
                serial: plan.mfa_serial.clone(),
                detail: crate::report::sentence(e.as_ref()),
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

    fn replay_save_error(&self, e: std::io::Error) -> MintError {
        MintError::ReplayNotRecorded {
            dir: self.state_dir.clone(),
            source: std::sync::Arc::new(e),
        }
    }
}

/// An STS request signed with the long-term keys and an MFA code, made once per code a
/// mint tries: what [`Codes::call_with_code`] runs. Any `Fn(LongTermKeys, String) -> impl
/// Future` is one. (`AsyncFn` would say the same, but its futures fail tokio's `Send` check
/// today: the higher-ranked lifetime limitation.)
pub(super) trait StsCall {
    type Reply: Future<Output = Result<SessionCredentials, StsError>>;
    fn call(&self, keys: LongTermKeys, code: String) -> Self::Reply;
}

impl<F, Reply> StsCall for F
where
    F: Fn(LongTermKeys, String) -> Reply,
    Reply: Future<Output = Result<SessionCredentials, StsError>>,
{
    type Reply = Reply;
    fn call(&self, keys: LongTermKeys, code: String) -> Reply {
        self(keys, code)
    }
}

/// The period of AWS's MFA devices: a code `mfa_process` printed twice is fresh again in
/// the next window of this length.
const AWS_CODE_PERIOD: u64 = 30;

/// How many codes `mfa_process` is asked for in one mint (one spent already, one AWS
/// rejects as used elsewhere).
const PROCESS_CODE_TRIES: usize = 3;

/// How many codes a user may type for one mint (a typo, a reused code, one AWS rejects).
const TYPED_CODE_TRIES: usize = 3;
