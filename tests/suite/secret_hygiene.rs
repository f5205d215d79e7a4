//! The seed never shows up where it should not: files, logs at trace level, listings.

use crate::common;

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

/// Every readable mapping of process `pid`'s memory, concatenated (root reads a
/// non-dumpable process's memory; regions that cannot be read are skipped).
/// An exported seed leaves no copy in the agent's memory once it is locked: the URI is
/// built in a buffer that never grows (a grown one leaves the old, unwiped).
#[test]
fn an_exported_seed_leaves_no_copy_in_the_agents_memory_after_lock() {
    assert_eq!(
        mfa_agent::sys::current_uid(),
        0,
        "this test reads the non-dumpable agent's memory, which needs root (CI runs as root)"
    );
    let mut env = TestEnv::with_file_store("correct horse battery");
    // 64 characters, as AWS's. With this issuer and account, a URI built by appending
    // outgrows its buffer after the secret is in it.
    let seed = "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43UOV3HO6DZPJQWEY3EMVTGO2DJNJVWY3LO";
    env.run(
        ["seed", "add", "export-me", "--uri", "-"],
        &format!("otpauth://totp/Example%20Corp%20Ltd:a?secret={seed}&issuer=Example%20Corp%20Ltd"),
    )
    .success();
    let exported = env
        .run(["seed", "export", "export-me", "--uri"], "")
        .success();
    assert!(exported.contains(seed), "{exported}");
    let pid = env.status()["pid"].as_u64().unwrap();
    env.run(["lock"], "").success();
    // Also as the bytes it decodes to.
    let tail = &seed.as_bytes()[16..];
    let found = memory_of(pid)
        .windows(tail.len())
        .filter(|w| *w == tail)
        .count();
    env.unset("MFA_AGENT_PASSPHRASE_FILE");
    assert_eq!(found, 0, "a copy of the exported seed outlived `lock`");
}

fn memory_of(pid: u64) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut all = Vec::new();
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !perms.starts_with('r') || line.ends_with("[vvar]") || line.ends_with("[vsyscall]") {
            continue;
        }
        let (start, end) = range.split_once('-').unwrap();
        let start = u64::from_str_radix(start, 16).unwrap();
        let end = u64::from_str_radix(end, 16).unwrap();
        let mut region = vec![0u8; usize::try_from(end - start).unwrap()];
        if mem.seek(SeekFrom::Start(start)).is_ok() && mem.read_exact(&mut region).is_ok() {
            all.extend_from_slice(&region);
        }
    }
    all
}

/// What a client hands the agent (here the encrypted file's passphrase, relayed as a PIN
/// or a typed MFA code is) leaves no copy in the agent's memory once it is forgotten: the
/// request buffer is wiped as it is read, the line once parsed, every secret container
/// when dropped.
#[test]
fn a_relayed_passphrase_leaves_no_copy_in_the_agents_memory_after_lock() {
    // Long, so that its tail lies past what later requests overwrite in a reused buffer:
    // the search is for the tail.
    relayed_passphrase_leaves_no_copy(&format!("relayed-passphrase-{}", "9f3c1e77".repeat(24)));
}

/// The same with characters JSON must escape (`"`, `\`), which a JSON parser unescapes
/// into buffers of its own.
#[test]
fn a_relayed_passphrase_with_quotes_and_backslashes_leaves_no_copy_either() {
    relayed_passphrase_leaves_no_copy(&format!(
        "quoted \"pass\\phrase\" {}",
        "7e\\1\"b2c9".repeat(24)
    ));
}

fn relayed_passphrase_leaves_no_copy(passphrase: &str) {
    assert_eq!(
        mfa_agent::sys::current_uid(),
        0,
        "this test reads the non-dumpable agent's memory, which needs root (CI runs as root)"
    );
    let passphrase = passphrase.to_owned();
    let tail = &passphrase.as_bytes()[passphrase.len() - 48..];
    let mut env = TestEnv::with_file_store(&passphrase);
    env.add_seed("work", &[]);
    env.stop_daemon();
    // The agent has no passphrase file: the client answers its question over the socket.
    let file = env.path().join("passphrase");
    env.unset("MFA_AGENT_PASSPHRASE_FILE");
    env.start_daemon();
    env.set("MFA_AGENT_PASSPHRASE_FILE", file.to_str().unwrap());
    env.run(["code", "work"], "").success();
    env.unset("MFA_AGENT_PASSPHRASE_FILE");
    let status = env.status();
    let pid = status["pid"].as_u64().unwrap();
    let found = |memory: &[u8]| memory.windows(tail.len()).filter(|w| *w == tail).count();
    // Kept while unlocked (the scan sees it: the test can fail), in pages the kernel has
    // locked in memory (never swapped out)...
    assert!(
        found(&memory_of(pid)) >= 1,
        "the kept passphrase is in memory"
    );
    assert!(
        locked_kb(pid) > 0,
        "the kept passphrase's pages are locked (VmLck)"
    );
    // ...and nowhere once `lock` forgets it, its pages unlocked.
    env.run(["lock"], "").success();
    assert_eq!(
        found(&memory_of(pid)),
        0,
        "a copy of the passphrase outlived `lock` in the agent's memory"
    );
    assert_eq!(locked_kb(pid), 0, "pages left locked after `lock`");
}

/// The kernel's count of the process's locked memory (`VmLck` in /proc/PID/status), in kB.
fn locked_kb(pid: u64) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmLck in /proc/PID/status")
}
