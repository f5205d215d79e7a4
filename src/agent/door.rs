//! The one door to the vault and the security keys. Every request that reads a secret or
//! talks to a key passes through it, one at a time (two operations on one key at once get
//! CTAPHID_ERR_CHANNEL_BUSY, and two vault writers could lose each other's change). Its
//! prompts go back to the client that asked; the unlock state lives here, shared by all.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;

use super::events::Events;
use super::prompt::{Progress, Prompt};
use super::unlocked::Unlocked;
use crate::config::{Config, Environment, TouchPolicy};
use crate::keys::seal::DataKey;
use crate::keys::unlock::{ByTouch, UnlockError};
use crate::protocol::{AskKind, Event, StoreKind};
use crate::secret::SecretString;
use crate::vault::{
    EnrolledKey, PassphraseError, PassphrasePurpose, PassphraseSource, Vault, VaultError,
};

/// A new encrypted seed file's passphrase is at least this long.
const MIN_PASSPHRASE: usize = 8;

pub struct Door {
    data_dir: PathBuf,
    pinentry: Option<String>,
    /// The agent's `MFA_AGENT_*` variables (PIN and passphrase files, the key wait).
    env: Environment,
    turn: tokio::sync::Mutex<()>,
    /// Requests inside the door or waiting at it.
    pending: AtomicUsize,
    /// The data key, while unlocked under `touch = "unlock"`.
    data_key: Unlocked<DataKey>,
    /// The encrypted file's passphrase, once typed (the file store's unlock).
    passphrase: Arc<Unlocked<SecretString>>,
    events: Events,
    /// `touch` in config.toml, and the profiles that set their own.
    touch: TouchPolicy,
    touch_of: HashMap<String, TouchPolicy>,
}

/// What a request does at the vault. It decides whether a data key opened by a touch is
/// kept for the next requests: a use follows `touch` in config.toml (the profile's own,
/// where it sets one), and managing the vault never leaves it unlocked.
#[derive(Clone, Copy)]
pub enum Visit<'a> {
    /// Uses the secrets of a profile: a mint, or an IAM call signed with its keys.
    UseFor(&'a str),
    /// Shows a seed's code (`mfa-agent code`), for no profile in particular.
    ShowCode,
    /// Lists or changes seeds, keys or long-term keys. A vault that does not exist yet is
    /// created in `new_in`, where given.
    Manage { new_in: Option<StoreKind> },
}

impl Visit<'_> {
    /// Lists or changes the vault, and creates none.
    pub const MANAGE: Self = Self::Manage { new_in: None };
}

/// Who is asking, and how to reach them.
#[derive(Clone)]
pub struct Visitor {
    pub progress: Progress,
    /// Named in events and touch prompts: the profile of a mint, or "seed NAME".
    pub subject: String,
    /// Completes "touch your security key (NAME) to ...": "approve prod".
    pub purpose: String,
}

impl Door {
    #[must_use]
    pub fn new(config: &Config, data_dir: PathBuf, events: Events) -> Self {
        let ttl = Duration::from_secs(config.unlock_ttl_seconds);
        let idle = Duration::from_secs(config.unlock_idle_seconds);
        Self {
            data_dir,
            pinentry: config.pinentry.clone(),
            env: config.env.clone(),
            turn: tokio::sync::Mutex::new(()),
            pending: AtomicUsize::new(0),
            data_key: Unlocked::new(ttl, idle),
            passphrase: Arc::new(Unlocked::new(ttl, idle)),
            events,
            touch: config.touch,
            touch_of: config
                .profiles
                .iter()
                .filter_map(|(name, p)| Some((name.clone(), p.touch?)))
                .collect(),
        }
    }

    /// Whether `visit` keeps a data key a touch opened (and uses one kept already): the
    /// one place the unlock policy is worked out.
    fn keeps_unlocked(&self, visit: Visit<'_>) -> bool {
        let policy = match visit {
            Visit::UseFor(profile) => self.touch_of.get(profile).copied().unwrap_or(self.touch),
            Visit::ShowCode => self.touch,
            Visit::Manage { .. } => return false,
        };
        policy == TouchPolicy::Unlock
    }

    /// Where the vault lives.
    #[must_use]
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// Forgets the unlocked data key and passphrase.
    pub fn lock(&self) {
        self.data_key.clear();
        self.passphrase.clear();
    }

    /// Forgets the unlocked data key alone (a re-keying replaced it).
    pub fn forget_data_key(&self) {
        self.data_key.clear();
    }

    /// Until when the seeds stay unlocked under `touch = "unlock"`, if they are.
    #[must_use]
    pub fn unlocked_until(&self) -> Option<i64> {
        self.data_key.until()
    }

