//! Locking on suspend: logind announces a suspend on the system bus (`PrepareForSleep`
//! with `true`), and the agent forgets its unlock (the data key, the encrypted file's
//! passphrase) before the machine sleeps, so an unlock never spans a night.

/// logind's signal. No sender is required: a forged one can only lock the agent, which is
/// the safe direction, and a test can send it without owning logind's name.
const PREPARE_FOR_SLEEP: &str = "type='signal',interface='org.freedesktop.login1.Manager',member='PrepareForSleep',path='/org/freedesktop/login1'";

/// Calls `on_sleep` each time the machine is about to sleep, from a thread of its own, for
/// as long as the system bus is there. Without one (a container, a headless box without
/// systemd) there is nothing to watch, and the unlock's times alone end it.
pub(super) fn watch(on_sleep: impl Fn() + Send + 'static) {
    let spawned = std::thread::Builder::new()
        .name("suspend-watch".into())
        .spawn(move || {
            let messages = zbus::blocking::Connection::system().and_then(|bus| {
                zbus::blocking::MessageIterator::for_match_rule(PREPARE_FOR_SLEEP, &bus, Some(8))
            });
            let messages = match messages {
                Ok(messages) => messages,
                Err(e) => {
                    tracing::info!("not locking on suspend: no system bus to hear logind on ({e})");
                    return;
                }
            };
            for message in messages.flatten() {
                if message.body().deserialize::<bool>().unwrap_or(false) {
                    on_sleep();
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("not locking on suspend: {e}");
    }
}
