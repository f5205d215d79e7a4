//! Security keys over USB HID: FIDO2 (CTAP2) through ctap-hid-fido2 on hidapi/hidraw.
//!
//! Every HID operation runs on its own thread, one at a time, with a deadline: the library's
//! calls block without a timeout, and a key that stops answering must not hang mfa-agent.

pub mod ctap1;
mod device;
pub mod fido;
pub mod seal;
#[cfg(test)]
pub mod soft;
pub mod unlock;

use std::time::Duration;

use ctap_hid_fido2::LibCfg;
use thiserror::Error;

pub use self::device::list;
use self::fido::Credential;
use crate::protocol::KeyDevice;
use crate::secret::{SecretBytes, SecretString};

/// The relying party every mfa-agent credential belongs to.
pub const RP_ID: &str = "mfa-agent";

/// ctap-hid-fido2's settings: it must never print (its keep-alive message goes to stdout
/// by default, which would corrupt credential_process output).
fn lib_config() -> LibCfg {
    let mut cfg = LibCfg::init();
    cfg.enable_keep_alive_msg = false;
    cfg.keep_alive_msg = String::new();
    cfg.keep_alive_msg_to_stderr = true;
    cfg.enable_log = false;
    cfg
}

/// The security-key operations opening the vault needs. [`Hid`] is the real thing (CTAP2
/// over USB HID); tests put a software authenticator behind it to reach the failures a
/// hardware key produces only on a bad day (a removed key, a blocked PIN, a cancel).
pub trait Authenticators {
    /// The FIDO2 devices plugged in now.
    fn devices(&self) -> Result<Vec<KeyDevice>, KeyError>;
    /// Whether the device at `path` made `credential_id`, asked without a touch.
    fn holds(&self, path: &str, credential_id: &[u8]) -> Result<bool, KeyError>;
    /// PIN tries left on the device at `path`.
    fn pin_retries(&self, path: &str) -> Result<u32, KeyError>;
    /// The credential's hmac-secret output for `salt`, after a touch (and the PIN), its
    /// assertion signature checked against the enrolled public key. While the key waits
    /// for the touch, `cancelled` is asked now and then; once it says yes, the request is
    /// cancelled on the key (it stops blinking) and this returns [`KeyError::Cancelled`].
    fn hmac_secret(
        &self,
        path: &str,
        credential: &Credential,
        salt: [u8; 32],
        pin: Option<SecretString>,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<SecretBytes, KeyError>;
}

/// Security keys over USB HID (hidapi and ctap-hid-fido2).
pub struct Hid;

impl Authenticators for Hid {
    fn devices(&self) -> Result<Vec<KeyDevice>, KeyError> {
        list()
    }

    fn holds(&self, path: &str, credential_id: &[u8]) -> Result<bool, KeyError> {
        fido::holds(path, credential_id)
    }

    fn pin_retries(&self, path: &str) -> Result<u32, KeyError> {
        fido::pin_retries(path)
    }

    fn hmac_secret(
        &self,
        path: &str,
        credential: &Credential,
        salt: [u8; 32],
        pin: Option<SecretString>,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<SecretBytes, KeyError> {
        fido::hmac_secret(path, credential, salt, pin, cancelled)
    }
}

/// What went wrong with a security key. Each message says what happened; what to do about
/// it is written in `crate::advice`.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum KeyError {
    #[error("cannot use USB HID devices ({detail})")]
    HidUnavailable { detail: String },
    #[error("the security key did not answer within {} s", .0.as_secs())]
    Timeout(Duration),
    /// An earlier operation on a key never ended (a wedged key blocks its read for ever):
    /// nothing can reach a key until it is unplugged, which ends that read.
    #[error("a security key stopped answering an earlier request and still holds the USB HID line")]
    Wedged,
    /// Anything else the key or the HID stack got wrong, such as an answer that does not
    /// parse (which a replug usually cures: a key is a small computer).
    #[error("the security key operation failed ({0})")]
    Device(String),
    #[error("the security key was unplugged before it answered")]
    Unplugged,
    #[error("wrong PIN for the security key")]
    WrongPin,
    #[error("the security key takes no more PINs after three wrong ones in a row")]
    PinAuthBlocked,
    #[error(
        "the security key's PIN is blocked: no tries are left, and only a reset with its vendor's tool (which erases its credentials) makes it usable again"
    )]
    PinBlocked,
    #[error("this security key needs its PIN")]
    PinRequired,
    #[error("a security key PIN has 4 to 63 characters; nothing was sent to the key")]
    PinFormat,
    #[error("the security key was not touched in time")]
    TouchTimeout,
    #[error("the security key refused the operation (touch denied)")]
    Denied,
    #[error("the operation on the security key was cancelled")]
    Cancelled,
    #[error("this security key is not enrolled with mfa-agent (or was reset)")]
    NotEnrolled,
    #[error("this security key cannot seal secrets (its credential came back without hmac-secret)")]
    NoHmacSecret,
    #[error(
        "the security key's signature does not match the enrolled public key: this is not the enrolled key, or it answered wrongly"
    )]
    BadSignature,
}