    /// Requests inside the door or waiting at it.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Runs `work` on the vault when it is this request's turn, on a blocking thread
    /// (keyring calls are D-Bus round trips, key operations wait for a touch). What the
    /// visit is decides whether a data key opened by a touch is kept for the next requests,
    /// and one kept already used ([`Visit`]).
    pub async fn enter<T, F>(
        &self,
        visitor: &Visitor,
        visit: Visit<'_>,
        work: F,
    ) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Vault, &AgentPrompter) -> anyhow::Result<T> + Send + 'static,
    {
        let ahead = self.pending.fetch_add(1, Ordering::Relaxed);
        self.events.send(Event::Queue { waiting: ahead + 1 });
        if ahead > 0 {
            let _ = visitor.progress.send(Prompt::Tell(format!(
                "waiting for {ahead} earlier request(s) at the vault and security key"
            )));
        }
        let result = {
            let _turn = self.turn.lock().await;
            let store = match visit {
                Visit::Manage { new_in } => new_in,
                Visit::UseFor(_) | Visit::ShowCode => None,
            };
            self.inside(visitor, self.keeps_unlocked(visit), store, work)
                .await
        };
        let left = self.pending.fetch_sub(1, Ordering::Relaxed) - 1;
        self.events.send(Event::Queue { waiting: left });
        result
    }

    async fn inside<T, F>(
        &self,
        visitor: &Visitor,
        keep_unlocked: bool,
        store: Option<StoreKind>,
        work: F,
    ) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Vault, &AgentPrompter) -> anyhow::Result<T> + Send + 'static,
    {
        let asked = Arc::new(AtomicBool::new(false));
        let prompter = AgentPrompter {
            visitor: visitor.clone(),
            pinentry: self.pinentry.clone(),
            env: self.env.clone(),
            events: self.events.clone(),
            asked: asked.clone(),
        };
        let held = if keep_unlocked {
            self.data_key.get()
        } else {
            None
        };
        let was_held = held.is_some();
        let typed = Arc::new(Mutex::new(None));
        let (kept, typing) = (self.passphrase.get(), typed.clone());
        let data_dir = self.data_dir.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let passphrase = passphrase_source(prompter.clone(), kept, typing);
            let mut vault = Vault::open(&data_dir, store, passphrase)?;
            vault = vault.with_unlocker(Box::new(ByTouch {
                purpose: prompter.visitor.purpose.clone(),
                prompter: prompter.clone(),
            }));
            if let Some(key) = held {
                vault.set_data_key(key)?;
            }
            let output = work(&mut vault, &prompter)?;
            anyhow::Ok((output, vault.take_data_key()))
        })
        .await
        .context("the vault task failed")?;
        // Touched or not, the wait for the user is over (the tray and the touch
        // notification stop asking).
        if asked.load(Ordering::Relaxed) {
            self.events.send(Event::Approved {
                profile: visitor.subject.clone(),
            });
        }
        let (output, opened) = outcome?;
        // Only a passphrase that opened the file is worth keeping.
        if let Some(passphrase) = typed.lock().expect("passphrase lock poisoned").take() {
            self.passphrase.keep(passphrase);
        }
        if keep_unlocked
            && !was_held
            && let Some(key) = opened
        {
            self.data_key.keep(key);
        }
        Ok(output)
    }
}

/// The encrypted file's passphrase: the one kept from an earlier request, else the file
/// `MFA_AGENT_PASSPHRASE_FILE` names (in the agent's environment: automation), else asked
/// of the waiting client. What the user typed is put in `typed`, to keep once it worked.
fn passphrase_source(
    prompter: AgentPrompter,
    kept: Option<SecretString>,
    typed: Arc<Mutex<Option<SecretString>>>,
) -> PassphraseSource {
    Box::new(move |purpose| {
        if let (Some(kept), PassphrasePurpose::Unlock) = (&kept, purpose) {
            return Ok(kept.clone());
        }
        if let Some(path) = &prompter.env.passphrase_file {
            if let PassphrasePurpose::Retry { .. } = purpose {
                return Err(PassphraseError::WrongInFile { path: path.clone() }.into());
            }
            let passphrase =
                crate::input::secret_from_file(path).map_err(|e| PassphraseError::File {
                    source: anyhow::Error::new(e),
                })?;
            if passphrase.is_empty() {
                return Err(PassphraseError::EmptyFile { path: path.clone() }.into());
            }
            return Ok(passphrase);
        }
        let (kind, message) = match purpose {
            PassphrasePurpose::Unlock => (
                AskKind::Passphrase,
                "Passphrase for the encrypted seed file".to_owned(),
            ),
            PassphrasePurpose::Retry { tries_left } => (
                AskKind::Passphrase,
                format!(
                    "Wrong passphrase; try again ({} after this one)",
                    match tries_left {
                        0 => "no tries left".to_owned(),
                        1 => "1 try left".to_owned(),
                        n => format!("{n} tries left"),
                    }
                ),
            ),
            PassphrasePurpose::Create => (
                AskKind::NewPassphrase,
                "New passphrase for the encrypted seed file".to_owned(),
            ),
        };
        let Some(passphrase) = prompter.ask(kind, &message) else {
            return Err(PassphraseError::NoWayToAsk.into());
        };
        if passphrase.is_empty() {
            return Err(PassphraseError::NoneTyped.into());
        }
        if purpose == PassphrasePurpose::Create
            && passphrase.expose().chars().count() < MIN_PASSPHRASE
        {
            return Err(PassphraseError::TooShort {
                min: MIN_PASSPHRASE,
            }
            .into());
        }
        *typed.lock().expect("passphrase lock poisoned") = Some(passphrase.clone());
        Ok(passphrase)
    })
}

