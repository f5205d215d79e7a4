//! One client connection: access check, handshake, then requests until the client leaves.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::actions::credentials;
use super::lines::{Line, WipingReader, read_line};
use super::peer::Peer;
use super::prompt::Progress;
use super::{AgentState, Prompt, actions, gate};
use crate::aws::context::AwsContext;
use crate::protocol::{
    Answer, AskKind, Credentials, CredentialsUser, Event, Hello, MAX_LINE, PROTOCOL_VERSION,
    Request, Response, StatusReport,
};
use crate::secret::SecretString;

/// Subscribed connections at once: a desktop has one tray, a few monitors at most.
const MAX_SUBSCRIBERS: usize = 64;

/// How long one response may take to write: a client that stops reading is let go rather
/// than holding its connection (and for a subscriber, the agent's memory) for ever.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn serve(stream: UnixStream, state: Arc<AgentState>) {
    // The socket's directory is private already; the uid check also stops a process that
    // was handed the socket some other way.
    let credentials = stream.peer_cred().ok();
    let peer_uid = credentials.map(|c| c.uid());
    let asking_pid = credentials
        .and_then(|c| c.pid())
        .and_then(|p| u32::try_from(p).ok());
    let (reader, mut writer) = stream.into_split();
    if peer_uid != Some(state.uid) {
        tracing::warn!(?peer_uid, "refused a connection from another user");
        let message = format!("refused: this agent serves only uid {}", state.uid);
        let _ = send(&mut writer, &Response::Error { message }).await;
        return;
    }
    let mut reader = WipingReader::new(reader);
    // Set by hello: the client's AWS context, for every request on the connection.
    let mut context: Option<Arc<AwsContext>> = None;
    let asker = Asker {
        pid: asking_pid,
        peer: std::sync::OnceLock::new(),
    };
    loop {
        // Between requests: until the idle timeout, or until a new client needs the slot.
        // Biased, the read first: a request already waiting is served without ever polling
        // (and so registering with, then leaving) the shedding notification, which costs a
        // lock each way on every request of a busy connection.
        let next = tokio::select! {
            biased;
            line = tokio::time::timeout(state.idle_timeout, read_line(&mut reader)) => line,
            () = state.shed.notified() => return,
        };
        let line = match next {
            Err(_) | Ok(Ok(Line::Closed) | Err(_)) => return,
            Ok(Ok(Line::TooLong)) => {
                let message =
                    format!("request longer than {MAX_LINE} bytes; closing the connection");
                let _ = send(&mut writer, &Response::Error { message }).await;
                return;
            }
            Ok(Ok(Line::Complete(line))) => line,
        };
        let request = match parse(&line) {
            Ok(request) => request,
            Err(e) => {
                let message = format!(
                    "malformed request ({e}); is the client the same version as the agent?"
                );
                if send(&mut writer, &Response::Error { message })
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            }
        };
        let Some(context) = &context else {
            let reply;
            (reply, context) = greet(request, &state);
            if send(&mut writer, &reply).await.is_err() || context.is_none() {
                return;
            }
            continue;
        };
        if matches!(request, Request::Subscribe) {
            let subscribers = &state.subscribers;
            if subscribers.fetch_add(1, Ordering::Relaxed) >= MAX_SUBSCRIBERS {
                subscribers.fetch_sub(1, Ordering::Relaxed);
                let message = format!(
                    "too many subscribers ({MAX_SUBSCRIBERS} trays or monitors are connected); close one and retry"
                );
                let _ = send(&mut writer, &Response::Error { message }).await;
                return;
            }
            subscribe(&mut reader, &mut writer, &state).await;
            subscribers.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let caller = Caller {
            asker: &asker,
            context,
        };
        if handle(request, &state, &caller, &mut reader, &mut writer)
            .await
            .is_err()
        {
            return;
        }
    }
}

/// The answer to a connection's first request, which must be a hello in this agent's
/// protocol, and the client's context when it was.
fn greet(request: Request, state: &AgentState) -> (Response, Option<Arc<AwsContext>>) {
    match request {
        Request::Hello(Hello { version, context }) if version == PROTOCOL_VERSION => {
            let hello = Response::Hello {
                version,
                agent_version: env!("CARGO_PKG_VERSION").into(),
            };
            (hello, Some(state.minter.contexts.get(context)))
        }
        Request::Hello(Hello { version, .. }) => {
            let message = format!(
                "the client speaks protocol {version} but this agent speaks {PROTOCOL_VERSION}; restart the agent after upgrading (`mfa-agent stop`; the next command starts the new one)"
            );
            (Response::Error { message }, None)
        }
        _ => {
            let message = "the first request must be hello".into();
            (Response::Error { message }, None)
        }
    }
}

