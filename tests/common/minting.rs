//! An agent set up to mint: the test seed, a source and a role profile, and a daemon
//! pointed at a fake STS.

use std::time::Duration;

use super::fake_sts::{self, FakeSts};
use super::{AWS_SEED, SERIAL, TestEnv};

pub const ROLE: &str = "arn:aws:iam::210987654321:role/Admin";

/// A keyring-backed env with the test seed, a source and a role profile, and a daemon
/// pointed at `sts`.
pub fn setup(sts: &FakeSts) -> TestEnv {
    setup_with(sts, AWS_SEED, 30, "")
}

/// A seed with a 3-second period, so tests that must wait for the next code window wait
/// briefly (AWS's devices use 30 s; the agent handles any period).
pub const SHORT_SEED: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

pub fn setup_with(sts: &FakeSts, seed: &str, period: u64, agent_config: &str) -> TestEnv {
    let mut env = TestEnv::with_keyring();
    env.set("AWS_ENDPOINT_URL", &sts.url);
    add_work_seed(&env, seed, period);
    env.aws_config(&format!(
        "[profile base]\nregion = eu-west-1\nmfa_serial = {SERIAL}\naws_access_key_id = {}\naws_secret_access_key = {}\n\n\
         [profile admin]\nrole_arn = {ROLE}\nsource_profile = base\n",
        fake_sts::ACCESS_KEY_ID,
        fake_sts::SECRET_ACCESS_KEY
    ));
    if !agent_config.is_empty() {
        let dir = env.path().join(".config/mfa-agent");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.toml"), agent_config).unwrap();
    }
    env.start_daemon();
    env
}

/// Stores the seed `work` (base32 `seed`, `period` seconds) linked to SERIAL, failing the
/// test if that does not work.
pub fn add_work_seed(env: &TestEnv, seed: &str, period: u64) {
    let uri = format!("otpauth://totp/work?secret={seed}&period={period}");
    env.run(
        ["seed", "add", "work", "--uri", "-", "--serial", SERIAL],
        &uri,
    )
    .success();
}

/// Sleeps until just after a window of `period` seconds opens, so that what follows falls
/// in one window.
pub fn align_to_a_fresh_window_of(period: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let period_ms = u128::from(period) * 1000;
    std::thread::sleep(Duration::from_millis(
        u64::try_from(period_ms - now.as_millis() % period_ms).unwrap() + 50,
    ));
}

/// [`align_to_a_fresh_window_of`] for SHORT_SEED's 3-second windows.
pub fn align_to_a_fresh_window() {
    align_to_a_fresh_window_of(3);
}

/// The window of `period` seconds the wall clock is in now: its index and the time left in
/// it.
pub fn window_now(period: u64) -> (u64, Duration) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let period = Duration::from_secs(period);
    let index = now.as_secs() / period.as_secs();
    let ends = Duration::from_secs((index + 1) * period.as_secs());
    (index, ends.saturating_sub(now))
}

/// Whether the clock is still in `window` (of SHORT_SEED's 3 s), with at least `margin` of
/// it left: what the agent does next, after a process start and a keyring read, still sees
/// that window's code.
pub fn still_in(window: u64, margin: Duration) -> bool {
    let (now, left) = window_now(3);
    now == window && left >= margin
}

/// For a test whose steps must fall in one 3-second window of SHORT_SEED (a mint, then a
/// refresh that must find the code spent): runs `attempt` until its steps fit, which it
/// reports by returning `Some` (checking [`still_in`] before the step that needs the same
/// window), at most 5 times. A loaded machine then costs a retry, not a failure; a test
/// that did not fit is never judged on what it could not show.
pub fn in_one_window<T>(what: &str, mut attempt: impl FnMut() -> Option<T>) -> T {
    const TRIES: usize = 5;
    for _ in 0..TRIES {
        if let Some(outcome) = attempt() {
            return outcome;
        }
        eprintln!("{what}: the steps did not fit in one code window; once more");
    }
    panic!(
        "{what}: the steps never fit in one code window in {TRIES} tries; the machine is too loaded for this test"
    );
}
