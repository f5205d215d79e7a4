//! `mfa_process`: codes from a command the profile names (a YubiKey's OATH applet, a
//! password manager), run by the agent once per code, its stderr relayed to the caller.
//! Here the command is oathtool, an independent TOTP generator, against the strict fake STS.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::fake_sts::{self, FakeSts};
use crate::common::{AWS_SEED, SERIAL, TestEnv};

/// A keyring-backed agent (no seed in its vault) and `base`, whose codes come from
/// `mfa_process`; `agent_config` is config.toml.
fn setup(sts: &FakeSts, mfa_process: &str, agent_config: &str) -> TestEnv {
    let mut env = TestEnv::with_keyring();
    env.set("AWS_ENDPOINT_URL", &sts.url);
    env.aws_config(&format!(
        "[profile base]\nregion = eu-west-1\nmfa_serial = {SERIAL}\nmfa_process = {mfa_process}\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        fake_sts::ACCESS_KEY_ID,
        fake_sts::SECRET_ACCESS_KEY
    ));
    let dir = env.path().join(".config/mfa-agent");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), agent_config).unwrap();
    env.start_daemon();
    env
}

fn seconds_into_window() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 30
}

#[test]
fn codes_from_oathtool_mint_and_a_second_mint_in_the_window_waits_for_a_fresh_one() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = setup(
        &sts,
        &format!("echo 'Touch your YubiKey...' >&2; oathtool --totp -b {AWS_SEED}"),
        "",
    );
    // Both mints in one 30-second window: start with 8 s or more of it left.
    if seconds_into_window() > 22 {
        std::thread::sleep(Duration::from_secs(31 - seconds_into_window()));
    }
    let first = env.run(["credential-process", "--profile", "base"], "");
    first.success();
    assert!(
        first
            .stderr()
            .contains("mfa_process: Touch your YubiKey..."),
        "the command's stderr reaches the caller: {}",
        first.stderr()
    );
    assert_eq!(sts.gst_calls(), 1);

    let started = Instant::now();
    let second = env.run(["credential-process", "--profile", "base", "--refresh"], "");
    second.success();
    assert!(
        second.stderr().contains("waiting") && second.stderr().contains("fresh MFA code"),
        "{}",
        second.stderr()
    );
    assert!(started.elapsed() >= Duration::from_secs(1));
    let codes = sts.codes_received();
    assert_eq!(codes.len(), 2, "{codes:?}");
    assert_ne!(codes[0], codes[1], "the same code went to AWS twice");
    assert_eq!(sts.rejected_codes(), 0, "AWS refused a code: {codes:?}");
    assert_eq!(sts.gst_calls(), 2);
}

#[test]
fn a_command_that_fails_prints_no_code_or_hangs_is_a_clear_error() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = setup(&sts, "echo 'no such account: work' >&2; exit 1", "");
    let failed = env.run(["credential-process", "--profile", "base"], "");
    failed.failure(&["mfa_process", "no such account: work", "run it yourself"]);

    // It prints "password-123456", which the error must not repeat (the command it names
    // is not the output).
    let env = setup(&sts, "printf 'password-%s' 123456", "");
    let failed = env.run(["credential-process", "--profile", "base"], "");
    let message = failed.failure(&["something other than a 6-digit code"]);
    assert!(
        !message.contains("password-123456"),
        "what it printed may be a secret: {message}"
    );

    let env = setup(&sts, "sleep 30", "prompt_timeout_seconds = 2\n");
    let started = Instant::now();
    let failed = env.run(["credential-process", "--profile", "base"], "");
    failed.failure(&["no code within 2 s"]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the time limit held"
    );
    assert_eq!(sts.gst_calls(), 0, "no code, no call");
    env.status();
}
