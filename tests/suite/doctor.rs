//! `mfa-agent doctor` on a working set-up and on deliberately broken ones: every problem is
//! found, and each comes with the command that fixes it.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;

use common::fake_sts::{self, FakeSts};
use common::{AWS_SEED, SERIAL, TestEnv};
use serde_json::Value;

/// A vault with seed `work` for SERIAL, and `~/.aws/config` with `config` appended to a
/// working source profile `base` and its credential_process profile.
fn env_with(sts: &FakeSts, config: &str) -> TestEnv {
    let mut env = TestEnv::with_keyring();
    env.set("AWS_ENDPOINT_URL", &sts.url);
    env.add_seed("work", &["--serial", SERIAL]);
    env.aws_config(&format!(
        "[profile base]\nregion = eu-west-1\nmfa_serial = {SERIAL}\naws_access_key_id = {}\naws_secret_access_key = {}\n\n\
         [profile work]\ncredential_process = mfa-agent credential-process --profile base\n\n{config}",
        fake_sts::ACCESS_KEY_ID,
        fake_sts::SECRET_ACCESS_KEY
    ));
    env
}

/// `doctor --json`: the findings by check name, and whether it exited 0.
fn doctor(env: &TestEnv) -> (Vec<Value>, bool) {
    let out = env.run(["doctor", "--json"], "");
    let report: Value = serde_json::from_str(&out.stdout()).unwrap_or_else(|e| {
        panic!(
            "doctor --json prints JSON ({e}):\n{}\n{}",
            out.stdout(),
            out.stderr()
        )
    });
    let findings = report["findings"].as_array().unwrap().clone();
    (findings, out.0.status.success())
}

fn finding<'a>(findings: &'a [Value], check: &str) -> &'a Value {
    findings
        .iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("no {check:?} finding in {findings:#?}"))
}

#[test]
fn a_working_setup_passes() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = env_with(&sts, "");
    let (findings, passed) = doctor(&env);
    assert!(passed, "{findings:#?}");
    for f in &findings {
        assert_ne!(f["status"], "fail", "{f}");
    }
    let store = finding(&findings, "store");
    assert_eq!(store["status"], "ok");
    assert!(
        store["detail"].as_str().unwrap().contains("unlocked"),
        "{store}"
    );
    let profile = finding(&findings, "profile base");
    assert_eq!(profile["status"], "ok", "{profile}");
    assert!(
        profile["detail"].as_str().unwrap().contains("seed work"),
        "{profile}"
    );
    let clock = finding(&findings, "clock");
    assert_eq!(clock["status"], "ok", "{clock}");
    assert_eq!(finding(&findings, "agent")["status"], "ok");

    // The same for people: one line per check, no fixes to show.
    let human = env.run(["doctor"], "").success();
    assert!(human.contains("ok   profile base:"), "{human}");
    assert!(!human.contains("FAIL"), "{human}");
}

