//! The units in `systemd/` as a user gets them: installed where the package puts them, run by
//! a real systemd (PID 1 of a VM booted for these tests) and the user manager of a fresh
//! user, with their sandbox applied. The README's set-up (`systemctl --user enable --now
//! mfa-agent.socket`), then what a newcomer does next: every command that writes the vault,
//! the user's own AWS files, a mint, `lock`, `stop`, the next request starting the agent
//! again, and the tray.
//!
//! These run as root inside the VM (a system service), and act as the user through
//! `setuid`, with the user's environment as a login would give it.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::dbus::serve_watcher;
use crate::common::fake_sts::{self, FakeSts};
use crate::common::{AWS_SEED, Run, wait_until, within};
use crate::delegated_to_vm;

const USER: &str = "mfa-tester";
const UID: u32 = 1500;
const PASSPHRASE: &str = "systemd test passphrase";

/// The user, logged in: its user manager runs until the value is dropped.
struct User {
    home: PathBuf,
    runtime: PathBuf,
    /// What every command of the user gets on top of a login's environment.
    extra_env: Vec<(String, String)>,
}

/// Runs a command as root and fails the test with its output if it fails.
fn as_root(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", said(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn said(out: &Output) -> String {
    format!(
        "{}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// This build's binaries and the units in `systemd/`, where the package installs them (the
/// units unchanged: `ExecStart=/usr/bin/...`). The VM's root is a throw-away layer in memory,
/// too small for debug binaries: each is bind-mounted onto its place. Not linked: the build
/// may live under /tmp, which the service's `PrivateTmp` hides from it.
fn install() {
    for (name, built) in [
        ("mfa-agent", env!("CARGO_BIN_EXE_mfa-agent")),
        ("mfa-agent-daemon", env!("CARGO_BIN_EXE_mfa-agent-daemon")),
        ("mfa-agent-tray", env!("CARGO_BIN_EXE_mfa-agent-tray")),
    ] {
        let place = format!("/usr/bin/{name}");
        std::fs::write(&place, b"").unwrap();
        as_root("mount", &["--bind", built, &place]);
    }
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    for unit in [
        "mfa-agent.socket",
        "mfa-agent.service",
        "mfa-agent-tray.service",
    ] {
        as_root(
            "install",
            &[
                "-m",
                "644",
                units.join(unit).to_str().unwrap(),
                &format!("/usr/lib/systemd/user/{unit}"),
            ],
        );
    }
}

impl User {
    /// A new user with its user manager running, and the units installed. Started as logind
    /// starts it for a user who lingers (a login would do the same through PAM): the user
    /// manager's runtime directory is logind's to make.
    fn log_in() -> Self {
        install();
        as_root(
            "useradd",
            &[
                "--create-home",
                "--uid",
                &UID.to_string(),
                "--user-group",
                "--shell",
                "/bin/sh",
                USER,
            ],
        );
        as_root(
            "systemctl",
            &["start", "dbus.service", "systemd-logind.service"],
        );
        as_root("loginctl", &["enable-linger", USER]);
        as_root("systemctl", &["start", &format!("user@{UID}.service")]);
        Self {
            home: PathBuf::from(format!("/home/{USER}")),
            runtime: PathBuf::from(format!("/run/user/{UID}")),
            extra_env: Vec::new(),
        }
    }

    fn set(&mut self, key: &str, value: &str) {
        self.extra_env.push((key.into(), value.into()));
    }

    /// `program` as the user, in its home, with a login's environment.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.uid(UID)
            .gid(UID)
            .current_dir(&self.home)
            .env_clear()
            .env("HOME", &self.home)
            .env("USER", USER)
            .env("LOGNAME", USER)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                format!("unix:path={}/bus", self.runtime.display()),
            )
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        cmd
    }

    fn mfa_agent(&self, args: &[&str], stdin: &str) -> Run {
        use std::io::Write;
        let mut child = self
            .command("/usr/bin/mfa-agent")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mfa-agent runs as the user");
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        Run(child.wait_with_output().unwrap())
    }

    fn systemctl(&self, args: &[&str]) -> Output {
        self.command("systemctl")
            .arg("--user")
            .args(args)
            .output()
            .expect("systemctl runs")
    }

    /// One property of a user unit, e.g. `ActiveState` or `MainPID`.
    fn unit_property(&self, unit: &str, property: &str) -> String {
        let out = self.systemctl(&["show", "--property", property, "--value", unit]);
        assert!(out.status.success(), "systemctl show: {}", said(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The agent service's process, once systemd reports it running.
    fn agent_pid(&self) -> u32 {
        wait_until("the agent service to run", Duration::from_secs(30), || {
            let pid: u32 = self
                .unit_property("mfa-agent.service", "MainPID")
                .parse()
                .ok()?;
            (pid != 0 && self.unit_property("mfa-agent.service", "ActiveState") == "active")
                .then_some(pid)
        })
    }

    /// Writes a file in the user's home as the user would, owned by the user.
    fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.home.join(relative);
        let mut dir = path.parent().unwrap();
        let mut made = Vec::new();
        while !dir.exists() {
            made.push(dir.to_owned());
            dir = dir.parent().unwrap();
        }
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        for dir in made {
            std::os::unix::fs::chown(&dir, Some(UID), Some(UID)).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        std::os::unix::fs::chown(&path, Some(UID), Some(UID)).unwrap();
        path
    }

    fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.home.join(relative)).unwrap()
    }
}

impl User {
    /// A panel's StatusNotifierWatcher on the user's session bus. That bus admits its user
    /// alone (root is turned away too) and learns who connects from the socket, when it
    /// connects: the connection is made with the user's effective uid, then root's is taken
    /// back.
    #[allow(unsafe_code)]
    fn serve_panel(&self) -> (zbus::blocking::Connection, Arc<Mutex<Vec<String>>>) {
        let bus = format!("unix:path={}/bus", self.runtime.display());
        // SAFETY: plain system calls; between them this thread only connects to the bus, and
        // the test's other threads (the fake STS) open no files.
        assert_eq!(unsafe { libc::seteuid(UID) }, 0);
        let served = std::panic::catch_unwind(|| serve_watcher(&bus));
        assert_eq!(unsafe { libc::seteuid(0) }, 0);
        served.unwrap_or_else(|e| std::panic::resume_unwind(e))
    }
}

impl Drop for User {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // What systemd, the units and the agent logged: why a step failed.
            let _ = Command::new("journalctl")
                .args(["--boot", "--no-pager", "--lines", "150"])
                .status();
        }
        let _ = Command::new("loginctl")
            .args(["disable-linger", USER])
            .status();
        let _ = Command::new("systemctl")
            .args(["stop", &format!("user@{UID}.service")])
            .status();
    }
}

