//! A virtual FIDO2 security key on /dev/uhid, for mfa-agent's micro-VM tests: the real
//! kernel hidraw device, hidapi and ctap-hid-fido2 on one side, soft-fido2 (an independent
//! CTAP2 implementation) on the other.
//!
//!   mfa-agent-test-token [--u2f] [--pin PIN] [--deny-touch] [--touch-log FILE] [--touch-delay-ms MS]
//!                        [--touch-delay-file FILE] [--gate-hmac-on-touch] [--power-cycle-file FILE]
//!                        [--garble-file FILE [--garble-log FILE]] [--u2f --replay-file FILE]
//!                        [--no-cred-protect]
//!
//! With --no-cred-protect it is a CTAP 2.0 key: getInfo lists hmac-secret alone, and its
//! credentials have no protection level, so one answers a request made without the PIN,
//! even one without a touch. Its hmac-secret output then comes from the credential's other
//! secret (CTAP 2.0/2.1 hmac-secret: CredRandomWithoutUV besides CredRandomWithUV), so it
//! differs from the output under the PIN, as on real keys. soft-fido2 keeps one secret per
//! credential and makes every credential created under the PIN "UV required" whatever the
//! request said; this key does what the spec says instead.
//!
//! With --u2f it is a U2F-only key instead (CTAP1 register/authenticate, no CTAP2); with
//! --replay-file as well, while FILE exists it answers every touched authentication with the
//! first answer it gave (a recorded approval replayed).
//! Prints "ready" on stdout once the device exists, then serves until killed. Touches are
//! approved at once (or after MS milliseconds, a slow person; or after the milliseconds
//! FILE holds at each touch) unless --deny-touch (then every presence check is refused). soft-fido2 answers hmac-secret to an assertion without user
//! presence, as many keys do; with --gate-hmac-on-touch it refuses that request with
//! CTAP2_ERR_UNSUPPORTED_OPTION instead, as the Nitrokey 3 / SoloKeys 2 firmware does.
//!
//! While a CTAP2 request waits for the touch, the key behaves as the CTAP 2.1 HID transport
//! asks (§11.2.9.1.5, 11.2.9.2.1) and real keys do: it keeps reading the bus, sends KEEPALIVE
//! (status UPNEEDED) every 100 ms on the request's channel, and a CTAPHID_CANCEL on that
//! channel ends the wait with CTAP2_ERR_KEEPALIVE_CANCEL. The touch log gets "cancelled"
//! for each request cancelled that way.
//!
//! With --power-cycle-file, the key is unplugged and plugged back in whenever FILE appears
//! (it is removed; the next CTAP2 request meets the fresh key): as on hardware, the key then
//! keeps its credentials, PIN and PIN retries (its "flash") and forgets what lives in RAM —
//! the run of wrong PINs that blocks PIN use until a power cycle (CTAP 2.1
//! PIN_AUTH_BLOCKED), its key agreement and PIN tokens.
//!
//! With --garble-file, while FILE exists the key damages some of its CTAP2 answers (see
//! garble.rs): a fuzzer of the platform's side of CTAP2.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use soft_fido2::{
    Authenticator, AuthenticatorCallbacks, AuthenticatorConfig, AuthenticatorOptions, Credential, CredentialRef,
    PinState, PinStorageCallbacks, Result, StatusCode, UpResult, UvResult,
};
use soft_fido2_transport::{Cmd, CommandHandler, CtapHidHandler, Packet, UhidDevice};

mod garble;
mod u2f;

/// The "person" at the key: whether and how fast they touch it.
#[derive(Clone)]
pub struct Presence {
    deny_touch: bool,
    /// Appends a line per presence check, so tests can count touches.
    touch_log: Option<String>,
    /// How long the person takes to touch.
    touch_delay: Duration,
    /// Where the touch delay is read from at each touch instead (milliseconds), so that a
    /// test can enrol quickly, then be slow.
    touch_delay_file: Option<String>,
    /// The CTAP2 request waiting for this touch, for KEEPALIVE and CTAPHID_CANCEL (none for
    /// the U2F key: CTAP1 has neither).
    waiting: Option<Arc<Waiting>>,
}

