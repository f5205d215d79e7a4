//! What STS and IAM (or whatever answers in their place: a proxy, a captive portal, a broken
//! emulator) send back, over real HTTP from a local server, to the two calls whose answers
//! carry secrets: GetSessionToken (a session) and CreateVirtualMFADevice (a seed). Any status
//! and body give a session that is complete and unexpired, or a device with a serial and a
//! seed, or an error; never a panic.
//!
//! The input's first byte picks the HTTP status, the call, and whether the rest is wrapped in
//! the call's response envelope (so that the fuzzer reaches the inner fields quickly).
#![no_main]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mfa_agent::aws::LongTermKeys;
use mfa_agent::aws::iam::Iam;
use mfa_agent::aws::sts::{Mfa, Sts};
use mfa_agent::secret::SecretString;

const STATUSES: [u16; 8] = [200, 200, 200, 400, 403, 500, 503, 302];

/// The answer the local server gives to the next request.
static REPLY: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// A local HTTP server answering each request with `REPLY`; its URL.
fn server() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut length = 0usize;
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 2 {
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    line.clear();
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let reply = REPLY.lock().unwrap().clone();
                let _ = reader.get_mut().write_all(&reply);
            }
        });
        url
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

const STS_ENVELOPE: (&[u8], &[u8]) = (
    b"<GetSessionTokenResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetSessionTokenResult><Credentials>",
    b"</Credentials></GetSessionTokenResult></GetSessionTokenResponse>",
);
const IAM_ENVELOPE: (&[u8], &[u8]) = (
    b"<CreateVirtualMFADeviceResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><CreateVirtualMFADeviceResult><VirtualMFADevice>",
    b"</VirtualMFADevice></CreateVirtualMFADeviceResult></CreateVirtualMFADeviceResponse>",
);

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let status = STATUSES[usize::from(head & 7)];
    let iam = head & 16 != 0;
    let body = if head & 8 == 0 {
        let (open, close) = if iam { IAM_ENVELOPE } else { STS_ENVELOPE };
        [open, rest, close].concat()
    } else {
        rest.to_vec()
    };
    let mut reply = format!(
        "HTTP/1.1 {status} Fuzz\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    reply.extend_from_slice(&body);
    *REPLY.lock().unwrap() = reply;

    let endpoint = Some(server().to_owned());
    let keys = LongTermKeys {
        access_key_id: "AKIAFUZZFUZZFUZZFUZZ".into(),
        secret_access_key: SecretString::new("fuzz".into()),
    };
    if iam {
        let iam = Iam::new(
            endpoint,
            Duration::from_secs(5),
            mfa_agent::aws::http::direct(),
        );
        let signing = aws_credential_types::Credentials::new(
            keys.access_key_id.clone(),
            keys.secret_access_key.expose().to_owned(),
            None,
            None,
            "fuzz",
        );
        if let Ok(device) = runtime().block_on(iam.create_virtual_mfa_device(signing, None, "fuzz"))
        {
            assert!(
                device.serial.starts_with("arn:"),
                "a device without a serial"
            );
            assert!(!device.seed.expose().is_empty(), "a device without a seed");
        }
        return;
    }
    let sts = Sts::new(
        endpoint,
        Duration::from_secs(5),
        mfa_agent::aws::http::direct(),
    );
    let mfa = Mfa {
        serial: "arn:aws:iam::123456789012:mfa/fuzz",
        code: "123456",
    };
    let now = mfa_agent::clock::unix_now_i64();
    if let Ok(session) = runtime().block_on(sts.get_session_token(&keys, None, &mfa, None)) {
        assert!(
            !session.access_key_id.is_empty(),
            "a session without a key id"
        );
        assert!(
            !session.secret_access_key.expose().is_empty(),
            "a session without a secret"
        );
        assert!(
            !session.session_token.expose().is_empty(),
            "a session without a token"
        );
        assert!(
            session.expiration > now,
            "a session that has already expired"
        );
    }
});
