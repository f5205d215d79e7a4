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
    python_for(env, "base")
}

/// python3 asking for `profile`'s credentials, with no terminal (`setsid`).
fn python_for(env: &TestEnv, profile: &str) -> std::process::Output {
    let bin = env!("CARGO_BIN_EXE_mfa-agent");
    let mut cmd = Command::new("setsid");
    cmd.args([
        "-w",
        "python3",
        "-c",
        &format!("import subprocess, sys; sys.exit(subprocess.run([{bin:?}, 'credential-process', '--profile', {profile:?}], stdout=subprocess.DEVNULL).returncode)"),
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

/// `timeout 60 mfa-agent ARGS`: a second program ("timeout"), with no terminal to ask on
/// (`setsid`).
fn second_program(env: &TestEnv, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("setsid");
    cmd.args(["-w", "timeout", "60"])
        .arg(env!("CARGO_BIN_EXE_mfa-agent"))
        .args(args);
    in_env(env, cmd)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// Every way to use a session goes through the same check: a forced refresh, a console
/// sign-in, a key rotation and an MFA device's removal by a program that is not approved
/// are refused (here, with no terminal and no key to approve with), the program that
/// started the session keeps it, and the audit log has an entry for each operation.
#[test]
fn every_use_of_a_session_asks_and_every_operation_is_logged() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = minting::setup_with(
        &sts,
        AWS_SEED,
        30,
        "[profiles.base]\nconfirm = \"each-program\"\n[profiles.admin]\nconfirm = \"each-program\"\n",
    );
    let keys = format!(
        "{} {}",
        common::fake_sts::ACCESS_KEY_ID,
        common::fake_sts::SECRET_ACCESS_KEY
    );
    env.run(["creds", "add", "base", "--stdin"], &keys)
        .success();
    // python3 starts both sessions.
    assert!(python_for(&env, "base").status.success());
    assert!(python_for(&env, "admin").status.success());
    let calls = (sts.gst_calls(), sts.assume_role_count());

    for (args, profile) in [
        (
            &["credential-process", "--profile", "base", "--refresh"][..],
            "base",
        ),
        (&["login", "admin", "--print"][..], "admin"),
        (&["creds", "rotate", "base"][..], "base"),
        (
            &["aws", "unenroll", "--profile", "base", "--yes"][..],
            "base",
        ),
    ] {
        let out = second_program(&env, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was served: {stderr}");
        assert!(
            stderr.contains("timeout (pid ")
                && stderr.contains(&format!(
                    "was not let use the session of profile {profile:?}"
                )),
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // Nothing was minted for the refused, and python3 keeps both sessions, unasked.
    assert_eq!((sts.gst_calls(), sts.assume_role_count()), calls);
    assert!(python_for(&env, "base").status.success());
    assert!(python_for(&env, "admin").status.success());
    // A code is an operation too.
    env.run(["code", "work"], "").success();

    let entries = common::audit_log_once(&env, |all| all.iter().any(|e| e["operation"] == "code"));
    let logged = |operation: &str, subject: &str, program: &str, outcome: &str| {
        entries.iter().any(|e| {
            e["operation"] == operation
                && e["profile"] == subject
                && e["program"].as_str().unwrap().starts_with(program)
                && e["outcome"] == outcome
        })
    };
    for (operation, subject) in [
        ("credentials refresh", "base"),
        ("login", "admin"),
        ("creds rotate", "base"),
        ("aws unenroll", "base"),
    ] {
        assert!(
            logged(operation, subject, "timeout", "failed"),
            "no entry for {operation} {subject}: {entries:#?}"
        );
    }
    assert!(logged("creds add", "base", "suite", "done"), "{entries:#?}");
    assert!(logged("code", "work", "suite", "done"), "{entries:#?}");
    assert!(
        logged("credentials", "admin", "python3", "issued"),
        "{entries:#?}"
    );
}

/// What `exec --server`'s child does: holds connections as another user (nobody) that
/// trickle a byte a second, checks they were closed unread, then fetches its credentials
/// (a process of its own, named by its script file), and reports the server's listening
/// sockets and token.
const EXEC_SERVER_CHILD: &str = r#"
import json, os, socket, time, urllib.request
uri = os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
port = int(uri.rstrip("/").rsplit(":", 1)[1])
pids, closed = [], []
# Loaded now: after setuid, nobody may not read this Python's library to load it.
"127.0.0.1".encode("idna")
for _ in range(24):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.setgid(65534); os.setuid(65534)
        s = socket.create_connection(("127.0.0.1", port))
        s.settimeout(3)
        s.send(b"G")
        try:
            gone = s.recv(1) == b""
        except ConnectionResetError:
            gone = True  # closed with the byte unread: a reset
        except OSError:
            gone = False
        os.write(w, b"1" if gone else b"0")
        time.sleep(20)
        os._exit(0)
    os.close(w)
    pids.append((pid, r))
for pid, r in pids:
    closed.append(os.read(r, 1) == b"1")
started = time.time()
request = urllib.request.Request(uri, headers={"Authorization": os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]})
status = urllib.request.urlopen(request, timeout=20).status
took = time.time() - started
def listening(path):
    rows = [l.split() for l in open(path).read().splitlines()[1:]]
    return [r[1] for r in rows if r[3] == "0A" and int(r[1].rsplit(":", 1)[1], 16) == port]
for pid, _ in pids:
    os.kill(pid, 9)
print(json.dumps({"status": status, "seconds": took, "closed": closed,
    "tcp": listening("/proc/net/tcp"), "tcp6": listening("/proc/net/tcp6"),
    "token": os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]}))
"#;

/// `exec` and `exec --server` name the command that uses the credentials, not the program
/// that ran mfa-agent: `exec` the command it runs, `exec --server` the process behind each
/// HTTP request (here a Python script). The endpoint listens on 127.0.0.1 alone, closes
/// another user's connections unread (so a byte a second from each cannot starve the child),
/// and its token is new each time.
#[test]
fn exec_names_the_command_and_its_server_serves_only_its_user() {
    assert_eq!(
        mfa_agent::sys::current_uid(),
        0,
        "this test connects as another user (nobody), which needs root (CI runs as root)"
    );
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = minting::setup_with(&sts, AWS_SEED, 30, "");
    second_program(&env, &["exec", "base", "--", "true"]);
    let script = env.path().join("get-creds.py");
    std::fs::write(&script, EXEC_SERVER_CHILD).unwrap();
    // The script forks as nobody: its directory must be one nobody may enter.
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(env.path()).unwrap().permissions(),
        0o755,
    );
    let run = || {
        let out = second_program(
            &env,
            &[
                "exec",
                "--server",
                "base",
                "--",
                "python3",
                script.to_str().unwrap(),
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let (first, second) = (run(), run());
    for report in [&first, &second] {
        assert_eq!(report["status"], 200, "{report}");
        assert!(report["seconds"].as_f64().unwrap() < 10.0, "{report}");
        assert!(
            report["closed"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c == true),
            "another user's connections are closed unread: {report}"
        );
        let port = |addr: &Value| addr.as_str().unwrap().to_owned();
        let tcp: Vec<String> = report["tcp"].as_array().unwrap().iter().map(port).collect();
        assert!(
            tcp.len() == 1 && tcp[0].starts_with("0100007F:"),
            "listening on 127.0.0.1 alone: {report}"
        );
        assert_eq!(report["tcp6"], serde_json::json!([]), "{report}");
        assert_eq!(report["token"].as_str().unwrap().len(), 64);
    }
    assert_ne!(first["token"], second["token"], "a new token each time");

    // Five credentials requests: exec's, then two per exec --server run.
    let entries = common::audit_log_once(&env, |all| {
        all.iter()
            .filter(|e| e["operation"] == "credentials")
            .count()
            >= 5
    });
    let programs: Vec<&str> = entries
        .iter()
        .filter(|e| e["operation"] == "credentials")
        .map(|e| e["program"].as_str().unwrap())
        .collect();
    assert_eq!(
        programs,
        ["true", "python3", "get-creds.py", "python3", "get-creds.py"],
        "{entries:#?}"
    );
}

/// An answer other than yes refuses, an approval lasts as long as its session: after
/// `lock` the next session starts with none, and the program asks again.
#[test]
fn a_no_refuses_and_a_new_session_forgets_the_approvals() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = minting::setup_with(
        &sts,
        AWS_SEED,
        30,
        "[profiles.base]\nconfirm = \"each-program\"\n",
    );
    assert!(python(&env).status.success(), "python3 starts the session");
    let on_terminal = || {
        // In the terminal's foreground: timeout would run it in the background, where
        // reading the answer stops it.
        let mut client = Command::new("timeout");
        client
            .args(["--foreground", "60", env!("CARGO_BIN_EXE_mfa-agent")])
            .args(["credential-process", "--profile", "base"]);
        OnTerminal::start(&in_env(&env, client))
    };
    for answer in ["n", ""] {
        let mut terminal = on_terminal();
        terminal.wait_for("use the AWS session of base? [y/N] ");
        terminal.type_line(answer);
        let (status, text) = terminal.finish();
        assert!(!status.success(), "{answer:?} served it: {text}");
        assert!(text.contains("was not let use the session"), "{text}");
        assert!(!text.contains("\"SecretAccessKey\""), "{text}");
    }
    let mut terminal = on_terminal();
    terminal.wait_for("[y/N] ");
    terminal.type_line("y");
    let (status, text) = terminal.finish();
    assert!(status.success(), "{text}");
    assert!(
        second_program(&env, &["credential-process", "--profile", "base"])
            .status
            .success(),
        "approved for this session"
    );

    // A new session (after lock, python3 mints it again) starts with no approvals.
    env.run(["lock"], "").success();
    assert!(python(&env).status.success());
    let refused = second_program(&env, &["credential-process", "--profile", "base"]);
    assert!(
        !refused.status.success(),
        "the approval outlived its session"
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("was not let use the session"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

/// Every operation the gate names leaves an audit entry with its program and outcome, done
/// or failed, and reading lists leaves none: here from a second program with no terminal
/// and no key.
#[test]
fn every_operation_leaves_an_audit_entry_with_its_outcome() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = minting::setup(&sts);
    let runs: [(&[&str], &str, &str, bool); 7] = [
        (
            &["seed", "export", "work", "--uri"],
            "seed export",
            "work",
            true,
        ),
        (
            &["seed", "rename", "work", "renamed"],
            "seed rename",
            "work",
            true,
        ),
        (&["code", "renamed"], "code", "renamed", true),
        (
            &["seed", "remove", "missing", "--yes"],
            "seed remove",
            "missing",
            false,
        ),
        (
            &["key", "remove", "nokey", "--yes"],
            "key remove",
            "nokey",
            false,
        ),
        (
            &["creds", "remove", "nobody", "--yes"],
            "creds remove",
            "nobody",
            false,
        ),
        (&["key", "list", "--json"], "key list", "", true),
    ];
    for (args, ..) in &runs {
        second_program(&env, args);
    }
    let entries = common::audit_log_once(&env, |all| {
        all.iter().any(|e| e["operation"] == "creds remove")
    });
    for (args, operation, subject, done) in runs {
        let found: Vec<&Value> = entries
            .iter()
            .filter(|e| e["operation"] == operation && e["program"] == "timeout")
            .collect();
        if operation == "key list" {
            assert!(
                found.is_empty(),
                "a listing is no use of anything: {found:?}"
            );
            continue;
        }
        assert_eq!(found.len(), 1, "{args:?}: {entries:#?}");
        assert_eq!(found[0]["profile"], subject, "{args:?}");
        assert_eq!(
            found[0]["outcome"],
            if done { "done" } else { "failed" },
            "{args:?}"
        );
    }
}
