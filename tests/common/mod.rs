//! Shared harness for black-box tests of the real `mfa-agent` binary.
//!
//! Each [`TestEnv`] is a private HOME: the binary sees only its XDG directories, so tests
//! never touch the user's own files. Tests that need the Secret Service call
//! [`TestEnv::with_keyring`], which fails loudly when no private keyring is running
//! (start the suite with `tests/run`, which provides one on a private D-Bus session).
#![allow(dead_code)]

pub mod dbus;
pub mod deadline;
pub mod fake_sts;
pub mod minting;
pub mod moto;
pub mod proxy;
pub mod terminal;
pub mod tls;

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A 320-bit seed in the form AWS hands out (64 base32 characters).
pub const AWS_SEED: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

pub struct TestEnv {
    pub home: TempDir,
    envs: Vec<(String, String)>,
    daemon: Mutex<Option<Child>>,
    /// The test's time limit, kept while the environment lives.
    _deadline: deadline::Deadline,
}

pub const SERIAL: &str = "arn:aws:iam::123456789012:mfa/alice";

impl TestEnv {
    /// A private HOME for tests that do not touch any keyring.
    pub fn new() -> Self {
        let home = tempfile::Builder::new()
            .prefix("mfa-agent-test")
            .tempdir()
            .unwrap();
        let runtime = home.path().join("run");
        std::fs::create_dir(&runtime).unwrap();
        let mut env = Self {
            home,
            envs: Vec::new(),
            daemon: Mutex::new(None),
            _deadline: deadline::Deadline::arm(),
        };
        // A private runtime dir: every test gets its own agent socket.
        env.set("XDG_RUNTIME_DIR", runtime.to_str().unwrap());
        env
    }

    /// A private HOME whose keyring is the private Secret Service started by `tests/run`.
    pub fn with_keyring() -> Self {
        let bus = std::env::var("DBUS_SESSION_BUS_ADDRESS").unwrap_or_default();
        assert!(
            !bus.is_empty() && std::env::var_os("MFA_AGENT_TEST_KEYRING").is_some(),
            "this test needs the private Secret Service that `tests/run` starts (gnome-keyring on a private D-Bus session); run the suite with `tests/run`, not plain `cargo test`"
        );
        Self::new()
    }

    /// A private HOME using the encrypted-file store with `passphrase`.
    pub fn with_file_store(passphrase: &str) -> Self {
        let mut env = Self::new();
        let file = env.home.path().join("passphrase");
        std::fs::write(&file, passphrase).unwrap();
        env.set("MFA_AGENT_STORE", "file");
        env.set("MFA_AGENT_PASSPHRASE_FILE", file.to_str().unwrap());
        env
    }

    pub fn set(&mut self, key: &str, value: &str) {
        self.envs.retain(|(k, _)| k != key);
        self.envs.push((key.into(), value.into()));
    }

    pub fn unset(&mut self, key: &str) {
        self.envs.retain(|(k, _)| k != key);
    }

    pub fn path(&self) -> &Path {
        self.home.path()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.path().join(".local/share/mfa-agent")
    }

