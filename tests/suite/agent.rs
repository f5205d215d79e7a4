//! The agent end to end: the real daemon and CLI, a real keyring, and the strict fake STS.

use crate::common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::fake_sts::{self, FakeSts, Fault, Gate};
use common::minting::{
    ROLE, SHORT_SEED, align_to_a_fresh_window, in_one_window, setup, setup_with,
};
use common::{AWS_SEED, SERIAL, TestEnv};
use serde_json::Value;

/// Runs `credential-process` and checks its stdout is exactly the AWS JSON.
fn credential_process(env: &TestEnv, profile: &str) -> Value {
    let out = env.run(["credential-process", "--profile", profile], "");
    let stdout = out.success();
    assert_eq!(
        stdout.lines().count(),
        1,
        "one JSON line and nothing else: {stdout:?}"
    );
    let json: Value = serde_json::from_str(&stdout).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 5, "{json}");
    for key in [
        "Version",
        "AccessKeyId",
        "SecretAccessKey",
        "SessionToken",
        "Expiration",
    ] {
        assert!(json.get(key).is_some(), "missing {key}: {json}");
    }
    assert_eq!(json["Version"], 1);
    let expiration = json["Expiration"].as_str().unwrap();
    assert!(
        expiration.ends_with('Z') && expiration.len() == 20,
        "ISO 8601: {expiration}"
    );
    json
}

/// The `n`th credentials the fake STS issued, as (key id, secret, token).
fn issued_as_json(sts: &FakeSts, n: usize) -> (String, String, String) {
    sts.issued()[n].clone()
}

/// A credential_process answer's (key id, secret, token).
fn triple(json: &Value) -> (String, String, String) {
    let field = |name: &str| json[name].as_str().unwrap().to_owned();
    (
        field("AccessKeyId"),
        field("SecretAccessKey"),
        field("SessionToken"),
    )
}

#[test]
fn credential_process_mints_once_then_serves_from_memory() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = setup(&sts);
    let first = credential_process(&env, "base");
    assert_eq!(
        issued_as_json(&sts, 0),
        triple(&first),
        "exactly what STS issued"
    );
    for _ in 0..3 {
        assert_eq!(
            credential_process(&env, "base")["AccessKeyId"],
            first["AccessKeyId"]
        );
    }
    assert_eq!(
        sts.gst_calls(),
        1,
        "one GetSessionToken, the rest from the cache"
    );

    // The role profile reuses the MFA session: AssumeRole without a new code.
    let role = credential_process(&env, "admin");
    assert_eq!(
        issued_as_json(&sts, 1),
        triple(&role),
        "the AssumeRole session"
    );
    credential_process(&env, "admin");
    assert_eq!((sts.gst_calls(), sts.assume_role_count()), (1, 1));

    let status = env.status();
    assert_eq!(status["store"], "OS keyring");
    let names: Vec<&str> = status["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"]["profile"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["admin", "base"],
        "one entry per session: base's own is also the MFA session behind admin"
    );
    assert!(
        status.to_string().contains("****"),
        "keys are masked: {status}"
    );
    assert!(
        !status
            .to_string()
            .contains(first["SecretAccessKey"].as_str().unwrap())
    );
}

#[test]
fn exec_puts_session_credentials_in_the_environment() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = setup(&sts);
    let script = "echo $AWS_ACCESS_KEY_ID $AWS_REGION $AWS_SESSION_TOKEN $AWS_SECRET_ACCESS_KEY $AWS_CREDENTIAL_EXPIRATION ${AWS_PROFILE:-noprofile}";
    let mut cmd = env.cmd(["exec", "admin", "--", "sh", "-c", script]);
    cmd.env("AWS_PROFILE", "admin");
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fields: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    // The role session, exactly as STS issued it (the MFA session came first).
    let (key, secret, token) = issued_as_json(&sts, 1);
    assert_eq!(fields[0], key, "{fields:?}");
    assert_eq!(fields[1], "eu-west-1");
    assert_eq!((&fields[2], &fields[3]), (&token, &secret));
    assert!(fields[4].ends_with('Z'));
    assert_eq!(
        fields[5], "noprofile",
        "AWS_PROFILE is removed so the child cannot loop back"
    );
}

#[test]
fn a_used_code_is_never_sent_again_even_across_restarts() {
    let sts = FakeSts::start(SHORT_SEED, 3);
    let env = setup_with(&sts, SHORT_SEED, 3, "");
    for _ in 0..3 {
        // Lock drops the session, so each round needs a new code, often in the same window.
        env.run(["lock"], "").success();
        credential_process(&env, "base");
    }
    // A mint, a restart, and a mint in the window of the first: the new agent knows its code
    // was sent (replay.json), and waits for the next one rather than sending it again.
    let restarted = in_one_window("a restart within one window", || {
        align_to_a_fresh_window();
        let (window, _) = common::minting::window_now(3);
        env.run(["lock"], "").success();
        credential_process(&env, "base");
        env.stop_daemon();
        env.start_daemon();
        if !common::minting::still_in(window, Duration::from_millis(500)) {
            return None;
        }
        Some(env.run(["credential-process", "--profile", "base"], ""))
    });
    restarted.success();
    assert!(
        restarted.stderr().contains("fresh MFA code"),
        "the restarted agent waited for the next code: {}",
        restarted.stderr()
    );
    let codes = sts.codes_received();
    assert_eq!(
        sts.rejected_codes(),
        0,
        "every round succeeded first time: {codes:?}"
    );
    assert!(
        codes.windows(2).all(|w| w[0] != w[1]),
        "no code sent twice in a row: {codes:?}"
    );
}

