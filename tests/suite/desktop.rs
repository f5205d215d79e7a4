//! The desktop side on a private D-Bus session: notifications reach a fake notification
//! server, and the tray registers with a fake StatusNotifierWatcher, whose item and menu this
//! test reads and clicks the way a panel would.

// zbus's interface macro reads every argument, including the ones the fakes ignore.
#![allow(clippy::used_underscore_binding)]

use crate::common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::dbus::{PrivateBus, serve_notifications, serve_watcher};
use common::fake_sts::{self, FakeSts};
use common::{AWS_SEED, SERIAL, TestEnv, wait_until};
use zbus::blocking::{Connection, Proxy};
use zbus::zvariant::{OwnedValue, Value as ZValue};

/// A file-store vault with seed `work` (so the agent needs no Secret Service on this bus),
/// a profile `base` for the fake STS, and the private bus as the session bus.
fn desktop_env(bus: &PrivateBus, sts: &FakeSts) -> TestEnv {
    let mut env = TestEnv::with_file_store("desktop test passphrase");
    env.set("DBUS_SESSION_BUS_ADDRESS", &bus.address);
    env.set("AWS_ENDPOINT_URL", &sts.url);
    env.add_seed("work", &["--serial", SERIAL]);
    env.aws_config(&format!(
        "[profile base]\nregion = eu-west-1\nmfa_serial = {SERIAL}\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        fake_sts::ACCESS_KEY_ID,
        fake_sts::SECRET_ACCESS_KEY
    ));
    env
}

fn agent_config(env: &TestEnv, text: &str) {
    let dir = env.path().join(".config/mfa-agent");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), text).unwrap();
}

#[test]
fn notifications_say_what_the_agent_did_and_can_be_turned_off() {
    let bus = PrivateBus::start();
    let (_server, shown, _closed) = serve_notifications(&bus);
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = desktop_env(&bus, &sts);
    env.start_daemon();
    let status: serde_json::Value =
        serde_json::from_str(&env.run(["status", "--json"], "").success()).unwrap();
    assert_eq!(status["notifications"], true, "{status}");
    assert!(
        !env.run(["status"], "").success().contains("notifications:"),
        "on is the default, not news"
    );

    env.run(["credential-process", "--profile", "base"], "")
        .success();
    let issued = wait_until("the issued notification", Duration::from_secs(10), || {
        shown.lock().unwrap().first().cloned()
    });
    assert_eq!(issued.0, "AWS credentials issued for base");
    assert!(issued.1.starts_with("Valid for "), "{issued:?}");
    // A cache hit is not news.
    env.run(["credential-process", "--profile", "base"], "")
        .success();

    env.run(["credential-process", "--profile", "nope"], "")
        .failure(&["no profile \"nope\""]);
    let failed = wait_until("the error notification", Duration::from_secs(10), || {
        shown.lock().unwrap().get(1).cloned()
    });
    assert_eq!(failed.0, "mfa-agent: nope failed");
    assert!(failed.1.contains("no profile \"nope\""), "{failed:?}");
    assert_eq!(
        shown.lock().unwrap().len(),
        2,
        "{:?}",
        shown.lock().unwrap()
    );

    // Turned off: a fresh mint and a failure show nothing.
    env.stop_daemon();
    agent_config(&env, "[notifications]\nenabled = false\n");
    env.start_daemon();
    env.run(["credential-process", "--profile", "base", "--refresh"], "")
        .success();
    env.run(["credential-process", "--profile", "nope"], "")
        .failure(&["no profile"]);
    // Nothing listens to the agent's events to show them: status says so, in writing, so
    // no wait is needed to see that nothing shows (with notifications on, the same status
    // says true: see above).
    let status: serde_json::Value =
        serde_json::from_str(&env.run(["status", "--json"], "").success()).unwrap();
    assert_eq!(status["notifications"], false, "{status}");
    let status = env.run(["status"], "").success();
    assert!(
        status.contains("notifications: off ([notifications] enabled = false in config.toml)"),
        "{status}"
    );
    assert_eq!(
        shown.lock().unwrap().len(),
        2,
        "{:?}",
        shown.lock().unwrap()
    );
    env.stop_daemon();
}