impl Presence {
    /// One presence check: true if touched.
    pub fn touch(&self) -> bool {
        self.log("touch");
        let delay = self
            .touch_delay_file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|ms| ms.trim().parse().ok())
            .map_or(self.touch_delay, Duration::from_millis);
        let deadline = Instant::now() + delay;
        while Instant::now() < deadline {
            if let Some(waiting) = &self.waiting {
                if waiting.cancelled.load(Ordering::SeqCst) {
                    self.log("cancelled");
                    return false;
                }
                waiting.keepalive();
            }
            std::thread::sleep(Duration::from_millis(100).min(deadline.saturating_duration_since(Instant::now())));
        }
        !self.deny_touch
    }

    fn log(&self, line: &str) {
        if let Some(path) = &self.touch_log
            && let Ok(mut log) = std::fs::OpenOptions::new().create(true).append(true).open(path)
        {
            let _ = writeln!(log, "{line}");
        }
    }
}

/// The CTAP2 request in progress, shared by the thread that reads the bus and the one that
/// answers: its channel, and whether the platform cancelled it.
#[derive(Default)]
pub struct Waiting {
    cid: Mutex<Option<[u8; 4]>>,
    cancelled: AtomicBool,
    device: OnceLock<Arc<UhidDevice>>,
}

impl Waiting {
    /// KEEPALIVE(UPNEEDED) on the request's channel.
    fn keepalive(&self) {
        const CTAPHID_KEEPALIVE: u8 = 0x80 | 0x3B;
        const STATUS_UPNEEDED: u8 = 2;
        if let (Some(cid), Some(device)) = (*self.cid.lock().unwrap(), self.device.get()) {
            let mut packet = [0u8; 64];
            packet[..4].copy_from_slice(&cid);
            packet[4..8].copy_from_slice(&[CTAPHID_KEEPALIVE, 0, 1, STATUS_UPNEEDED]);
            let _ = device.write_packet(&packet);
        }
    }
}

struct Callbacks {
    /// Shared with the key's next power-up (see [`Flash`]).
    credentials: Arc<Mutex<HashMap<Vec<u8>, Credential>>>,
    presence: Presence,
    /// Set for a CTAP 2.0 key (--no-cred-protect): whether the request in progress was made
    /// without the PIN (see [`Ctap20`]).
    ctap20: Option<Ctap20>,
}

/// What makes this key a CTAP 2.0 key: no credential protection, and the hmac-secret
/// output of a request without user verification taken from a secret of its own.
#[derive(Clone, Default)]
struct Ctap20 {
    /// The getAssertion in progress carries no pinUvAuthParam: no user verification (this
    /// key has no built-in UV).
    without_uv: Arc<AtomicBool>,
}

impl Ctap20 {
    /// As stored: without a protection level (soft-fido2 reads that as level 1, "UV
    /// optional"), whatever soft-fido2 chose.
    fn store(credential: &mut Credential) {
        credential.extensions.cred_protect = None;
    }

    /// As read for the request in progress: without UV, its CredRandomWithoutUV, a second
    /// secret derived from the first (the spec leaves how to the key).
    fn read(&self, mut credential: Credential) -> Credential {
        if self.without_uv.load(Ordering::SeqCst)
            && let Some(with_uv) = &credential.extensions.cred_random
        {
            let without_uv = sha256(&[b"CredRandomWithoutUV".as_slice(), with_uv.as_slice()].concat());
            credential.extensions.cred_random = Some(soft_fido2_ctap::SecBytes::new(without_uv.to_vec()));
        }
        credential
    }

    /// Notes whether `request` (a CTAP2 command byte and its CBOR map) is a getAssertion
    /// made without the PIN: no pinUvAuthParam (key 6).
    fn note(&self, request: &[u8]) {
        use soft_fido2_ctap::cbor::Value;
        let without_uv = request.first() == Some(&0x02)
            && match soft_fido2_ctap::cbor::decode::<Value>(&request[1..]) {
                Ok(Value::Map(entries)) => !entries.iter().any(|(key, _)| matches!(key, Value::Integer(6))),
                _ => false,
            };
        self.without_uv.store(without_uv, Ordering::SeqCst);
    }
}