#[test]
fn a_second_mint_in_the_same_window_waits_and_says_why() {
    let (sts, _env, refreshed) = in_one_window("a refresh in the first mint's window", || {
        let sts = FakeSts::start(SHORT_SEED, 3);
        let env = setup_with(&sts, SHORT_SEED, 3, "");
        align_to_a_fresh_window();
        let (window, _) = common::minting::window_now(3);
        credential_process(&env, "base");
        if !common::minting::still_in(window, Duration::from_millis(500)) {
            return None;
        }
        let refreshed = env.run(["credential-process", "--profile", "base", "--refresh"], "");
        Some((sts, env, refreshed))
    });
    refreshed.success();
    // No terminal here, so the message goes to stderr (never stdout).
    assert!(
        refreshed.stderr().contains("waiting") && refreshed.stderr().contains("fresh MFA code"),
        "{}",
        refreshed.stderr()
    );
    assert_eq!(sts.gst_calls(), 2);
}

#[test]
fn a_client_hanging_up_mid_mint_leaves_the_mint_to_finish_for_the_next() {
    let (sts, env) = in_one_window("a refresh in the first mint's window", || {
        let sts = FakeSts::start(SHORT_SEED, 3);
        let env = setup_with(&sts, SHORT_SEED, 3, "");
        align_to_a_fresh_window();
        let (window, _) = common::minting::window_now(3);
        credential_process(&env, "base");
        common::minting::still_in(window, Duration::from_millis(500)).then_some((sts, env))
    });
    // A refresh in the same window waits for the next code; the client hangs up meanwhile.
    let mut stream = UnixStream::connect(env.socket()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(&common::after_hello(
            "{\"type\":\"credentials\",\"profile\":\"base\",\"force_refresh\":true}\n",
        ))
        .unwrap();
    let mut lines = BufReader::new(stream.try_clone().unwrap()).lines();
    let hello = lines.next().unwrap().unwrap();
    assert!(hello.contains("\"hello\""), "{hello}");
    let waiting = lines.next().unwrap().unwrap();
    assert!(waiting.contains("fresh MFA code"), "{waiting}");
    drop(lines);
    drop(stream);

    // The mint still completes (one more STS call), and serves the next caller from the cache.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sts.gst_calls() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the mint did not finish"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let served = credential_process(&env, "base");
    assert_eq!(sts.gst_calls(), 2, "served from the cache: {served}");
}

/// Single-flight, proved rather than timed: GetSessionToken is held at the fake until the
/// agent reports every request in flight, then one answer serves them all: 20 callers of the
/// source profile and 20 of a role on it, one GetSessionToken and one AssumeRole.
#[test]
fn parallel_callers_cause_one_sts_call() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let gate = Gate::default();
    sts.inject("GetSessionToken", [Fault::Hold(gate.clone())]);
    let env = setup(&sts);
    let children: Vec<_> = (0..40)
        .map(|i| {
            let profile = if i % 2 == 0 { "base" } else { "admin" };
            let mut cmd = env.cmd(["credential-process", "--profile", profile]);
            cmd.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            (profile, cmd.spawn().unwrap())
        })
        .collect();
    // The 40 callers, and the two mints (the source profile's, the role's) that wait on
    // the one MFA session.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let waiting = env.status()["waiting_for_sessions"].as_u64().unwrap();
        if waiting == 42 {
            break;
        }
        if std::time::Instant::now() > deadline {
            gate.open();
            let outputs: Vec<String> = children
                .into_iter()
                .take(3)
                .map(|(_, c)| {
                    String::from_utf8_lossy(&c.wait_with_output().unwrap().stderr).into_owned()
                })
                .collect();
            panic!("{waiting} of 42 in flight after 60 s; callers said: {outputs:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(sts.gst_calls(), 0, "GetSessionToken is still held");
    gate.open();
    let mut keys: HashMap<&str, Vec<String>> = HashMap::new();
    for (profile, child) in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let key = serde_json::from_slice::<Value>(&out.stdout).unwrap()["AccessKeyId"]
            .as_str()
            .unwrap()
            .to_owned();
        keys.entry(profile).or_default().push(key);
    }
    for (profile, keys) in &keys {
        assert!(
            keys.iter().all(|k| *k == keys[0]),
            "every {profile} caller got the same session: {keys:?}"
        );
    }
    assert_ne!(
        keys["base"][0], keys["admin"][0],
        "the role has its own session"
    );
    assert_eq!((sts.gst_calls(), sts.assume_role_count()), (1, 1));
    assert_eq!(env.status()["waiting_for_sessions"], 0);
}

/// Each failure reaches the client as one clear error naming the profile and the fix; the
/// daemon keeps serving.
#[test]
fn configuration_mistakes_are_explained() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = setup(&sts);
    let mut config = std::fs::read_to_string(env.path().join(".aws/config")).unwrap();
    let _ = write!(
        config,
        "\n[profile nomfa]\nregion = eu-west-1\n\n[profile noseed]\nmfa_serial = arn:aws:iam::123456789012:mfa/bob\naws_access_key_id = {}\naws_secret_access_key = x\n\n[profile nokeys]\nmfa_serial = {SERIAL}\n",
        fake_sts::ACCESS_KEY_ID
    );
    env.aws_config(&config);
    let fail = |profile: &str, needles: &[&str]| {
        env.run(["credential-process", "--profile", profile], "")
            .failure(needles);
    };
    fail("missing", &["no profile \"missing\"", "[profile missing]"]);
    fail(
        "nomfa",
        &[
            "profile \"nomfa\"",
            "mfa_serial = arn:aws:iam::ACCOUNT:mfa/NAME",
        ],
    );
    fail(
        "noseed",
        &[
            "arn:aws:iam::123456789012:mfa/bob needs a code typed by you",
            "no terminal or pinentry to ask with",
            "run the command in a terminal",
            "seed add NAME --serial",
        ],
    );
    fail(
        "nokeys",
        &[
            "no long-term keys for profile \"nokeys\"",
            "mfa-agent creds add nokeys",
        ],
    );
    assert_eq!(sts.gst_calls(), 0, "nothing reached STS");
    let status = env.status();
    assert!(
        status["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("nokeys"),
        "{status}"
    );
    credential_process(&env, "base");
}

#[test]
fn sts_failures_are_explained_and_not_cached() {
    // Every failed call burns its code; a short period keeps the waits for fresh ones short.
    let sts = FakeSts::start(SHORT_SEED, 3);
    let env = setup_with(&sts, SHORT_SEED, 3, "sts_timeout_seconds = 2\n");
    let fail = |needles: &[&str]| {
        env.run(["credential-process", "--profile", "base"], "")
            .failure(needles);
    };
    sts.inject("GetSessionToken", [Fault::Status(503)]);
    fail(&["profile \"base\"", "STS is unavailable (HTTP 503)", "retry"]);
    sts.inject("GetSessionToken", [Fault::Throttle]);
    fail(&["throttling", "wait a minute"]);
    sts.inject("GetSessionToken", [Fault::Delay(Duration::from_secs(4))]);
    fail(&["did not answer within 2 s"]);
    sts.inject("GetSessionToken", [Fault::Drop]);
    fail(&["profile \"base\""]);
    // Nothing failed was cached: the next call mints and works.
    credential_process(&env, "base");
}

#[test]
fn a_wrong_seed_is_rejected_by_sts_with_advice() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = setup_with(&sts, SHORT_SEED, 30, "");
    env.run(["credential-process", "--profile", "base"], "")
        .failure(&[
            "AWS rejected two MFA codes in a row",
            "MultiFactorAuthentication failed",
            "seed does not belong to this MFA device",
            "mfa-agent doctor",
        ]);
    // One rejection, then one try with the next window's code, and no more.
    assert_eq!(sts.gst_calls(), 2);
}

