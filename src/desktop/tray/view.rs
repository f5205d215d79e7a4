//! What the tray shows, as plain data: built from the agent's state and events, turned into
//! an icon, a headline and menu entries. No D-Bus here, so it is tested directly.

use crate::desktop::sentence;
use crate::protocol::{Event, SessionSummary, StatusReport};
use crate::sys::local_hh_mm;

/// The icon's four states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// No session cached and the seeds locked: the next AWS call needs MFA (a touch).
    Locked,
    /// Sessions cached, or the seeds unlocked: AWS calls go through without asking.
    Unlocked,
    /// A mint waits for a touch of the security key.
    Waiting,
    /// The agent cannot be reached, or the last mint failed.
    Error,
}

impl Look {
    /// A freedesktop icon-theme name every desktop has.
    #[must_use]
    pub fn icon_name(self) -> &'static str {
        match self {
            Self::Locked => "changes-prevent",
            Self::Unlocked => "changes-allow",
            Self::Waiting => "dialog-password",
            Self::Error => "dialog-error",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct View {
    /// Why the agent cannot be reached, if it cannot.
    pub unreachable: Option<String>,
    pub sessions: Vec<SessionSummary>,
    pub unlocked_until: Option<i64>,
    /// What the agent waits for ("touch your security key (main) to approve base").
    pub waiting: Option<String>,
    /// The last mint's failure, until the next success.
    pub failure: Option<String>,
    /// Seed names, for "copy code".
    pub seeds: Vec<String>,
    /// Requests at the agent's vault and security key: the one running and those queued.
    pub queue: usize,
}

impl View {
    /// Takes the state a subscription starts with.
    pub fn connected(&mut self, report: &StatusReport) {
        self.unreachable = None;
        self.sessions.clone_from(&report.sessions);
        self.unlocked_until = report.unlocked_until;
        self.waiting = None;
        self.queue = report.queue;
    }

    pub fn apply(&mut self, event: Event) {
        match event {
            Event::Sessions {
                sessions,
                unlocked_until,
            } => {
                self.sessions = sessions;
                self.unlocked_until = unlocked_until;
            }
            Event::TouchNeeded { message, .. } => self.waiting = Some(message),
            Event::CodeWait { profile, seconds } => {
                self.waiting = Some(format!(
                    "waiting {seconds} s for the next MFA code for {profile} (AWS takes each code once)"
                ));
            }
            Event::Approved { .. } => self.waiting = None,
            Event::Issued { .. } => {
                self.waiting = None;
                self.failure = None;
            }
            Event::Failed { profile, message } => {
                self.waiting = None;
                self.failure = Some(format!("{profile}: {message}"));
            }
            Event::Expiring { .. } => {}
            Event::Queue { waiting } => self.queue = waiting,
        }
    }

    /// The queue at the security key, when more than the running request waits.
    #[must_use]
    pub fn queue_line(&self) -> Option<String> {
        (self.queue > 1)
            .then(|| format!("{} request(s) waiting for the security key", self.queue - 1))
    }

    #[must_use]
    pub fn look(&self) -> Look {
        if self.unreachable.is_some() || self.failure.is_some() {
            Look::Error
        } else if self.waiting.is_some() {
            Look::Waiting
        } else if self.sessions.is_empty() && self.unlocked_until.is_none() {
            Look::Locked
        } else {
            Look::Unlocked
        }
    }

    /// One line saying what is going on: the menu's first entry and the tooltip.
    #[must_use]
    pub fn headline(&self) -> String {
        if let Some(why) = &self.unreachable {
            return format!("Agent not reachable: {why}");
        }
        if let Some(waiting) = &self.waiting {
            return sentence(waiting);
        }
        if let Some(failure) = &self.failure {
            return format!("Failed: {failure}");
        }
        match (self.unlocked_until, self.sessions.len()) {
            (Some(until), _) => format!("Unlocked until {}", local_hh_mm(until)),
            (None, 0) => "Locked".into(),
            (None, n) => format!("{n} session(s) cached"),
        }
    }

    /// "base: until 14:32" for each profile's session (MFA sessions behind roles included,
    /// marked as such).
    #[must_use]
    pub fn session_lines(&self) -> Vec<String> {
        self.sessions
            .iter()
            .map(|s| format!("{}: until {}", s.display_name(), local_hh_mm(s.expiration)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::SessionName;

    fn session(name: SessionName) -> SessionSummary {
        SessionSummary {
            context: None,
            name,
            access_key: "****ABCD".into(),
            expiration: 0,
        }
    }

    #[test]
    fn the_icon_follows_the_agent() {
        let mut view = View::default();
        assert_eq!(view.look(), Look::Locked);
        assert_eq!(view.headline(), "Locked");

        view.apply(Event::TouchNeeded {
            profile: "base".into(),
            message: "touch your security key (main) to approve base".into(),
        });
        assert_eq!(view.look(), Look::Waiting);
        assert_eq!(
            view.headline(),
            "Touch your security key (main) to approve base"
        );

        view.apply(Event::CodeWait {
            profile: "base".into(),
            seconds: 12,
        });
        assert_eq!(view.look(), Look::Waiting);
        assert_eq!(
            view.headline(),
            "Waiting 12 s for the next MFA code for base (AWS takes each code once)"
        );

        view.apply(Event::Issued {
            profile: "base".into(),
            expiration: 0,
        });
        view.apply(Event::Sessions {
            sessions: vec![
                session(SessionName::Profile("base".into())),
                session(SessionName::MfaSession("admin-source".into())),
            ],
            unlocked_until: None,
        });
        assert_eq!(view.look(), Look::Unlocked);
        assert_eq!(view.headline(), "2 session(s) cached");
        let lines = view.session_lines();
        assert!(lines[0].starts_with("base: until "), "{lines:?}");
        assert!(
            lines[1].starts_with("admin-source (MFA session): until "),
            "{lines:?}"
        );

        view.apply(Event::Failed {
            profile: "prod".into(),
            message: "AWS denied the request".into(),
        });
        assert_eq!(view.look(), Look::Error);
        assert_eq!(view.headline(), "Failed: prod: AWS denied the request");

        view.unreachable = Some("no daemon".into());
        assert!(view.headline().starts_with("Agent not reachable"));
    }
}
