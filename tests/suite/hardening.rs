//! What the agent does not let happen: it deletes only its own socket, never reads the
//! terminal of the client that started it, and survives requests built to exhaust it.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;

use common::{SERIAL, TestEnv};

#[test]
fn a_socket_path_naming_a_file_leaves_the_file_alone() {
    let mut env = TestEnv::new();
    let precious = env.path().join("notes.txt");
    std::fs::write(&precious, "my notes").unwrap();
    env.set("MFA_AGENT_SOCKET", precious.to_str().unwrap());
    env.run(["daemon"], "").failure(&[
        "is not a socket",
        "refusing to replace it",
        "MFA_AGENT_SOCKET",
    ]);
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "my notes");
}

/// Fields 6 (session id) and 7 (controlling terminal) of /proc/PID/stat.
fn session_and_tty(pid: u64) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    (fields[3].parse().unwrap(), fields[4].parse().unwrap())
}

#[test]
fn an_autostarted_agent_has_no_terminal_of_its_own() {
    let env = TestEnv::with_keyring();
    // The first command runs on a real terminal (a pty from `script`) and starts the agent.
    let started = Command::new("script")
        .args(["-qec", "\"$MFA_AGENT_BIN\" seed list", "/dev/null"])
        .env_clear()
        .envs(
            env.cmd(["status"])
                .get_envs()
                .filter_map(|(k, v)| Some((k, v?))),
        )
        .env("MFA_AGENT_BIN", env!("CARGO_BIN_EXE_mfa-agent"))
        .output()
        .expect("script runs (util-linux)");
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stdout)
    );
    let status = env.status();
    let pid = status["pid"].as_u64().unwrap();
    let (session, tty) = session_and_tty(pid);
    assert_eq!(session, pid, "the agent leads a session of its own");
    assert_eq!(tty, 0, "and has no controlling terminal to be stopped on");
}

#[test]
fn huge_or_bogus_profile_names_are_refused_and_the_agent_stays_small() {
    let env = TestEnv::with_keyring();
    env.add_seed("work", &["--serial", SERIAL]);
    let mut stream = UnixStream::connect(env.socket()).unwrap();
    stream.write_all(&common::after_hello("")).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let long = "x".repeat(60_000);
    // 256 characters is the limit: one more is refused before it takes a cache slot.
    let just_over = "y".repeat(257);
    for name in [long.as_str(), just_over.as_str(), "bad\nname", ""] {
        let request = serde_json::json!({"type": "credentials", "profile": name});
        stream.write_all(format!("{request}\n").as_bytes()).unwrap();
        line.clear();
        reader.read_line(&mut line).unwrap();
        assert!(
            line.contains("is not an AWS profile name") && line.len() < 300,
            "{line}"
        );
    }
    // 256 is a name like any other: looked up, and not found.
    let request = serde_json::json!({"type": "credentials", "profile": "y".repeat(256)});
    stream.write_all(format!("{request}\n").as_bytes()).unwrap();
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert!(
        line.contains("no profile") && !line.contains("is not an AWS profile name"),
        "{line}"
    );
    // Still serving, with a clear answer for a real request.
    env.run(["status"], "").success();
}