#[test]
fn garbage_and_huge_requests_do_not_hurt_the_daemon() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = setup(&sts);
    let talk = |lines: &[u8]| -> Vec<String> {
        let mut stream = UnixStream::connect(env.socket()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let _ = stream.write_all(lines);
        let _ = stream.shutdown(std::net::Shutdown::Write);
        BufReader::new(stream)
            .lines()
            .map_while(Result::ok)
            .collect()
    };
    let replies = talk(&common::after_hello(
        "this is not json\n{\"type\":\"launch\"}\n{\"type\":\"status\"}\n",
    ));
    assert_eq!(replies.len(), 4, "{replies:?}");
    assert!(
        replies[1].contains("malformed request") && replies[2].contains("malformed request"),
        "{replies:?}"
    );
    assert!(
        replies[3].contains("\"type\":\"status\""),
        "the connection goes on: {replies:?}"
    );

    let replies = talk(b"{\"type\":\"status\"}\n");
    assert!(
        replies[0].contains("first request must be hello"),
        "{replies:?}"
    );
    let replies = talk(b"{\"type\":\"hello\",\"version\":999}\n");
    assert!(
        replies[0].contains("protocol 999") && replies[0].contains("restart"),
        "{replies:?}"
    );

    let mut huge = common::after_hello("");
    huge.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    huge.push(b'\n');
    let replies = talk(&huge);
    assert!(
        replies.last().unwrap().contains("longer than 65536 bytes"),
        "{replies:?}"
    );

    credential_process(&env, "base");
}

