//! The daemon's start: binds (or inherits) the socket and serves until SIGTERM.

use std::fs::OpenOptions;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::signal::unix::{SignalKind, signal};

use super::{AgentState, Minter};
use crate::aws::context::AwsContext;
use crate::config::Config;
use crate::paths::Paths;
use crate::{atomic, sys};

/// Runs the daemon in the foreground until SIGTERM or SIGINT.
pub fn serve(paths: &Paths) -> Result<ExitCode> {
    sys::raise_fd_limit();
    sys::limit_malloc_arenas();
    let config = Config::load(&paths.config_dir)?;
    let socket = paths.socket.clone();
    let dir = socket
        .parent()
        .context("the socket path has no directory")?;
    if paths.socket_in_tmp {
        // The /tmp fallback: it must be this user's own, private directory, not one another
        // user created first.
        if let Some(fallback) = dir.parent() {
            atomic::ensure_private_dir(fallback)
                .with_context(|| format!("failed to use {}", fallback.display()))?;
        }
        tracing::warn!(
            "XDG_RUNTIME_DIR is not set: serving {} (private to your uid, shared by all your sessions)",
            socket.display()
        );
    }
    atomic::ensure_private_dir(dir)
        .with_context(|| format!("failed to create {}", dir.display()))?;

    // One daemon per socket: the lock is held for the daemon's lifetime.
    let lock = hold_daemon_lock(dir, &socket)?;

    let (listener, bound_here) = match sys::inherited_listener() {
        Some(listener) => (listener, false),
        None => (bind(&socket)?, true),
    };
    let bound = bound_here.then(|| file_identity(&socket)).flatten();
    listener.set_nonblocking(true)?;

    let store = crate::vault::read_index(&paths.data_dir).map_or_else(
        |e| format!("unavailable: {e}"),
        |index| index.store.to_string(),
    );
    let own = AwsContext::of_this_process(Duration::from_secs(config.sts_timeout_seconds));
    let minter = Minter::new(config, paths.clone(), own);
    let state = Arc::new(AgentState::new(minter, store));
    #[cfg(target_os = "linux")]
    {
        let locking = state.clone();
        super::sleep::watch(move || {
            locking.minter.door.lock();
            tracing::info!("the machine is going to sleep: locked the seeds");
        });
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // Helper threads (keyring, security key, notifications) are for the odd mint: let
        // them go soon after, so an idle agent holds no stacks it does not use.
        .thread_keep_alive(Duration::from_millis(500))
        .build()?;
    let served = runtime.block_on(async {
        let listener = tokio::net::UnixListener::from_std(listener)?;
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        super::notifier::start(&state, paths.data_dir.clone());
        let auditing = state.clone();
        tokio::spawn(async move { auditing.audit.keep_flushing().await });
        tracing::info!(socket = %socket.display(), "serving");
        notify_ready();
        let shutdown = async {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
                () = socket_lost(&socket, bound) => {}
            }
        };
        super::run(listener, state.clone(), shutdown).await;
        state.audit.flush();
        anyhow::Ok(())
    });
    // A helper thread may still wait for a touch or a pinentry dialog nobody answers:
    // stopping must not wait for it.
    runtime.shutdown_timeout(Duration::from_secs(1));
    served?;
    // Only the socket this daemon bound: a new agent's may be at the path now.
    if bound.is_some() && file_identity(&socket) == bound {
        let _ = std::fs::remove_file(&socket);
    }
    drop(lock);
    Ok(ExitCode::SUCCESS)
}

