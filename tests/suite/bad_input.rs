//! Every kind of bad input gets one clear error line, a non-zero exit, and changes nothing.

use crate::common;

use common::{AWS_SEED, TestEnv};

fn seed_count(env: &TestEnv) -> usize {
    let out: serde_json::Value =
        serde_json::from_str(&env.run(["seed", "list", "--json"], "").success()).unwrap();
    out["seeds"].as_array().unwrap().len()
}

#[test]
fn bad_secrets_and_uris_name_the_problem() {
    let env = TestEnv::with_keyring();
    let add = |args: &[&str], stdin: &str, needles: &[&str]| {
        let mut full = vec!["seed", "add", "x"];
        full.extend_from_slice(args);
        env.run(full, stdin).failure(needles);
    };
    add(
        &["--secret", "-"],
        "ABCD EFG1 IJKL",
        &["not valid base32", "position 8"],
    );
    // Input given to the wrong flag gets the right one named.
    add(
        &["--secret", "-"],
        "otpauth://totp/a?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
        &["that is an otpauth:// URI", "did you mean --uri -?"],
    );
    add(
        &["--uri", "-"],
        "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
        &["that is a base32 secret", "did you mean --secret -?"],
    );
    add(
        &["--secret", "-"],
        "JBSWY3DP",
        &["only 40 bits", "at least 80"],
    );
    // A character lost in the paste of a 64-character AWS seed.
    add(
        &["--secret", "-"],
        &"GEZDGNBVGY3TQOJQ".repeat(4)[..63],
        &["63 characters", "missing or extra"],
    );
    add(&["--secret", "-"], "\n", &["secret is empty"]);
    add(
        &["--uri", "-"],
        "otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP&counter=0",
        &["HOTP", "not supported"],
    );
    add(
        &["--uri", "-"],
        "https://example.com/?secret=abc",
        &["not an otpauth URI"],
    );
    add(
        &["--uri", "-"],
        "otpauth://totp/x?issuer=Acme",
        &["no secret= parameter"],
    );
    add(
        &["--uri", "-"],
        &format!("otpauth://totp/x?secret={AWS_SEED}&digits=9"),
        &["9 digits"],
    );
    add(
        &["--uri-file", "/nonexistent/uri.txt"],
        "",
        &["failed to open /nonexistent/uri.txt"],
    );
    // Secrets never come from argv: passing one is refused, and the value is not echoed.
    let stderr = env
        .run(["seed", "add", "x", "--secret", AWS_SEED], "")
        .failure(&["--secret -", "shell history"]);
    assert!(!stderr.contains(AWS_SEED));
    add(&[], "", &["no secret given", "--secret -"]);
    add(
        &["--serial", "GAHT12345678", "--secret", "-"],
        AWS_SEED,
        &["not an MFA device ARN"],
    );
    env.run(["seed", "add", "-x", "--secret", "-"], AWS_SEED)
        .failure(&[]);
    env.run(["seed", "add", "has/slash", "--secret", "-"], AWS_SEED)
        .failure(&["not a usable seed name"]);
    assert_eq!(seed_count(&env), 0, "no failed add left anything behind");
}

#[test]
fn unreadable_qr_images() {
    let env = TestEnv::with_keyring();
    let blank = env.path().join("blank.png");
    // A valid PNG with no QR code in it.
    image_without_code(&blank);
    env.run(["seed", "add", "x", "--qr", blank.to_str().unwrap()], "")
        .failure(&["no QR code found"]);
    let garbage = env.path().join("garbage.png");
    std::fs::write(&garbage, b"this is not an image").unwrap();
    env.run(["seed", "add", "x", "--qr", garbage.to_str().unwrap()], "")
        .failure(&["failed to read the image"]);
    let not_totp = env.path().join("url.png");
    let status = std::process::Command::new("qrencode")
        .args(["-o", not_totp.to_str().unwrap(), "https://example.com"])
        .status()
        .unwrap();
    assert!(status.success());
    env.run(["seed", "add", "x", "--qr", not_totp.to_str().unwrap()], "")
        .failure(&["holds no TOTP seed", "not an otpauth URI"]);
    assert_eq!(seed_count(&env), 0);
}

fn image_without_code(path: &std::path::Path) {
    image::GrayImage::from_pixel(64, 64, image::Luma([255]))
        .save(path)
        .unwrap();
}

#[test]
fn duplicate_and_unknown_names() {
    let env = TestEnv::with_keyring();
    env.add_seed("work", &[]);
    env.run(
        ["seed", "add", "work", "--secret", "-"],
        "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
    )
    .failure(&["already exists", "seed remove work"]);
    // The original secret is untouched by the refused add.
    let uri = env.run(["seed", "export", "work", "--uri"], "").success();
    assert!(uri.contains(&format!("secret={AWS_SEED}")), "{uri}");
    env.run(["code", "nope"], "")
        .failure(&["no seed named \"nope\""]);
    env.run(["seed", "remove", "nope", "--yes"], "")
        .failure(&["no seed named \"nope\""]);
    env.run(["seed", "export", "nope", "--uri"], "")
        .failure(&["no seed named \"nope\""]);
}

#[test]
fn absent_keyring_points_to_the_file_store() {
    let mut env = TestEnv::new();
    env.set("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus");
    env.run(["seed", "add", "x", "--secret", "-"], AWS_SEED)
        .failure(&["no Secret Service is reachable", "--store file"]);
    assert!(
        !env.data_dir().join("seeds.json").exists(),
        "nothing written when the keyring is absent"
    );
}

