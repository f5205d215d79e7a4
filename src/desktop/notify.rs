//! Desktop notifications through the freedesktop notification service (notify-rust on the
//! session D-Bus). Best effort: a desktop without a notification service loses only the
//! notification, and the reason goes to the log.

/// How much a notification matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    Normal,
    /// Needs the user now (a touch): stays until dismissed or closed.
    Critical,
}

/// A shown notification, to close when it no longer applies.
pub struct Shown(notify_rust::NotificationHandle);

impl Shown {
    pub fn close(self) {
        self.0.close();
    }
}

/// Shows a notification; blocking (one D-Bus call).
pub fn show(summary: &str, body: &str, urgency: Urgency) -> Option<Shown> {
    let mut notification = notify_rust::Notification::new();
    notification
        .appname("mfa-agent")
        .summary(summary)
        .body(body)
        .icon(match urgency {
            Urgency::Normal => "dialog-information",
            Urgency::Critical => "dialog-password",
        });
    #[cfg(all(unix, not(target_os = "macos")))]
    notification.urgency(match urgency {
        Urgency::Normal => notify_rust::Urgency::Normal,
        Urgency::Critical => notify_rust::Urgency::Critical,
    });
    match notification.show() {
        Ok(handle) => Some(Shown(handle)),
        Err(e) => {
            tracing::info!("no desktop notification ({e}): {summary}");
            None
        }
    }
}