/// What the kernel says of a process: its status lines and its mounts as it sees them.
fn process_status(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap()
}

fn status_field<'a>(status: &'a str, field: &str) -> &'a str {
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in:\n{status}"))
        .trim()
}

/// Whether `path`, as the process sees it, is on a read-only mount: the one at the longest
/// mount point above it (the last of equals, which is on top).
fn on_read_only_mount(pid: u32, path: &Path) -> bool {
    let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let (_, options) = mounts
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let point = Path::new(fields[4]);
            path.starts_with(point)
                .then(|| (point.components().count(), fields[5].to_owned()))
        })
        .fold(None, |best: Option<(usize, String)>, this| match best {
            Some(b) if b.0 > this.0 => Some(b),
            _ => Some(this),
        })
        .unwrap_or_else(|| panic!("no mount above {} for the agent:\n{mounts}", path.display()));
    options.split(',').any(|o| o == "ro")
}

#[test]
fn units_serve_a_new_user_from_socket_activation_to_restart() {
    if delegated_to_vm("systemd::units_serve_a_new_user_from_socket_activation_to_restart") {
        return;
    }
    let sts = FakeSts::start(AWS_SEED, 30);
    let mut user = User::log_in();
    let passphrase = user.write("passphrase", PASSPHRASE);
    user.set("MFA_AGENT_STORE", "file");
    user.set("MFA_AGENT_PASSPHRASE_FILE", passphrase.to_str().unwrap());
    user.set("AWS_ENDPOINT_URL", &sts.url);

    // The README's set-up: the socket listens, the agent is not running yet.
    let enabled = user.systemctl(&["enable", "--now", "mfa-agent.socket"]);
    assert!(enabled.status.success(), "{}", said(&enabled));
    assert_eq!(
        user.unit_property("mfa-agent.socket", "ActiveState"),
        "active"
    );
    assert_eq!(
        user.unit_property("mfa-agent.service", "ActiveState"),
        "inactive"
    );

    // The first request starts the agent, which writes the vault in its sandbox.
    user.mfa_agent(&["seed", "add", "spare", "--secret", "-"], AWS_SEED)
        .success();
    let first_agent = user.agent_pid();
    let status: serde_json::Value =
        serde_json::from_str(&user.mfa_agent(&["status", "--json"], "").success()).unwrap();
    assert_eq!(
        status["pid"].as_u64(),
        Some(u64::from(first_agent)),
        "the client talks to systemd's agent: {status}"
    );
    let vault = user.home.join(".local/share/mfa-agent/seeds.age");
    let metadata = std::fs::metadata(&vault).expect("the agent wrote the encrypted vault");
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&metadata), UID);
    assert_sandboxed(&user, first_agent);

    enrol_a_device_for_the_imported_keys(&user);
    let minted: serde_json::Value = serde_json::from_str(
        &user
            .mfa_agent(&["credential-process", "--profile", "base"], "")
            .success(),
    )
    .unwrap();
    assert_eq!(sts.issued().len(), 1);
    assert_eq!(minted["AccessKeyId"], sts.issued()[0].0.as_str());

    // `lock` drops the session; the passphrase opens the vault again.
    user.mfa_agent(&["lock"], "").success();
    let status: serde_json::Value =
        serde_json::from_str(&user.mfa_agent(&["status", "--json"], "").success()).unwrap();
    assert_eq!(status["sessions"], serde_json::json!([]), "{status}");
    user.mfa_agent(&["code", "spare"], "").success();

    // `stop` ends systemd's agent and leaves the socket listening; the next request starts
    // a new agent, which mints with a code it has never used (the fake STS refuses a reuse:
    // the replay guard survived the restart in the agent's state directory).
    user.mfa_agent(&["stop"], "").success();
    wait_until("the agent service to stop", Duration::from_secs(30), || {
        (user.unit_property("mfa-agent.service", "ActiveState") == "inactive").then_some(())
    });
    assert_eq!(
        user.unit_property("mfa-agent.socket", "ActiveState"),
        "active"
    );
    user.mfa_agent(&["credential-process", "--profile", "base"], "")
        .success();
    assert_ne!(user.agent_pid(), first_agent);
    assert_eq!(sts.issued().len(), 2);
    let codes = sts.codes_received();
    assert_eq!(
        codes.len(),
        codes.iter().collect::<std::collections::HashSet<_>>().len(),
        "never a code twice: {codes:?}"
    );
    assert_eq!(
        user.unit_property("mfa-agent.service", "NRestarts"),
        "0",
        "the agent never crashed"
    );

    the_tray_unit_registers_with_the_panel(&user);
    let stopped = user.systemctl(&["stop", "mfa-agent.socket", "mfa-agent.service"]);
    assert!(stopped.status.success(), "{}", said(&stopped));
}

