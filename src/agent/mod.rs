//! The daemon: serves the protocol on a Unix socket, minting and caching STS sessions.
//!
//! [`run`] takes an already-bound listener and a shutdown future, so tests and benchmarks
//! run the real server in-process on a temporary socket.

mod actions;
mod approvals;
pub mod audit;
mod cache;
mod codes;
mod connection;
mod door;
mod events;
pub mod gate;
mod lines;
mod mfa_process;
mod minter;
pub mod notifier;
pub mod peer;
mod prompt;
mod replay;
#[cfg(target_os = "linux")]
mod sleep;
pub mod startup;
mod unlocked;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::net::UnixListener;

pub use self::events::Events;
pub use self::minter::Minter;
pub use self::prompt::Prompt;
use crate::aws::profile::ProfileError;
use crate::aws::sts::StsError;
use crate::protocol::LastError;

/// Why credentials could not be minted. Cloneable: one failure is shared by every caller
/// waiting on the same mint. Each message says what happened; what to do is in
/// `crate::advice`.
#[derive(Debug, Clone, Error)]
pub enum MintError {
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// STS's error is said, not exposed as the source (it is the whole message).
    #[error("{error}")]
    Sts { profile: String, error: StsError },
    #[error(
        "no seed is linked to the MFA device {serial} (profile {profile:?}), and config.toml's [code_source] says its codes come from one"
    )]
    NoSeed { serial: String, profile: String },
    #[error("several seeds are linked to the MFA device {serial} ({})", seeds.join(", "))]
    AmbiguousSeed { serial: String, seeds: Vec<String> },
    #[error("no long-term keys for profile {profile:?}")]
    NoSourceCredentials { profile: String },
    #[error("AWS rejected two MFA codes in a row for {serial} ({message})")]
    CodeRejected { serial: String, message: String },
    #[error("no MFA code was typed within {seconds} s for {serial}")]
    NoCodeTyped { serial: String, seconds: u64 },
    #[error("{tries} codes for {serial} did not work (the last: {last}); nothing was minted")]
    TypedCodeFailed {
        serial: String,
        tries: usize,
        last: String,
    },
    #[error(
        "the MFA device {serial} needs a code typed by you, and there is no terminal or pinentry to ask with ({detail})"
    )]
    NoWayToAsk { serial: String, detail: String },
    #[error("the mfa_process of profile {profile:?} gave no MFA code: {failure}")]
    MfaProcess {
        profile: String,
        command: String,
        failure: mfa_process::ProcessFailure,
    },
    #[error("the mfa_process of profile {profile:?} printed codes AWS did not take ({message})")]
    MfaProcessRejected {
        profile: String,
        serial: String,
        message: String,
    },
    #[error("the client went away before the MFA code was typed; nothing was minted")]
    Cancelled,
    /// The vault could not be opened or read for the mint: the error itself, its causes kept
    /// (shared, as every caller of one mint gets the same failure), said in one sentence
    /// with what to do (so its chain is said here, not exposed as a source).
    #[error("{}", crate::report::sentence(.0.as_ref().as_ref()))]
    Vault(std::sync::Arc<anyhow::Error>),
    #[error("{asker} was not let use the session of profile {profile:?} ({why})")]
    NotApproved {
        profile: String,
        asker: String,
        why: String,
    },
    /// Which codes were sent could not be written down, so none was sent (a code must
    /// never be sent twice, even across a restart).
    #[error("could not record which MFA code was sent, in {}, so none was sent", .dir.display())]
    ReplayNotRecorded {
        dir: std::path::PathBuf,
        source: std::sync::Arc<std::io::Error>,
    },
    #[error("failed to compute the MFA code")]
    Totp { source: crate::otp::OtpError },
    /// The task that ran the pinentry dialog panicked or was cancelled.
    #[error("the pinentry dialog's task ended abnormally ({detail})")]
    PinentryTask { detail: String },
}

impl MintError {
    /// The profile the message names (as `profile "NAME"`), if it names one: a reply about
    /// another profile, or about none, is prefixed with the profile asked for.
    #[must_use]
    pub fn names_profile(&self) -> Option<&str> {
        match self {
            Self::Profile(e) => e.names_profile(),
            Self::NoSeed { profile, .. }
            | Self::NoSourceCredentials { profile }
            | Self::MfaProcess { profile, .. }
            | Self::MfaProcessRejected { profile, .. }
            | Self::NotApproved { profile, .. } => Some(profile),
            Self::Sts { .. }
            | Self::AmbiguousSeed { .. }
            | Self::CodeRejected { .. }
            | Self::NoCodeTyped { .. }
            | Self::TypedCodeFailed { .. }
            | Self::NoWayToAsk { .. }
            | Self::Cancelled
            | Self::Vault(_)
            | Self::ReplayNotRecorded { .. }
            | Self::Totp { .. }
            | Self::PinentryTask { .. } => None,
        }
    }
}