/// A mint that waits for the next code window (the current code was sent already) says so
/// in a notification: a caller without a terminal (an IDE) would otherwise wait in silence.
#[test]
fn a_wait_for_the_next_code_window_is_a_notification() {
    use common::minting::{SHORT_SEED, align_to_a_fresh_window_of, in_one_window, window_now};
    // Windows of 6 s: each request here opens the encrypted file (a passphrase hash that
    // takes a second or more in a debug build), and a refresh must reach its code within
    // the window of the code before it.
    const PERIOD: u64 = 6;
    let bus = PrivateBus::start();
    let (_server, shown, _closed) = serve_notifications(&bus);
    let sts = FakeSts::start(SHORT_SEED, PERIOD);
    let mut env = TestEnv::with_file_store("desktop test passphrase");
    env.set("DBUS_SESSION_BUS_ADDRESS", &bus.address);
    env.set("AWS_ENDPOINT_URL", &sts.url);
    crate::common::minting::add_work_seed(&env, SHORT_SEED, PERIOD);
    env.aws_config(&format!(
        "[profile base]\nregion = eu-west-1\nmfa_serial = {SERIAL}\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        fake_sts::ACCESS_KEY_ID,
        fake_sts::SECRET_ACCESS_KEY
    ));
    agent_config(&env, "[notifications]\nissued = false\n");
    env.start_daemon();
    env.run(["credential-process", "--profile", "base"], "")
        .success();
    assert!(
        shown.lock().unwrap().is_empty(),
        "{:?}",
        shown.lock().unwrap()
    );
    // A refresh right after a mint, in the mint's window, wants the code the mint sent: it
    // waits for the next window. A refresh that did not wait and ended in the mint's window
    // is the failure; one that ended in a later window may have found a fresh code without
    // waiting (a loaded machine), shows nothing, and is made again.
    let refreshed = in_one_window("a refresh in the window of a mint", || {
        align_to_a_fresh_window_of(PERIOD);
        let (window, _) = window_now(PERIOD);
        env.run(["credential-process", "--profile", "base", "--refresh"], "")
            .success();
        let again = env.run(["credential-process", "--profile", "base", "--refresh"], "");
        again.success();
        let decisive = again.stderr().contains("waiting") || window_now(PERIOD).0 == window;
        decisive.then_some(again)
    });
    assert!(
        refreshed.stderr().contains("waiting"),
        "a refresh in the window of a mint did not wait for the next one: {}",
        refreshed.stderr()
    );
    let wait = wait_until("the wait notification", Duration::from_secs(10), || {
        shown.lock().unwrap().first().cloned()
    });
    assert!(wait.0.starts_with("mfa-agent: base waits "), "{wait:?}");
    assert!(wait.1.contains("AWS takes each code once"), "{wait:?}");
    env.stop_daemon();
}

/// The tray as a panel sees it: its item's properties and its menu.
struct TrayItem {
    conn: Connection,
    service: String,
}

/// One menu entry: (id, label, enabled, children).
#[derive(Debug, Clone)]
struct Entry {
    id: i32,
    label: String,
    enabled: bool,
    children: Vec<Entry>,
}

impl TrayItem {
    fn property(&self, name: &str) -> String {
        let item = Proxy::new(
            &self.conn,
            self.service.as_str(),
            "/StatusNotifierItem",
            "org.kde.StatusNotifierItem",
        )
        .unwrap();
        item.get_property::<String>(name).unwrap()
    }