/// The lock that makes this the one daemon for `socket`, with this daemon's pid in it (for
/// the message another daemon gives).
fn hold_daemon_lock(dir: &Path, socket: &Path) -> Result<std::fs::File> {
    let lock_path = dir.join("daemon.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .with_context(|| format!("failed to open {}", lock_path.display()))?;
    if !locked(&lock)? && !lock_released_by_an_agent_that_lost_its_socket(&lock, socket)? {
        let holder = std::fs::read_to_string(&lock_path).unwrap_or_default();
        let holder = holder.trim();
        if holder.is_empty() {
            bail!(
                "another process holds {} (the lock of the agent serving {}); `mfa-agent status` shows the agent",
                lock_path.display(),
                socket.display()
            );
        }
        bail!(
            "another mfa-agent daemon (pid {holder}) holds {} for {}; if `mfa-agent status` gets no answer from it, stop it with `kill {holder}` (or `systemctl --user restart mfa-agent`)",
            lock_path.display(),
            socket.display()
        );
    }
    // Who holds the lock, for the message above.
    lock.set_len(0)?;
    std::io::Write::write_all(&mut &lock, format!("{}\n", std::process::id()).as_bytes())?;

    Ok(lock)
}

/// How often the daemon checks that its socket is still where clients look for it.
const SOCKET_CHECK: Duration = Duration::from_secs(2);

/// Whether the lock comes free within a little more than [`SOCKET_CHECK`] when no socket is
/// at the path: its holder is an agent whose socket was deleted, about to notice and exit.
/// A command run right after the deletion then gets the new agent, not "another daemon
/// holds the lock".
fn lock_released_by_an_agent_that_lost_its_socket(
    lock: &std::fs::File,
    socket: &Path,
) -> Result<bool> {
    if socket.exists() {
        return Ok(false);
    }
    let deadline = std::time::Instant::now() + SOCKET_CHECK * 2;
    while std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        if locked(lock)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A file's device and inode: which file a path names.
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|meta| (meta.dev(), meta.ino()))
}

/// Resolves once the socket this daemon bound (`bound`: its identity) is deleted or
/// replaced: clients can no longer reach the daemon, which then exits (releasing its lock)
/// so that the next client starts one that they can. A socket systemd bound is left to it.
async fn socket_lost(socket: &Path, bound: Option<(u64, u64)>) {
    let Some(bound) = bound else {
        return std::future::pending().await;
    };
    let mut check = tokio::time::interval(SOCKET_CHECK);
    loop {
        check.tick().await;
        if file_identity(socket) != Some(bound) {
            tracing::warn!(
                "{} was deleted or replaced, so no client can reach this agent: exiting (the next client starts a new one)",
                socket.display()
            );
            return;
        }
    }
}

/// Binds the socket with mode 0600, replacing a stale one left by a daemon that died (the
/// lock above guarantees no live daemon owns it). Whatever else is at the path is left
/// alone: `MFA_AGENT_SOCKET` pointing at a file must never delete that file.
fn bind(socket: &Path) -> Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(socket) {
        Ok(meta) if meta.file_type().is_socket() => {
            std::fs::remove_file(socket).with_context(|| {
                format!("failed to remove the stale socket {}", socket.display())
            })?;
            tracing::info!("replaced the stale socket {}", socket.display());
        }
        Ok(_) => bail!(
            "{} exists and is not a socket; refusing to replace it: point MFA_AGENT_SOCKET elsewhere or move the file away",
            socket.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e).with_context(|| format!("failed to inspect {}", socket.display()));
        }
    }
    let listener = std::os::unix::net::UnixListener::bind(socket)
        .with_context(|| format!("failed to bind {}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Tells systemd (`Type=notify`) the socket is being served.
fn notify_ready() {
    let Some(addr) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = (|| -> std::io::Result<()> {
        let sock = std::os::unix::net::UnixDatagram::unbound()?;
        let bytes = addr.as_encoded_bytes();
        if let Some(name) = bytes.strip_prefix(b"@") {
            #[cfg(target_os = "linux")]
            {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                sock.send_to_addr(b"READY=1", &addr)?;
            }
            #[cfg(not(target_os = "linux"))]
            let _ = name;
        } else {
            sock.send_to(b"READY=1", Path::new(&addr))?;
        }
        Ok(())
    })();
    if let Err(e) = sent {
        tracing::warn!("failed to notify systemd of readiness: {e}");
    }
}

/// Takes `file`'s exclusive lock without waiting: `Ok(false)` when another process holds it.
fn locked(file: &std::fs::File) -> std::io::Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}
