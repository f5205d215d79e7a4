//! `confirm = "each-program"`: the program that started a session uses it freely; another
//! program is asked about once (here without a security key: a yes at its terminal), and
//! is then approved for the session's life. Two real programs: python3 and the AWS CLI.

use crate::common;

use std::fmt::Write as _;
use std::process::Command;

use common::fake_sts::FakeSts;
use common::terminal::OnTerminal;
use common::{AWS_SEED, TestEnv, minting};
use serde_json::Value;

/// `cmd` with the env's private environment, as a user's shell would have it.
fn in_env(env: &TestEnv, mut cmd: Command) -> Command {
    let probe = env.cmd(["--version"]);
    cmd.env_clear()
        .envs(probe.get_envs().filter_map(|(k, v)| Some((k, v?))));
    cmd
}

/// python3 asking for `base`'s credentials, with no terminal (`setsid`).
fn python(env: &TestEnv) -> std::process::Output {
    let bin = env!("CARGO_BIN_EXE_mfa-agent");
    let mut cmd = Command::new("setsid");
    cmd.args([
        "-w",
        "python3",
        "-c",
        &format!("import subprocess, sys; sys.exit(subprocess.run([{bin:?}, 'credential-process', '--profile', 'base'], stdout=subprocess.DEVNULL).returncode)"),
    ]);
    in_env(env, cmd).output().unwrap()
}

/// The AWS CLI's GetCallerIdentity through `credential_process` (profile `cli-base`).
fn aws(env: &TestEnv, sts: &FakeSts) -> Command {
    let mut cmd = Command::new("/usr/bin/aws");
    cmd.args(["sts", "get-caller-identity", "--profile", "cli-base"])
        .args(["--endpoint-url", &sts.url]);
    let mut cmd = in_env(env, cmd);
    // On a terminal the AWS CLI would page its output through less.
    cmd.env("AWS_PAGER", "");
    cmd
}

#[test]
fn another_program_asks_once_and_the_first_never() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = minting::setup_with(
        &sts,
        AWS_SEED,
        30,
        "[profiles.base]\nconfirm = \"each-program\"\n",
    );
    let bin = env!("CARGO_BIN_EXE_mfa-agent");
    let mut config = std::fs::read_to_string(env.path().join(".aws/config")).unwrap();
    let _ = write!(
        config,
        "\n[profile cli-base]\nregion = us-east-1\ncredential_process = {bin} credential-process --profile base\n"
    );
    env.aws_config(&config);

    // python3 starts the session, and uses it again: never asked.
    assert!(python(&env).status.success());
    assert!(python(&env).status.success());

    // The AWS CLI, with no terminal to ask on: refused, saying why.
    let mut detached = Command::new("setsid");
    let cli = aws(&env, &sts);
    detached
        .arg("-w")
        .arg(cli.get_program())
        .args(cli.get_args())
        .env_clear()
        .envs(cli.get_envs().filter_map(|(k, v)| Some((k, v?))));
    let refused = detached.output().unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("aws (pid")
            && stderr.contains("was not let use the session of profile \"base\""),
        "{stderr}"
    );

    // On a terminal it is asked, by name; a yes serves it.
    let mut terminal = OnTerminal::start(&aws(&env, &sts));
    terminal.wait_for("Let aws (pid ");
    terminal.wait_for("use the AWS session of base? [y/N] ");
    terminal.type_line("y");
    let (status, text) = terminal.finish();
    assert!(status.success(), "{text}");
    assert!(text.contains("\"Arn\""), "{text}");

    // Approved for this session: no terminal needed any more, and python3 still not asked.
    let mut again = Command::new("setsid");
    again
        .arg("-w")
        .arg(cli.get_program())
        .args(cli.get_args())
        .env_clear()
        .envs(cli.get_envs().filter_map(|(k, v)| Some((k, v?))));
    let served = again.output().unwrap();
    assert!(
        served.status.success(),
        "{}",
        String::from_utf8_lossy(&served.stderr)
    );
    assert!(python(&env).status.success());
    assert_eq!(sts.gst_calls(), 1, "one session for both programs");

    // The audit log names both programs.
    let mut logged = String::new();
    for _ in 0..50 {
        logged = env.run(["log", "--json"], "").success();
        if logged.lines().count() >= 5 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let programs: Vec<String> = logged
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["program"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(programs.iter().any(|p| p == "aws"), "{logged}");
    assert!(
        programs.iter().any(|p| p.starts_with("python3")),
        "{logged}"
    );
}