/// What the key keeps across a power cycle besides its credentials: the PIN and its retries.
#[derive(Clone, Default)]
struct Flash(Arc<Mutex<Option<PinState>>>);

impl PinStorageCallbacks for Flash {
    fn load_pin_state(&self) -> std::result::Result<PinState, StatusCode> {
        self.0.lock().unwrap().clone().ok_or(StatusCode::Other)
    }

    fn save_pin_state(&self, state: &PinState) -> std::result::Result<(), StatusCode> {
        *self.0.lock().unwrap() = Some(state.clone());
        Ok(())
    }
}

impl AuthenticatorCallbacks for Callbacks {
    fn request_up(&self, _info: &str, _user: Option<&str>, _rp: &str) -> Result<UpResult> {
        Ok(if self.presence.touch() { UpResult::Accepted } else { UpResult::Denied })
    }

    /// This key, like most (a YubiKey 5, a Nitrokey 3), has no built-in user verification
    /// (no fingerprint reader): the only UV is its PIN, which soft-fido2 checks itself. A
    /// request for built-in UV is refused rather than waved through.
    fn request_uv(&self, _info: &str, _user: Option<&str>, _rp: &str) -> Result<UvResult> {
        Ok(UvResult::Denied)
    }

    fn write_credential(&self, cred: &CredentialRef) -> Result<()> {
        let mut credential = cred.to_owned();
        let mut store = self.credentials.lock().unwrap();
        if self.ctap20.is_some() {
            // soft-fido2 writes a credential back after each use (its counter) as it read
            // it: for a request without UV, with the other secret. The secrets are made
            // once, with the credential.
            if let Some(stored) = store.get(cred.id) {
                credential.extensions.cred_random = stored.extensions.cred_random.clone();
            }
            Ctap20::store(&mut credential);
        }
        store.insert(cred.id.to_vec(), credential);
        Ok(())
    }

    fn read_credential(&self, cred_id: &[u8]) -> Result<Option<Credential>> {
        let credential = self.credentials.lock().unwrap().get(cred_id).cloned();
        Ok(match &self.ctap20 {
            Some(ctap20) => credential.map(|c| ctap20.read(c)),
            None => credential,
        })
    }

    fn delete_credential(&self, cred_id: &[u8]) -> Result<()> {
        self.credentials.lock().unwrap().remove(cred_id);
        Ok(())
    }

    fn list_credentials(&self, rp_id: &str, user_id: Option<&[u8]>) -> Result<Vec<Credential>> {
        let store = self.credentials.lock().unwrap();
        Ok(store
            .values()
            .filter(|c| c.rp.id == rp_id && user_id.is_none_or(|u| c.user.id == u))
            .cloned()
            .map(|c| match &self.ctap20 {
                Some(ctap20) => ctap20.read(c),
                None => c,
            })
            .collect())
    }

    fn enumerate_rps(&self) -> Result<Vec<(String, Option<String>, usize)>> {
        let store = self.credentials.lock().unwrap();
        let mut rps: HashMap<String, (Option<String>, usize)> = HashMap::new();
        for c in store.values() {
            rps.entry(c.rp.id.clone()).or_insert((c.rp.name.clone(), 0)).1 += 1;
        }
        Ok(rps.into_iter().map(|(id, (name, n))| (id, name, n)).collect())
    }

    fn credential_count(&self) -> Result<usize> {
        Ok(self.credentials.lock().unwrap().len())
    }

    fn get_timestamp_ms(&self) -> u64 {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        u64::try_from(now.as_millis()).unwrap_or(u64::MAX)
    }
}

