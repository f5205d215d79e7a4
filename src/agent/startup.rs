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
use crate::aws::sts::Sts;
use crate::client::socket_path;
use crate::config::Config;
use crate::paths::Paths;
use crate::vault::Vault;
use crate::{atomic, sys};

/// Runs the daemon in the foreground until SIGTERM or SIGINT.
pub fn serve(paths: &Paths) -> Result<ExitCode> {
    sys::raise_fd_limit();
    sys::limit_malloc_arenas();
    let config = Config::load(&paths.config_dir)?;
    let socket = socket_path(paths);
    let dir = socket
        .parent()
        .context("the socket path has no directory")?;
    if std::env::var_os("XDG_RUNTIME_DIR").is_none()
        && std::env::var_os("MFA_AGENT_SOCKET").is_none()
    {
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
    let lock_path = dir.join("daemon.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .with_context(|| format!("failed to open {}", lock_path.display()))?;
    if !sys::try_lock_exclusive(&lock)? {
        bail!(
            "another mfa-agent daemon is already serving {}; `mfa-agent status` shows it",
            socket.display()
        );
    }

    let (listener, bound_here) = match sys::inherited_listener() {
        Some(listener) => (listener, false),
        None => (bind(&socket)?, true),
    };
    listener.set_nonblocking(true)?;

    let store = Vault::open(
        &paths.data_dir,
        None,
        Box::new(|_| unreachable!("no secret is read here")),
    )
    .map_or_else(
        |e| format!("unavailable: {e}"),
        |v| v.store_kind().to_string(),
    );
    let sts = Sts::from_env(Duration::from_secs(config.sts_timeout_seconds));
    let minter = Minter::new(config, paths.clone(), sts);
    let state = Arc::new(AgentState::new(minter, store));

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
        tokio::spawn(super::notifier::run(state.clone(), paths.data_dir.clone()));
        tracing::info!(socket = %socket.display(), "serving");
        notify_ready();
        let shutdown = async {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        };
        super::run(listener, state, shutdown).await;
        anyhow::Ok(())
    });
    // A helper thread may still wait for a touch or a pinentry dialog nobody answers:
    // stopping must not wait for it.
    runtime.shutdown_timeout(Duration::from_secs(1));
    served?;
    if bound_here {
        let _ = std::fs::remove_file(&socket);
    }
    drop(lock);
    Ok(ExitCode::SUCCESS)
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