/// Prompts from the agent reach the user through the waiting client ("touch your key"),
/// and through the event feed the tray and notifications.
#[derive(Clone)]
pub struct AgentPrompter {
    visitor: Visitor,
    /// The pinentry program for when the client cannot ask for a PIN.
    pinentry: Option<String>,
    env: Environment,
    events: Events,
    /// Set once the user was asked to touch: the answer is an approval.
    asked: Arc<AtomicBool>,
}

impl AgentPrompter {
    /// `MFA_AGENT_PIN_FILE` in the agent's environment: automation's PIN.
    #[must_use]
    pub fn pin_file(&self) -> Option<&std::path::Path> {
        self.env.pin_file.as_deref()
    }

    /// Asks the waiting client's user; `None` when the client cannot ask (no terminal) or
    /// went away. Blocks: call it on the door's blocking thread.
    pub fn ask(&self, kind: AskKind, message: &str) -> Option<SecretString> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let asked = Prompt::Ask {
            kind,
            message: message.to_owned(),
            reply,
        };
        if self.visitor.progress.send(asked).is_err() {
            return None;
        }
        answer.blocking_recv().ok().flatten()
    }

    /// A yes from the user, or an error that says how to confirm without a terminal.
    pub fn confirm(&self, question: &str) -> anyhow::Result<()> {
        match self.ask(AskKind::Confirm, question) {
            Some(answer) if answer.expose() == "yes" => Ok(()),
            Some(_) => anyhow::bail!("nothing was changed (you answered no)"),
            None => anyhow::bail!(
                "nothing was changed: refusing without confirmation, and there is no terminal to ask on; pass --yes"
            ),
        }
    }
}

impl crate::keys::unlock::Prompter for AgentPrompter {
    fn tell(&self, message: &str) {
        let _ = self.visitor.progress.send(Prompt::Tell(message.to_owned()));
        self.events.send(Event::TouchNeeded {
            profile: self.visitor.subject.clone(),
            message: message.to_owned(),
        });
    }

    fn touch(&self, message: &str) {
        self.asked.store(true, Ordering::Relaxed);
        self.tell(message);
    }

    /// From `MFA_AGENT_PIN_FILE` if the agent has it (automation), else the client's
    /// terminal, else a pinentry dialog, as gpg-agent does.
    fn pin(&self, _: &EnrolledKey, prompt: &str) -> Result<SecretString, VaultError> {
        if let Some(path) = &self.env.pin_file {
            return crate::input::secret_from_file(path).map_err(|e| {
                UnlockError::PinFile {
                    source: anyhow::Error::new(e),
                }
                .into()
            });
        }
        let message = format!("{prompt} to {}", self.visitor.purpose);
        if let Some(pin) = self.ask(AskKind::Pin, &message) {
            return Ok(pin);
        }
        crate::desktop::pinentry::ask(self.pinentry.as_deref(), &message)
            .map_err(|source| UnlockError::NoWayToAskPin { source }.into())
    }

    /// The client that asked hung up (its connection dropped the progress channel).
    fn key_wait(&self) -> Duration {
        self.env.key_wait
    }

    fn cancelled(&self) -> bool {
        self.visitor.progress.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `touch = "unlock"` for uses, a profile's own `touch` over it, and never for changes.
    #[test]
    fn a_visit_keeps_the_vault_unlocked_as_its_profile_says_and_a_change_never_does() {
        let config = Config::parse(
            "touch = \"unlock\"\n[profiles.prod]\ntouch = \"every-mint\"\n",
            "config.toml".into(),
        )
        .unwrap();
        let door = Door::new(&config, "/nonexistent".into(), Events::default());
        assert!(door.keeps_unlocked(Visit::UseFor("dev")));
        assert!(
            !door.keeps_unlocked(Visit::UseFor("prod")),
            "the profile's own"
        );
        assert!(door.keeps_unlocked(Visit::ShowCode));
        assert!(!door.keeps_unlocked(Visit::MANAGE));
        assert!(!door.keeps_unlocked(Visit::Manage {
            new_in: Some(StoreKind::File)
        }));
        let every = Door::new(&Config::default(), "/nonexistent".into(), Events::default());
        assert!(
            !every.keeps_unlocked(Visit::UseFor("dev")),
            "the default asks each mint"
        );
        assert!(!every.keeps_unlocked(Visit::ShowCode));
    }
}