/// Everything the daemon's connections share.
pub struct AgentState {
    pub minter: Minter,
    pub uid: u32,
    pub started: Instant,
    /// "OS keyring" or "encrypted file", for `status`.
    pub store: String,
    pub last_error: Mutex<Option<LastError>>,
    /// How long a connection may stay silent before it is closed.
    pub idle_timeout: Duration,
    /// Subscribed connections now (the tray; capped, as each holds a descriptor for good).
    pub subscribers: std::sync::atomic::AtomicUsize,
    /// The desktop notifier is subscribed to the events (see `notifier::start`).
    pub notifying: std::sync::atomic::AtomicBool,
    /// Who asked for which credentials, and how it went.
    pub audit: audit::Audit,
    /// Connections served at once ([`MAX_CONNECTIONS`]; tests set fewer).
    pub max_connections: usize,
    /// Tells one connection idle between requests to leave, when all slots are taken.
    pub shed: tokio::sync::Notify,
    /// Ends [`run`] (`mfa-agent stop`).
    pub stop: tokio::sync::Notify,
}

impl AgentState {
    #[must_use]
    pub fn new(minter: Minter, store: String) -> Self {
        let audit = audit::Audit::new(minter.paths().state_dir.join("audit.log"));
        Self {
            audit,
            minter,
            uid: crate::sys::current_uid(),
            started: Instant::now(),
            store,
            last_error: Mutex::new(None),
            idle_timeout: Duration::from_secs(60),
            subscribers: std::sync::atomic::AtomicUsize::new(0),
            notifying: std::sync::atomic::AtomicBool::new(false),
            max_connections: MAX_CONNECTIONS,
            shed: tokio::sync::Notify::new(),
            stop: tokio::sync::Notify::new(),
        }
    }
}

/// Connections served at once. Past it, a new connection makes one that sits idle between
/// requests leave (a flood of silent clients cannot hold every slot until their idle
/// timeout and starve `status`), or waits for a request in progress to end.
pub const MAX_CONNECTIONS: usize = 1024;

/// How long the agent must be without clients before it returns freed memory.
const IDLE_TRIM_AFTER: Duration = Duration::from_millis(250);

/// Serves connections on `listener` until `shutdown` completes, or a client asks the agent
/// to stop.
pub async fn run(
    listener: UnixListener,
    state: Arc<AgentState>,
    shutdown: impl Future<Output = ()>,
) {
    let stopping = state.clone();
    let shutdown = async move {
        tokio::select! {
            () = shutdown => {}
            () = stopping.stop.notified() => tracing::info!("a client asked the agent to stop"),
        }
    };
    tokio::pin!(shutdown);
    // Open connections; when the last one closes and none comes for a moment, the heap's
    // free pages go back to the kernel (a burst of clients leaves nothing resident).
    let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let went_idle = Arc::new(tokio::sync::Notify::new());
    tokio::spawn(trim_when_idle(open.clone(), went_idle.clone()));
    let slots = Arc::new(tokio::sync::Semaphore::new(state.max_connections));
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let slot = if let Ok(slot) = slots.clone().try_acquire_owned() {
                        slot
                    } else {
                        // Full: one connection idle between requests makes room.
                        state.shed.notify_one();
                        tokio::select! {
                            () = &mut shutdown => break,
                            slot = slots.clone().acquire_owned() => {
                                slot.expect("the semaphore is never closed")
                            }
                        }
                    };
                    let (state, open, went_idle) = (state.clone(), open.clone(), went_idle.clone());
                    open.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tokio::spawn(async move {
                        connection::serve(stream, state).await;
                        drop(slot);
                        if open.fetch_sub(1, std::sync::atomic::Ordering::Relaxed) == 1 {
                            went_idle.notify_one();
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("failed to accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    tracing::info!("shutting down");
}

async fn trim_when_idle(
    open: Arc<std::sync::atomic::AtomicUsize>,
    went_idle: Arc<tokio::sync::Notify>,
) {
    loop {
        went_idle.notified().await;
        tokio::time::sleep(IDLE_TRIM_AFTER).await;
        if open.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            crate::sys::release_free_memory();
        }
    }
}