/// The sandbox is in force: no new privileges, a system-call filter, no capabilities, the
/// system and the home read-only (so `mfa_process` cannot write there, as the README says)
/// but for the agent's own directories.
fn assert_sandboxed(user: &User, agent: u32) {
    let status = process_status(agent);
    assert_eq!(status_field(&status, "NoNewPrivs"), "1", "{status}");
    assert_eq!(status_field(&status, "Seccomp"), "2", "{status}");
    assert_eq!(
        status_field(&status, "CapEff"),
        "0000000000000000",
        "{status}"
    );
    assert!(on_read_only_mount(agent, &user.home.join(".aws")));
    assert!(on_read_only_mount(agent, Path::new("/usr/bin")));
    for own in [".local/share/mfa-agent", ".local/state/mfa-agent"] {
        assert!(!on_read_only_mount(agent, &user.home.join(own)), "{own}");
    }
}

/// The user's own files are written by the client the user runs, the vault by the agent:
/// `creds import` moves the keys of `base` out of ~/.aws/credentials, and `aws enroll
/// --write-config` names the device it enrolled (its seed in the vault) in ~/.aws/config.
fn enrol_a_device_for_the_imported_keys(user: &User) {
    user.write(
        ".aws/credentials",
        &format!(
            "[base]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            fake_sts::ACCESS_KEY_ID,
            fake_sts::SECRET_ACCESS_KEY
        ),
    );
    user.write(".aws/config", "[profile base]\nregion = eu-west-1\n");
    user.mfa_agent(&["creds", "import", "base", "--yes"], "")
        .success();
    assert!(
        !user
            .read(".aws/credentials")
            .contains(fake_sts::SECRET_ACCESS_KEY),
        "the secret key left the credentials file"
    );
    let serial = user
        .mfa_agent(
            &["aws", "enroll", "--profile", "base", "--write-config"],
            "",
        )
        .success();
    let serial = serial.trim();
    assert!(serial.starts_with("arn:aws:iam::"), "{serial}");
    let config = user.read(".aws/config");
    assert!(
        config.contains(&format!("mfa_serial = {serial}")),
        "{config}"
    );
}