/// Hands CTAPHID CBOR messages to the authenticator.
struct Handler {
    authenticator: Mutex<Authenticator<Callbacks>>,
    /// A fresh key with the same flash: what plugging it back in gives.
    power_on: Box<dyn Fn() -> Authenticator<Callbacks> + Send>,
    power_cycle_file: Option<String>,
    /// Three wrong PINs in a row were answered with PIN_AUTH_BLOCKED: until a power cycle the
    /// key takes no PIN (CTAP 2.1 §6.5.5.7: "power cycling is needed for further
    /// operations"). soft-fido2 says PIN_AUTH_BLOCKED once, then checks the next PIN anyway;
    /// real keys (and this one) refuse it.
    pin_auth_blocked: bool,
    /// The first getKeyAgreement answer per PIN protocol. Real keys keep their key-agreement
    /// key until power-off; soft-fido2 makes a new one on every getKeyAgreement, which breaks
    /// hmac-secret with a PIN (the platform agrees a key for hmac-secret, then another for
    /// the PIN token, and the first no longer matches). Answering repeats from this cache
    /// keeps soft-fido2 on its first key, as hardware would be, until a wrong PIN.
    key_agreements: HashMap<u8, Vec<u8>>,
    /// Refuse hmac-secret without user presence (see the module comment).
    gate_hmac_on_touch: bool,
    /// A CTAP 2.0 key (--no-cred-protect): told about each request.
    ctap20: Option<Ctap20>,
    waiting: Arc<Waiting>,
    /// Damages answers while its file exists (--garble-file, see garble.rs).
    garbler: Option<garble::Garbler>,
}

/// Whether `data` is a getAssertion asking for hmac-secret with `up: false`. The strings are
/// CBOR text items: "hmac-secret" as an extension key, and the option "up" (0x62 'u' 'p')
/// followed by false (0xF4).
fn silent_hmac_request(data: &[u8]) -> bool {
    let has = |needle: &[u8]| data.windows(needle.len()).any(|w| w == needle);
    data.first() == Some(&0x02) && has(b"hmac-secret") && has(&[0x62, b'u', b'p', 0xF4])
}

/// `clientPIN` with subCommand getPinToken (5) or getPinUvAuthTokenUsingPinWithPermissions
/// (9): a request that sends the PIN. CTAP2 canonical CBOR puts pinUvAuthProtocol (1) and
/// subCommand (2) first.
fn sends_a_pin(data: &[u8]) -> bool {
    matches!(data, [0x06, _, 0x01, _, 0x02, 0x05 | 0x09, ..])
}

/// `clientPIN(pinUvAuthProtocol: P, subCommand: getKeyAgreement)` encoded as CTAP2 CBOR.
fn key_agreement_protocol(data: &[u8]) -> Option<u8> {
    match data {
        [0x06, 0xA2, 0x01, protocol, 0x02, 0x02] => Some(*protocol),
        _ => None,
    }
}

impl CommandHandler for Handler {
    fn handle_command(&mut self, cmd: Cmd, data: &[u8]) -> soft_fido2_transport::Result<Vec<u8>> {
        if cmd != Cmd::Cbor {
            return Err(soft_fido2_transport::Error::InvalidCommand);
        }
        let mut answer = self.answer(data)?;
        if let Some(garbler) = &mut self.garbler {
            garbler.apply(data, &mut answer);
        }
        Ok(answer)
    }
}

