//! Codes and the agent as their one owner: a code shown to the user is never sent by a mint,
//! a code spent elsewhere is followed by the next one, and no client reads the vault
//! behind the agent's back. The real daemon and CLI, a real keyring, the strict fake STS.

use std::time::Duration;

use crate::common;

use common::fake_sts::FakeSts;
use common::minting::{
    SHORT_SEED, align_to_a_fresh_window, in_one_window, setup_with, still_in, window_now,
};
use common::{SERIAL, TestEnv, oathtool};
use serde_json::Value;

fn code_json(env: &TestEnv, args: &[&str]) -> Value {
    let mut all = vec!["code", "work", "--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&env.run(all, "").success()).unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn a_code_from_mfa_agent_code_is_never_sent_again_by_a_mint() {
    let sts = FakeSts::start(SHORT_SEED, 3);
    let env = setup_with(&sts, SHORT_SEED, 3, "");
    align_to_a_fresh_window();
    let shown = code_json(&env, &[]);
    let digits = shown["code"].as_str().unwrap().to_owned();
    let step = shown["valid_from"].as_u64().unwrap() / 3;
    assert_eq!(shown["spent"], false);
    // Shown twice in its window, as a phone app would: the same code.
    assert_eq!(code_json(&env, &[])["code"], digits.as_str());
    // The user types it into the console (here: straight to STS), and it works.
    assert!(sts.spend_code_elsewhere(SERIAL, &digits));

    // A mint in the same window waits for the next code instead of sending this one.
    env.run(["credential-process", "--profile", "base"], "")
        .success();
    assert_eq!(
        sts.rejected_codes(),
        0,
        "the strict STS saw no rejected code"
    );
    assert_eq!(
        sts.codes_received(),
        [digits, oathtool(SHORT_SEED, (step + 1) * 3, "sha1", 6, 3)],
        "the mint sent the next window's code"
    );
}

#[test]
fn a_code_spent_elsewhere_is_followed_by_the_next_one() {
    let (sts, _env, minted) =
        in_one_window("a mint in the window of a code spent elsewhere", || {
            let sts = FakeSts::start(SHORT_SEED, 3);
            let env = setup_with(&sts, SHORT_SEED, 3, "");
            align_to_a_fresh_window();
            let (window, _) = window_now(3);
            // Typed into the console from a phone app: the agent never heard of it.
            let current = oathtool(SHORT_SEED, now(), "sha1", 6, 3);
            assert!(sts.spend_code_elsewhere(SERIAL, &current));
            // The agent must pick its code in that window: after its start and a keyring read.
            if !still_in(window, Duration::from_secs(1)) {
                return None;
            }
            let minted = env.run(["credential-process", "--profile", "base"], "");
            Some((sts, env, minted))
        });
    minted.success();
    assert!(
        minted.stderr().contains("AWS rejected the MFA code")
            && minted.stderr().contains("trying the next one"),
        "tells the waiting client: {}",
        minted.stderr()
    );
    assert_eq!(sts.rejected_codes(), 1, "one rejection");
    assert_eq!(
        sts.gst_calls(),
        3,
        "the console's call, the rejected one, the retry"
    );
}

#[test]
fn code_shows_the_next_code_once_a_mint_sent_the_current_one() {
    let (sts, env, out) = in_one_window("`code` in the window of the code a mint sent", || {
        let sts = FakeSts::start(SHORT_SEED, 3);
        let env = setup_with(&sts, SHORT_SEED, 3, "");
        align_to_a_fresh_window();
        let (window, _) = window_now(3);
        env.run(["credential-process", "--profile", "base"], "")
            .success();
        if !still_in(window, Duration::from_millis(500)) {
            return None;
        }
        let out = env.run(["code", "work"], "");
        Some((sts, env, out))
    });
    let sent = sts.codes_received();
    let digits = out.success();
    assert_ne!(digits.trim(), sent[0], "not the code the mint sent");
    assert!(
        out.stderr()
            .contains("sent the current code to AWS already")
            && out.stderr().contains("valid in"),
        "says so: {}",
        out.stderr()
    );
    let json = code_json(&env, &[]);
    assert_eq!(json["spent"], true);
    assert_eq!(
        json["code"],
        oathtool(
            SHORT_SEED,
            json["valid_from"].as_u64().unwrap(),
            "sha1",
            6,
            3
        )
        .as_str()
    );
    // That code works at STS once its window opens.
    std::thread::sleep(std::time::Duration::from_secs(
        json["valid_from"].as_u64().unwrap().saturating_sub(now()),
    ));
    assert!(sts.spend_code_elsewhere(SERIAL, json["code"].as_str().unwrap()));
    assert_eq!(sts.rejected_codes(), 0);
}

#[test]
fn without_an_agent_nothing_reads_the_vault_and_the_error_says_what_to_start() {
    let env = TestEnv::with_keyring();
    env.add_seed("work", &["--serial", SERIAL]);
    env.stop_daemon();
    let dir = env.path().join(".config/mfa-agent");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), "autostart = false\n").unwrap();
    for args in [
        &["code", "work"][..],
        &["seed", "list"],
        &["seed", "export", "work", "--uri"],
        &["creds", "list"],
        &["key", "list"],
    ] {
        let out = env.run(args, "");
        out.failure(&["no mfa-agent daemon is running", "mfa-agent daemon"]);
        assert!(
            out.stdout().is_empty(),
            "{args:?} printed: {}",
            out.stdout()
        );
    }
    assert!(!env.socket().exists(), "no agent was started");
}