#[test]
fn a_socket_owned_by_someone_else_is_refused() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = setup(&sts);
    assert_eq!(
        mfa_agent::sys::current_uid(),
        0,
        "only root can hand a file to another user: run this test as root (CI does)"
    );
    std::os::unix::fs::lchown(env.socket(), Some(65534), None).unwrap();
    env.run(["credential-process", "--profile", "base"], "")
        .failure(&["belongs to uid 65534", "refusing"]);
    std::os::unix::fs::lchown(env.socket(), Some(0), None).unwrap();
    credential_process(&env, "base");
}

#[test]
fn clients_start_the_daemon_when_none_runs() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = setup(&sts);
    env.stop_daemon();
    assert!(!env.socket().exists(), "SIGTERM removes the socket");

    let mut no_autostart = env.cmd(["credential-process", "--profile", "base"]);
    no_autostart.env("MFA_AGENT_NO_AUTOSTART", "1");
    let out = common::Run(no_autostart.output().unwrap());
    out.failure(&["no mfa-agent daemon is running", "mfa-agent daemon"]);

    // With the systemd socket unit enabled, starting the daemon is systemd's job: a client
    // that finds no socket says how to start the unit instead of racing it.
    let wants = env.path().join(".config/systemd/user/sockets.target.wants");
    std::fs::create_dir_all(&wants).unwrap();
    let enabled = wants.join("mfa-agent.socket");
    std::os::unix::fs::symlink("/usr/lib/systemd/user/mfa-agent.socket", &enabled).unwrap();
    env.run(["credential-process", "--profile", "base"], "")
        .failure(&[
            "socket unit is enabled",
            "systemctl --user start mfa-agent.socket",
        ]);
    assert!(!env.socket().exists());
    std::fs::remove_file(&enabled).unwrap();

    credential_process(&env, "base");
    assert!(env.socket().exists(), "the client started a daemon");
    assert_eq!(sts.gst_calls(), 1);
}

#[test]
fn a_stale_socket_is_replaced() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = setup(&sts);
    env.stop_daemon();
    // A socket file left by a daemon that was killed.
    let stale = std::os::unix::net::UnixListener::bind(env.socket()).unwrap();
    drop(stale);
    env.start_daemon();
    credential_process(&env, "base");
}

#[test]
fn keys_can_live_in_the_vault_instead_of_plaintext_files() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = setup(&sts);
    // The source profile loses its plaintext keys; the vault holds them instead.
    env.aws_config(&format!("[profile vaulted]\nmfa_serial = {SERIAL}\n"));
    env.run(["credential-process", "--profile", "vaulted"], "")
        .failure(&["creds add vaulted"]);
    let keys = format!(
        "{} {}",
        fake_sts::ACCESS_KEY_ID,
        fake_sts::SECRET_ACCESS_KEY
    );
    env.run(["creds", "add", "vaulted", "--stdin"], &keys)
        .success();
    let listed = env.run(["creds", "list"], "").success();
    assert!(
        listed.contains("vaulted")
            && listed.contains("****0001")
            && !listed.contains(fake_sts::ACCESS_KEY_ID),
        "{listed}"
    );
    credential_process(&env, "vaulted");
    for (_, bytes) in env.all_file_contents() {
        assert!(
            !bytes
                .windows(20)
                .any(|w| w == &fake_sts::SECRET_ACCESS_KEY.as_bytes()[..20]),
            "secret key on disk"
        );
    }
}