/// The keyring locked under a running agent: a clear error that says how to unlock it, then,
/// once the advice is followed, the same agent opens the seed again: nothing is lost.
#[test]
fn a_keyring_locked_mid_run_says_how_to_unlock_and_the_agent_recovers() {
    let env = TestEnv::with_keyring();
    // Locking the shared test keyring would break tests running alongside, so this one
    // runs its own gnome-keyring on its own private D-Bus session, then locks it. With no
    // display, the unlock prompt gnome-keyring tries to show is dismissed at once.
    let script = r#"
        printf pw | gnome-keyring-daemon --daemonize --unlock --components=secrets >/dev/null
        printf %s "$SEED" | "$BIN" seed add work --secret - 2>/dev/null || exit 90
        "$BIN" status --json > "$HOME/before.json" || exit 92
        dbus-send --session --dest=org.freedesktop.secrets --print-reply /org/freedesktop/secrets \
            org.freedesktop.Secret.Service.Lock array:objpath:/org/freedesktop/secrets/collection/login >/dev/null || exit 91
        "$BIN" doctor > "$HOME/doctor.txt"
        "$BIN" code work 2> "$HOME/locked.txt" && exit 93
        # The advice, as a user on a headless box follows it.
        printf pw | gnome-keyring-daemon --replace --daemonize --unlock --components=secrets >/dev/null 2>&1 || exit 94
        "$BIN" code work || exit 95
        "$BIN" status --json > "$HOME/after.json"
    "#;
    let out = std::process::Command::new("timeout")
        .args(["60", "dbus-run-session", "--", "sh", "-c", script])
        .env("HOME", env.path())
        // Its own agent: the one `seed add` starts talks to this session's keyring.
        .env("XDG_RUNTIME_DIR", env.path().join("run"))
        .env("BIN", env!("CARGO_BIN_EXE_mfa-agent"))
        .env("SEED", AWS_SEED)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("dbus-run-session is installed (tests/run installs it)");
    let read = |name: &str| std::fs::read_to_string(env.path().join(name)).unwrap_or_default();
    assert!(
        out.status.success(),
        "step {:?} failed; locked: {}\n{}",
        out.status.code(),
        read("locked.txt"),
        String::from_utf8_lossy(&out.stderr)
    );
    let locked = read("locked.txt");
    for needle in [
        "keyring is locked",
        "gnome-keyring-daemon --replace --daemonize --unlock",
    ] {
        assert!(locked.contains(needle), "{locked}");
    }
    assert!(common::repeated_clause(&locked).is_none(), "{locked}");
    // doctor finds it too, without a prompt.
    let doctor = read("doctor.txt");
    assert!(
        doctor.contains("FAIL store: 1 seed(s), in the OS keyring, which is locked")
            && doctor.contains("fix: unlock it"),
        "{doctor}"
    );
    // Unlocked again: the code comes, from the same agent.
    let code = String::from_utf8_lossy(&out.stdout);
    assert!(
        code.lines()
            .next()
            .is_some_and(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit())),
        "{code}"
    );
    let pid =
        |name: &str| serde_json::from_str::<serde_json::Value>(&read(name)).unwrap()["pid"].clone();
    assert_eq!(
        pid("before.json"),
        pid("after.json"),
        "the agent was not restarted"
    );
}

/// `mfa-agent status | head -1`: a reader that goes away ends the output at once and
/// quietly, as with any Unix tool (exit 141, as if killed by SIGPIPE), not with a panic.
#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    let env = TestEnv::with_keyring();
    env.start_daemon();
    // Gone before the first line is written: the reading end is closed before the command
    // starts (closing it after the spawn would race a fast command).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut cmd = env.cmd(["status"]);
    cmd.stdout(writer).stderr(std::process::Stdio::piped());
    let out = cmd.spawn().unwrap().wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.is_empty(), "nothing on stderr: {stderr}");
}

/// The mistakes people make with the command line get the command as it should be: a
/// command after `exec` without `--`, a profile for `credential-process` without
/// `--profile`, a misspelt seed or profile name.
#[test]
fn common_slips_get_the_command_as_it_should_be() {
    let sts = common::fake_sts::FakeSts::start(AWS_SEED, 30);
    let env = common::minting::setup(&sts);
    let out = env.run(["exec", "base", "terraform", "plan", "-out", "x"], "");
    let said = out.failure(&["unexpected argument 'terraform'"]);
    assert!(
        said.contains("tip: put `--` before the command to run: `mfa-agent exec base -- terraform plan -out x`"),
        "{said}"
    );
    let said = env
        .run(["credential-process", "base"], "")
        .failure(&["unexpected argument 'base'"]);
    assert!(
        said.contains(
            "tip: name the profile with --profile: `mfa-agent credential-process --profile base`"
        ),
        "{said}"
    );
    env.run(["code", "wrok"], "")
        .failure(&["no seed named \"wrok\" (did you mean \"work\"?)"]);
    env.run(["credential-process", "--profile", "bsae"], "")
        .failure(&["no profile \"bsae\"", "(did you mean \"base\"?)"]);
    env.run(["credential-process", "--profile", "billing"], "")
        .failure(&["no profile \"billing\""]);
}
