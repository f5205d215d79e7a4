//! The socket protocol, pinned to its version: `tests/golden/protocol-vN.jsonl` (N being
//! `PROTOCOL_VERSION`) holds every request, response and event as this build writes them.
//! A client and an agent of different builds meet whenever the agent outlives an upgrade;
//! the hello's version is how they notice that they cannot understand each other. So a
//! change that makes a pinned line read differently (a renamed or retyped field, a new
//! required one, a removed type) fails here until the version is bumped and the file is
//! written for the new one. A new optional field or a new type reads the old lines as
//! before, needs no bump, and gets its line here.

use std::collections::BTreeSet;

use mfa_agent::protocol::{Event, PROTOCOL_VERSION, Request, Response};

/// Every request type, by its wire name. The match has no catch-all: a new request does not
/// compile until it is named here, and then the test asks for its line.
fn request_type(request: &Request) -> &'static str {
    match request {
        Request::Hello { .. } => "hello",
        Request::Credentials { .. } => "credentials",
        Request::Status => "status",
        Request::Lock => "lock",
        Request::Stop => "stop",
        Request::Answer { .. } => "answer",
        Request::Subscribe => "subscribe",
        Request::Code { .. } => "code",
        Request::SeedList => "seed_list",
        Request::SeedAdd { .. } => "seed_add",
        Request::SeedRecover => "seed_recover",
        Request::SeedRename { .. } => "seed_rename",
        Request::SeedLink { .. } => "seed_link",
        Request::SeedRemove { .. } => "seed_remove",
        Request::SeedImport { .. } => "seed_import",
        Request::SeedExport { .. } => "seed_export",
        Request::CredsList => "creds_list",
        Request::CredsAdd { .. } => "creds_add",
        Request::CredsRemove { .. } => "creds_remove",
        Request::CredsExport { .. } => "creds_export",
        Request::CredsRotate { .. } => "creds_rotate",
        Request::KeyList => "key_list",
        Request::KeyEnroll { .. } => "key_enroll",
        Request::KeyTest { .. } => "key_test",
        Request::KeyRemove { .. } => "key_remove",
        Request::AwsEnroll { .. } => "aws_enroll",
        Request::AwsResync { .. } => "aws_resync",
        Request::AwsUnenroll { .. } => "aws_unenroll",
        Request::AwsDevices { .. } => "aws_devices",
        Request::ConsoleLogin { .. } => "console_login",
    }
}
const REQUEST_TYPES: usize = 30;

/// Every event type, as [`request_type`] does for requests.
fn event_type(event: &Event) -> &'static str {
    match event {
        Event::Sessions { .. } => "sessions",
        Event::TouchNeeded { .. } => "touch_needed",
        Event::CodeWait { .. } => "code_wait",
        Event::Approved { .. } => "approved",
        Event::Issued { .. } => "issued",
        Event::Failed { .. } => "failed",
        Event::Expiring { .. } => "expiring",
        Event::Queue { .. } => "queue",
    }
}
const EVENT_TYPES: usize = 8;

/// `Response::kind` names every response type the same way, without a catch-all.
const RESPONSE_TYPES: usize = 19;

fn golden_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("protocol-v{PROTOCOL_VERSION}.jsonl"))
}

/// Reads `json` as `T` and writes it back: the pinned line, byte for byte.
fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(json: &str) -> T {
    let value: T = serde_json::from_str(json).unwrap_or_else(|e| {
        panic!(
            "this build no longer reads a line of protocol version {PROTOCOL_VERSION}: {e}\n{json}\nIf the change is meant, bump PROTOCOL_VERSION and pin the new lines in tests/golden/protocol-v{}.jsonl",
            PROTOCOL_VERSION + 1
        )
    });
    let written = serde_json::to_string(&value).unwrap();
    assert_eq!(
        written, json,
        "this build writes a line of protocol version {PROTOCOL_VERSION} differently: bump PROTOCOL_VERSION if an older peer would misread it, and pin the line as written"
    );
    value
}

#[test]
fn every_message_reads_and_writes_as_its_protocol_version_pins_it() {
    let path = golden_path();
    let golden = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; PROTOCOL_VERSION is {PROTOCOL_VERSION}: pin its messages there (one `request JSON` or `response JSON` line each)",
            path.display()
        )
    });
    let (mut requests, mut responses, mut events) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for line in golden.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(json) = line.strip_prefix("request ") {
            requests.insert(request_type(&round_trip::<Request>(json)));
        } else if let Some(json) = line.strip_prefix("response ") {
            let response = round_trip::<Response>(json);
            if let Response::Event(event) = &response {
                events.insert(event_type(event));
            }
            responses.insert(response.kind());
        } else {
            panic!("a line that is neither `request JSON` nor `response JSON`: {line}");
        }
    }
    assert_eq!(
        requests.len(),
        REQUEST_TYPES,
        "each request type has a pinned line; these do: {requests:?}"
    );
    assert_eq!(
        responses.len(),
        RESPONSE_TYPES,
        "each response type has a pinned line; these do: {responses:?}"
    );
    assert_eq!(
        events.len(),
        EVENT_TYPES,
        "each event type has a pinned line; these do: {events:?}"
    );
}

#[test]
fn the_hello_of_this_version_is_the_one_pinned() {
    // The file pins what the hello says: a bump without a new file, or a new file without a
    // bump, is caught here rather than by a client meeting an agent.
    let golden = std::fs::read_to_string(golden_path()).unwrap();
    let hello = format!(r#"request {{"type":"hello","version":{PROTOCOL_VERSION},"#);
    assert!(
        golden.lines().any(|l| l.starts_with(&hello)),
        "no hello of version {PROTOCOL_VERSION} pinned"
    );
}