#[test]
fn a_broken_setup_gets_a_fix_for_each_problem() {
    let sts = FakeSts::start(AWS_SEED, 30);
    // STS's clock two minutes ahead: every code this machine makes would be rejected.
    sts.set_clock_offset(120);
    let other_serial = "arn:aws:iam::123456789012:mfa/bob";
    let env = env_with(
        &sts,
        &format!(
            "[profile noseed]\nmfa_serial = {other_serial}\naws_access_key_id = AKIAX\naws_secret_access_key = x\n\n\
             [profile loop]\nrole_arn = arn:aws:iam::210987654321:role/Admin\nsource_profile = loop\n\n\
             [profile long]\nmfa_serial = {SERIAL}\naws_access_key_id = AKIAX\naws_secret_access_key = x\nduration_seconds = 200000\n\n\
             [profile nokeys]\nmfa_serial = {SERIAL}\n\n\
             [profile a]\ncredential_process = mfa-agent credential-process --profile noseed\n\
             [profile b]\ncredential_process = mfa-agent credential-process --profile loop\n\
             [profile c]\ncredential_process = mfa-agent credential-process --profile long\n\
             [profile d]\ncredential_process = mfa-agent credential-process --profile nokeys\n\
             [profile e]\ncredential_process = mfa-agent credential-process --profile missing\n"
        ),
    );
    let (findings, passed) = doctor(&env);
    assert!(!passed, "doctor exits 1 when something would fail");

    let expect = |check: &str, detail: &str, fix: &str| {
        let f = finding(&findings, check);
        assert_eq!(f["status"], "fail", "{f}");
        assert!(
            f["detail"].as_str().unwrap().contains(detail),
            "{check}: {f}"
        );
        assert!(f["fix"].as_str().unwrap().contains(fix), "{check}: {f}");
    };
    // No seed for its device: the user types its codes, which doctor says is fine.
    let typed = finding(&findings, "profile noseed");
    assert_eq!(typed["status"], "ok", "{typed}");
    assert!(
        typed["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("MFA device {other_serial} -> codes typed by you")),
        "{typed}"
    );
    expect("profile loop", "source_profile loop", "~/.aws/config");
    expect(
        "profile long",
        "duration_seconds = \"200000\"",
        "~/.aws/config",
    );
    expect(
        "profile nokeys",
        "no long-term keys",
        "mfa-agent creds add nokeys",
    );
    expect("profile missing", "no profile \"missing\"", "~/.aws/config");
    assert!(
        finding(&findings, "profile missing")["detail"]
            .as_str()
            .unwrap()
            .contains("(named by the credential_process of e)"),
        "which profile refers to it"
    );
    let no_region = finding(&findings, "profile a");
    assert_eq!(no_region["status"], "warn", "{no_region}");
    assert!(
        no_region["fix"]
            .as_str()
            .unwrap()
            .contains("add `region = ...` to [profile a]"),
        "{no_region}"
    );
    expect("clock", "s behind AWS STS", "timedatectl set-ntp true");
    // A Date header has whole seconds, so the two minutes read as 120 give or take one.
    let clock = finding(&findings, "clock")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    let seconds: i64 = clock
        .trim_start_matches("this machine is ")
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no skew in {clock:?}"));
    assert!((119..=121).contains(&seconds), "{clock}");
    assert_eq!(finding(&findings, "profile base")["status"], "ok");

    let human = env.run(["doctor"], "");
    let text = human.stdout();
    assert!(!human.0.status.success());
    assert!(text.contains("FAIL clock:"), "{text}");
    assert!(
        text.contains("     fix: `mfa-agent creds add nokeys`"),
        "{text}"
    );
}

#[test]
fn an_old_daemon_is_told_apart() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = env_with(&sts, "");
    // A daemon of another version on the socket: it answers hello and status as 0.0.1 did.
    // (The agent that added the seed goes first.)
    env.stop_daemon();
    let socket = env.socket();
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    let listener = UnixListener::bind(&socket).unwrap();
    let old = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        let mut line = String::new();
        for reply in [
            r#"{"type":"hello","version":2,"agent_version":"0.0.1"}"#,
            r#"{"type":"status","agent_version":"0.0.1","protocol_version":1,"pid":4242,"uptime_seconds":9,"store":"OS keyring","sessions":[]}"#,
        ] {
            line.clear();
            if reader.read_line(&mut line).unwrap() == 0 {
                return;
            }
            writeln!(writer, "{reply}").unwrap();
        }
    });
    let (findings, passed) = doctor(&env);
    old.join().unwrap();
    assert!(!passed);
    let agent = finding(&findings, "agent");
    assert_eq!(agent["status"], "fail", "{agent}");
    assert!(
        agent["detail"].as_str().unwrap().contains("version 0.0.1"),
        "{agent}"
    );
    assert!(
        agent["fix"].as_str().unwrap().contains("kill 4242"),
        "{agent}"
    );
}

#[test]
fn no_secret_service_is_a_failure_with_the_way_out() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let mut env = env_with(&sts, "");
    env.set(
        "DBUS_SESSION_BUS_ADDRESS",
        &format!("unix:path={}/no-bus", env.path().display()),
    );
    let (findings, passed) = doctor(&env);
    assert!(!passed);
    let store = finding(&findings, "store");
    assert_eq!(store["status"], "fail", "{store}");
    assert!(
        store["fix"].as_str().unwrap().contains("--store file"),
        "{store}"
    );
}

/// An mfa_serial a character away from the serial of a seed in the vault is most likely a
/// typo: flagged, rather than taken for a device whose codes the user types.
#[test]
fn a_serial_a_character_from_a_seeds_is_flagged() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = env_with(
        &sts,
        &format!(
            "[profile typo]\nmfa_serial = {SERIAL}x\naws_access_key_id = AKIAX\naws_secret_access_key = x\n\n\
             [profile f]\ncredential_process = mfa-agent credential-process --profile typo\n"
        ),
    );
    let (findings, _) = doctor(&env);
    let typo = finding(&findings, "profile typo");
    assert_eq!(typo["status"], "warn", "{typo}");
    assert!(
        typo["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("holds one for {SERIAL}")),
        "{typo}"
    );
    assert!(
        typo["fix"].as_str().unwrap().contains("correct mfa_serial"),
        "{typo}"
    );
}

/// The doctor examines the agent that is running; with none, it says so and starts none
/// (one started by the doctor would carry the doctor's environment, not the user's).
#[test]
fn with_no_agent_running_the_doctor_says_so_and_starts_none() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = env_with(&sts, "");
    env.stop_daemon();
    let (findings, _) = doctor(&env);
    let agent = finding(&findings, "agent");
    assert!(
        agent["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("not running")
            || agent.to_string().contains("not running"),
        "{agent}"
    );
    assert!(
        !env.socket().exists(),
        "the doctor left an agent listening at {}",
        env.socket().display()
    );
}
