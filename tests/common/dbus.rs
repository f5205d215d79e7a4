//! A private D-Bus session and a fake notification server, for the desktop tests (on the
//! host and in the micro-VM).
// zbus's interface macro reads every argument, including the ones the fake ignores.
#![allow(clippy::used_underscore_binding)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use zbus::blocking::Connection;
use zbus::zvariant::OwnedValue;

/// A dbus-daemon of a test's own: nothing else owns the notification or tray names on it.
pub struct PrivateBus {
    daemon: Child,
    pub address: String,
}

impl PrivateBus {
    pub fn start() -> Self {
        // Listening in TMPDIR: inside the micro-VM /tmp is read-only.
        let address = format!("--address=unix:tmpdir={}", std::env::temp_dir().display());
        let mut daemon = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1", &address])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon runs (package dbus)");
        let mut address = String::new();
        BufReader::new(daemon.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        Self {
            daemon,
            address: address.trim().to_owned(),
        }
    }

    pub fn connect(&self) -> Connection {
        zbus::blocking::connection::Builder::address(self.address.as_str())
            .unwrap()
            .build()
            .unwrap()
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// What the fake notification server was asked to show: (summary, body, urgency).
pub type Shown = Arc<Mutex<Vec<(String, String, u8)>>>;

/// Notification ids the fake server was asked to close.
pub type Closed = Arc<Mutex<Vec<u32>>>;

struct FakeNotifications {
    shown: Shown,
    closed: Closed,
}

// The D-Bus interface fixes these signatures.
#[allow(clippy::unused_self, clippy::needless_pass_by_value)]
#[zbus::interface(name = "org.freedesktop.Notifications")]
impl FakeNotifications {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        _app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        _actions: Vec<String>,
        hints: HashMap<String, OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        let urgency = hints
            .get("urgency")
            .and_then(|v| u8::try_from(v).ok())
            .unwrap_or(1);
        let mut shown = self.shown.lock().unwrap();
        shown.push((summary, body, urgency));
        u32::try_from(shown.len()).unwrap()
    }

    fn close_notification(&self, id: u32) {
        self.closed.lock().unwrap().push(id);
    }

    fn get_capabilities(&self) -> Vec<String> {
        vec!["body".into()]
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "fake".into(),
            "mfa-agent tests".into(),
            "1".into(),
            "1.2".into(),
        )
    }
}

/// A notification server on `bus`; it lives as long as the returned connection. Ids are
/// 1, 2, ... in the order notifications arrive.
pub fn serve_notifications(bus: &PrivateBus) -> (Connection, Shown, Closed) {
    let shown = Shown::default();
    let closed = Closed::default();
    let server = FakeNotifications {
        shown: shown.clone(),
        closed: closed.clone(),
    };
    let conn = zbus::blocking::connection::Builder::address(bus.address.as_str())
        .unwrap()
        .name("org.freedesktop.Notifications")
        .unwrap()
        .serve_at("/org/freedesktop/Notifications", server)
        .unwrap()
        .build()
        .unwrap();
    (conn, shown, closed)
}

/// The StatusNotifierWatcher a panel provides: it records which items registered.
pub struct FakeWatcher {
    items: Arc<Mutex<Vec<String>>>,
}

// The D-Bus interface fixes these signatures.
#[allow(clippy::unused_self, clippy::needless_pass_by_value)]
#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl FakeWatcher {
    fn register_status_notifier_item(
        &self,
        service: String,
        #[zbus(header)] header: zbus::message::Header<'_>,
    ) {
        // Items register by bus name or by object path; either way the sender is the item.
        let sender = header.sender().map(ToString::to_string).unwrap_or_default();
        let name = if service.starts_with('/') {
            sender
        } else {
            service
        };
        self.items.lock().unwrap().push(name);
    }

    fn register_status_notifier_host(&self, _service: String) {}

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items.lock().unwrap().clone()
    }

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }
}

/// Serves a StatusNotifierWatcher on the bus at `address`, as a panel does; returns the
/// connection (drop it to stop) and the items that registered.
pub fn serve_watcher(address: &str) -> (Connection, Arc<Mutex<Vec<String>>>) {
    let items = Arc::new(Mutex::new(Vec::new()));
    let watcher = zbus::blocking::connection::Builder::address(address)
        .unwrap()
        .name("org.kde.StatusNotifierWatcher")
        .unwrap()
        .serve_at(
            "/StatusNotifierWatcher",
            FakeWatcher {
                items: items.clone(),
            },
        )
        .unwrap()
        .build()
        .unwrap();
    (watcher, items)
}
