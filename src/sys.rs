//! The one place that talks to the OS directly: process hardening, memory locking, file locks.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Makes the process non-dumpable and disables core files, so that seeds and session
/// credentials held in memory never reach a core dump or another process's `ptrace`.
///
/// Best effort: failures are logged, because refusing to run would help nobody.
pub fn harden_process() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl with PR_SET_DUMPABLE takes plain integer arguments and touches no memory.
        let rc = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
        if rc != 0 {
            tracing::warn!(
                "failed to make the process non-dumpable: {}",
                io::Error::last_os_error()
            );
        }
    }
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `zero` is a valid rlimit that outlives the call.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_CORE, &raw const zero) };
    if rc != 0 {
        tracing::warn!(
            "failed to disable core dumps: {}",
            io::Error::last_os_error()
        );
    }
}

/// Asks the kernel to keep `buf` out of swap. Returns whether it worked: unprivileged
/// processes have a small `RLIMIT_MEMLOCK`, so callers treat this as best effort.
#[must_use]
pub fn mlock(buf: &[u8]) -> bool {
    if buf.is_empty() {
        return false;
    }
    // SAFETY: the pointer and length describe memory owned by `buf`, valid for the call.
    unsafe { libc::mlock(buf.as_ptr().cast(), buf.len()) == 0 }
}

/// Undoes [`mlock`] for a buffer that was locked.
pub fn munlock(buf: &[u8]) {
    // SAFETY: as for `mlock`; unlocking memory that is not locked is harmless.
    unsafe {
        libc::munlock(buf.as_ptr().cast(), buf.len());
    }
}

/// Takes an exclusive advisory lock on `file`, waiting for other holders. The lock is
/// released when the file is closed.
pub fn lock_exclusive(file: &File) -> io::Result<()> {
    // SAFETY: flock takes a file descriptor that `file` keeps open for the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The real user id of this process.
#[must_use]
pub fn current_uid() -> u32 {
    // SAFETY: getuid cannot fail and takes no arguments.
    unsafe { libc::getuid() }
}
