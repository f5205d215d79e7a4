//! The encrypted-file store, for machines without a keyring: same commands, passphrase-protected.

use crate::common;

use std::os::unix::fs::PermissionsExt;

use common::{AWS_SEED, TestEnv, oathtool};

#[test]
fn seeds_round_trip_through_the_encrypted_file() {
    let mut env = TestEnv::with_file_store("correct horse battery");
    // No Secret Service at all: the file store must not need one.
    env.set("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus");
    let added = env.run(["seed", "add", "work", "--secret", "-"], AWS_SEED);
    added.success();
    assert!(
        added.stderr().contains("encrypted file"),
        "says which store: {}",
        added.stderr()
    );

    let out: serde_json::Value =
        serde_json::from_str(&env.run(["code", "work", "--json"], "").success()).unwrap();
    let expected = oathtool(AWS_SEED, out["valid_from"].as_u64().unwrap(), "sha1", 6, 30);
    assert_eq!(out["code"], expected.as_str());

    let file = std::fs::read(env.data_dir().join("seeds.age")).unwrap();
    assert!(file.starts_with(b"age-encryption.org/v1"), "an age file");
    let mode = std::fs::metadata(env.data_dir().join("seeds.age"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // The vault remembers its store: no MFA_AGENT_STORE needed any more, and asking for
    // the keyring is refused rather than silently switching.
    let mut remembered = env;
    remembered.unset("MFA_AGENT_STORE");
    remembered.run(["code", "work"], "").success();
    remembered
        .run(["code", "work", "--store", "keyring"], "")
        .failure(&["encrypted file", "drop --store"]);
}

#[test]
fn wrong_passphrase_is_refused_and_loses_nothing() {
    let env = TestEnv::with_file_store("correct horse battery");
    env.add_seed("work", &[]);
    let before = std::fs::read(env.data_dir().join("seeds.age")).unwrap();

    std::fs::write(env.path().join("passphrase"), "wrong horse").unwrap();
    env.run(["code", "work"], "")
        .failure(&["wrong passphrase", "try again"]);
    env.run(["seed", "add", "more", "--secret", "-"], AWS_SEED)
        .failure(&["wrong passphrase"]);
    env.run(["seed", "remove", "work", "--yes"], "")
        .failure(&["wrong passphrase"]);
    assert_eq!(
        std::fs::read(env.data_dir().join("seeds.age")).unwrap(),
        before,
        "file untouched"
    );

    std::fs::write(env.path().join("passphrase"), "correct horse battery").unwrap();
    env.run(["code", "work"], "").success();
    let listed = env.run(["seed", "list", "--json"], "").success();
    assert!(
        listed.contains("\"work\"") && !listed.contains("\"more\""),
        "{listed}"
    );
}

#[test]
fn no_passphrase_and_no_terminal_is_a_clear_error() {
    let mut env = TestEnv::new();
    env.set("MFA_AGENT_STORE", "file");
    env.run(["seed", "add", "work", "--secret", "-"], AWS_SEED)
        .failure(&["needs its passphrase", "MFA_AGENT_PASSPHRASE_FILE"]);
    assert!(!env.data_dir().join("seeds.json").exists());
}

/// A passphrase file the agent cannot read is named, with the reason and what to do, and
/// nothing is created.
#[test]
fn an_unreadable_passphrase_file_says_which_and_why() {
    let mut env = TestEnv::new();
    env.set("MFA_AGENT_STORE", "file");
    let missing = env.path().join("no-such-passphrase");
    env.set("MFA_AGENT_PASSPHRASE_FILE", missing.to_str().unwrap());
    env.run(["seed", "add", "work", "--secret", "-"], AWS_SEED)
        .failure(&[
            "MFA_AGENT_PASSPHRASE_FILE",
            "no-such-passphrase",
            "No such file or directory",
            "unset MFA_AGENT_PASSPHRASE_FILE",
        ]);
    assert!(!env.data_dir().join("seeds.json").exists());
}

#[test]
fn concurrent_changes_lose_nothing() {
    let env = TestEnv::with_file_store("correct horse battery");
    for name in ["a0", "a1"] {
        env.add_seed(name, &[]);
    }
    // A remove and an add at once, twice: the agent is the one writer, one at a time.
    for round in 0..2 {
        let spawn = |args: &[&str], stdin: &str| {
            let mut cmd = env.cmd(args);
            cmd.stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
            let mut child = cmd.spawn().unwrap();
            std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
            child
        };
        let removed = format!("a{round}");
        let added = format!("b{round}");
        let remove = spawn(&["seed", "remove", &removed, "--yes"], "");
        let add = spawn(&["seed", "add", &added, "--secret", "-"], AWS_SEED);
        for child in [remove, add] {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let listed: serde_json::Value =
        serde_json::from_str(&env.run(["seed", "list", "--json"], "").success()).unwrap();
    let names: Vec<&str> = listed["seeds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b0", "b1"]);
    // Every listed seed still has its secret.
    for name in names {
        env.run(["code", name], "").success();
    }
}

/// A mistyped passphrase is asked for again on the terminal, three tries in all, as sudo
/// does; the right one on the second try opens the file.
#[test]
fn a_mistyped_passphrase_is_asked_again() {
    let passphrase = "correct horse battery";
    let mut env = TestEnv::with_file_store(passphrase);
    env.add_seed("work", &[]);
    env.stop_daemon();
    // Neither the agent nor the client has a passphrase file: the user types it.
    env.unset("MFA_AGENT_PASSPHRASE_FILE");
    env.start_daemon();
    let mut terminal = common::terminal::OnTerminal::start(&env.cmd(["code", "work"]));
    terminal.wait_for("Passphrase for the encrypted seed file");
    terminal.wait_for_echo_off();
    terminal.type_line("wrong horse");
    terminal.wait_for("Wrong passphrase; try again (1 try left after this one)");
    terminal.wait_for_echo_off();
    terminal.type_line(passphrase);
    let (status, text) = terminal.finish();
    assert!(status.success(), "{text}");
    assert!(
        !text.contains("horse"),
        "a typed passphrase is never shown: {text}"
    );
    assert!(
        text.lines()
            .any(|l| l.trim().len() == 6 && l.trim().bytes().all(|b| b.is_ascii_digit())),
        "a code: {text}"
    );
}