impl Handler {
    /// The key's answer to the CTAP2 request `data`.
    fn answer(&mut self, data: &[u8]) -> soft_fido2_transport::Result<Vec<u8>> {
        if let Some(file) = &self.power_cycle_file
            && std::fs::remove_file(file).is_ok()
        {
            *self.authenticator.lock().unwrap() = (self.power_on)();
            self.key_agreements.clear();
            self.pin_auth_blocked = false;
        }
        const CTAP2_ERR_PIN_INVALID: u8 = 0x31;
        const CTAP2_ERR_PIN_BLOCKED: u8 = 0x32;
        const CTAP2_ERR_PIN_AUTH_BLOCKED: u8 = 0x34;
        if self.pin_auth_blocked && sends_a_pin(data) {
            return Ok(vec![CTAP2_ERR_PIN_AUTH_BLOCKED]);
        }
        if self.gate_hmac_on_touch && silent_hmac_request(data) {
            const CTAP2_ERR_UNSUPPORTED_OPTION: u8 = 0x2B;
            return Ok(vec![CTAP2_ERR_UNSUPPORTED_OPTION]);
        }
        let protocol = key_agreement_protocol(data);
        if let Some(cached) = protocol.and_then(|p| self.key_agreements.get(&p)) {
            return Ok(cached.clone());
        }
        // A cancel that came before this request is not for it.
        self.waiting.cancelled.store(false, Ordering::SeqCst);
        if let Some(ctap20) = &self.ctap20 {
            ctap20.note(data);
        }
        let mut response = Vec::new();
        self.authenticator
            .lock()
            .unwrap()
            .handle(data, &mut response)
            .map_err(|e| soft_fido2_transport::Error::Other(format!("{e:?}")))?;
        if self.waiting.cancelled.swap(false, Ordering::SeqCst) {
            const CTAP2_ERR_KEEPALIVE_CANCEL: u8 = 0x2D;
            return Ok(vec![CTAP2_ERR_KEEPALIVE_CANCEL]);
        }
        if let Some(protocol) = protocol
            && response.first() == Some(&0x00)
        {
            self.key_agreements.insert(protocol, response.clone());
        }
        // After a wrong PIN a key makes a new key-agreement key (CTAP 2.1, getPinToken and
        // getPinUvAuthTokenUsingPinWithPermissions: on a PIN mismatch the authenticator calls
        // regenerate), so a platform that kept the old one fails its next try.
        if matches!(
            response.first(),
            Some(&(CTAP2_ERR_PIN_INVALID | CTAP2_ERR_PIN_BLOCKED | CTAP2_ERR_PIN_AUTH_BLOCKED))
        ) {
            self.key_agreements.clear();
        }
        if response.first() == Some(&CTAP2_ERR_PIN_AUTH_BLOCKED) {
            self.pin_auth_blocked = true;
        }
        Ok(response)
    }
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let pin = args.iter().position(|a| a == "--pin").and_then(|i| args.get(i + 1)).cloned();
    let deny_touch = args.iter().any(|a| a == "--deny-touch");
    let touch_log = args.iter().position(|a| a == "--touch-log").and_then(|i| args.get(i + 1)).cloned();
    let touch_delay = args
        .iter()
        .position(|a| a == "--touch-delay-ms")
        .and_then(|i| args.get(i + 1))
        .map_or(Duration::ZERO, |ms| Duration::from_millis(ms.parse().expect("--touch-delay-ms takes milliseconds")));
    let pin_hash = pin.as_ref().map(|pin| sha256(pin.as_bytes()));
    let ctap20 = args.iter().any(|a| a == "--no-cred-protect").then(Ctap20::default);
    let config = AuthenticatorConfig::builder()
        .aaguid(*b"mfa-agent-testkn")
        .max_credentials(100)
        .extensions(if ctap20.is_some() {
            vec!["hmac-secret".to_string()]
        } else {
            vec!["credProtect".to_string(), "hmac-secret".to_string()]
        })
        .options(
            AuthenticatorOptions::new()
                .with_resident_keys(true)
                .with_user_presence(true)
                .with_client_pin(Some(pin.is_some()))
                .with_pin_uv_auth_token(Some(true))
                .with_make_cred_uv_not_required(Some(true)),
        )
        .device_name("mfa-agent test token".to_string())
        .build();
    let touch_delay_file = args.iter().position(|a| a == "--touch-delay-file").and_then(|i| args.get(i + 1)).cloned();
    if args.iter().any(|a| a == "--u2f") {
        let presence = Presence { deny_touch, touch_log, touch_delay, touch_delay_file, waiting: None };
        let device = UhidDevice::create_fido_device_with_ids(Some("mfa-agent test U2F token"), config.vendor_id, config.product_id, config.device_version)
            .map_err(|e| format!("failed to create the uhid device: {e:?}"))?;
        let replay_file = args.iter().position(|a| a == "--replay-file").and_then(|i| args.get(i + 1)).map(std::path::PathBuf::from);
        return serve(Arc::new(device), CtapHidHandler::new(u2f::U2fHandler::new(presence, replay_file)), None);
    }
    let waiting = Arc::new(Waiting::default());
    let presence = Presence { deny_touch, touch_log, touch_delay, touch_delay_file, waiting: Some(waiting.clone()) };
    let credentials = Arc::new(Mutex::new(HashMap::new()));
    let flash = Flash::default();
    let power_on = {
        let (config, ctap20) = (config.clone(), ctap20.clone());
        move || {
            // The PIN is set at the first power-up; later ones find it (and its retries) in
            // flash once the key has saved its PIN state.
            if let Some(hash) = &pin_hash
                && flash.0.lock().unwrap().is_none()
            {
                Authenticator::<Callbacks>::set_pin_hash(hash);
            }
            let callbacks =
                Callbacks { credentials: credentials.clone(), presence: presence.clone(), ctap20: ctap20.clone() };
            Authenticator::with_config_and_pin_storage(callbacks, config.clone(), flash.clone())
                .expect("the virtual key powers up")
        }
    };
    let authenticator = power_on();
    let device = UhidDevice::create_fido_device_with_ids(
        config.device_name.as_deref(),
        config.vendor_id,
        config.product_id,
        config.device_version,
    )
    .map_err(|e| format!("failed to create the uhid device: {e:?}"))?;
    let gate_hmac_on_touch = args.iter().any(|a| a == "--gate-hmac-on-touch");
    let device = Arc::new(device);
    let _ = waiting.device.set(device.clone());
    let power_cycle_file = args.iter().position(|a| a == "--power-cycle-file").and_then(|i| args.get(i + 1)).cloned();
    let hid = CtapHidHandler::new(Handler {
        authenticator: Mutex::new(authenticator),
        power_on: Box::new(power_on),
        power_cycle_file,
        pin_auth_blocked: false,
        key_agreements: HashMap::new(),
        gate_hmac_on_touch,
        ctap20,
        waiting: waiting.clone(),
        garbler: args
            .iter()
            .position(|a| a == "--garble-file")
            .and_then(|i| args.get(i + 1))
            .map(|file| {
                let log = args.iter().position(|a| a == "--garble-log").and_then(|i| args.get(i + 1)).cloned();
                garble::Garbler::new(file.clone(), log)
            }),
    });
    serve(device, hid, Some(waiting))
}