#[test]
fn import_moves_keys_out_of_the_credentials_file() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = setup(&sts);
    env.aws_config(&format!(
        "[profile imported]\nmfa_serial = {SERIAL}\nregion = eu-west-1\n"
    ));
    // Kept in a dotfiles repository, linked into ~/.aws (whose mode is the user's business).
    let aws_dir = env.path().join(".aws");
    std::fs::set_permissions(&aws_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dotfiles = env.path().join("dotfiles");
    std::fs::create_dir(&dotfiles).unwrap();
    let real = dotfiles.join("aws-credentials");
    let credentials = aws_dir.join("credentials");
    std::os::unix::fs::symlink(&real, &credentials).unwrap();
    // A comment after a header and after a value, as the AWS CLI reads them: `[other]`'s
    // keys stay, and the comment is no part of the secret (the fake STS checks signatures).
    let other = "[other] # my other account\naws_access_key_id = AKIAOTHER0000000000\naws_secret_access_key = keepme\n";
    let original = format!(
        "# work keys\n[imported]\naws_access_key_id = {}\naws_secret_access_key = {} # since May\n\n{other}",
        fake_sts::ACCESS_KEY_ID,
        fake_sts::SECRET_ACCESS_KEY
    );
    std::fs::write(&credentials, &original).unwrap();
    env.run(["creds", "import", "imported"], "")
        .failure(&["pass --yes"]);
    assert_eq!(
        std::fs::read_to_string(&credentials).unwrap(),
        original,
        "nothing changed without consent"
    );

    env.run(["creds", "import", "imported", "--yes"], "")
        .success();
    let rewritten = std::fs::read_to_string(&credentials).unwrap();
    assert!(
        !rewritten.contains(fake_sts::SECRET_ACCESS_KEY),
        "{rewritten}"
    );
    assert_eq!(
        rewritten,
        format!("# work keys\n[imported]\n\n{other}"),
        "the rest is kept byte for byte"
    );
    // The link is kept and its target rewritten; no plaintext copy is left anywhere.
    assert!(
        std::fs::symlink_metadata(&credentials)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        !std::fs::read_to_string(&real)
            .unwrap()
            .contains(fake_sts::SECRET_ACCESS_KEY)
    );
    for (path, bytes) in env.all_file_contents() {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(fake_sts::SECRET_ACCESS_KEY)
                || path.ends_with("config"),
            "a plaintext copy of the secret key is left in {}",
            path.display()
        );
    }
    let mode = std::fs::metadata(&aws_dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755, "~/.aws is left as it was");
    credential_process(&env, "imported");
}

#[test]
fn systemd_socket_activation_hands_over_the_socket() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = setup(&sts);
    env.stop_daemon();
    let dir = env.socket().parent().unwrap().to_owned();
    std::fs::create_dir_all(&dir).unwrap();
    // systemd-socket-activate binds the socket and starts the daemon on the first
    // connection, passing the socket as fd 3 with LISTEN_FDS/LISTEN_PID, as systemd does.
    // Path and command come from the shipped units, so they are what a user installs.
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    let setting = |file: &str, key: &str| {
        let text = std::fs::read_to_string(units.join(file)).unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(key))
            .unwrap_or_else(|| panic!("{file} has no {key}"))
            .to_owned()
    };
    let listen = setting("mfa-agent.socket", "ListenStream=")
        .replace("%t", env.path().join("run").to_str().unwrap());
    assert_eq!(
        Path::new(&listen),
        env.socket(),
        "the unit's socket is the clients' socket"
    );
    let exec = setting("mfa-agent.service", "ExecStart=");
    let (program, args) = exec.split_once(' ').unwrap_or((exec.as_str(), ""));
    assert_eq!(program, "/usr/bin/mfa-agent-daemon");
    let mut activator = Command::new("systemd-socket-activate");
    activator.args(["-l", &listen]);
    let probe = env.cmd(["--version"]);
    for (key, value) in probe.get_envs() {
        if let Some(value) = value {
            activator.arg(format!(
                "--setenv={}={}",
                key.to_string_lossy(),
                value.to_string_lossy()
            ));
        }
    }
    activator.arg(env!("CARGO_BIN_EXE_mfa-agent-daemon"));
    activator.args(args.split_whitespace());
    activator
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut activator = activator
        .spawn()
        .expect("systemd-socket-activate runs (package systemd)");
    common::wait_for(&env.socket(), Duration::from_secs(10));

    let mut no_autostart = env.cmd(["credential-process", "--profile", "base"]);
    no_autostart.env("MFA_AGENT_NO_AUTOSTART", "1");
    let out = common::Run(no_autostart.output().unwrap());
    out.success();
    let status = env.status();
    assert_eq!(
        status["pid"].as_u64().unwrap(),
        u64::from(activator.id()),
        "the activated daemon answers"
    );
    env.stop_daemon();
    let _ = activator.kill();
    let _ = activator.wait();
    assert!(
        env.socket().exists(),
        "a socket systemd owns is left in place"
    );
}

#[test]
fn role_durations_follow_aws_limits_and_the_direct_mfa_option() {
    let sts = FakeSts::start(SHORT_SEED, 3);
    let env = setup_with(
        &sts,
        SHORT_SEED,
        3,
        "[profiles.direct]\nassume_role_with_mfa = true\n",
    );
    // A role made for 2-hour sessions (AWS's default is 1 h).
    sts.set_role_max_session("arn:aws:iam::210987654321:role/Admin", 7200);
    let mut config = std::fs::read_to_string(env.path().join(".aws/config")).unwrap();
    config.push_str("duration_seconds = 7200\n\n[profile direct]\nrole_arn = arn:aws:iam::210987654321:role/Admin\nsource_profile = base\nduration_seconds = 7200\n");
    env.aws_config(&config);
    let now = || {
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap()
    };
    let expires_in = |json: &Value| {
        let text = json["Expiration"].as_str().unwrap();
        aws_sdk_sts::primitives::DateTime::from_str(
            text,
            aws_sdk_sts::primitives::DateTimeFormat::DateTime,
        )
        .unwrap()
        .secs()
            - now()
    };

    // Chained from the MFA session, AWS allows at most 1 h: the agent asks for no more
    // (the strict fake rejects more, as AWS does).
    let chained = credential_process(&env, "admin");
    assert!((3500..=3600).contains(&expires_in(&chained)), "{chained}");
    // Assumed directly with the code, the profile's 2 h are granted, without GetSessionToken.
    let gst_before = sts.gst_calls();
    let direct = credential_process(&env, "direct");
    assert!((7100..=7200).contains(&expires_in(&direct)), "{direct}");
    assert_eq!(sts.gst_calls(), gst_before);
    assert_eq!(sts.assume_role_count(), 2);
}

