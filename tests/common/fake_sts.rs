//! A strict fake of AWS STS on 127.0.0.1, for what moto does not check: it verifies each
//! request's SigV4 signature with the secret it knows for the signing key (the long-term
//! test key, or a session it issued, whose token must come along), the MFA serial, the TOTP
//! code (with oathtool, an independent implementation), rejects a reused code with AWS's
//! exact error, enforces AWS's duration limits, records what it issued, and injects faults
//! (latency, 5xx, throttling, dropped connections).
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_sts::primitives::{DateTime, DateTimeFormat};

mod iam;

pub const ACCESS_KEY_ID: &str = "AKIAFAKESTSTEST00001";
pub const SECRET_ACCESS_KEY: &str = "fakeStsSecretAccessKeyForTests0000000000";

/// AWS's answer to a wrong or reused code, byte for byte apart from the request id.
const MFA_FAILED: &str = "MultiFactorAuthentication failed with invalid MFA one time pass code. ";

/// How [`FakeSts::call_signed`] signs: by default as an SDK would for STS in us-east-1.
#[derive(Debug, Clone)]
pub struct Signing {
    pub service: &'static str,
    pub region: &'static str,
    pub sign_host: bool,
    /// Seconds the signer's clock is ahead of the fake's (behind, if negative).
    pub clock_offset: i64,
}