/// A credentials request, the hot path, parsed on its own: serde reads an internally tagged
/// enum by buffering the whole object first, which costs a cache hit more than the rest of
/// its work.
#[derive(serde::Deserialize)]
struct CredentialsRequest<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    profile: String,
    #[serde(default)]
    force_refresh: bool,
    #[serde(default)]
    user: Option<CredentialsUser>,
}

fn parse(line: &[u8]) -> serde_json::Result<Request> {
    if let Ok(CredentialsRequest {
        kind: "credentials",
        profile,
        force_refresh,
        user,
    }) = serde_json::from_slice(line)
    {
        return Ok(Request::Credentials(Credentials {
            profile,
            force_refresh,
            user,
        }));
    }
    serde_json::from_slice(line)
}

/// The other end of a connection: who, and in what AWS context.
struct Caller<'a> {
    asker: &'a Asker,
    context: &'a Arc<AwsContext>,
}

impl Caller<'_> {
    /// The channel for a request's prompts, naming `peer` and carrying the context.
    fn progress(&self, peer: &Peer) -> (Progress, mpsc::UnboundedReceiver<Prompt>) {
        let (client, messages) = mpsc::unbounded_channel();
        (
            Progress::new(client, self.context.clone()).asked_by(peer),
            messages,
        )
    }
}

/// Who is on the other end of a connection, found when first needed (an audit entry).
struct Asker {
    pid: Option<u32>,
    peer: std::sync::OnceLock<Peer>,
}

impl Asker {
    /// Who will use credentials: the one the client names for `exec` (the command it runs
    /// next, or for `exec --server` the process behind the HTTP request, which must descend
    /// from the client), else the connection's own peer.
    fn user(&self, named: Option<&CredentialsUser>) -> std::borrow::Cow<'_, Peer> {
        use std::borrow::Cow;
        let client = self.pid.unwrap_or(0);
        match named {
            Some(CredentialsUser::Command(command)) => Cow::Owned(Peer {
                pid: client,
                program: super::peer::printable(
                    std::path::Path::new(command)
                        .file_name()
                        .map_or(command.as_str(), |n| n.to_str().unwrap_or(command)),
                ),
            }),
            Some(CredentialsUser::Process(pid)) if super::peer::descends_from(*pid, client) => {
                Cow::Owned(super::peer::identify(*pid))
            }
            _ => Cow::Borrowed(self.peer()),
        }
    }

    fn peer(&self) -> &Peer {
        self.peer.get_or_init(|| match self.pid {
            Some(pid) => super::peer::identify(pid),
            None => Peer {
                pid: 0,
                program: "unknown".into(),
            },
        })
    }
}

async fn handle<R, W>(
    request: Request,
    state: &AgentState,
    caller: &Caller<'_>,
    reader: &mut R,
    writer: &mut W,
) -> std::io::Result<()>
where
    R: AsyncBufReadExt + Unpin,
    W: AsyncWrite + Unpin,
{
    let response = match request {
        Request::Hello(_) => Response::Error {
            message: "hello was already said".into(),
        },
        Request::Answer(_) => Response::Error {
            message: "an answer was sent, but nothing was asked".into(),
        },
        Request::Status => Response::Status(status(state)),
        Request::Subscribe => unreachable!("served by `subscribe`"),
        Request::Stop => {
            let sent = send(
                writer,
                &Response::Stopping {
                    pid: std::process::id(),
                },
            )
            .await;
            state.stop.notify_one();
            return sent;
        }
        Request::Lock => {
            let dropped = state.minter.lock();
            *state.last_error.lock().expect("last error lock poisoned") = None;
            tracing::info!(dropped, "locked: dropped cached sessions");
            Response::Locked { dropped }
        }
        Request::Credentials(Credentials {
            profile,
            force_refresh,
            user,
        }) => {
            let ask = credentials::Ask {
                profile: &profile,
                force_refresh,
                context: caller.context.id(),
            };
            return serve_credentials(&ask, user.as_ref(), state, caller, reader, writer).await;
        }
        // Everything else reads the vault, talks to a security key or uses a session.
        request => match carry_out(request, state, caller, reader, writer).await? {
            Some(response) => response,
            None => return Err(std::io::ErrorKind::BrokenPipe.into()),
        },
    };
    send(writer, &response).await
}

