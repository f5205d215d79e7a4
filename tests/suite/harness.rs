//! The harness itself: a test that hangs stops the run, naming itself, instead of holding
//! CI until its own limit.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::deadline::{self, Deadline};

/// Stands for a test that hangs (as every [`crate::common::TestEnv`] does, it arms the
/// deadline); run only by the test below, with a 1-second limit.
#[test]
#[ignore = "a hanging test, run by a_test_that_hangs_stops_the_run_and_says_which"]
fn hangs() {
    let _deadline = Deadline::arm();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_test_that_hangs_stops_the_run_and_says_which() {
    let started = Instant::now();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "harness::hangs"])
        .env("MFA_AGENT_TEST_LIMIT_SECONDS", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(deadline::EXIT_STATUS),
        "stopped by its deadline: {stderr}"
    );
    assert!(
        stderr.contains("the test harness::hangs ran past 1 s"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "stopped at its limit, not at the end of its sleep"
    );
}