#[test]
fn subscribers_are_capped_and_status_still_answers() {
    let env = TestEnv::with_keyring();
    env.add_seed("work", &["--serial", SERIAL]);
    let subscribe = || {
        let mut stream = UnixStream::connect(env.socket()).unwrap();
        stream
            .write_all(&common::after_hello("{\"type\":\"subscribe\"}\n"))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let (mut hello, mut first) = (String::new(), String::new());
        reader.read_line(&mut hello).unwrap();
        reader.read_line(&mut first).unwrap();
        (stream, first)
    };
    let held: Vec<_> = (0..64).map(|_| subscribe()).collect();
    assert!(
        held.iter()
            .all(|(_, first)| first.contains("\"type\":\"status\""))
    );
    let (_, refused) = subscribe();
    assert!(refused.contains("too many subscribers"), "{refused}");
    env.run(["status"], "").success();
    drop(held);
    // Once they leave, subscribing works again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, first) = subscribe();
        if first.contains("\"type\":\"status\"") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{first}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_tmp_fallback_another_user_created_is_refused() {
    assert_eq!(
        mfa_agent::sys::current_uid(),
        0,
        "this test creates a directory owned by another user, which needs root (CI runs as root)"
    );
    let mut env = TestEnv::new();
    env.unset("XDG_RUNTIME_DIR");
    let tmp = env.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    env.set("TMPDIR", tmp.to_str().unwrap());
    // Another user (nobody) got there first and left the directory open to all.
    let squatted = tmp.join("mfa-agent-0");
    std::fs::create_dir(&squatted).unwrap();
    std::os::unix::fs::chown(&squatted, Some(65_534), Some(65_534)).unwrap();
    std::fs::set_permissions(
        &squatted,
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    env.run(["daemon"], "")
        .failure(&["is not a directory of yours", "XDG_RUNTIME_DIR"]);
    assert!(
        !squatted.join("mfa-agent").exists(),
        "nothing was created in it"
    );
}

#[test]
fn another_user_is_refused_even_with_the_socket_opened_to_all() {
    use std::os::unix::process::CommandExt;
    assert_eq!(
        mfa_agent::sys::current_uid(),
        0,
        "this test connects as another user (nobody), which needs root (CI runs as root)"
    );
    let env = TestEnv::with_keyring();
    env.add_seed("work", &["--serial", SERIAL]);
    // Someone opened every permission on the way to the socket.
    let socket = env.socket();
    let mode = |path: &std::path::Path, mode| {
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
    };
    for dir in socket
        .ancestors()
        .skip(1)
        .take_while(|d| d.starts_with(env.path()))
    {
        mode(dir, 0o755);
    }
    mode(&socket, 0o666);
    let script = "import socket, sys\n\
        s = socket.socket(socket.AF_UNIX)\n\
        s.connect(sys.argv[1])\n\
        print(s.makefile().readline(), end='')\n";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&socket)
        .uid(65_534)
        .gid(65_534)
        .output()
        .expect("python3 runs");
    let reply = String::from_utf8_lossy(&out.stdout);
    assert!(
        reply.contains("refused: this agent serves only uid 0"),
        "the agent's own check refuses another uid: {reply} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        reply.lines().count(),
        1,
        "the refusal, and nothing more: {reply}"
    );
}

#[test]
fn the_agent_keeps_its_files_private() {
    use std::os::unix::fs::PermissionsExt;
    // Started by a client, as on a machine without the systemd units; then a mint (the
    // replay guard and the audit log) and a second seed (the index's backup copy).
    let sts = common::fake_sts::FakeSts::start(common::AWS_SEED, 30);
    let env = common::minting::setup(&sts);
    env.run(["credential-process", "--profile", "base"], "")
        .success();
    env.add_seed("second", &[]);
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode(env.socket().parent().unwrap()),
        0o700,
        "the socket's directory"
    );
    assert_eq!(mode(&env.socket()), 0o600, "the socket");
    assert_eq!(mode(&env.data_dir()), 0o700, "the vault's directory");
    assert_eq!(mode(&env.data_dir().join("seeds.json")), 0o600, "the index");
    let state = env.path().join(".local/state/mfa-agent");
    assert_eq!(mode(&state), 0o700, "the state directory");
    assert_eq!(mode(&state.join("daemon.log")), 0o600, "the agent's log");
    assert_eq!(mode(&state.join("replay.json")), 0o600, "the replay guard");
    assert_eq!(
        mode(&env.data_dir().join("seeds.json.bak")),
        0o600,
        "the index's backup"
    );
    // The audit log is written within a second of the request.
    common::wait_for(&state.join("audit.log"), std::time::Duration::from_secs(10));
    assert_eq!(mode(&state.join("audit.log")), 0o600, "the audit log");
}

