//! The clipboard for copied codes, wiped when the code's time window ends so a stale code
//! (still a secret for that window) does not linger there.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};

/// Owns the clipboard connection: on X11 the text is served from this process, so it lives
/// as long as the tray.
#[derive(Clone)]
pub(super) struct Clipboard(Arc<Mutex<arboard::Clipboard>>);

impl Clipboard {
    pub(super) fn open() -> Result<Self> {
        let clipboard =
            arboard::Clipboard::new().context("no clipboard (is a graphical session running?)")?;
        Ok(Self(Arc::new(Mutex::new(clipboard))))
    }

    /// Puts `code` on the clipboard and clears it at `valid_until` (Unix seconds), unless
    /// something else was copied in the meantime.
    pub(super) fn copy_until(&self, code: String, valid_until: u64) -> Result<()> {
        self.0
            .lock()
            .expect("clipboard lock poisoned")
            .set_text(code.clone())
            .context("failed to set the clipboard")?;
        let clipboard = self.clone();
        std::thread::spawn(move || {
            let now = crate::clock::unix_now();
            std::thread::sleep(Duration::from_secs(valid_until.saturating_sub(now)));
            let mut board = clipboard.0.lock().expect("clipboard lock poisoned");
            if board.get_text().is_ok_and(|text| text == code) {
                let _ = board.clear();
            }
        });
        Ok(())
    }
}
