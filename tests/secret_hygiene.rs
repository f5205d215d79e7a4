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