#[test]
fn the_strict_sts_checks_the_signature_so_a_wrong_secret_key_fails() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = setup(&sts);
    // The right key id with a garbled secret: only a real signature check notices.
    env.aws_config(&format!(
        "[profile base]\nregion = eu-west-1\nmfa_serial = {SERIAL}\naws_access_key_id = {}\naws_secret_access_key = {}x\n",
        fake_sts::ACCESS_KEY_ID,
        fake_sts::SECRET_ACCESS_KEY
    ));
    env.run(["credential-process", "--profile", "base"], "")
        .failure(&["AWS denied the request", "signature"]);
    assert!(sts.issued().is_empty(), "nothing was issued");
}

#[test]
fn profile_settings_reach_sts_as_the_aws_cli_sends_them() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let mut env = TestEnv::with_keyring();
    // Only the STS-specific endpoint variable, as the SDKs honour it.
    env.set("AWS_ENDPOINT_URL_STS", &sts.url);
    env.add_seed("work", &["--serial", SERIAL]);
    env.aws_config(&format!(
        "[profile base]\nregion = eu-west-1\nmfa_serial = {SERIAL}\naws_access_key_id = {}\naws_secret_access_key = {}\nduration_seconds = 1800\n\n\
         [profile admin]\nregion = eu-west-1\nrole_arn = {ROLE}\nsource_profile = base\nexternal_id = partner-7\nrole_session_name = alice-laptop\nduration_seconds = 900\n",
        fake_sts::ACCESS_KEY_ID,
        fake_sts::SECRET_ACCESS_KEY
    ));
    let role = credential_process(&env, "admin");
    assert_eq!(issued_as_json(&sts, 1), triple(&role));
    let requests = sts.requests();
    let sent = |action: &str, key: &str| {
        requests
            .iter()
            .find(|r| r.get("Action").map(String::as_str) == Some(action))
            .and_then(|r| r.get(key).cloned())
    };
    assert_eq!(
        sent("GetSessionToken", "DurationSeconds").as_deref(),
        Some("1800")
    );
    assert_eq!(
        sent("GetSessionToken", "SerialNumber").as_deref(),
        Some(SERIAL)
    );
    assert_eq!(sent("AssumeRole", "RoleArn").as_deref(), Some(ROLE));
    assert_eq!(
        sent("AssumeRole", "ExternalId").as_deref(),
        Some("partner-7")
    );
    assert_eq!(
        sent("AssumeRole", "RoleSessionName").as_deref(),
        Some("alice-laptop")
    );
    assert_eq!(
        sent("AssumeRole", "DurationSeconds").as_deref(),
        Some("900")
    );
}

/// `status` lists each session once (a source profile's session is also the MFA session of
/// its roles), in local time with the time left; its last error lasts until a mint works
/// or `lock`, and `lock` counts the sessions it dropped as `status` listed them.
#[test]
fn status_shows_each_session_once_and_forgets_an_error_after_a_success() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = setup(&sts);
    credential_process(&env, "base");
    credential_process(&env, "admin");
    let status = env.status();
    let names: Vec<&str> = status["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"]["profile"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "base"], "{status}");
    let text = env.run(["status"], "").success();
    let line = text
        .lines()
        .find(|l| l.starts_with("session base: "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains(" h ") && line.ends_with(" min left)"),
        "{line}"
    );

    env.run(["credential-process", "--profile", "missing"], "")
        .failure(&["no profile \"missing\""]);
    let text = env.run(["status"], "").success();
    assert!(text.contains("last error at"), "{text}");
    // The profile is named once, not "profile "missing": no profile "missing"".
    assert!(!text.contains("\"missing\": no profile"), "{text}");
    env.run(["credential-process", "--profile", "base", "--refresh"], "")
        .success();
    let text = env.run(["status"], "").success();
    assert!(!text.contains("last error"), "a success clears it: {text}");

    let locked = env.run(["lock"], "");
    locked.success();
    assert!(
        locked.stderr().contains("dropped 2 cached session(s)"),
        "{}",
        locked.stderr()
    );
}

