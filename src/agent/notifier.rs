//! Desktop notifications from the agent's events: a touch that is taking a while, new
//! credentials, failures, and sessions whose renewal will need a touch soon. Each kind can be
//! turned off in config.toml (`[notifications]`).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::Ordering;

use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use super::AgentState;
use crate::clock::unix_now_i64 as unix_now;
use crate::config::TouchPolicy;
use crate::desktop::notify::{self, Shown, Urgency};
use crate::desktop::sentence;
use crate::protocol::{Event, SessionName, SessionSummary};

/// How often sessions are checked for an approaching renewal.
const EXPIRY_CHECK: Duration = Duration::from_secs(30);

/// Starts showing notifications, unless config.toml turns them off: subscribed to the
/// agent's events before it returns, and said in `status` from then on (a test, or a user
/// who wonders why nothing shows, has it in writing instead of waiting to see nothing).
pub fn start(state: &Arc<AgentState>, data_dir: PathBuf) {
    if !state.minter.config().notifications.enabled {
        return;
    }
    let events = state.minter.events.subscribe();
    state.notifying.store(true, Ordering::SeqCst);
    let state = state.clone();
    tokio::spawn(async move {
        run(&state, events, data_dir).await;
        state.notifying.store(false, Ordering::SeqCst);
    });
}

async fn run(state: &AgentState, mut events: Receiver<Event>, data_dir: PathBuf) {
    let config = state.minter.config().clone();
    let settings = config.notifications.clone();
    // At most an hour: a larger setting must not overflow the clock when added to it.
    let touch_delay = Duration::from_millis(settings.touch_delay_ms.min(3_600_000));
    // Touch requests not yet answered, by profile: when to notify, and what to say.
    let mut pending: HashMap<String, (Instant, String)> = HashMap::new();
    let mut shown: HashMap<String, Shown> = HashMap::new();
    let mut warned: HashSet<(String, i64)> = HashSet::new();
    let mut expiry_check = tokio::time::interval(EXPIRY_CHECK);
    loop {
        let next_due = pending.values().map(|(due, _)| *due).min();
        tokio::select! {
            event = events.recv() => {
                let event = match event {
                    Ok(event) => event,
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return,
                };
                // Whatever the outcome, a request that was waiting for a touch is not any more.
                if let Event::Approved { profile } | Event::Issued { profile, .. } | Event::Failed { profile, .. } = &event {
                    pending.remove(profile);
                    if let Some(notification) = shown.remove(profile) {
                        tokio::task::spawn_blocking(move || notification.close());
                    }
                }
                match event {
                    Event::TouchNeeded { profile, message } if settings.touch => {
                        // A new request (the second touch of an enrolment) replaces the one
                        // shown: the old text is out of date.
                        if let Some(notification) = shown.remove(&profile) {
                            tokio::task::spawn_blocking(move || notification.close());
                        }
                        pending.insert(profile, (Instant::now() + touch_delay, message));
                    }
                    event => {
                        if let Some((summary, body)) = news(event, &settings) {
                            show(summary, body, Urgency::Normal).await;
                        }
                    }
                }
            }
            () = tokio::time::sleep_until(next_due.unwrap_or_else(Instant::now)), if next_due.is_some() => {
                let now = Instant::now();
                let due: Vec<String> = pending
                    .iter()
                    .filter(|(_, (at, _))| *at <= now)
                    .map(|(profile, _)| profile.clone())
                    .collect();
                for profile in due {
                    let (_, message) = pending.remove(&profile).expect("listed above");
                    if let Some(notification) =
                        show(sentence(&message), format!("mfa-agent is waiting to approve {profile}."), Urgency::Critical).await
                    {
                        shown.insert(profile, notification);
                    }
                }
            }
            _ = expiry_check.tick(), if settings.expiring => {
                let sessions = state.minter.cache.summaries();
                let due = renewals_due(&sessions, unix_now(), config.refresh_margin_seconds, settings.expiring_notice_seconds);
                if due.is_empty() {
                    continue;
                }
                let sealed = {
                    let data_dir = data_dir.clone();
                    tokio::task::spawn_blocking(move || vault_is_sealed(&data_dir)).await.unwrap_or(false)
                };
                for (profile, expiration, renew_at) in due {
                    let unlocked_past_renewal = state.minter.unlocked_until().is_some_and(|until| until > renew_at);
                    let needs_touch = sealed
                        && (config.touch(&profile) == TouchPolicy::EveryMint || !unlocked_past_renewal);
                    if needs_touch && warned.insert((profile.clone(), expiration)) {
                        let minutes = (renew_at - unix_now()).max(0) / 60;
                        show(
                            format!("AWS session for {profile} needs renewing in {minutes} min"),
                            "The next AWS call after that asks for a touch of your security key.".into(),
                            Urgency::Normal,
                        )
                        .await;
                    }
                }
            }
        }
    }
}

/// Profile sessions whose renewal (when less than `margin` is left) comes within `notice`
/// seconds: (profile, expiration, renewal time).
fn renewals_due(
    sessions: &[SessionSummary],
    now: i64,
    margin: u64,
    notice: u64,
) -> Vec<(String, i64, i64)> {
    let (margin, notice) = (margin.cast_signed(), notice.cast_signed());
    sessions
        .iter()
        .filter_map(|s| {
            let SessionName::Profile(profile) = &s.name else {
                return None;
            };
            let renew_at = s.expiration - margin;
            (renew_at > now && renew_at - now <= notice)
                .then(|| (profile.to_owned(), s.expiration, renew_at))
        })
        .collect()
}

fn vault_is_sealed(data_dir: &std::path::Path) -> bool {
    crate::vault::read_index(data_dir).is_ok_and(|index| index.is_sealed())
}

/// The notification an event is news for, under `settings`: (summary, body).
fn news(event: Event, settings: &crate::config::Notifications) -> Option<(String, String)> {
    match event {
        Event::CodeWait { profile, seconds } if settings.touch => Some((
            format!("mfa-agent: {profile} waits {seconds} s"),
            "The current MFA code was sent already, and AWS takes each code once: the session follows when the next code's window opens.".into(),
        )),
        Event::Issued { profile, expiration } if settings.issued => {
            let minutes = (expiration - unix_now()).max(0) / 60;
            Some((
                format!("AWS credentials issued for {profile}"),
                format!("Valid for {minutes} min."),
            ))
        }
        Event::Failed { profile, message } if settings.errors => {
            Some((format!("mfa-agent: {profile} failed"), message))
        }
        _ => None,
    }
}

async fn show(summary: String, body: String, urgency: Urgency) -> Option<Shown> {
    tokio::task::spawn_blocking(move || notify::show(&summary, &body, urgency))
        .await
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(name: SessionName, expiration: i64) -> SessionSummary {
        SessionSummary {
            context: None,
            name,
            access_key: "****ABCD".into(),
            expiration,
        }
    }

    #[test]
    fn warns_once_renewal_is_within_the_notice() {
        let now = 1_000_000;
        let sessions = [
            // Renewed (at 15 min left) in 4 min: due.
            session(SessionName::Profile("soon".into()), now + 900 + 240),
            // In an hour: not yet.
            session(SessionName::Profile("later".into()), now + 900 + 3600),
            // Renewal time already passed: the next call mints anyway, nothing to announce.
            session(SessionName::Profile("stale".into()), now + 600),
            // MFA sessions behind roles are not what the user asked for by name.
            session(SessionName::MfaSession("base".into()), now + 900 + 60),
        ];
        let due = renewals_due(&sessions, now, 900, 300);
        assert_eq!(due, vec![("soon".to_owned(), now + 1140, now + 240)]);
    }
}