/// Announces the device, then answers CTAPHID packets until killed. One thread reads the bus
/// and one answers, so that a request waiting for a touch does not stop the reading: a
/// CTAPHID_CANCEL for the CTAP2 request in progress (`waiting`) is taken by the reader.
fn serve<H: CommandHandler + Send + 'static>(
    device: Arc<UhidDevice>,
    mut hid: CtapHidHandler<H>,
    waiting: Option<Arc<Waiting>>,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    const CTAPHID_CBOR: u8 = 0x80 | 0x10;
    const CTAPHID_CANCEL: u8 = 0x80 | 0x11;
    println!("ready");
    std::io::stdout().flush()?;
    let (packets, incoming) = std::sync::mpsc::channel::<[u8; 64]>();
    let answerer = {
        let (device, waiting) = (device.clone(), waiting.clone());
        std::thread::spawn(move || -> std::result::Result<(), String> {
            for buf in incoming {
                let replies = hid.process_packet(Packet::from_bytes(buf)).map_err(|e| format!("{e:?}"))?;
                if !replies.is_empty()
                    && let Some(waiting) = &waiting
                {
                    *waiting.cid.lock().unwrap() = None;
                }
                for reply in replies {
                    device.write_packet(reply.as_bytes()).map_err(|e| format!("{e:?}"))?;
                }
            }
            Ok(())
        })
    };
    loop {
        if answerer.is_finished() {
            return Err(answerer.join().map_err(|_| "the answering thread panicked")?.unwrap_err().into());
        }
        let mut buf = [0u8; 64];
        match device.read_packet(&mut buf) {
            Ok(Some(_)) => {
                let cid: [u8; 4] = buf[..4].try_into().unwrap();
                if let Some(waiting) = &waiting {
                    let mut in_progress = waiting.cid.lock().unwrap();
                    if buf[4] == CTAPHID_CANCEL && *in_progress == Some(cid) {
                        waiting.cancelled.store(true, Ordering::SeqCst);
                        continue;
                    }
                    if buf[4] == CTAPHID_CBOR {
                        *in_progress = Some(cid);
                    }
                }
                packets.send(buf)?;
            }
            Ok(None) | Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    // Tiny and test-only: avoid another dependency for one hash.
    use std::process::{Command, Stdio};
    let mut child = Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("sha256sum");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    let hex = String::from_utf8(out.stdout).unwrap();
    let mut hash = [0u8; 32];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    hash
}