/// A mistake in config.toml must not cut clients off from sessions the agent holds: the
/// client says what is wrong (file, line, key) and still gets its cached credentials.
#[test]
fn a_broken_config_keeps_cached_sessions_reachable() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = setup(&sts);
    let first = credential_process(&env, "base");
    std::fs::create_dir_all(env.path().join(".config/mfa-agent")).unwrap();
    std::fs::write(
        env.path().join(".config/mfa-agent/config.toml"),
        "autostart = true\ntouch = \"sometimes\"\n",
    )
    .unwrap();
    let out = env.run(["credential-process", "--profile", "base"], "");
    let json: Value = serde_json::from_str(&out.success()).unwrap();
    assert_eq!(json["AccessKeyId"], first["AccessKeyId"]);
    assert!(
        out.stderr().contains("config.toml line 2") && out.stderr().contains("touch"),
        "{}",
        out.stderr()
    );
    assert_eq!(sts.gst_calls(), 1);
}

/// A chain of roles (a hub role that assumes a role in each account): one MFA session at
/// the root, then AssumeRole hop by hop, each signed by the one before and cached as its
/// own profile's session; a chain that loops is a clear error.
#[test]
fn a_chain_of_roles_is_assumed_hop_by_hop_from_one_mfa_session() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = setup(&sts);
    let mut config = std::fs::read_to_string(env.path().join(".aws/config")).unwrap();
    config.push_str(
        "\n[profile hub]\nrole_arn = arn:aws:iam::111111111111:role/Hub\nsource_profile = base\n\n\
         [profile prod]\nrole_arn = arn:aws:iam::222222222222:role/Deploy\nsource_profile = hub\nregion = us-west-2\n\n\
         [profile ring-a]\nrole_arn = arn:aws:iam::222222222222:role/A\nsource_profile = ring-b\n\n\
         [profile ring-b]\nrole_arn = arn:aws:iam::222222222222:role/B\nsource_profile = ring-a\n",
    );
    env.aws_config(&config);

    let prod = credential_process(&env, "prod");
    let issued = sts.issued();
    assert_eq!((sts.gst_calls(), sts.assume_role_count()), (1, 2));
    assert_eq!(
        prod["AccessKeyId"],
        issued[2].0.as_str(),
        "the last hop's session"
    );
    let calls: Vec<(String, String, String)> = sts
        .requests()
        .iter()
        .map(|r| {
            let get = |k: &str| r.get(k).cloned().unwrap_or_default();
            (get("Action"), get("RoleArn"), get("SignedBy"))
        })
        .collect();
    assert_eq!(
        calls,
        [
            (
                "GetSessionToken".into(),
                String::new(),
                fake_sts::ACCESS_KEY_ID.into()
            ),
            (
                "AssumeRole".into(),
                "arn:aws:iam::111111111111:role/Hub".into(),
                issued[0].0.clone()
            ),
            (
                "AssumeRole".into(),
                "arn:aws:iam::222222222222:role/Deploy".into(),
                issued[1].0.clone()
            ),
        ],
        "each hop signed by the session before it"
    );

    // The hub hop was cached as hub's own session: no new call for it.
    let hub = credential_process(&env, "hub");
    assert_eq!(hub["AccessKeyId"], issued[1].0.as_str());
    assert_eq!(sts.assume_role_count(), 2);

    env.run(["credential-process", "--profile", "ring-a"], "")
        .failure(&["source_profile loop"]);
}

/// `exec` of a command that is not there: the shells' 127, with its name, both ways.
#[test]
fn exec_of_a_missing_command_exits_127_naming_it() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = setup(&sts);
    for server in [false, true] {
        let mut args = vec!["exec"];
        if server {
            args.push("--server");
        }
        args.extend(["base", "--", "no-such-command-here"]);
        let out = env.run(args, "");
        assert_eq!(out.0.status.code(), Some(127), "server={server}");
        out.failure(&["cannot run \"no-such-command-here\"", "no such command"]);
    }
}