/// The credentials request, the hot path: a fresh cached session is sent at once;
/// otherwise the mint's prompts are relayed until it ends.
async fn serve_credentials<R, W>(
    ask: &credentials::Ask<'_>,
    user: Option<&CredentialsUser>,
    state: &AgentState,
    caller: &Caller<'_>,
    reader: &mut R,
    writer: &mut W,
) -> std::io::Result<()>
where
    R: AsyncBufReadExt + Unpin,
    W: AsyncWrite + Unpin,
{
    if let Err(message) = ask.check_name() {
        return send(writer, &Response::Error { message }).await;
    }
    // Named before the reply: a client exits as soon as it has it, and with it the way to
    // the program behind it.
    let peer = &*caller.asker.user(user);
    if let Some(credentials) = ask.cached(state, peer) {
        let sent = send(writer, &Response::Credentials(credentials)).await;
        ask.served_from_cache(state, peer);
        return sent;
    }
    let (progress, messages) = caller.progress(peer);
    // Boxed: a mint's state machine is large, and it only runs on a cache miss (or a
    // program that must be approved first).
    let mint = Box::pin(ask.mint(state, &progress));
    let Some(result) = follow_mint(mint, messages, reader, writer).await? else {
        // The client hung up; the mint ran to its end for the cache and other callers.
        return Err(std::io::ErrorKind::BrokenPipe.into());
    };
    send(writer, &ask.answer(state, peer, result)).await
}

/// Carries out a request other than the hot credentials one, through the gate: its
/// operation is named once (gate.rs), and every one that uses something leaves an audit
/// entry. `None` when the client hung up first.
async fn carry_out<R, W>(
    request: Request,
    state: &AgentState,
    caller: &Caller<'_>,
    reader: &mut R,
    writer: &mut W,
) -> std::io::Result<Option<Response>>
where
    R: AsyncBufReadExt + Unpin,
    W: AsyncWrite + Unpin,
{
    let operation = gate::operation(&request);
    let (name, subject, audited) = (
        operation.name,
        operation.subject.to_owned(),
        operation.uses != gate::Uses::Nothing,
    );
    let peer = caller.asker.peer();
    let (progress, messages) = caller.progress(peer);
    let work = Box::pin(actions::handle(request, &state.minter, progress));
    let Some(result) = follow_mint(work, messages, reader, writer).await? else {
        if audited {
            state.audit.record(name, &subject, peer, "abandoned");
        }
        return Ok(None);
    };
    if audited {
        let outcome = if result.is_ok() { "done" } else { "failed" };
        state.audit.record(name, &subject, peer, outcome);
    }
    Ok(Some(result.unwrap_or_else(|e| {
        let message = crate::report::sentence(e.as_ref());
        tracing::info!("request failed: {message}");
        Response::Error { message }
    })))
}

/// Drives `mint` while relaying its prompts to the client. If the client hangs up, the
/// prompt channel is closed (a touch request waiting on the key gets cancelled), the mint
/// still runs to its end, and the result is `None`. The mint keeps running while the
/// client's answer to a question is awaited: it may stop waiting (a prompt timeout).
async fn follow_mint<T, R, W>(
    mint: impl Future<Output = T>,
    mut prompts: mpsc::UnboundedReceiver<Prompt>,
    reader: &mut R,
    writer: &mut W,
) -> std::io::Result<Option<T>>
where
    R: AsyncBufReadExt + Unpin,
    W: AsyncWrite + Unpin,
{
    tokio::pin!(mint);
    // Set when the client sends something ahead of the response: it is still there, and its
    // bytes wait for the next request.
    let mut sent_ahead = false;
    // The question the client is answering: where the answer goes, how long to wait.
    let mut asking: Option<(oneshot::Sender<Option<SecretString>>, Duration)> = None;
    loop {
        let answer_wait = asking.as_ref().map(|(_, wait)| *wait);
        tokio::select! {
            result = &mut mint => return Ok(Some(result)),
            // One question at a time, and nothing else meanwhile: the client watches the
            // connection while its user types, and anything on it ends the prompt.
            Some(prompt) = prompts.recv(), if asking.is_none() => match prompt {
                Prompt::Tell(message) => send(writer, &Response::Waiting { message }).await?,
                Prompt::Ask { kind, message, reply } => {
                    send(writer, &Response::Ask { kind, message }).await?;
                    asking = Some((reply, answer_timeout(kind)));
                }
            },
            heard = hear(reader, answer_wait), if answer_wait.is_some() || !sent_ahead => match heard {
                Heard::Answer(answer) => {
                    if let Some((reply, _)) = asking.take() {
                        let _ = reply.send(answer);
                    }
                }
                Heard::HungUp => {
                    drop((prompts, asking));
                    mint.await;
                    return Ok(None);
                }
                Heard::SentAhead => sent_ahead = true,
            },
            () = asker_gone(&mut asking) => asking = None,
        }
    }
}

