//! The agent's server run in-process on a temporary socket (`agent::run` takes a bound
//! listener and a shutdown future): idle connections time out, shutdown stops the server.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mfa_agent::agent::{self, AgentState, Minter};
use mfa_agent::aws::context::AwsContext;
use mfa_agent::config::Config;
use mfa_agent::paths::Paths;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

fn state(home: &std::path::Path, idle: Duration) -> Arc<AgentState> {
    let paths = Paths::from_lookup(|name| (name == "HOME").then(|| PathBuf::from(home))).unwrap();
    let minter = Minter::new(
        Config::default(),
        paths,
        AwsContext::of_this_process(Duration::from_secs(5)),
    );
    let mut state = AgentState::new(minter, "OS keyring".into());
    state.idle_timeout = idle;
    Arc::new(state)
}

#[tokio::test]
async fn silent_clients_are_disconnected_and_shutdown_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(agent::run(
        listener,
        state(dir.path(), Duration::from_millis(200)),
        async {
            let _ = stopped.await;
        },
    ));

    // A client that says hello and asks for status is answered...
    let stream = UnixStream::connect(&socket).await.unwrap();
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader).lines();
    writer
        .write_all(&crate::common::after_hello("{\"type\":\"status\"}\n"))
        .await
        .unwrap();
    assert!(
        lines
            .next_line()
            .await
            .unwrap()
            .unwrap()
            .contains("\"type\":\"hello\"")
    );
    let status = lines.next_line().await.unwrap().unwrap();
    assert!(status.contains("\"store\":\"OS keyring\""), "{status}");

    // ...and then, silent, is disconnected once the idle timeout passes.
    let silent_since = Instant::now();
    assert_eq!(
        lines.next_line().await.unwrap(),
        None,
        "the server closed the connection"
    );
    let waited = silent_since.elapsed();
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_secs(5),
        "{waited:?}"
    );

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("run returns after shutdown")
        .unwrap();
}

/// At most `MAX_CONNECTIONS` (1024) connections are served at once, and a flood of silent
/// ones cannot hold them all until their idle timeout: a new client takes the slot of one
/// that sits idle between requests, so `status` answers at once.
#[tokio::test]
async fn a_flood_of_idle_connections_leaves_status_answering() {
    mfa_agent::sys::raise_fd_limit();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let state = state(dir.path(), Duration::from_secs(60));
    assert_eq!(state.max_connections, agent::MAX_CONNECTIONS);
    assert_eq!(agent::MAX_CONNECTIONS, 1024, "the figure SECURITY.md gives");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(agent::run(listener, state, async {
        let _ = stopped.await;
    }));

    // A full house of clients that connect and say nothing.
    let mut silent = Vec::new();
    for _ in 0..agent::MAX_CONNECTIONS {
        silent.push(UnixStream::connect(&socket).await.unwrap());
    }
    let asked = Instant::now();
    let stream = UnixStream::connect(&socket).await.unwrap();
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader).lines();
    writer
        .write_all(&crate::common::after_hello("{\"type\":\"status\"}\n"))
        .await
        .unwrap();
    let answered = tokio::time::timeout(Duration::from_secs(10), async {
        lines.next_line().await.unwrap().unwrap();
        lines.next_line().await.unwrap().unwrap()
    })
    .await
    .expect("status answered while 1024 silent clients are connected");
    assert!(answered.contains("\"type\":\"status\""), "{answered}");
    assert!(asked.elapsed() < Duration::from_secs(10));

    // It took one silent client's slot: exactly one was let go.
    let mut closed = 0;
    for stream in &silent {
        let mut byte = [0u8; 1];
        match stream.try_read(&mut byte) {
            Ok(0) => closed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("a silent client got {other:?}"),
        }
    }
    assert_eq!(closed, 1, "one idle connection made room, no more");

    stop.send(()).unwrap();
    drop(silent);
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("run returns after shutdown")
        .unwrap();
}

/// A client that asks and never reads its answers is let go once an answer cannot be
/// written for 10 s (its socket buffer full), rather than holding its connection and the
/// answers in the agent's memory for ever; others are served meanwhile.
#[tokio::test]
async fn a_client_that_stops_reading_is_let_go_after_ten_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(agent::run(
        listener,
        state(dir.path(), Duration::from_secs(60)),
        async {
            let _ = stopped.await;
        },
    ));
    let stream = UnixStream::connect(&socket).await.unwrap();
    let (reader, mut writer) = stream.into_split();
    writer
        .write_all(&crate::common::after_hello(""))
        .await
        .unwrap();
    // Status requests until the agent stops taking them: its answers fill both buffers.
    let request = b"{\"type\":\"status\"}\n";
    let stuck_since = loop {
        let sent = tokio::time::timeout(Duration::from_secs(1), writer.write_all(request)).await;
        if sent.is_err() {
            break Instant::now();
        }
    };
    // Others are answered meanwhile.
    let other = UnixStream::connect(&socket).await.unwrap();
    let (other_reader, mut other_writer) = other.into_split();
    other_writer
        .write_all(&crate::common::after_hello("{\"type\":\"status\"}\n"))
        .await
        .unwrap();
    let mut other_lines = BufReader::new(other_reader).lines();
    other_lines.next_line().await.unwrap().unwrap();
    assert!(
        other_lines
            .next_line()
            .await
            .unwrap()
            .unwrap()
            .contains("\"type\":\"status\"")
    );
    // Past the 10 s, what was written is all there is: the connection ends after it.
    tokio::time::sleep(Duration::from_secs(11).saturating_sub(stuck_since.elapsed())).await;
    let mut lines = BufReader::new(reader).lines();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while lines.next_line().await.ok().flatten().is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the connection was dropped within 10 s");
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("run returns after shutdown")
        .unwrap();
}