/// Who asked: each credentials request is in the audit log with the program behind it (the
/// AWS CLI, found past the mfa-agent client it ran; a Python program), never a secret;
/// `mfa-agent log` shows it.
#[test]
fn the_audit_log_names_the_program_that_asked() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = setup(&sts);
    let bin = env!("CARGO_BIN_EXE_mfa-agent");
    let mut config = std::fs::read_to_string(env.path().join(".aws/config")).unwrap();
    let _ = write!(
        config,
        "\n[profile cli-base]\nregion = us-east-1\ncredential_process = {bin} credential-process --profile base\n"
    );
    env.aws_config(&config);
    let probe = env.cmd(["--version"]);
    let with_env = |cmd: &mut std::process::Command| {
        cmd.env_clear()
            .envs(probe.get_envs().filter_map(|(k, v)| Some((k, v?))));
    };
    let mut aws = std::process::Command::new("/usr/bin/aws");
    aws.args(["sts", "get-caller-identity", "--profile", "cli-base"])
        .args(["--endpoint-url", &sts.url]);
    with_env(&mut aws);
    let out = aws.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut python = std::process::Command::new("python3");
    python.args([
        "-c",
        &format!("import subprocess; subprocess.run([{bin:?}, 'credential-process', '--profile', 'base'], check=True, stdout=subprocess.DEVNULL)"),
    ]);
    with_env(&mut python);
    assert!(python.status().unwrap().success());

    // The agent writes its entries within a second (gathered, not one write per hit). The
    // set-up's `seed add` has one too: every operation is logged.
    let all = common::audit_log_once(&env, |all| all.len() >= 3);
    let logged = format!("{all:#?}");
    assert_eq!(all[0]["operation"], "seed add", "{logged}");
    assert_eq!(all[0]["profile"], "work", "{logged}");
    let entries: Vec<&Value> = all
        .iter()
        .filter(|e| e["operation"] == "credentials")
        .collect();
    assert_eq!(entries.len(), 2, "{logged}");
    assert_eq!(entries[0]["program"], "aws", "{logged}");
    assert_eq!(entries[0]["outcome"], "issued", "{logged}");
    assert!(
        entries[1]["program"]
            .as_str()
            .unwrap()
            .starts_with("python3"),
        "{logged}"
    );
    assert_eq!(entries[1]["outcome"], "hit", "{logged}");
    assert!(
        entries
            .iter()
            .all(|e| e["profile"] == "base" && e["pid"].as_u64().unwrap() > 1)
    );
    for (_, secret, token) in sts.issued() {
        assert!(!logged.contains(&secret) && !logged.contains(&token));
    }
    let human = env.run(["log"], "").success();
    assert!(
        human.contains("issued  credentials base  aws (pid "),
        "{human}"
    );
}

/// An audit log that cannot be written costs a warning in the agent's log, never a mint.
#[test]
fn an_unwritable_audit_log_does_not_stop_minting() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = setup(&sts);
    // A directory where the log file should be (the set-up's `seed add` wrote one: the
    // next agent finds the directory instead): every append fails.
    env.stop_daemon();
    let log = env.path().join(".local/state/mfa-agent/audit.log");
    let _ = std::fs::remove_file(&log);
    std::fs::create_dir_all(&log).unwrap();
    credential_process(&env, "base");
    credential_process(&env, "base");
    credential_process(&env, "admin");
    assert_eq!(sts.gst_calls(), 1);
}

/// `mfa-agent stop` ends the agent (what the README says to do after a configuration
/// change); `status` then says the next command starts one, and it does.
#[test]
fn stop_ends_the_agent_and_the_next_command_starts_a_new_one() {
    let env = TestEnv::with_keyring();
    env.add_seed("work", &["--serial", SERIAL]);
    let first = env.status()["pid"].as_i64().unwrap();
    let stopped = env.run(["stop"], "");
    stopped.success();
    assert!(
        stopped
            .stderr()
            .contains(&format!("stopped the agent (pid {first})")),
        "{}",
        stopped.stderr()
    );
    assert!(common::has_exited(i32::try_from(first).unwrap()));
    let again = env.run(["stop"], "");
    again.success();
    assert!(
        again.stderr().contains("no agent is running"),
        "{}",
        again.stderr()
    );
    env.run(["status"], "").failure(&[
        "no agent is running",
        "the next mfa-agent command that needs one starts it",
    ]);
    env.run(["seed", "list"], "").success();
    assert_ne!(env.status()["pid"].as_i64().unwrap(), first);
}

/// `exec` of a role, whose chained session lasts an hour, warns that the command may
/// outlive it, once per session rather than at every command.
#[test]
fn exec_warns_of_a_short_session_once() {
    let sts = FakeSts::start(AWS_SEED, 30);
    // Half an hour: short enough to warn of, long enough to stay cached.
    sts.issue_sessions_lasting(1800);
    let env = setup(&sts);
    let first = env.run(["exec", "admin", "--", "true"], "");
    first.success();
    assert!(
        first.stderr().contains("these credentials expire in"),
        "{}",
        first.stderr()
    );
    let again = env.run(["exec", "admin", "--", "true"], "");
    again.success();
    assert!(
        !again.stderr().contains("expire in"),
        "said again for the same session: {}",
        again.stderr()
    );
    assert_eq!(sts.assume_role_count(), 1, "the same session");
}

/// A profile whose credential_process runs mfa-agent for another (the README's
/// `[profile prod]`) shares that profile's session: one AssumeRole for both names.
#[test]
fn a_profile_standing_for_another_shares_its_session() {
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = setup(&sts);
    let config = std::fs::read_to_string(env.path().join(".aws/config")).unwrap();
    env.aws_config(&format!(
        "{config}\n[profile admin-cli]\ncredential_process = mfa-agent credential-process --profile admin\n"
    ));
    let through_alias = credential_process(&env, "admin-cli");
    let direct = credential_process(&env, "admin");
    assert_eq!(through_alias["AccessKeyId"], direct["AccessKeyId"]);
    env.run(["exec", "admin-cli", "--", "true"], "").success();
    assert_eq!(
        sts.assume_role_count(),
        1,
        "one role session for both names"
    );
}