/// Runs `op` on a fresh thread, one HID operation at a time, giving up after `deadline`.
fn run_exclusive<T: Send + 'static>(
    deadline: Duration,
    op: impl FnOnce() -> Result<T, KeyError> + Send + 'static,
) -> Result<T, KeyError> {
    run_exclusive_until(deadline, op, &|| false, || {})
}

/// [`run_exclusive`], asking `cancelled` every 100 ms while `op` runs; the first yes calls
/// `cancel` once (which makes the key end `op` early).
fn run_exclusive_until<T: Send + 'static>(
    deadline: Duration,
    op: impl FnOnce() -> Result<T, KeyError> + Send + 'static,
    cancelled: &dyn Fn() -> bool,
    cancel: impl FnOnce(),
) -> Result<T, KeyError> {
    use std::sync::atomic::{AtomicBool, Ordering};
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // Set when a caller gave up on an operation whose thread still runs (ctap-hid-fido2's
    // reads have no timeout): it holds the line until the key is unplugged, so later
    // operations fail at once, saying so, instead of each waiting out its deadline.
    static WEDGED: AtomicBool = AtomicBool::new(false);
    if WEDGED.load(Ordering::Acquire) {
        return Err(KeyError::Wedged);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("security-key".into())
        .spawn(move || {
            let _turn = ONE_AT_A_TIME
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // A panic inside the HID libraries becomes an error, not a crash.
            let result =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(op)).unwrap_or_else(|_| {
                    Err(KeyError::Device(
                        "the HID library failed unexpectedly".into(),
                    ))
                });
            // Whoever waited has been answered, or has given up: the line is free again.
            WEDGED.store(false, Ordering::Release);
            let _ = tx.send(result);
        })
        .map_err(|e| KeyError::Device(format!("failed to start the HID thread: {e}")))?;
    let give_up = std::time::Instant::now() + deadline;
    let mut cancel = Some(cancel);
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(result) => return result,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(KeyError::Device(
                    "the HID thread ended without an answer".into(),
                ));
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        if std::time::Instant::now() >= give_up {
            WEDGED.store(true, Ordering::Release);
            return Err(KeyError::Timeout(deadline));
        }
        if cancel.is_some() && cancelled() {
            tracing::info!("the waiting client went away: cancelling the touch request");
            (cancel.take().expect("checked above"))();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key that never answers holds the one HID line for as long as it stays plugged in:
    /// the request that waited on it times out, and later requests fail at once, saying to
    /// replug, rather than each waiting out its own deadline. Once the stuck read ends (the
    /// key is pulled), keys answer again.
    #[test]
    fn a_wedged_key_fails_later_requests_at_once_until_it_lets_go() {
        let (unplug, unplugged) = std::sync::mpsc::channel::<()>();
        let stuck = run_exclusive(Duration::from_millis(200), move || {
            let _ = unplugged.recv_timeout(Duration::from_secs(30));
            Ok(())
        });
        assert_eq!(stuck, Err(KeyError::Timeout(Duration::from_millis(200))));
        let started = std::time::Instant::now();
        let next = run_exclusive(Duration::from_secs(30), || Ok(1));
        assert_eq!(next, Err(KeyError::Wedged));
        assert!(started.elapsed() < Duration::from_secs(1), "at once");
        assert!(crate::report::sentence(&KeyError::Wedged).contains("unplug it"));

        unplug.send(()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let answered = loop {
            match run_exclusive(Duration::from_secs(5), || Ok(2)) {
                Err(KeyError::Wedged) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                other => break other,
            }
        };
        assert_eq!(answered, Ok(2));
    }
}