    /// The binary with a clean environment: PATH, the D-Bus address, and this HOME.
    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mfa-agent"));
        cmd.args(args)
            .env_clear()
            .env("HOME", self.path())
            .env("LANG", "C.UTF-8");
        for key in ["PATH", "DBUS_SESSION_BUS_ADDRESS"] {
            if let Some(value) = std::env::var_os(key) {
                cmd.env(key, value);
            }
        }
        cmd.envs(self.envs.iter().map(|(k, v)| (k, v)));
        // No controlling terminal: prompts must fail cleanly, never hang a test.
        cmd.stdin(Stdio::null());
        detach_from_terminal(&mut cmd);
        cmd
    }

    /// Runs the binary with `stdin` as its standard input.
    pub fn run<I, S>(&self, args: I, stdin: &str) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.cmd(args);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the mfa-agent binary runs");
        let mut pipe = child.stdin.take().unwrap();
        // The child may exit before reading (e.g. a usage error): ignore a broken pipe.
        let _ = pipe.write_all(stdin.as_bytes());
        drop(pipe);
        Run(child.wait_with_output().unwrap())
    }

    /// Adds the AWS-style test seed under `name`, failing the test if that does not work.
    pub fn add_seed(&self, name: &str, extra: &[&str]) {
        let mut args = vec!["seed", "add", name, "--secret", "-"];
        args.extend_from_slice(extra);
        self.run(args, AWS_SEED).success();
    }

    /// `mfa-agent status --json`, which must succeed.
    pub fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.run(["status", "--json"], "").success()).unwrap()
    }

    /// The agent's socket in this HOME.
    pub fn socket(&self) -> PathBuf {
        self.path().join("run/mfa-agent/agent.sock")
    }

    /// Writes `~/.aws/config`.
    pub fn aws_config(&self, text: &str) {
        let dir = self.path().join(".aws");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config"), text).unwrap();
    }

    /// Starts `mfa-agent daemon` in the background and waits for its socket. A daemon that
    /// an earlier command of the test autostarted (`seed add` goes through the agent) is
    /// stopped first, so the one under test sees the environment set since.
    pub fn start_daemon(&self) {
        self.stop_daemon();
        let mut cmd = self.cmd(["daemon"]);
        cmd.stdout(Stdio::null()).stderr(Stdio::inherit());
        let child = cmd.spawn().expect("the daemon starts");
        *self.daemon.lock().unwrap() = Some(child);
        // Bounded for a software-emulated VM sharing two cores with another: ready is when
        // the socket accepts, which on a normal machine takes milliseconds.
        wait_for_agent(&self.socket(), Duration::from_secs(60));
    }

    /// Stops the daemon: the one `start_daemon` started, and one a client autostarted.
    pub fn stop_daemon(&self) {
        if self.socket().exists()
            && let Ok(status) = serde_json::from_str::<serde_json::Value>(
                &self.run(["status", "--json"], "").stdout(),
            )
            && let Some(pid) = status["pid"].as_i64()
        {
            let pid = i32::try_from(pid).unwrap();
            terminate(pid);
            wait_until_gone(pid);
        }
        if let Some(mut child) = self.daemon.lock().unwrap().take() {
            terminate(i32::try_from(child.id()).unwrap());
            let _ = child.wait();
        }
    }

    /// Every byte of every file under this HOME, for "is the secret on disk?" checks.
    pub fn all_file_contents(&self) -> Vec<(PathBuf, Vec<u8>)> {
        fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if let Ok(bytes) = std::fs::read(&path) {
                    out.push((path, bytes));
                }
            }
        }
        let mut out = Vec::new();
        walk(self.path(), &mut out);
        out
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        self.stop_daemon();
    }
}