    fn menu_proxy(&self) -> Proxy<'_> {
        Proxy::new(
            &self.conn,
            self.service.as_str(),
            "/MenuBar",
            "com.canonical.dbusmenu",
        )
        .unwrap()
    }

    fn menu(&self) -> Vec<Entry> {
        let (_revision, layout): (u32, Layout) = self
            .menu_proxy()
            .call("GetLayout", &(0i32, -1i32, Vec::<String>::new()))
            .unwrap();
        entry(layout).children
    }

    /// Every label, submenus flattened, in order.
    fn labels(&self) -> Vec<String> {
        fn walk(entries: &[Entry], out: &mut Vec<String>) {
            for e in entries {
                if !e.label.is_empty() {
                    out.push(e.label.clone());
                }
                walk(&e.children, out);
            }
        }
        let mut out = Vec::new();
        walk(&self.menu(), &mut out);
        out
    }

    fn click(&self, label: &str) {
        fn find(entries: &[Entry], label: &str) -> Option<Entry> {
            entries.iter().find_map(|e| {
                (e.label == label)
                    .then(|| e.clone())
                    .or_else(|| find(&e.children, label))
            })
        }
        let entry = find(&self.menu(), label).unwrap_or_else(|| panic!("no {label:?} entry"));
        assert!(entry.enabled, "{label:?} can be clicked");
        // As panels do, without waiting for a reply ("Quit" ends the tray before it sends one);
        // the tests look at the effect instead.
        self.menu_proxy()
            .call_noreply("Event", &(entry.id, "clicked", ZValue::from(0i32), 0u32))
            .unwrap();
    }
}

/// dbusmenu's layout node: (id, properties, children as variants of nodes).
type Layout = (i32, HashMap<String, OwnedValue>, Vec<OwnedValue>);

fn entry((id, props, children): Layout) -> Entry {
    let label = props
        .get("label")
        .and_then(|v| String::try_from(v.try_clone().unwrap()).ok())
        .unwrap_or_default();
    let enabled = props
        .get("enabled")
        .is_none_or(|v| bool::try_from(v).unwrap_or(true));
    let children = children
        .into_iter()
        .map(|child| {
            let value = ZValue::from(child);
            let node = match value {
                ZValue::Value(inner) => *inner,
                other => other,
            };
            entry(Layout::try_from(node).expect("a menu child is a layout node"))
        })
        .collect();
    Entry {
        id,
        label,
        enabled,
        children,
    }
}

