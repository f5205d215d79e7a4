//! The seed never shows up where it should not: files, logs at trace level, listings.

mod common;

use common::{AWS_SEED, TestEnv};

/// The seed in the forms a leak could take: base32 (as typed) and raw bytes.
fn leaks(haystack: &[u8]) -> bool {
    let raw = mfa_agent::otp::decode_base32(AWS_SEED).unwrap();
    let needles: [&[u8]; 3] = [
        AWS_SEED.as_bytes(),
        &AWS_SEED.as_bytes()[..20],
        &raw.expose()[..12],
    ];
    needles
        .iter()
        .any(|n| haystack.windows(n.len()).any(|w| w == *n))
}

fn assert_no_leak_in_files(env: &TestEnv) {
    for (path, bytes) in env.all_file_contents() {
        assert!(!leaks(&bytes), "the seed leaked into {}", path.display());
    }
}

#[test]
fn keyring_vault_keeps_the_seed_out_of_files_logs_and_listings() {
    let mut env = TestEnv::with_keyring();
    env.set("MFA_AGENT_LOG", "trace");
    let runs = [
        env.run(["seed", "add", "work", "--secret", "-", "-vvv"], AWS_SEED),
        env.run(["seed", "list"], ""),
        env.run(["seed", "list", "--json"], ""),
        env.run(["code", "work", "--json", "-vvv"], ""),
    ];
    for run in &runs {
        run.success();
        assert!(
            !leaks(&run.0.stdout),
            "stdout leaked the seed: {}",
            run.stdout()
        );
        assert!(
            !leaks(&run.0.stderr),
            "logs leaked the seed: {}",
            run.stderr()
        );
    }
    assert!(
        runs[0].stderr().contains("TRACE") || runs[0].stderr().contains("DEBUG"),
        "trace logging was on"
    );
    assert_no_leak_in_files(&env);
}

#[test]
fn file_vault_keeps_the_seed_out_of_files_and_logs() {
    let mut env = TestEnv::with_file_store("correct horse battery");
    env.set("MFA_AGENT_LOG", "trace");
    let add = env.run(["seed", "add", "work", "--secret", "-"], AWS_SEED);
    add.success();
    assert!(!leaks(&add.0.stderr));
    let code = env.run(["code", "work"], "");
    code.success();
    assert!(!leaks(&code.0.stderr));
    assert_no_leak_in_files(&env);
}

#[test]
fn a_mint_at_trace_level_logs_no_session_secret() {
    let sts = common::fake_sts::FakeSts::start(AWS_SEED, 30);
    let mut env = TestEnv::with_keyring();
    env.set("MFA_AGENT_LOG", "trace");
    env.set("AWS_ENDPOINT_URL", &sts.url);
    // The agent `seed add` starts logs to daemon.log, at trace level, the SDK's too.
    env.add_seed("work", &["--serial", common::SERIAL]);
    // A role profile: its AssumeRole is signed with the MFA session's token, which the
    // SDK's request tracing would print.
    env.aws_config(&format!(
        "[profile base]\nregion = eu-west-1\nmfa_serial = {}\naws_access_key_id = {}\naws_secret_access_key = {}\n\n\
         [profile admin]\nregion = eu-west-1\nrole_arn = arn:aws:iam::210987654321:role/Admin\nsource_profile = base\n",
        common::SERIAL,
        common::fake_sts::ACCESS_KEY_ID,
        common::fake_sts::SECRET_ACCESS_KEY
    ));
    let out = env.run(["credential-process", "--profile", "admin"], "");
    let json: serde_json::Value = serde_json::from_str(&out.success()).unwrap();
    let log =
        std::fs::read_to_string(env.path().join(".local/state/mfa-agent/daemon.log")).unwrap();
    assert!(log.contains("TRACE"), "trace logging was on");
    for secret in [
        json["SessionToken"].as_str().unwrap(),
        json["SecretAccessKey"].as_str().unwrap(),
        common::fake_sts::SECRET_ACCESS_KEY,
        // Every session's token and secret, the MFA session's among them (the fake's form).
        "FakeSessionToken",
        "FakeSessionSecret",
    ] {
        assert!(!log.contains(secret), "daemon.log holds a secret");
        assert!(
            !out.stderr().contains(secret),
            "the client's stderr holds a secret"
        );
    }
    assert!(!leaks(log.as_bytes()), "daemon.log holds the seed");
}
