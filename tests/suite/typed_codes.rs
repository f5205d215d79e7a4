//! MFA devices whose seed the vault does not hold (a hardware TOTP token, a phone app): the
//! agent asks the user for each session's code, on the waiting client's terminal or with
//! pinentry, and gives it the same caching, single-flight and replay guard as seeded ones.
//! Against the strict fake STS, which checks every code against the device's own seed.

use crate::common;

use std::path::PathBuf;
use std::process::Stdio;

use common::fake_sts::{self, FakeSts};
use common::terminal::{Answers, OnTerminal, pinentry};
use common::{AWS_SEED, SERIAL, TestEnv};
use serde_json::Value;

const PROMPT: &str = "MFA code for arn:aws:iam::123456789012:mfa/alice (profile base): ";

/// A keyring-backed env with no seed at all: a source profile on the test MFA device, and
/// agent settings from `agent_config` (given the env, e.g. to name a pinentry in it). The
/// agent is started, pointed at `sts`.
fn setup(sts: &FakeSts, agent_config: impl FnOnce(&TestEnv) -> String) -> TestEnv {
    let mut env = TestEnv::with_keyring();
    env.set("AWS_ENDPOINT_URL", &sts.url);
    env.aws_config(&format!(
        "[profile base]\nregion = eu-west-1\nmfa_serial = {SERIAL}\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        fake_sts::ACCESS_KEY_ID,
        fake_sts::SECRET_ACCESS_KEY
    ));
    let dir = env.path().join(".config/mfa-agent");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), agent_config(&env)).unwrap();
    env.start_daemon();
    env
}

/// A caller on a terminal that is asked for the code and types the token's; it succeeds.
/// Returns what its terminal showed.
fn mint_by_typing(env: &TestEnv) -> String {
    let mut client = OnTerminal::start(&env.cmd(["credential-process", "--profile", "base"]));
    client.wait_for(PROMPT);
    client.type_line(&token_code());
    let (status, shown) = client.finish();
    assert!(status.success(), "{shown}");
    shown
}

/// The code the user's token shows now.
fn token_code() -> String {
    common::oathtool(AWS_SEED, now(), "SHA1", 6, 30)
}

/// Six digits that are not the code of this window or either neighbour (which AWS takes).
fn wrong_code() -> String {
    let t = now();
    let near: Vec<String> = [t - 30, t, t + 30]
        .iter()
        .map(|&at| common::oathtool(AWS_SEED, at, "SHA1", 6, 30))
        .collect();
    (0..10)
        .map(|d| format!("{d}").repeat(6))
        .find(|c| !near.contains(c))
        .unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The credential_process JSON in what a terminal showed.
fn json_in(shown: &str) -> Value {
    let start = shown.find("{\"Version\"").expect("the JSON was printed");
    let end = start + shown[start..].find('}').unwrap() + 1;
    serde_json::from_str(&shown[start..end]).unwrap()
}

/// A pinentry stand-in answering `answers` (one line per dialog) after `delay` seconds,
/// named in config.toml. Returns the config line and the dialog log.
fn dialog(env: &TestEnv, answers: &[String], delay: u32) -> (String, PathBuf) {
    let file = env.path().join("answers");
    std::fs::write(&file, answers.join("\n") + "\n").unwrap();
    let (program, log) = pinentry(env.path(), &file, &Answers::EachOnce, delay);
    (format!("pinentry = \"{}\"\n", program.display()), log)
}

#[test]
fn a_code_typed_on_the_terminal_mints_and_letters_are_asked_again() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = setup(&sts, |_| String::new());

    let mut client = OnTerminal::start(&env.cmd(["credential-process", "--profile", "base"]));
    client.wait_for(PROMPT);
    client.type_line("12a456");
    client.wait_for(&format!("that was not a 6-digit code; {PROMPT}"));
    client.type_line(&token_code());
    let (status, shown) = client.finish();
    assert!(status.success(), "{shown}");

    // Exactly what STS issued, from one GetSessionToken with the typed code.
    let issued = sts.issued();
    assert_eq!(issued.len(), 1);
    let json = json_in(&shown);
    assert_eq!(json["AccessKeyId"], issued[0].0.as_str());
    assert_eq!(json["SecretAccessKey"], issued[0].1.as_str());
    assert_eq!(json["SessionToken"], issued[0].2.as_str());
    assert_eq!(sts.gst_calls(), 1);
    assert_eq!(sts.rejected_codes(), 0);

    // The session is cached: no second prompt (this client has no terminal to ask on).
    let cached: Value = serde_json::from_str(
        &env.run(["credential-process", "--profile", "base"], "")
            .success(),
    )
    .unwrap();
    assert_eq!(cached["AccessKeyId"], issued[0].0.as_str());
    assert_eq!(sts.gst_calls(), 1);

    // `code` for this device says where its codes come from.
    env.run(["code", SERIAL], "").failure(&[
        "no seed for the MFA device arn:aws:iam::123456789012:mfa/alice",
        "its codes come from your token or phone app",
    ]);
}

#[test]
fn a_code_already_sent_is_refused_before_it_reaches_aws() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = setup(&sts, |_| String::new());
    let code = token_code();

    let mut first = OnTerminal::start(&env.cmd(["credential-process", "--profile", "base"]));
    first.wait_for(PROMPT);
    first.type_line(&code);
    let (status, shown) = first.finish();
    assert!(status.success(), "{shown}");

    // The same code again (typed twice by mistake, or read off the token too soon): the
    // agent refuses it itself, three times, and STS never sees it a second time.
    let mut again =
        OnTerminal::start(&env.cmd(["credential-process", "--profile", "base", "--refresh"]));
    again.wait_for(PROMPT);
    again.type_line(&code);
    for _ in 0..2 {
        again.wait_for(&format!(
            "this code was already used; wait for the next one; {PROMPT}"
        ));
        again.type_line(&code);
    }
    let (status, shown) = again.finish();
    assert!(!status.success(), "{shown}");
    assert!(
        shown.contains("3 codes for arn:aws:iam::123456789012:mfa/alice did not work")
            && shown.contains("nothing was minted"),
        "{shown}"
    );
    assert_eq!(sts.gst_calls(), 1, "the reused code never reached STS");
    assert_eq!(sts.codes_received(), vec![code]);
}