/// What the client said while a request ran.
enum Heard {
    /// Its answer to the question (`None`: it cannot ask, or said something else).
    Answer(Option<SecretString>),
    /// It closed the connection.
    HungUp,
    /// It sent bytes ahead of the response, with no question pending: they wait.
    SentAhead,
}

/// Waits for the client: its answer when a question is pending (`answer_wait` bounds the
/// wait; past it, the answer is "none"), else for it to hang up or send something.
async fn hear<R: AsyncBufReadExt + Unpin>(reader: &mut R, answer_wait: Option<Duration>) -> Heard {
    let Some(wait) = answer_wait else {
        return match reader.fill_buf().await {
            Ok(bytes) if !bytes.is_empty() => Heard::SentAhead,
            // A client says nothing while it waits: readable with nothing in it is EOF.
            _ => Heard::HungUp,
        };
    };
    let line = match tokio::time::timeout(wait, read_line(reader)).await {
        Ok(Ok(Line::Complete(line))) => line,
        Ok(Ok(Line::Closed) | Err(_)) => return Heard::HungUp,
        Ok(Ok(Line::TooLong)) | Err(_) => return Heard::Answer(None),
    };
    // The line may hold a PIN or passphrase: it is wiped when dropped, here.
    let parsed = serde_json::from_slice::<Request>(&line);
    drop(line);
    match parsed {
        Ok(Request::Answer(Answer { answer })) => Heard::Answer(answer),
        _ => Heard::Answer(None),
    }
}

/// Resolves when the one who asked the pending question stopped waiting for the answer.
async fn asker_gone(asking: &mut Option<(oneshot::Sender<Option<SecretString>>, Duration)>) {
    match asking {
        Some((reply, _)) => reply.closed().await,
        None => std::future::pending().await,
    }
}

/// How long the user has to answer a question (type a PIN, a passphrase) at the client.
/// An MFA code's wait is the minter's (`prompt_timeout_seconds`), which stops it itself.
fn answer_timeout(kind: AskKind) -> Duration {
    match kind {
        AskKind::MfaCode => Duration::from_secs(24 * 3600),
        _ => Duration::from_secs(120),
    }
}

/// A subscribed connection: the state now, then every event until the client hangs up. No
/// idle timeout: a subscriber is quiet by design.
async fn subscribe<R, W>(reader: &mut R, writer: &mut W, state: &AgentState)
where
    R: AsyncReadExt + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut events = state.minter.events.subscribe();
    if send(writer, &Response::Status(status(state)))
        .await
        .is_err()
    {
        return;
    }
    let mut ignored = [0u8; 256];
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            // Subscribers send nothing more; EOF (or an error) means the client left.
            read = reader.read(&mut ignored) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            },
        };
        let event = match event {
            Ok(event) => event,
            // Fell behind: what was missed is summed up by the current state.
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::debug!(missed, "a subscriber fell behind");
                Event::Sessions {
                    sessions: state.minter.cache.summaries(),
                    unlocked_until: state.minter.unlocked_until(),
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if send(writer, &Response::Event(event)).await.is_err() {
            return;
        }
    }
}

fn status(state: &AgentState) -> StatusReport {
    StatusReport {
        agent_version: env!("CARGO_PKG_VERSION").into(),
        protocol_version: PROTOCOL_VERSION,
        pid: std::process::id(),
        uptime_seconds: state.started.elapsed().as_secs(),
        store: state.store.clone(),
        sessions: state.minter.cache.summaries(),
        unlocked_until: state.minter.unlocked_until(),
        last_error: state
            .last_error
            .lock()
            .expect("last error lock poisoned")
            .clone(),
        queue: state.minter.door.pending(),
        waiting_for_sessions: state.minter.cache.waiting(),
        notifications: Some(state.notifying.load(std::sync::atomic::Ordering::SeqCst)),
    }
}

async fn send<W: AsyncWrite + Unpin>(writer: &mut W, response: &Response) -> std::io::Result<()> {
    // Sized for a credentials response, so serialising does not reallocate and strand
    // copies of the secrets; the buffer is wiped after the write.
    let mut line = Vec::with_capacity(4096);
    serde_json::to_writer(&mut line, response).expect("responses always serialise");
    line.push(b'\n');
    let written = tokio::time::timeout(WRITE_TIMEOUT, writer.write_all(&line))
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()));
    zeroize::Zeroize::zeroize(&mut line);
    written
}