/// The agent's audit log (`mfa-agent log --json`) once `written` holds for its entries: the
/// agent writes entries within a second of their request; 5 s at most.
pub fn audit_log_once(
    env: &TestEnv,
    written: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let mut entries = Vec::new();
    for _ in 0..50 {
        entries = env
            .run(["log", "--json"], "")
            .success()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if written(&entries) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    entries
}

/// A hand-written client's first line: a hello of this build's protocol version, followed
/// by `lines` (each ending in a newline), as bytes to write to the agent's socket.
pub fn after_hello(lines: &str) -> Vec<u8> {
    format!(
        "{{\"type\":\"hello\",\"version\":{}}}\n{lines}",
        mfa_agent::protocol::PROTOCOL_VERSION
    )
    .into_bytes()
}

/// Waits (bounded by `limit`) until `probe` gives a value, and returns it; `what` names the
/// wait in the failure.
pub fn wait_until<T>(what: &str, limit: Duration, probe: impl FnMut() -> Option<T>) -> T {
    within(limit, probe).unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

/// Asks `probe` until it gives a value, for at most `limit`; `None` when it never did (for a
/// caller whose failure should say what it saw last).
pub fn within<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (bounded) until `path` exists.
pub fn wait_for(path: &Path, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} did not appear within {limit:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts `command`, whose program this test has just written or copied. Another test
/// thread that forks in the moment the file is open for writing gives its child a copy of
/// that descriptor until the child execs, and exec of a file open for writing fails with
/// ETXTBSY ("text file busy"): a race of any multithreaded program (rust-lang/rust#114554),
/// waited out here, bounded.
pub fn spawn_written_program(command: &mut std::process::Command) -> std::process::Child {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match command.spawn() {
            Err(e)
                if e.kind() == std::io::ErrorKind::ExecutableFileBusy
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            started => return started.expect("the program starts"),
        }
    }
}

/// Waits (bounded) until the agent at `socket` accepts connections.
pub fn wait_for_agent(socket: &Path, limit: Duration) {
    let deadline = Instant::now() + limit;
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        assert!(
            Instant::now() < deadline,
            "the agent at {} did not accept connections within {limit:?}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether process `pid` has exited: it is gone, or a zombie its parent has not reaped yet
/// (an autostarted agent's parent is PID 1, and not every PID 1 reaps).
pub fn has_exited(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// Waits (bounded) until process `pid` has exited (a zombie counts as exited).
fn wait_until_gone(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if has_exited(pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("daemon {pid} did not exit within 10 s of SIGTERM");
}

#[allow(unsafe_code)]
fn terminate(pid: i32) {
    // SAFETY: kill only sends a signal; a stale pid at worst gets ESRCH.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

/// Detaches the child from our controlling terminal (if any), so `/dev/tty` prompts in the
/// binary behave as they would under CI: absent.
#[allow(unsafe_code)]
fn detach_from_terminal(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
}

/// The outcome of one run of the binary.
pub struct Run(pub Output);

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }

    /// Asserts success and returns stdout.
    pub fn success(&self) -> String {
        assert!(
            self.0.status.success(),
            "expected success, got {:?}\nstdout: {}\nstderr: {}",
            self.0.status,
            self.stdout(),
            self.stderr()
        );
        self.stdout()
    }

    /// Asserts failure with exactly one `error:` line containing every one of `needles`,
    /// and nothing on stdout. Returns stderr.
    pub fn failure(&self, needles: &[&str]) -> String {
        let stderr = self.stderr();
        assert!(
            !self.0.status.success(),
            "expected failure, got success\nstdout: {}\nstderr: {stderr}",
            self.stdout()
        );
        assert!(
            self.0.stdout.is_empty(),
            "nothing on stdout on failure, got {:?}",
            self.stdout()
        );
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "one error line, got:\n{stderr}");
        for needle in needles {
            assert!(
                errors[0].contains(needle),
                "error should mention {needle:?}:\n{stderr}"
            );
        }
        if let Some(clause) = repeated_clause(errors[0]) {
            panic!("the error says {clause:?} twice; give the cause once:\n{stderr}");
        }
        stderr
    }
}

/// A clause of three words or more that an error message says twice (a cause wrapped in
/// a context that repeats it), if any. Every `Run::failure` checks the message it gets.
pub fn repeated_clause(message: &str) -> Option<String> {
    let clauses: Vec<String> = message
        .split([':', ';', '(', ')', ','])
        .map(|c| c.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|c| c.split(' ').count() >= 3)
        .collect();
    clauses
        .iter()
        .enumerate()
        .find(|(i, c)| clauses[i + 1..].contains(c))
        .map(|(_, c)| c.clone())
}

/// Runs an independent TOTP implementation (oathtool) for `time`.
pub fn oathtool(
    secret_base32: &str,
    time: u64,
    algorithm: &str,
    digits: u8,
    period: u64,
) -> String {
    let out = Command::new("oathtool")
        .arg(format!("--totp={algorithm}"))
        .args(["-b", "-d", &digits.to_string(), "-s", &format!("{period}s")])
        .args(["--now", &format!("@{time}")])
        .arg(secret_base32)
        .output()
        .expect("oathtool is installed (tests/run installs it)");
    assert!(
        out.status.success(),
        "oathtool failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