/// The tray unit, started as the README does on a desktop: it registers with the panel's
/// watcher on the user's session bus and shows the agent's state (its one cached session).
fn the_tray_unit_registers_with_the_panel(user: &User) {
    let (panel, items) = user.serve_panel();
    let started = user.systemctl(&["start", "mfa-agent-tray.service"]);
    assert!(started.status.success(), "{}", said(&started));
    let item = wait_until("the tray to register", Duration::from_secs(60), || {
        items.lock().unwrap().first().cloned()
    });
    // Uncached: the tray announces a new title with its own signal (NewTitle), not
    // PropertiesChanged, so a caching proxy would keep the first title it fetched.
    let item: zbus::blocking::Proxy = zbus::blocking::proxy::Builder::new(&panel)
        .destination(item.as_str())
        .and_then(|b| b.path("/StatusNotifierItem"))
        .and_then(|b| b.interface("org.kde.StatusNotifierItem"))
        .unwrap()
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .unwrap();
    // Before it hears from the agent the tray says "Locked"; then the session, or the
    // unlocked vault (the passphrase opened it, and the headline shows that first).
    let mut last_title = String::new();
    let shown = within(Duration::from_secs(30), || {
        last_title = item.get_property::<String>("Title").ok()?;
        (last_title == "mfa-agent: 1 session(s) cached"
            || last_title.starts_with("mfa-agent: Unlocked until "))
        .then_some(())
    });
    assert!(
        shown.is_some(),
        "the tray did not show the agent's state within 30 s; its title: {last_title:?}"
    );
    assert_eq!(
        user.unit_property("mfa-agent-tray.service", "ActiveState"),
        "active"
    );
    let stopped = user.systemctl(&["stop", "mfa-agent-tray.service"]);
    assert!(stopped.status.success(), "{}", said(&stopped));
}