/// An X server without a screen, for the clipboard (package xvfb).
struct Xvfb {
    server: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Self {
        // -displayfd: the server picks a free display number and writes it to fd 1.
        let mut server = Command::new("Xvfb")
            .args(["-displayfd", "1", "-nolisten", "tcp"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb runs (package xvfb)");
        let mut number = String::new();
        BufReader::new(server.stdout.take().unwrap())
            .read_line(&mut number)
            .unwrap();
        Self {
            server,
            display: format!(":{}", number.trim()),
        }
    }

    /// The clipboard's text, or None when nothing owns it.
    fn clipboard(&self) -> Option<String> {
        let out = Command::new("xclip")
            .args(["-o", "-selection", "clipboard"])
            .env("DISPLAY", &self.display)
            .output()
            .expect("xclip runs (package xclip)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success() && !text.is_empty()).then_some(text)
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

struct TrayProcess(Child);

impl Drop for TrayProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a fake watcher on `bus` and `mfa-agent tray` in `env`; returns the tray's item once
/// it has registered.
fn start_tray(bus: &PrivateBus, env: &TestEnv) -> (TrayItem, TrayProcess, Connection) {
    let (watcher, items) = serve_watcher(&bus.address);
    let mut tray = env.cmd(["tray"]);
    tray.stdout(Stdio::null()).stderr(Stdio::inherit());
    let tray = TrayProcess(tray.spawn().expect("mfa-agent tray starts"));
    let service = wait_until("the tray to register", Duration::from_secs(10), || {
        items.lock().unwrap().first().cloned()
    });
    let item = TrayItem {
        conn: bus.connect(),
        service,
    };
    (item, tray, watcher)
}

#[test]
fn the_tray_copies_a_code_and_clears_it_when_its_window_ends() {
    let bus = PrivateBus::start();
    let (_notifications, _shown, _closed) = serve_notifications(&bus);
    let x = Xvfb::start();
    let sts = FakeSts::start(AWS_SEED, 30);
    let mut env = desktop_env(&bus, &sts);
    env.set("DISPLAY", &x.display);
    // A 3-second seed: its code leaves the clipboard within 3 s.
    env.run(
        ["seed", "add", "fast", "--uri", "-"],
        "otpauth://totp/fast?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&period=3",
    )
    .success();
    env.start_daemon();
    let (item, _tray, _watcher) = start_tray(&bus, &env);

    item.click("work");
    let copied = wait_until("the code on the clipboard", Duration::from_secs(10), || {
        x.clipboard()
    });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // The code of this 30 s window, or of the one just before if the click fell on the edge.
    let expected: Vec<String> = [now, now - 30]
        .iter()
        .map(|t| common::oathtool(AWS_SEED, *t, "sha1", 6, 30))
        .collect();
    assert!(
        expected.contains(&copied),
        "{copied:?} is one of {expected:?}"
    );

    item.click("fast");
    let fast = wait_until("the fast code", Duration::from_secs(10), || {
        x.clipboard().filter(|text| *text != copied)
    });
    assert_eq!(fast.len(), 6, "{fast:?}");
    wait_until("the clipboard to clear", Duration::from_secs(6), || {
        x.clipboard().is_none().then_some(())
    });
    env.stop_daemon();
}

#[test]
fn the_tray_shows_state_sessions_and_acts_on_its_menu() {
    let bus = PrivateBus::start();
    let (_notifications, _shown, _closed) = serve_notifications(&bus);
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = desktop_env(&bus, &sts);
    // The tray must not restart a daemon this test stops on purpose.
    agent_config(&env, "autostart = false\n");
    env.start_daemon();
    let (item, mut tray, _watcher) = start_tray(&bus, &env);
    let settles = |what: &str, check: &dyn Fn(&TrayItem) -> bool| {
        wait_until(what, Duration::from_secs(10), || check(&item).then_some(()));
    };

    // Locked: nothing cached yet.
    settles("the locked state", &|i| {
        i.property("IconName") == "changes-prevent"
    });
    let labels = item.labels();
    for expected in [
        "Locked",
        "Copy MFA code",
        "work",
        "No sessions cached",
        "Lock now",
        "Refresh",
        "Quit",
    ] {
        assert!(
            labels.iter().any(|l| l == expected),
            "{expected:?} in {labels:?}"
        );
    }
    assert_eq!(item.property("Title"), "mfa-agent: Locked");

    // A mint elsewhere reaches the tray through its subscription.
    env.run(["credential-process", "--profile", "base"], "")
        .success();
    settles("the sessions", &|i| {
        i.property("IconName") == "changes-allow"
    });
    let labels = item.labels();
    assert!(
        labels.iter().any(|l| l.starts_with("base: until ")),
        "{labels:?}"
    );
    assert!(
        !labels.iter().any(|l| l.starts_with("base (MFA session)")),
        "base's session is its MFA session too: listed once, {labels:?}"
    );

    // "Lock now" locks the agent.
    item.click("Lock now");
    settles("the lock", &|i| i.property("IconName") == "changes-prevent");
    let status = env.status();
    assert_eq!(status["sessions"].as_array().unwrap().len(), 0, "{status}");

    // A failed mint turns the icon to the error state, with the reason on top.
    env.run(["credential-process", "--profile", "nope"], "")
        .failure(&["no profile"]);
    settles("the error", &|i| i.property("IconName") == "dialog-error");
    assert!(
        item.labels()[0].starts_with("Failed: nope: "),
        "{:?}",
        item.labels()
    );
    // "Refresh" reads the state again and clears the old failure.
    item.click("Refresh");
    settles("the refresh", &|i| {
        i.property("IconName") == "changes-prevent"
    });

    // The agent going away shows too.
    env.stop_daemon();
    settles("the lost agent", &|i| {
        i.property("IconName") == "dialog-error"
    });
    assert!(
        item.labels()[0].starts_with("Agent not reachable"),
        "{:?}",
        item.labels()
    );

    item.click("Quit");
    let exited = wait_until("the tray to quit", Duration::from_secs(10), || {
        tray.0.try_wait().unwrap()
    });
    assert!(exited.success());
}
