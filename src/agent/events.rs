//! The agent's event feed: minting, approvals and state changes, for subscribed clients
//! (the tray) and the desktop notifier. A broadcast channel: a slow subscriber misses
//! events (and is told so) rather than slowing the agent down.

use tokio::sync::broadcast;

use crate::protocol::Event;

/// Events a subscriber may fall behind by before it starts missing some.
const BACKLOG: usize = 64;

#[derive(Clone)]
pub struct Events(broadcast::Sender<Event>);

impl Default for Events {
    fn default() -> Self {
        Self(broadcast::channel(BACKLOG).0)
    }
}

impl Events {
    /// Publishes `event`; nobody listening is fine.
    pub fn send(&self, event: Event) {
        tracing::debug!(?event, "event");
        let _ = self.0.send(event);
    }

    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.0.subscribe()
    }
}
