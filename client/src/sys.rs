//! The one place that talks to the OS directly: process hardening, memory locking, file locks.
#![allow(unsafe_code)]

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
    let mut current = zero;
    // SAFETY: getrlimit writes one valid rlimit struct.
    let got = unsafe { libc::getrlimit(libc::RLIMIT_CORE, &raw mut current) };
    if got == 0 && current.rlim_max == 0 {
        // Already none (LimitCORE=0 in the unit), where the sandbox may also forbid setrlimit.
        return;
    }
    // SAFETY: `zero` is a valid rlimit that outlives the call.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_CORE, &raw const zero) };
    if rc != 0 {
        tracing::warn!(
            "failed to disable core dumps: {}",
            io::Error::last_os_error()
        );
    }
}

/// The size of a memory page, which is what `mlock` locks.
#[must_use]
pub fn page_size() -> usize {
    // SAFETY: sysconf reads a constant of the system; no memory is involved.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|&s| s > 0)
        .unwrap_or(4096)
}

/// Asks the kernel to keep the page starting at `page` out of swap. Returns whether it
/// worked: unprivileged processes have a small `RLIMIT_MEMLOCK`, so callers treat this as
/// best effort. Locks are per page and not counted: see `secret::LockedPages`.
#[must_use]
pub fn mlock_page(page: usize) -> bool {
    // SAFETY: mlock only changes how the kernel treats the mapping; an address that is not
    // mapped is refused with ENOMEM, never dereferenced.
    unsafe { libc::mlock(page as *const libc::c_void, page_size()) == 0 }
}

/// Undoes [`mlock_page`].
pub fn munlock_page(page: usize) {
    // SAFETY: as for `mlock_page`; unlocking memory that is not locked is harmless.
    unsafe {
        libc::munlock(page as *const libc::c_void, page_size());
    }
}

/// Waits until one of `fds` can be read (or has hung up), and returns its index.
pub fn first_readable(fds: &[std::os::fd::BorrowedFd<'_>]) -> io::Result<usize> {
    let mut polled: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        // SAFETY: `polled` is a valid array of pollfd, its length passed with it.
        let rc = unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, -1) };
        if rc > 0 {
            let ready = polled.iter().position(|p| p.revents != 0);
            return Ok(ready.expect("poll reported a ready descriptor"));
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Lets SIGINT and SIGQUIT pass this process by (a terminal's Ctrl-C reaches the child it
/// waits for, which decides what to do; this process then ends with it).
pub fn ignore_interrupts() {
    // SAFETY: SIG_IGN is a valid disposition for both signals; no handler code runs.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGQUIT, libc::SIG_IGN);
    }
}

/// Time since boot, counting time suspended (Linux `CLOCK_BOOTTIME`; elsewhere the
/// monotonic clock, which macOS also runs through sleep). `Instant` stops while the machine
/// sleeps: a deadline measured with it would outlive an overnight suspend.
#[must_use]
pub fn since_boot() -> std::time::Duration {
    #[cfg(target_os = "linux")]
    let clock = libc::CLOCK_BOOTTIME;
    #[cfg(not(target_os = "linux"))]
    let clock = libc::CLOCK_MONOTONIC;
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer; the clock exists.
    let rc = unsafe { libc::clock_gettime(clock, &raw mut now) };
    assert_eq!(rc, 0, "clock_gettime cannot fail for a clock that exists");
    std::time::Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}

/// The real user id of this process.
#[must_use]
pub fn current_uid() -> u32 {
    // SAFETY: getuid cannot fail and takes no arguments.
    unsafe { libc::getuid() }
}

/// The uid of the process at the other end of a connected Unix socket (`SO_PEERCRED`).
pub fn peer_uid(socket: &impl AsRawFd) -> io::Result<u32> {
    #[cfg(target_os = "linux")]
    {
        let mut cred = libc::ucred {
            pid: 0,
            uid: 0,
            gid: 0,
        };
        let mut len =
            libc::socklen_t::try_from(std::mem::size_of::<libc::ucred>()).expect("ucred is small");
        // SAFETY: `cred` and `len` are valid for writes and sized for SO_PEERCRED's ucred.
        let rc = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                (&raw mut cred).cast(),
                &raw mut len,
            )
        };
        if rc == 0 {
            Ok(cred.uid)
        } else {
            Err(io::Error::last_os_error())
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let mut uid: libc::uid_t = 0;
        let mut gid: libc::gid_t = 0;
        // SAFETY: getpeereid writes two integers through valid pointers.
        let rc = unsafe { libc::getpeereid(socket.as_raw_fd(), &raw mut uid, &raw mut gid) };
        if rc == 0 {
            Ok(uid)
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// The listening socket systemd passed by socket activation (`LISTEN_FDS`, fd 3), if any
/// was passed to this very process.
#[must_use]
pub fn inherited_listener() -> Option<std::os::unix::net::UnixListener> {
    use std::os::fd::FromRawFd;
    const SD_LISTEN_FDS_START: i32 = 3;
    let for_us = std::env::var("LISTEN_PID").ok()?.parse::<u32>().ok()? == std::process::id();
    let count: i32 = std::env::var("LISTEN_FDS").ok()?.parse().ok()?;
    if !for_us || count < 1 {
        return None;
    }
    // SAFETY: systemd hands this process fd 3 as an open listening socket that nothing else
    // in the process owns; we take ownership exactly once and mark it close-on-exec so that
    // `exec`ed children do not inherit it.
    unsafe {
        libc::fcntl(SD_LISTEN_FDS_START, libc::F_SETFD, libc::FD_CLOEXEC);
        Some(std::os::unix::net::UnixListener::from_raw_fd(
            SD_LISTEN_FDS_START,
        ))
    }
}

/// Raises the soft open-file limit to the hard limit, so a daemon serving many parallel
/// clients (terraform, xargs -P) does not run out of descriptors at the usual 1024.
pub fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write one valid rlimit struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) == 0
            && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit);
        }
    }
}