#[test]
fn without_a_terminal_pinentry_asks_and_a_code_aws_rejects_is_asked_again() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let mut log = PathBuf::new();
    let env = setup(&sts, |env| {
        let (line, dialogs) = dialog(env, &[wrong_code(), token_code()], 0);
        log = dialogs;
        line
    });
    let json: Value = serde_json::from_str(
        &env.run(["credential-process", "--profile", "base"], "")
            .success(),
    )
    .unwrap();
    assert_eq!(json["AccessKeyId"], sts.issued()[0].0.as_str());
    let dialogs = std::fs::read_to_string(&log).unwrap();
    let dialogs: Vec<&str> = dialogs.lines().collect();
    assert_eq!(dialogs.len(), 2, "{dialogs:?}");
    assert!(
        dialogs[0].contains("MFA code for arn:aws:iam::123456789012:mfa/alice (profile base)"),
        "{dialogs:?}"
    );
    assert!(
        dialogs[1].contains("AWS rejected the code (") && dialogs[1].contains("MFA code for"),
        "AWS's message is shown with the second prompt: {dialogs:?}"
    );
    assert_eq!((sts.gst_calls(), sts.rejected_codes()), (2, 1));
}

#[test]
fn fifty_callers_at_once_get_one_prompt_and_one_sts_call() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let mut log = PathBuf::new();
    // The dialog takes 2 s to be answered, as a person would: every caller arrives while
    // the first one's mint waits for it.
    let env = setup(&sts, |env| {
        let (line, dialogs) = dialog(env, &[token_code()], 2);
        log = dialogs;
        line
    });
    let callers: Vec<_> = (0..50)
        .map(|_| {
            env.cmd(["credential-process", "--profile", "base"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let issued_to: Vec<String> = callers
        .into_iter()
        .map(|caller| {
            let out = caller.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let json: Value = serde_json::from_slice(&out.stdout).unwrap();
            json["AccessKeyId"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(sts.gst_calls(), 1);
    assert!(issued_to.iter().all(|id| *id == sts.issued()[0].0));
    let dialogs = std::fs::read_to_string(&log).unwrap();
    assert_eq!(dialogs.lines().count(), 1, "one prompt: {dialogs}");
}

#[test]
fn nobody_typing_fails_every_waiting_client_and_the_agent_goes_on() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = setup(&sts, |_| "prompt_timeout_seconds = 3\n".into());

    // What the tray and the notifier hear: a code is wanted, then the wait is over.
    let mut feed = std::os::unix::net::UnixStream::connect(env.socket()).unwrap();
    feed.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    std::io::Write::write_all(
        &mut feed,
        &common::after_hello("{\"type\":\"subscribe\"}\n"),
    )
    .unwrap();
    let mut feed = std::io::BufReader::new(feed);
    let mut next_event = |kind: &str| loop {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut feed, &mut line).expect("an event within 20 s");
        if line.contains(&format!("\"event\":\"{kind}\"")) {
            return line;
        }
    };

    let mut asked = OnTerminal::start(&env.cmd(["credential-process", "--profile", "base"]));
    asked.wait_for(PROMPT);
    let wanted = next_event("touch_needed");
    assert!(
        wanted.contains("type the MFA code for arn:aws:iam::123456789012:mfa/alice (base)"),
        "{wanted}"
    );
    // A second caller joins the mint that waits for the code.
    let joined = env
        .cmd(["credential-process", "--profile", "base"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (status, shown) = asked.finish();
    assert!(!status.success(), "{shown}");
    assert!(
        shown.contains("no MFA code was typed within 3 s for arn:aws:iam::123456789012:mfa/alice"),
        "{shown}"
    );
    let joined = common::Run(joined.wait_with_output().unwrap());
    joined.failure(&["no MFA code was typed within 3 s"]);
    next_event("approved");
    assert_eq!(sts.gst_calls(), 0);

    // The agent still serves, and the next caller is asked afresh.
    env.run(["status"], "").success();
    mint_by_typing(&env);
    assert_eq!(sts.gst_calls(), 1);
}

#[test]
fn a_client_that_hangs_up_cancels_its_prompt() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = setup(&sts, |_| "prompt_timeout_seconds = 60\n".into());
    let mut asked = OnTerminal::start(&env.cmd(["credential-process", "--profile", "base"]));
    asked.wait_for(PROMPT);
    let in_flight = env.status()["waiting_for_sessions"].as_u64().unwrap();
    assert!(in_flight > 0, "the prompt's mint is in flight");
    asked.hang_up();
    // The client dies of the SIGHUP a moment after its terminal closes, and the agent then
    // drops the mint it asked for; a caller arriving before that would join the mint that
    // is about to be cancelled.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while env.status()["waiting_for_sessions"].as_u64() != Some(0) {
        assert!(
            std::time::Instant::now() < deadline,
            "the agent still waits for the closed terminal's mint: {}",
            env.status()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The next caller is asked at once: it did not join a mint still waiting for the
    // closed terminal (that would end only with the 60 s timeout, and no prompt).
    mint_by_typing(&env);
    assert_eq!(sts.gst_calls(), 1);
}
