//! `mfa-agent login`: a console sign-in link from a role profile's session, through a fake
//! federation endpoint that checks the session it receives is the one STS issued.

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::fake_sts::FakeSts;
use common::minting;

/// A federation endpoint on 127.0.0.1: answers getSigninToken with a token, records the
/// sessions it was given, and refuses any other action.
struct Federation {
    url: String,
    sessions: Arc<Mutex<Vec<serde_json::Value>>>,
    _thread: std::thread::JoinHandle<()>,
}

impl Federation {
    fn start() -> Self {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/federation",
            server.server_addr().to_ip().unwrap()
        );
        let sessions = Arc::new(Mutex::new(Vec::new()));
        let seen = sessions.clone();
        // Serves until the test process ends (bounded by the requests a test makes).
        let thread = std::thread::spawn(move || {
            for request in server.incoming_requests() {
                let query: HashMap<String, String> = request
                    .url()
                    .split_once('?')
                    .map(|(_, q)| q)
                    .unwrap_or_default()
                    .split('&')
                    .filter_map(|p| p.split_once('='))
                    .map(|(k, v)| {
                        (
                            k.to_owned(),
                            percent_encoding::percent_decode_str(v)
                                .decode_utf8_lossy()
                                .into_owned(),
                        )
                    })
                    .collect();
                let session = query
                    .get("Session")
                    .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok());
                let reply = match (query.get("Action").map(String::as_str), session) {
                    (Some("getSigninToken"), Some(session)) => {
                        seen.lock().unwrap().push(session);
                        tiny_http::Response::from_string(
                            "{\"SigninToken\":\"fake-signin-token-1\"}",
                        )
                    }
                    _ => tiny_http::Response::from_string("bad request").with_status_code(400),
                };
                let _ = request.respond(reply);
            }
        });
        Self {
            url,
            sessions,
            _thread: thread,
        }
    }
}

#[test]
fn a_role_profile_gets_a_console_link_made_from_its_own_session() {
    let sts = FakeSts::start(common::AWS_SEED, 30);
    let federation = Federation::start();
    let mut env = minting::setup_with(
        &sts,
        common::AWS_SEED,
        30,
        &format!("signin_endpoint = \"{}\"\n", federation.url),
    );
    let printed = env.run(["login", "admin", "--print"], "").success();
    let url = printed.trim();
    assert_eq!(
        url,
        format!(
            "{}?Action=login&Issuer=mfa-agent&Destination=https%3A%2F%2Fconsole.aws.amazon.com%2F&SigninToken=fake-signin-token-1",
            federation.url
        )
    );
    // The endpoint got the role session STS issued, all three parts, and nothing else.
    let (key_id, secret, token) = sts.issued().last().cloned().unwrap();
    assert_eq!(sts.assume_role_count(), 1);
    let sessions = federation.sessions.lock().unwrap().clone();
    assert_eq!(
        sessions,
        [serde_json::json!({"sessionId": key_id, "sessionKey": secret, "sessionToken": token})]
    );

    // Without --print: a page of the user's own hands the link to the browser (xdg-open,
    // here a stand-in that records what it was given); the link is never on a command line.
    let bin = env.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let opened = env.path().join("opened");
    let script = bin.join("xdg-open");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$1\" > {}\n", opened.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    env.set(
        "PATH",
        &format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
    );
    env.run(["login", "admin"], "").success();
    let page = std::path::PathBuf::from(std::fs::read_to_string(&opened).unwrap().trim());
    assert!(
        !page.to_string_lossy().contains("SigninToken"),
        "the argument is a path"
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&page).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains(&url.replace('&', "&amp;")),
        "the page sends the browser on to the link: {html}"
    );
}

#[test]
fn a_profile_the_console_cannot_take_is_refused_with_the_reason() {
    let sts = FakeSts::start(common::AWS_SEED, 30);
    let federation = Federation::start();
    let env = minting::setup_with(
        &sts,
        common::AWS_SEED,
        30,
        &format!("signin_endpoint = \"{}\"\n", federation.url),
    );
    // An IAM user's MFA session: AWS's console takes it only through GetFederationToken.
    env.run(["login", "base"], "").failure(&[
        "GetFederationToken",
        "carries no MFA",
        "role profile",
    ]);
    assert_eq!(sts.gst_calls(), 0, "refused before any mint");
    assert!(federation.sessions.lock().unwrap().is_empty());
}

/// A sign-in endpoint that cannot be reached (no network, a refused connection, a bad
/// proxy): the error names what happened and what to do, and neither it nor the agent's log
/// holds the session it was sending. (Every other failure of the endpoint is tested beside
/// the code, in src/agent/actions/login.rs.)
#[test]
fn an_unreachable_sign_in_endpoint_shows_no_session_anywhere() {
    let sts = FakeSts::start(common::AWS_SEED, 30);
    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/federation", listener.local_addr().unwrap())
    };
    let mut env = minting::setup_with(
        &sts,
        common::AWS_SEED,
        30,
        &format!("signin_endpoint = \"{refused}\"\n"),
    );
    // The next agent logs everything, the HTTP clients' tracing too.
    env.set("MFA_AGENT_LOG", "trace");
    env.stop_daemon();
    let said = env.run(["login", "admin", "--print"], "").failure(&[
        "failed to reach the sign-in endpoint",
        "could not connect",
        "check the network",
    ]);
    let (_, secret, token) = sts
        .issued()
        .last()
        .cloned()
        .expect("the role session was minted");
    let log =
        std::fs::read_to_string(env.path().join(".local/state/mfa-agent/daemon.log")).unwrap();
    assert!(
        log.contains("failed to reach the sign-in endpoint"),
        "the log has the failure: {log}"
    );
    for text in [&said, &log] {
        for part in [&secret, &token] {
            let encoded =
                percent_encoding::utf8_percent_encode(part, percent_encoding::NON_ALPHANUMERIC)
                    .to_string();
            assert!(
                !text.contains(part.as_str()) && !text.contains(&encoded),
                "a part of the session in: {text}"
            );
        }
        assert!(!text.contains("Session="), "the request's query in: {text}");
    }
}

/// A profile that stands for another (`credential_process` running mfa-agent for `base`)
/// is refused naming the profile with the keys; and a browser that cannot be opened leaves
/// no page with a sign-in link behind.
#[test]
fn refusals_name_the_right_profile_and_a_failed_open_leaves_no_link() {
    let sts = FakeSts::start(common::AWS_SEED, 30);
    let federation = Federation::start();
    let mut env = minting::setup_with(
        &sts,
        common::AWS_SEED,
        30,
        &format!("signin_endpoint = \"{}\"\n", federation.url),
    );
    let config = std::fs::read_to_string(env.path().join(".aws/config")).unwrap();
    env.aws_config(&format!(
        "{config}\n[profile base-mfa]\ncredential_process = mfa-agent credential-process --profile base\n"
    ));
    env.run(["login", "base-mfa"], "").failure(&[
        "\"base-mfa\" is an IAM user's MFA session",
        "source_profile = base)",
    ]);

    let bin = env.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("xdg-open");
    std::fs::write(&script, "#!/bin/sh\nexit 3\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    env.set(
        "PATH",
        &format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
    );
    env.run(["login", "admin"], "")
        .failure(&["xdg-open failed", "--print"]);
    let runtime = env.path().join("run/mfa-agent");
    let left: Vec<_> = std::fs::read_dir(&runtime)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("login-"))
        .collect();
    assert!(left.is_empty(), "a sign-in page was left behind: {left:?}");
}
