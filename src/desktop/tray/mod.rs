//! `mfa-agent tray`: a StatusNotifierItem (ksni) showing the agent's state, with a menu to
//! copy codes, see sessions, lock and refresh. Just another protocol client: it subscribes to
//! the agent's events instead of polling, and reconnects when the agent restarts.

mod clipboard;
mod view;

use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result};
use ksni::blocking::TrayMethods as _;
use ksni::menu::{MenuItem, StandardItem, SubMenu};

use self::clipboard::Clipboard;
pub use self::view::{Look, View};
use crate::client::Client;
use crate::config::Config;
use crate::desktop::notify::{self, Urgency};
use crate::paths::Paths;
use crate::protocol::{Code, Lock, SeedList, Status};

/// Waits between reconnection attempts, growing up to the last one.
const RECONNECT_BACKOFF: [u64; 5] = [1, 2, 5, 10, 30];

/// What a menu entry asks the main thread to do (menu callbacks must not block).
enum Action {
    CopyCode(String),
    Lock,
    Refresh,
    Quit,
}

struct Tray {
    view: View,
    actions: mpsc::Sender<Action>,
}

impl Tray {
    fn item(
        label: impl Into<String>,
        action: impl Fn() -> Action + Send + 'static,
    ) -> MenuItem<Self> {
        StandardItem {
            label: label.into(),
            activate: Box::new(move |tray: &mut Self| {
                let _ = tray.actions.send(action());
            }),
            ..Default::default()
        }
        .into()
    }

    fn label(text: impl Into<String>) -> MenuItem<Self> {
        StandardItem {
            label: text.into(),
            enabled: false,
            ..Default::default()
        }
        .into()
    }
}

impl ksni::Tray for Tray {
    fn id(&self) -> String {
        "mfa-agent".into()
    }

    fn title(&self) -> String {
        format!("mfa-agent: {}", self.view.headline())
    }

    fn icon_name(&self) -> String {
        self.view.look().icon_name().into()
    }

    fn status(&self) -> ksni::Status {
        if self.view.look() == Look::Waiting {
            ksni::Status::NeedsAttention
        } else {
            ksni::Status::Active
        }
    }

    fn tool_tip(&self) -> ksni::ToolTip {
        ksni::ToolTip {
            title: "mfa-agent".into(),
            description: self.view.headline(),
            ..Default::default()
        }
    }

    fn menu(&self) -> Vec<MenuItem<Self>> {
        let mut menu = vec![Self::label(self.view.headline())];
        menu.extend(self.view.queue_line().map(Self::label));
        menu.push(MenuItem::Separator);
        let copy: Vec<MenuItem<Self>> = self
            .view
            .seeds
            .iter()
            .map(|seed| {
                let seed = seed.clone();
                Self::item(seed.clone(), move || Action::CopyCode(seed.clone()))
            })
            .collect();
        if copy.is_empty() {
            menu.push(Self::label("No seeds (mfa-agent seed add)"));
        } else {
            menu.push(
                SubMenu {
                    label: "Copy MFA code".into(),
                    submenu: copy,
                    ..Default::default()
                }
                .into(),
            );
        }
        menu.push(MenuItem::Separator);
        let sessions = self.view.session_lines();
        if sessions.is_empty() {
            menu.push(Self::label("No sessions cached"));
        }
        menu.extend(sessions.into_iter().map(Self::label));
        menu.push(MenuItem::Separator);
        menu.push(Self::item("Lock now", || Action::Lock));
        menu.push(Self::item("Refresh", || Action::Refresh));
        menu.push(MenuItem::Separator);
        menu.push(Self::item("Quit", || Action::Quit));
        menu
    }
}

type Handle = ksni::blocking::Handle<Tray>;

