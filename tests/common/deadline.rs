//! No test waits for ever: each test's environment gives it [`LIMIT`] to finish, after which
//! the whole test binary stops, naming the test, instead of CI waiting out its own limit
//! with no word of which test hung. (The VM bounds each of its tests the same way, from
//! outside: tests/vm/each.)

use std::io::Write as _;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

/// Far beyond any test's time on a loaded two-core machine (the slowest take ~2 min).
pub const LIMIT: Duration = Duration::from_secs(240);

/// The exit status of a test binary stopped by a deadline: `timeout`'s.
pub const EXIT_STATUS: i32 = 124;

/// Armed while it lives; dropped when the test's environment is.
pub struct Deadline(Option<Arc<(Mutex<bool>, Condvar)>>);

impl Deadline {
    /// Arms a deadline for the test running on this thread. Only under the test harness,
    /// which names each test's thread after it: a benchmark (on `main`) may run for hours.
    /// `MFA_AGENT_TEST_LIMIT_SECONDS` sets another limit (the check of this check).
    pub fn arm() -> Self {
        let thread = std::thread::current();
        let Some(test) = thread.name().filter(|name| *name != "main") else {
            return Self(None);
        };
        let test = test.to_owned();
        let limit = std::env::var("MFA_AGENT_TEST_LIMIT_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .map_or(LIMIT, Duration::from_secs);
        let done = Arc::new((Mutex::new(false), Condvar::new()));
        let watched = done.clone();
        std::thread::spawn(move || {
            let (ended, signal) = &*watched;
            let ended = ended.lock().unwrap_or_else(PoisonError::into_inner);
            let (ended, _) = signal
                .wait_timeout_while(ended, limit, |ended| !*ended)
                .unwrap_or_else(PoisonError::into_inner);
            if !*ended {
                // Straight to stderr: `eprintln!` here would go to the harness's capture of
                // this test's output, which it never shows once the process exits.
                let _ = writeln!(
                    std::io::stderr(),
                    "error: the test {test} ran past {} s, the limit of every test; stopping the test run",
                    limit.as_secs()
                );
                std::process::exit(EXIT_STATUS);
            }
        });
        Self(Some(done))
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        if let Some(done) = &self.0 {
            *done.0.lock().unwrap_or_else(PoisonError::into_inner) = true;
            done.1.notify_all();
        }
    }
}