#[test]
fn the_agents_log_is_rotated_instead_of_growing_for_ever() {
    let env = TestEnv::with_keyring();
    let state = env.path().join(".local/state/mfa-agent");
    std::fs::create_dir_all(&state).unwrap();
    let old = "an old line\n".repeat(100_000);
    std::fs::write(state.join("daemon.log"), &old).unwrap();
    // The next autostart rotates it.
    env.add_seed("work", &["--serial", SERIAL]);
    assert_eq!(
        std::fs::read_to_string(state.join("daemon.log.1")).unwrap(),
        old
    );
    assert!(std::fs::metadata(state.join("daemon.log")).unwrap().len() < 100_000);
}

#[test]
fn the_agent_cannot_be_dumped_or_read_by_another_process_of_its_user() {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::process::CommandExt;
    assert_eq!(
        mfa_agent::sys::current_uid(),
        0,
        "this test runs the agent as another user (nobody), which needs root (CI runs as root)"
    );
    // The agent as an ordinary user, in a home of its own.
    let home = tempfile::tempdir().unwrap();
    let run = home.path().join("run");
    std::fs::create_dir(&run).unwrap();
    // A copy of the daemon nobody can run: the build directory may sit in a home nobody
    // cannot enter (/root is 0700).
    let daemon = home.path().join("mfa-agent-daemon");
    std::fs::copy(env!("CARGO_BIN_EXE_mfa-agent-daemon"), &daemon).unwrap();
    for dir in [home.path(), run.as_path()] {
        std::os::unix::fs::chown(dir, Some(65_534), Some(65_534)).unwrap();
    }
    let mut agent = common::spawn_written_program(
        Command::new(&daemon)
            .env_clear()
            .env("HOME", home.path())
            .env("XDG_RUNTIME_DIR", &run)
            .uid(65_534)
            .gid(65_534)
            .stderr(std::process::Stdio::null()),
    );
    common::wait_for_agent(
        &run.join("mfa-agent/agent.sock"),
        std::time::Duration::from_secs(30),
    );
    let proc = format!("/proc/{}", agent.id());
    // The kernel hands /proc/PID of a non-dumpable process to root: no other process of the
    // user can read its memory or environment, or ptrace it.
    let owner = std::fs::metadata(format!("{proc}/environ")).unwrap().uid();
    let limits = std::fs::read_to_string(format!("{proc}/limits")).unwrap();
    let _ = agent.kill();
    let _ = agent.wait();
    assert_eq!(
        owner, 0,
        "/proc/PID/environ belongs to root: the agent is non-dumpable"
    );
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert!(
        core.split_whitespace().nth(4) == Some("0"),
        "no core dumps: {core}"
    );
}

/// A deleted socket must not leave an agent that holds the lock and serves nothing: it
/// exits, and the next client starts a fresh one. A second daemon names the first's pid.
#[test]
fn a_deleted_socket_does_not_wedge_the_agent() {
    let env = TestEnv::with_keyring();
    env.run(["seed", "list"], "").success();
    let agent_pid = |env: &TestEnv| -> u64 {
        let status = env.status();
        status["pid"].as_u64().unwrap()
    };
    let first = agent_pid(&env);
    env.run(["daemon"], "").failure(&[
        &format!("another mfa-agent daemon (pid {first}) holds"),
        &format!("kill {first}"),
    ]);

    std::fs::remove_file(env.socket()).unwrap();
    // A command at once: the new agent it starts waits for the old one to let go.
    env.run(["seed", "list"], "").success();
    assert_ne!(agent_pid(&env), first);
    let gone = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        common::has_exited(i32::try_from(first).unwrap())
    });
    assert!(gone, "the agent whose socket was deleted exits within 10 s");
    // The next command starts a new agent, which serves.
    env.run(["seed", "list"], "").success();
    assert_ne!(agent_pid(&env), first);
}