/// `unix_time` as "HH:MM" in the local time zone, for menus and messages (UTC if the zone
/// cannot be read).
#[must_use]
pub fn local_hh_mm(unix_time: i64) -> String {
    if let Some(tm) = local_time(unix_time) {
        format!("{:02}:{:02}", tm.tm_hour, tm.tm_min)
    } else {
        let of_day = unix_time.rem_euclid(86_400);
        format!("{:02}:{:02} UTC", of_day / 3600, of_day % 3600 / 60)
    }
}

/// `unix_time` as "YYYY-MM-DD HH:MM" in the local time zone ("@UNIX" if the zone cannot be
/// read).
#[must_use]
pub fn local_date_time(unix_time: i64) -> String {
    local_time(unix_time).map_or_else(
        || format!("@{unix_time}"),
        |tm| {
            format!(
                "{}-{:02}-{:02} {:02}:{:02}",
                tm.tm_year + 1900,
                tm.tm_mon + 1,
                tm.tm_mday,
                tm.tm_hour,
                tm.tm_min
            )
        },
    )
}

fn local_time(unix_time: i64) -> Option<libc::tm> {
    let time: libc::time_t = unix_time;
    // SAFETY: `tm` is plain old data that localtime_r fills in; both pointers are valid for
    // the call and localtime_r keeps neither.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        (!libc::localtime_r(&raw const time, &raw mut tm).is_null()).then_some(tm)
    }
}

/// Keeps the daemon's memory small: glibc gives every thread that allocates its own malloc
/// arena, and the daemon's short-lived helper threads (keyring, security key, D-Bus) would
/// each leave one behind, partly resident. Two arenas are plenty for its load.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt takes two integers; M_ARENA_MAX only caps future arena creation.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Hands the heap's free pages back to the kernel, so an agent that served a burst of
/// clients does not keep that memory while idle.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator; no pointer is involved.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Makes `command`'s child lead a session of its own, with no controlling terminal: an
/// autostarted daemon must never read the terminal of the client that started it (the
/// shell would stop it with SIGTTIN), nor get the client's Ctrl-C or hang-up.
pub fn detach_from_session(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent; it runs in
    // the forked child between fork and exec, as pre_exec requires.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