pub fn run(paths: &Paths) -> Result<ExitCode> {
    let config = Config::load(&paths.config_dir)?;
    let (actions, requests) = mpsc::channel();
    let view = View {
        seeds: seed_names(paths),
        ..View::default()
    };
    let handle = Tray { view, actions }
        .spawn()
        .context("no tray host answers on the session bus (org.kde.StatusNotifierWatcher); a desktop with a system tray is needed")?;
    {
        let (handle, paths) = (handle.clone(), paths.clone());
        std::thread::spawn(move || follow_agent(&handle, &paths, config.autostart_enabled()));
    }
    // Opened lazily: a clipboard needs the graphical session, which the rest does not.
    let mut clipboard: Option<Clipboard> = None;
    while let Ok(action) = requests.recv() {
        let outcome = match action {
            Action::CopyCode(seed) => copy_code(paths, &seed, &mut clipboard),
            Action::Lock => lock(paths),
            Action::Refresh => {
                let seeds = seed_names(paths);
                handle.update(|tray| tray.view.seeds = seeds);
                refresh(paths, &handle)
            }
            Action::Quit => break,
        };
        if let Err(e) = outcome {
            let message = crate::report::sentence(e.as_ref());
            tracing::warn!("{message}");
            notify::show("mfa-agent", &message, Urgency::Normal);
        }
    }
    handle.shutdown().wait();
    Ok(ExitCode::SUCCESS)
}

/// Keeps the view in step with the agent: subscribes, applies every event, and when the
/// connection drops, shows why and tries again with a growing pause.
fn follow_agent(handle: &Handle, paths: &Paths, autostart: bool) {
    let mut failures = 0usize;
    loop {
        let subscribed = Client::connect(paths, autostart).and_then(Client::subscribe);
        let error = match subscribed {
            Ok((report, mut feed)) => {
                failures = 0;
                handle.update(|tray| tray.view.connected(&report));
                loop {
                    match feed.next_event() {
                        Ok(event) => {
                            handle.update(|tray| tray.view.apply(event));
                        }
                        Err(e) => break e,
                    }
                }
            }
            Err(e) => e,
        };
        if handle.is_closed() {
            return;
        }
        let why = error.to_string();
        handle.update(|tray| tray.view.unreachable = Some(why));
        let pause = RECONNECT_BACKOFF[failures.min(RECONNECT_BACKOFF.len() - 1)];
        failures += 1;
        std::thread::sleep(Duration::from_secs(pause));
    }
}

/// The seeds' names, from the agent (the only reader of the vault).
fn seed_names(paths: &Paths) -> Vec<String> {
    let listed = Client::connect(paths, false).and_then(|mut c| c.call(SeedList, |_| {}));
    match listed {
        Ok(listing) => listing.seeds.into_iter().map(|s| s.name).collect(),
        Err(_) => Vec::new(),
    }
}

/// Asks the agent for a code (it marks the code used, so no mint sends it again) and puts
/// it on the clipboard until its window ends. A touch or PIN the agent needs is asked on the
/// desktop: the agent's own notification and pinentry (the tray has no terminal).
fn copy_code(paths: &Paths, seed: &str, clipboard: &mut Option<Clipboard>) -> Result<()> {
    let mut client = Client::connect(paths, false)?;
    let code = client.call(
        Code {
            seed: seed.to_owned(),
            next: false,
        },
        |_| {},
    )?;
    let board = match clipboard {
        Some(board) => board,
        None => clipboard.insert(Clipboard::open()?),
    };
    board.copy_until(code.digits, code.valid_until)?;
    Ok(())
}

fn lock(paths: &Paths) -> Result<()> {
    let mut client = Client::connect(paths, false)?;
    client.call(Lock, |_| {})?;
    Ok(())
}

/// Re-reads the agent's state (the feed keeps it current; this also recovers a view that
/// shows a stale failure).
fn refresh(paths: &Paths, handle: &Handle) -> Result<()> {
    let mut client = Client::connect(paths, false)?;
    let report = client.call(Status, |_| {})?;
    handle.update(|tray| {
        tray.view.connected(&report);
        tray.view.failure = None;
    });
    Ok(())
}