#[test]
fn the_agent_asks_the_client_for_the_passphrase_and_keeps_it() {
    let mut env = TestEnv::with_file_store("correct horse battery");
    env.add_seed("work", &[]);
    env.stop_daemon();
    // An agent that has no passphrase file of its own: it must ask the client.
    env.unset("MFA_AGENT_PASSPHRASE_FILE");
    env.start_daemon();
    let nobody = env.run(["code", "work"], "");
    nobody.failure(&["needs its passphrase", "no terminal to ask on"]);
    // A client that can answer (from its file, as it would on its terminal).
    let file = env.path().join("passphrase");
    env.set("MFA_AGENT_PASSPHRASE_FILE", file.to_str().unwrap());
    env.run(["code", "work"], "").success();
    // Kept by the agent, as gpg-agent keeps a passphrase: the next client need not answer.
    env.unset("MFA_AGENT_PASSPHRASE_FILE");
    env.run(["seed", "list"], "").success();
    env.run(["code", "work"], "").success();
    // `lock` forgets it.
    env.run(["lock"], "").success();
    env.run(["code", "work"], "")
        .failure(&["needs its passphrase"]);
}

/// A bus of its own standing in for the system bus, where the test plays logind.
struct SystemBus {
    daemon: std::process::Child,
    address: String,
}

impl SystemBus {
    fn start() -> Self {
        use std::io::BufRead as _;
        let mut daemon = std::process::Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("dbus-daemon runs (package dbus)");
        let mut address = String::new();
        std::io::BufReader::new(daemon.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        Self {
            daemon,
            address: address.trim().to_owned(),
        }
    }

    /// logind's announcement that the machine is about to sleep.
    fn prepare_for_sleep(&self) {
        let sent = std::process::Command::new("dbus-send")
            .arg(format!("--bus={}", self.address))
            .args([
                "--type=signal",
                "/org/freedesktop/login1",
                "org.freedesktop.login1.Manager.PrepareForSleep",
                "boolean:true",
            ])
            .status()
            .unwrap();
        assert!(sent.success());
    }
}

impl Drop for SystemBus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// The machine going to sleep locks the agent: the passphrase it kept is forgotten, and
/// the next code asks for it again.
#[test]
fn a_suspend_locks_the_agent() {
    let bus = SystemBus::start();
    let passphrase = "correct horse battery";
    let mut env = TestEnv::with_file_store(passphrase);
    env.add_seed("work", &[]);
    env.stop_daemon();
    // An agent that asks its clients for the passphrase, and hears logind on "the system bus".
    let file = env.path().join("passphrase");
    env.unset("MFA_AGENT_PASSPHRASE_FILE");
    env.set("DBUS_SYSTEM_BUS_ADDRESS", &bus.address);
    env.start_daemon();
    env.set("MFA_AGENT_PASSPHRASE_FILE", file.to_str().unwrap());
    env.run(["code", "work"], "").success();
    env.unset("MFA_AGENT_PASSPHRASE_FILE");
    env.run(["code", "work"], "").success();

    bus.prepare_for_sleep();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let out = env.run(["code", "work"], "");
        if !out.0.status.success() {
            out.failure(&["needs its passphrase"]);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still unlocked 10 s after the machine went to sleep"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// `code` of an AWS MFA device's seed says what showing it costs: the agent's next session
/// for the device waits for a later window. A seed for another site says nothing of it.
#[test]
fn code_says_the_next_session_waits() {
    let env = TestEnv::with_keyring();
    env.add_seed("work", &["--serial", SERIAL]);
    env.add_seed("github", &[]);
    let aws = env.run(["code", "work"], "");
    aws.success();
    assert!(
        aws.stderr()
            .contains("a new session for this MFA device now waits for the next window"),
        "{}",
        aws.stderr()
    );
    let other = env.run(["code", "github"], "");
    other.success();
    assert!(!other.stderr().contains("MFA device"), "{}", other.stderr());
}