impl Default for Signing {
    fn default() -> Self {
        Self {
            service: "sts",
            region: "us-east-1",
            sign_host: true,
            clock_offset: 0,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Fault {
    Status(u16),
    Throttle,
    /// Close the connection without answering.
    Drop,
    /// Answer after this long.
    Delay(Duration),
    /// Answer once the gate opens (at most 60 s later).
    Hold(Gate),
}

/// What a [`Fault::Hold`] waits for: the test opens it once it knows what it wanted to see
/// in flight.
#[derive(Debug, Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, std::sync::Condvar, AtomicBool)>);

impl Gate {
    pub fn open(&self) {
        *self.0.0.lock().unwrap() = true;
        self.0.1.notify_all();
    }

    /// Whether the held request has arrived (and waits at the gate, or went through).
    pub fn reached(&self) -> bool {
        self.0.2.load(Ordering::SeqCst)
    }

    fn wait(&self) {
        self.0.2.store(true, Ordering::SeqCst);
        let (open, changed, _) = &*self.0;
        let guard = open.lock().unwrap();
        let _ = changed
            .wait_timeout_while(guard, Duration::from_secs(60), |open| !*open)
            .unwrap();
    }
}

#[derive(Default)]
struct State {
    /// Last accepted time step per MFA serial.
    used_steps: HashMap<String, u64>,
    /// Session key id -> (token, secret), for checking requests signed by a session.
    sessions: HashMap<String, (String, String)>,
    /// Session key id -> when it expires (Unix seconds): later requests it signs fail.
    expires: HashMap<String, u64>,
    /// Every session lasts this long whatever was asked (a forced expiry), if set.
    session_lifetime: Option<u64>,
    /// GetCallerIdentity calls answered.
    identities: usize,
    /// What was issued, in order: (access key id, secret, token).
    issued_credentials: Vec<(String, String, String)>,
    /// Faults queued for the next requests of an action (`GetSessionToken`, ...), in order.
    faults: VecDeque<(&'static str, Fault)>,
    /// Seconds STS's clock (its Date header) is ahead of this machine's.
    clock_offset: i64,
    issued: usize,
    /// Every code received, in order, for assertions.
    codes: Vec<String>,
    /// How many codes were refused (wrong, or used already).
    rejected: usize,
    /// The form of every signed GetSessionToken and AssumeRole, in order.
    requests: Vec<HashMap<String, String>>,
    /// How long each request took to answer, for the benchmark's share of a mint.
    handling_times: Vec<Duration>,
    /// Virtual MFA devices created through IAM, by serial.
    devices: HashMap<String, iam::Device>,
    /// The IAM action to refuse next (with AccessDenied, or InvalidAuthenticationCode for
    /// the code checks), once.
    refuse_iam: Option<&'static str>,
    /// The code pairs IAM received, in order.
    iam_codes: Vec<(String, String)>,
    /// Access keys created through IAM: id -> (secret, Unix time from which it works).
    access_keys: HashMap<String, (String, u64)>,
    /// Access keys deleted through IAM (the test key among them, once rotated away).
    deleted_keys: Vec<String>,
    /// How long a new access key takes to work (IAM is eventually consistent).
    new_key_delay: u64,
    /// Each role's MaxSessionDuration where a test set one; AWS's default is 1 h.
    role_max_session: HashMap<String, u64>,
}

pub struct FakeSts {
    pub url: String,
    seed: String,
    period: u64,
    pub get_session_token_calls: Arc<AtomicUsize>,
    pub assume_role_calls: Arc<AtomicUsize>,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeSts {
    /// Starts a fake STS that accepts codes of the base32 `seed` (SHA1, 6 digits, `period`).
    pub fn start(seed: &str, period: u64) -> Self {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1");
        let url = format!("http://{}", server.server_addr().to_ip().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let gst = Arc::new(AtomicUsize::new(0));
        let ar = Arc::new(AtomicUsize::new(0));
        let handler = Handler {
            seed: seed.to_owned(),
            period,
            state: state.clone(),
            gst: gst.clone(),
            ar: ar.clone(),
        };
        let stop_flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stop_flag.load(Ordering::SeqCst) {
                if let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(50)) {
                    let start = std::time::Instant::now();
                    handler.handle(request);
                    let took = start.elapsed();
                    handler.state.lock().unwrap().handling_times.push(took);
                }
            }
        });
        Self {
            url,
            seed: seed.to_owned(),
            period,
            get_session_token_calls: gst,
            assume_role_calls: ar,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// Queues faults for the next requests of `action` (e.g. `GetSessionToken`), one each;
    /// requests of other actions go through untouched.
    pub fn inject(&self, action: &'static str, faults: impl IntoIterator<Item = Fault>) {
        self.state
            .lock()
            .unwrap()
            .faults
            .extend(faults.into_iter().map(|fault| (action, fault)));
    }

    /// Makes STS's clock (the Date header of every answer) run `seconds` ahead (or behind).
    pub fn set_clock_offset(&self, seconds: i64) {
        self.state.lock().unwrap().clock_offset = seconds;
    }

    pub fn codes_received(&self) -> Vec<String> {
        self.state.lock().unwrap().codes.clone()
    }

    /// How many codes this STS refused (wrong, or not newer than the last it accepted).
    pub fn rejected_codes(&self) -> usize {
        self.state.lock().unwrap().rejected
    }

    /// Spends `code` for `serial` the way the AWS console or another tool would: a
    /// GetSessionToken straight to this STS, with the long-term test keys. Returns whether
    /// STS accepted it.
    pub fn spend_code_elsewhere(&self, serial: &str, code: &str) -> bool {
        let body = format!(
            "Action=GetSessionToken&Version=2011-06-15&SerialNumber={}&TokenCode={code}",
            percent_encoding::utf8_percent_encode(serial, percent_encoding::NON_ALPHANUMERIC)
        );
        self.call_signed(&body, &Signing::default()).0 == 200
    }

    /// Sends `body` (a query-API form) signed with the long-term test keys as `signing`
    /// says: the status and body of the answer.
    pub fn call_signed(&self, body: &str, signing: &Signing) -> (u16, String) {
        use std::io::{Read, Write};
        let host = self.url.trim_start_matches("http://");
        let date = amz_date(unix_now().saturating_add_signed(signing.clock_offset));
        let scope = format!(
            "{}/{}/{}/aws4_request",
            &date[..8],
            signing.region,
            signing.service
        );
        let headers = [
            (
                "content-type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            ),
            ("host".to_owned(), host.to_owned()),
            ("x-amz-date".to_owned(), date.clone()),
        ];
        let signed: Vec<&str> = ["content-type", "host", "x-amz-date"]
            .into_iter()
            .filter(|h| signing.sign_host || *h != "host")
            .collect();
        let signature = sigv4::signature(
            "POST",
            "/",
            &headers,
            &signed,
            body,
            SECRET_ACCESS_KEY,
            &date,
            &scope,
        );
        let mut stream = std::net::TcpStream::connect(host).unwrap();
        write!(
            stream,
            "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nX-Amz-Date: {date}\r\nAuthorization: AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/{scope}, SignedHeaders={}, Signature={signature}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            signed.join(";"),
            body.len()
        )
        .unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        let status = reply
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = reply
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_owned();
        (status, body)
    }

    /// Lets `role_arn` be assumed for up to `seconds` (its MaxSessionDuration in IAM; 1 h
    /// unless set, as AWS creates roles).
    pub fn set_role_max_session(&self, role_arn: &str, seconds: u64) {
        self.state
            .lock()
            .unwrap()
            .role_max_session
            .insert(role_arn.to_owned(), seconds);
    }

    /// Every session issued from now on lasts `seconds`, whatever DurationSeconds says (AWS's
    /// minimum is 900 s; tests of renewal across an expiry cannot wait that long).
    pub fn issue_sessions_lasting(&self, seconds: u64) {
        self.state.lock().unwrap().session_lifetime = Some(seconds);
    }

    /// How many GetCallerIdentity calls this STS answered.
    pub fn identities_answered(&self) -> usize {
        self.state.lock().unwrap().identities
    }

    /// The parameters of every signed request, in order (`Action`, `DurationSeconds`, ...),
    /// and `SignedBy`: the access key id it was signed with.
    pub fn requests(&self) -> Vec<HashMap<String, String>> {
        self.state.lock().unwrap().requests.clone()
    }

    /// How long each request took this server, from its arrival to its answer.
    pub fn handling_times(&self) -> Vec<Duration> {
        self.state.lock().unwrap().handling_times.clone()
    }

    /// Every credential set this STS issued, in order: (access key id, secret, token).
    pub fn issued(&self) -> Vec<(String, String, String)> {
        self.state.lock().unwrap().issued_credentials.clone()
    }

    /// The virtual MFA devices created through IAM: serial -> (base32 seed, enabled).
    pub fn mfa_devices(&self) -> HashMap<String, (String, bool)> {
        self.state
            .lock()
            .unwrap()
            .devices
            .iter()
            .map(|(serial, d)| (serial.clone(), (d.seed.clone(), d.enabled_at.is_some())))
            .collect()
    }

    /// Refuses the next IAM `action` once (see `State::refuse_iam`).
    pub fn refuse_next_iam(&self, action: &'static str) {
        self.state.lock().unwrap().refuse_iam = Some(action);
    }

    /// The code pairs IAM received for Enable/Resync, in order.
    pub fn iam_codes(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().iam_codes.clone()
    }

    /// The user's access keys that exist (not deleted), sorted.
    pub fn access_keys(&self) -> Vec<String> {
        let state = self.state.lock().unwrap();
        let mut keys: Vec<String> = std::iter::once(ACCESS_KEY_ID.to_owned())
            .chain(state.access_keys.keys().cloned())
            .filter(|k| !state.deleted_keys.contains(k))
            .collect();
        keys.sort();
        keys
    }

    /// New access keys work only `seconds` after they are created.
    pub fn delay_new_keys(&self, seconds: u64) {
        self.state.lock().unwrap().new_key_delay = seconds;
    }

    /// Creates `n` devices for the user directly, as the console would.
    pub fn add_devices(&self, n: usize) {
        let mut state = self.state.lock().unwrap();
        for i in 0..n {
            state.devices.insert(
                format!("arn:aws:iam::123456789012:mfa/console-{i}"),
                iam::Device {
                    seed: super::AWS_SEED.into(),
                    enabled_at: Some(1_700_000_000),
                },
            );
        }
    }

    pub fn gst_calls(&self) -> usize {
        self.get_session_token_calls.load(Ordering::SeqCst)
    }

    pub fn assume_role_count(&self) -> usize {
        self.assume_role_calls.load(Ordering::SeqCst)
    }
}

impl Drop for FakeSts {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Handler {
    seed: String,
    period: u64,
    state: Arc<Mutex<State>>,
    gst: Arc<AtomicUsize>,
    ar: Arc<AtomicUsize>,
}

/// A long-term key id: working (its secret), deleted or not valid yet, or not one at all
/// (a session's).
enum LongTerm {
    Works(String),
    Refused,
    Unknown,
}

struct Reply {
    status: u16,
    body: String,
}

impl Handler {
    fn handle(&self, mut request: tiny_http::Request) {
        let mut body = String::new();
        let _ = request.as_reader().read_to_string(&mut body);
        let action = body
            .split('&')
            .find_map(|pair| pair.strip_prefix("Action="))
            .unwrap_or("")
            .to_owned();
        let fault = {
            let mut state = self.state.lock().unwrap();
            let aimed = state.faults.iter().position(|(at, _)| *at == action);
            aimed
                .and_then(|i| state.faults.remove(i))
                .map(|(_, fault)| fault)
        };
        let reply = match fault {
            Some(Fault::Drop) => {
                drop(request.into_writer());
                return;
            }
            Some(Fault::Status(status)) => {
                error(status, "Receiver", "InternalFailure", "injected failure")
            }
            Some(Fault::Throttle) => error(400, "Sender", "Throttling", "Rate exceeded"),
            Some(Fault::Delay(d)) => {
                std::thread::sleep(d);
                self.reply(&request, &body)
            }
            Some(Fault::Hold(gate)) => {
                gate.wait();
                self.reply(&request, &body)
            }
            None => self.reply(&request, &body),
        };
        let offset = self.state.lock().unwrap().clock_offset;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            .cast_signed();
        let date = DateTime::from_secs(now + offset)
            .fmt(DateTimeFormat::HttpDate)
            .unwrap();
        let response = tiny_http::Response::from_string(reply.body)
            .with_status_code(reply.status)
            .with_header(
                "Content-Type: text/xml"
                    .parse::<tiny_http::Header>()
                    .unwrap(),
            )
            .with_header(
                format!("Date: {date}")
                    .parse::<tiny_http::Header>()
                    .unwrap(),
            );
        let _ = request.respond(response);
    }

    fn reply(&self, request: &tiny_http::Request, body: &str) -> Reply {
        let form: HashMap<String, String> = body
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (decode(k), decode(v)))
            .collect();
        let by_session = match self.authenticate(request, body) {
            Ok(by_session) => by_session,
            Err(reply) => return reply,
        };
        let action = form.get("Action").map_or("", String::as_str);
        if let Some(reply) = self.check_scope(request, action, &form) {
            return reply;
        }
        // Who signed it, for tests of what each call was signed with.
        let mut recorded = form.clone();
        if let Some(key_id) = signing_key_id(request) {
            recorded.insert("SignedBy".into(), key_id);
        }
        self.state.lock().unwrap().requests.push(recorded);
        match form.get("Action").map(String::as_str) {
            Some("GetSessionToken") => self.get_session_token(&form, by_session),
            Some("AssumeRole") => self.assume_role(&form, by_session),
            Some("GetCallerIdentity") => self.caller_identity(),
            Some(action) if let Some(reply) = self.iam(action, &form, by_session) => reply,
            other => error(
                400,
                "Sender",
                "InvalidAction",
                &format!("Could not find operation {other:?}"),
            ),
        }
    }

    /// What this fake knows of a long-term key id.
    fn long_term_secret(&self, key_id: &str) -> LongTerm {
        let state = self.state.lock().unwrap();
        if state.deleted_keys.iter().any(|k| k == key_id) {
            LongTerm::Refused
        } else if key_id == ACCESS_KEY_ID {
            LongTerm::Works(SECRET_ACCESS_KEY.to_owned())
        } else {
            match state.access_keys.get(key_id) {
                Some((secret, from)) if *from <= unix_now() => LongTerm::Works(secret.clone()),
                Some(_) => LongTerm::Refused,
                None => LongTerm::Unknown,
            }
        }
    }

    /// SigV4: the SDK must sign with a key this fake knows. Returns whether the key is a
    /// session key (whose token must come along).
    fn authenticate(&self, request: &tiny_http::Request, body: &str) -> Result<bool, Reply> {
        let header = |name: &str| header(request, name);
        let Some(auth) =
            header("Authorization").filter(|a| a.starts_with("AWS4-HMAC-SHA256 Credential="))
        else {
            return Err(error(
                403,
                "Sender",
                "MissingAuthenticationToken",
                "Request is missing Authentication Token",
            ));
        };
        if header("X-Amz-Date").is_none() {
            return Err(error(
                403,
                "Sender",
                "IncompleteSignature",
                "Missing X-Amz-Date",
            ));
        }
        let key_id = auth["AWS4-HMAC-SHA256 Credential=".len()..]
            .split('/')
            .next()
            .unwrap_or("")
            .to_owned();
        let long_term = self.long_term_secret(&key_id);
        let (secret, by_session) = if let LongTerm::Works(secret) = long_term {
            (secret, false)
        } else if matches!(long_term, LongTerm::Refused) {
            return Err(error(
                403,
                "Sender",
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            ));
        } else {
            let state = self.state.lock().unwrap();
            let (session, expires) = (
                state.sessions.get(&key_id).cloned(),
                state.expires.get(&key_id).copied(),
            );
            drop(state);
            if expires.is_some_and(|at| at <= unix_now()) {
                return Err(error(
                    400,
                    "Sender",
                    "ExpiredToken",
                    "The security token included in the request is expired",
                ));
            }
            match session {
                Some((token, secret))
                    if header("X-Amz-Security-Token").as_deref() == Some(token.as_str()) =>
                {
                    (secret, true)
                }
                _ => {
                    return Err(error(
                        403,
                        "Sender",
                        "InvalidClientTokenId",
                        "The security token included in the request is invalid.",
                    ));
                }
            }
        };
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|h| {
                (
                    h.field.as_str().as_str().to_owned(),
                    h.value.as_str().to_owned(),
                )
            })
            .collect();
        if !sigv4::verifies(
            request.method().as_str(),
            request.url(),
            &headers,
            body,
            &secret,
        ) {
            return Err(error(
                403,
                "Sender",
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
            ));
        }
        Ok(by_session)
    }

    fn get_session_token(&self, form: &HashMap<String, String>, by_session: bool) -> Reply {
        self.gst.fetch_add(1, Ordering::SeqCst);
        if by_session {
            return error(
                403,
                "Sender",
                "AccessDenied",
                "Cannot call GetSessionToken with session credentials",
            );
        }
        let duration = match parse_duration(form, 43_200, 900..=129_600) {
            Ok(d) => d,
            Err(reply) => return reply,
        };
        if let Some(reply) = self.check_mfa(form, true) {
            return reply;
        }
        self.issue("GetSessionToken", duration, None)
    }

    fn assume_role(&self, form: &HashMap<String, String>, by_session: bool) -> Reply {
        self.ar.fetch_add(1, Ordering::SeqCst);
        let Some(role_arn) = form.get("RoleArn") else {
            return error(400, "Sender", "ValidationError", "RoleArn is required");
        };
        let Some(session_name) = form.get("RoleSessionName").cloned() else {
            return error(
                400,
                "Sender",
                "ValidationError",
                "1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null",
            );
        };
        let duration = match parse_duration(form, 3600, 900..=43_200) {
            Ok(d) => d,
            Err(reply) => return reply,
        };
        let role_max = self
            .state
            .lock()
            .unwrap()
            .role_max_session
            .get(role_arn)
            .copied()
            .unwrap_or(3600);
        if duration > role_max {
            return error(
                400,
                "Sender",
                "ValidationError",
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
            );
        }
        if by_session && duration > 3600 {
            return error(
                400,
                "Sender",
                "ValidationError",
                "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
            );
        }
        // Long-term keys may assume the role only with MFA (the trust policy demands it).
        if let Some(reply) = self.check_mfa(form, !by_session) {
            return reply;
        }
        self.issue(
            "AssumeRole",
            duration,
            Some((role_arn.clone(), session_name)),
        )
    }

    /// Validates SerialNumber + TokenCode when `required`, as AWS does for an MFA policy.
    fn check_mfa(&self, form: &HashMap<String, String>, required: bool) -> Option<Reply> {
        let (serial, code) = (form.get("SerialNumber"), form.get("TokenCode"));
        if !required && serial.is_none() {
            return None;
        }
        let (Some(serial), Some(code)) = (serial, code) else {
            return Some(error(
                403,
                "Sender",
                "AccessDenied",
                "MultiFactorAuthentication required",
            ));
        };
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Some(error(
                400,
                "Sender",
                "ValidationError",
                "1 validation error detected: Value at 'tokenCode' failed to satisfy constraint: Member must have length less than or equal to 6",
            ));
        }
        let mut state = self.state.lock().unwrap();
        let seed = if serial == super::SERIAL {
            self.seed.clone()
        } else if let Some(device) = state.devices.get(serial).filter(|d| d.enabled_at.is_some()) {
            device.seed.clone()
        } else {
            return Some(error(
                403,
                "Sender",
                "AccessDenied",
                &format!("MultiFactorAuthentication failed: no MFA device {serial} for this user"),
            ));
        };
        state.codes.push(code.clone());
        let now = unix_now();
        let step_now = now / self.period;
        // AWS accepts a step of clock skew either way.
        let matched = [step_now - 1, step_now, step_now + 1]
            .into_iter()
            .find(|step| oathtool(&seed, step * self.period, self.period) == *code);
        let Some(step) = matched else {
            state.rejected += 1;
            return Some(error(403, "Sender", "AccessDenied", MFA_FAILED));
        };
        if state
            .used_steps
            .get(serial)
            .is_some_and(|last| step <= *last)
        {
            state.rejected += 1;
            return Some(error(403, "Sender", "AccessDenied", MFA_FAILED));
        }
        state.used_steps.insert(serial.clone(), step);
        None
    }

    /// What AWS checks of a signed request besides the signature's value: the scope names
    /// the request's date, a region, the service the action belongs to and `aws4_request`;
    /// `host` is signed; the request's time is within 5 minutes of the service's clock; the
    /// API version is the service's. This one URL serves both services, so the scope says
    /// which one a request was meant for: an IAM action signed for STS went to STS, which
    /// has no such operation. Which region IAM is signed for is not checked: the SDKs sign
    /// for us-east-1 at IAM's own endpoint, but for the configured region at an endpoint
    /// given in `AWS_ENDPOINT_URL*`, which is how every test reaches this fake.
    fn check_scope(
        &self,
        request: &tiny_http::Request,
        action: &str,
        form: &HashMap<String, String>,
    ) -> Option<Reply> {
        let header = |name: &str| header(request, name);
        let (auth, amz) = (header("Authorization")?, header("X-Amz-Date")?);
        let field = |name: &str| {
            auth.split([',', ' '])
                .find_map(|part| part.trim().strip_prefix(name))
                .map(str::to_owned)
        };
        let credential = field("Credential=").unwrap_or_default();
        let scope: Vec<&str> = credential.split('/').skip(1).collect();
        let iam = iam::ACTIONS.contains(&action);
        let (service, version) = if iam {
            ("iam", "2010-05-08")
        } else {
            ("sts", "2011-06-15")
        };
        if scope.len() != 4
            || scope[3] != "aws4_request"
            || !amz.starts_with(scope[0])
            || scope[1].is_empty()
        {
            return Some(error(
                403,
                "Sender",
                "SignatureDoesNotMatch",
                &format!(
                    "Credential should be scoped to a valid date, region and service: {credential}"
                ),
            ));
        }
        if scope[2] != service || form.get("Version").map(String::as_str) != Some(version) {
            return Some(error(
                400,
                "Sender",
                "InvalidAction",
                &format!(
                    "Could not find operation {action} for version {}",
                    form.get("Version").map_or("", String::as_str)
                ),
            ));
        }
        if !field("SignedHeaders=").is_some_and(|signed| signed.split(';').any(|h| h == "host")) {
            return Some(error(
                403,
                "Sender",
                "IncompleteSignature",
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
            ));
        }
        let now = unix_now().saturating_add_signed(self.state.lock().unwrap().clock_offset);
        let signed_at = from_amz_date(&amz)?;
        if signed_at + 300 < now {
            return Some(error(
                403,
                "Sender",
                "SignatureDoesNotMatch",
                &format!(
                    "Signature expired: {amz} is now earlier than {} ({} - 5 min.)",
                    amz_date(now - 300),
                    amz_date(now)
                ),
            ));
        }
        if signed_at > now + 300 {
            return Some(error(
                403,
                "Sender",
                "SignatureDoesNotMatch",
                &format!(
                    "Signature not yet current: {amz} is still later than {} ({} + 5 min.)",
                    amz_date(now + 300),
                    amz_date(now)
                ),
            ));
        }
        None
    }

    fn caller_identity(&self) -> Reply {
        let mut state = self.state.lock().unwrap();
        state.identities += 1;
        Reply {
            status: 200,
            body: format!(
                "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/alice</Arn><UserId>AIDAFAKE</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>fake-id-{}</RequestId></ResponseMetadata></GetCallerIdentityResponse>",
                state.identities
            ),
        }
    }

    fn issue(&self, action: &str, duration: u64, role: Option<(String, String)>) -> Reply {
        let mut state = self.state.lock().unwrap();
        let duration = state.session_lifetime.unwrap_or(duration);
        state.issued += 1;
        let key_id = format!("ASIAFAKE{:012}", state.issued);
        let token = format!("FakeSessionToken{}x{}", state.issued, "t".repeat(40));
        let secret = format!("FakeSessionSecret{:023}", state.issued);
        state
            .sessions
            .insert(key_id.clone(), (token.clone(), secret.clone()));
        state
            .issued_credentials
            .push((key_id.clone(), secret.clone(), token.clone()));
        state.expires.insert(key_id.clone(), unix_now() + duration);
        let expiration = DateTime::from_secs(i64::try_from(unix_now() + duration).unwrap())
            .fmt(DateTimeFormat::DateTime)
            .unwrap();
        let assumed = role.map_or_else(String::new, |(arn, name)| {
            format!("<AssumedRoleUser><AssumedRoleId>AROAFAKE:{name}</AssumedRoleId><Arn>{arn}/{name}</Arn></AssumedRoleUser>")
        });
        Reply {
            status: 200,
            body: format!(
                "<{action}Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><{action}Result>{assumed}<Credentials><AccessKeyId>{key_id}</AccessKeyId><SecretAccessKey>{secret}</SecretAccessKey><SessionToken>{token}</SessionToken><Expiration>{expiration}</Expiration></Credentials></{action}Result><ResponseMetadata><RequestId>fake-{n}</RequestId></ResponseMetadata></{action}Response>",
                n = state.issued
            ),
        }
    }
}

fn parse_duration(
    form: &HashMap<String, String>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, Reply> {
    let Some(value) = form.get("DurationSeconds") else {
        return Ok(default);
    };
    match value.parse::<u64>() {
        Ok(d) if range.contains(&d) => Ok(d),
        _ => Err(error(
            400,
            "Sender",
            "ValidationError",
            &format!(
                "1 validation error detected: Value '{value}' at 'durationSeconds' failed to satisfy constraint"
            ),
        )),
    }
}

fn error(status: u16, kind: &str, code: &str, message: &str) -> Reply {
    Reply {
        status,
        body: format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fake-error</RequestId></ErrorResponse>"
        ),
    }
}

/// A request header's value, its name in any case.
fn header(request: &tiny_http::Request, name: &str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str().to_owned())
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// SigV4's `X-Amz-Date` form of Unix time `secs`: `20261206T113000Z`.
fn amz_date(secs: u64) -> String {
    DateTime::from_secs(secs.cast_signed())
        .fmt(DateTimeFormat::DateTime)
        .unwrap()
        .replace(['-', ':'], "")
}

/// The Unix time of an `X-Amz-Date` value; none for one that is not of that form.
fn from_amz_date(amz: &str) -> Option<u64> {
    let d = amz.as_bytes();
    if d.len() != 16 || d[8] != b'T' || d[15] != b'Z' {
        return None;
    }
    let iso = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &amz[0..4],
        &amz[4..6],
        &amz[6..8],
        &amz[9..11],
        &amz[11..13],
        &amz[13..15]
    );
    let secs = DateTime::from_str(&iso, DateTimeFormat::DateTime)
        .ok()?
        .secs();
    u64::try_from(secs).ok()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn oathtool(seed: &str, time: u64, period: u64) -> String {
    super::oathtool(seed, time, "sha1", 6, period)
}

/// AWS Signature Version 4, as STS checks it: recomputed from the request and the secret.
mod sigv4 {
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};

    fn hmac(key: &[u8], data: &str) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(data.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    fn hex(bytes: &[u8]) -> String {
        use std::fmt::Write as _;
        bytes.iter().fold(String::new(), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
    }

    /// The signature of a request with `headers` (lower-case names), signing `signed`.
    #[allow(clippy::too_many_arguments)]
    pub fn signature(
        method: &str,
        url: &str,
        headers: &[(String, String)],
        signed: &[&str],
        body: &str,
        secret: &str,
        amz_date: &str,
        scope: &str,
    ) -> String {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let mut query: Vec<&str> = query.split('&').filter(|q| !q.is_empty()).collect();
        query.sort_unstable();
        let mut canonical_headers = String::new();
        for name in signed {
            let value = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map_or("", |(_, v)| v.as_str());
            canonical_headers.push_str(name);
            canonical_headers.push(':');
            canonical_headers.push_str(&value.split_whitespace().collect::<Vec<_>>().join(" "));
            canonical_headers.push('\n');
        }
        let canonical = format!(
            "{method}\n{path}\n{}\n{canonical_headers}\n{}\n{}",
            query.join("&"),
            signed.join(";"),
            hex(&Sha256::digest(body.as_bytes()))
        );
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        let mut parts = scope.split('/');
        let (date, region, service) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let key = hmac(format!("AWS4{secret}").as_bytes(), date);
        let key = hmac(&key, region);
        let key = hmac(&key, service);
        let key = hmac(&key, "aws4_request");
        hex(&hmac(&key, &to_sign))
    }

    /// Whether the request's `Authorization` header carries the signature `secret` makes.
    pub fn verifies(
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: &str,
        secret: &str,
    ) -> bool {
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let (Some(auth), Some(amz_date)) = (header("Authorization"), header("X-Amz-Date")) else {
            return false;
        };
        let field = |name: &str| {
            auth.split([',', ' '])
                .find_map(|part| part.trim().strip_prefix(name))
                .map(str::to_owned)
        };
        let (Some(credential), Some(signed), Some(given)) = (
            field("Credential="),
            field("SignedHeaders="),
            field("Signature="),
        ) else {
            return false;
        };
        let Some((_, scope)) = credential.split_once('/') else {
            return false;
        };
        let signed: Vec<&str> = signed.split(';').collect();
        let lower: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect();
        signature(method, url, &lower, &signed, body, secret, &amz_date, scope) == given
    }
}

/// The access key id a request was signed with.
fn signing_key_id(request: &tiny_http::Request) -> Option<String> {
    let auth = request.headers().iter().find(|h| {
        h.field
            .as_str()
            .as_str()
            .eq_ignore_ascii_case("Authorization")
    })?;
    let credential = auth
        .value
        .as_str()
        .strip_prefix("AWS4-HMAC-SHA256 Credential=")?;
    Some(credential.split('/').next()?.to_owned())
}
