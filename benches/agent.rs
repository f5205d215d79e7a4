//! The agent's figures, printed rather than asserted (run with `tests/run --bench`):
//! - cache hit, whole process, interleaved: `mfa-agent credential-process`, a minimal
//!   client that only connects, says hello and asks once (`benches/min_client.rs`, the
//!   floor), and the AWS CLI v2's `aws configure export-credentials` on a cached MFA role
//!   profile (medians of many runs);
//! - a cold mint, whole process: `credential-process --refresh` on the role profile (one
//!   AssumeRole with the cached MFA session, no code to wait for), against the cache hit,
//!   and the fake STS's own time per call; the difference is the agent's share;
//! - the size of each binary;
//! - daemon throughput with 64 concurrent clients vs a bare tokio echo server speaking the
//!   same framing, and the daemon's CPU time per request;
//! - single-flight: 1,000 concurrent cold requests for one profile;
//! - memory: the daemon's and the tray's RSS when idle, and the daemon's peak.
#![allow(clippy::cast_precision_loss)] // figures for people, not exact arithmetic

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::fake_sts::{self, FakeSts, Fault};
use common::{AWS_SEED, SERIAL, TestEnv};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

const ROLE: &str = "arn:aws:iam::210987654321:role/Admin";
const CLIENTS: usize = 64;
const THROUGHPUT_SECONDS: u64 = 5;

fn main() {
    mfa_agent::sys::raise_fd_limit();
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = setup(&sts);
    cache_hit(&env);
    cold_mint(&env, &sts);
    sizes();
    throughput(&env);
    memory(&env);
    tray_memory(&env);
    drop(env);
    single_flight();
}

/// Builds the minimal client (std only) next to the other build products.
fn min_client() -> std::path::PathBuf {
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/min_client");
    let status = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["-O", "--edition", "2024", "-o"])
        .arg(&out)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/min_client.rs"
        ))
        .status()
        .expect("rustc runs");
    assert!(status.success(), "building benches/min_client.rs failed");
    out
}

fn sizes() {
    println!("binary sizes (release):");
    for (name, path) in [
        ("mfa-agent (client)", env!("CARGO_BIN_EXE_mfa-agent")),
        ("mfa-agent-daemon", env!("CARGO_BIN_EXE_mfa-agent-daemon")),
        ("mfa-agent-tray", env!("CARGO_BIN_EXE_mfa-agent-tray")),
    ] {
        let bytes = std::fs::metadata(path).unwrap().len();
        println!("  {name:<20} {:6.1} MB", bytes as f64 / 1e6);
    }
}

fn setup(sts: &FakeSts) -> TestEnv {
    let mut env = TestEnv::with_keyring();
    env.set("AWS_ENDPOINT_URL", &sts.url);
    env.add_seed("work", &["--serial", SERIAL]);
    env.aws_config(&format!(
        "[profile base]\nmfa_serial = {SERIAL}\naws_access_key_id = {}\naws_secret_access_key = {}\n\n\
         [profile admin]\nrole_arn = {ROLE}\nsource_profile = base\nregion = us-east-1\n",
        fake_sts::ACCESS_KEY_ID,
        fake_sts::SECRET_ACCESS_KEY
    ));
    env.start_daemon();
    env
}

fn median_ms(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() * 9 / 10]),
    )
}

fn time_runs(runs: usize, mut make: impl FnMut() -> Command) -> Vec<Duration> {
    (0..runs)
        .map(|_| {
            let mut cmd = make();
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            let start = Instant::now();
            let status = cmd.status().unwrap();
            let elapsed = start.elapsed();
            assert!(status.success(), "{cmd:?} failed");
            elapsed
        })
        .collect()
}

fn cache_hit(env: &TestEnv) {
    const ROUNDS: usize = 300;
    // Warm the agent's cache with one real mint.
    let out = env.run(["credential-process", "--profile", "admin"], "");
    out.success();
    let floor_client = min_client();

    // The AWS CLI on the same role profile, with its own cache holding valid credentials
    // (as after a first MFA prompt), so it too answers without calling STS.
    env.aws_config(&format!(
        "[profile base]\nmfa_serial = {SERIAL}\naws_access_key_id = {}\naws_secret_access_key = {}\n\n\
         [profile admin]\nrole_arn = {ROLE}\nsource_profile = base\nregion = us-east-1\n\n\
         [profile cli-admin]\nrole_arn = {ROLE}\nsource_profile = base\nmfa_serial = {SERIAL}\nregion = us-east-1\n",
        fake_sts::ACCESS_KEY_ID,
        fake_sts::SECRET_ACCESS_KEY
    ));
    seed_cli_cache(env);
    let check = env.cmd(["--version"]);
    let cli = || {
        let mut cmd = Command::new("/usr/bin/aws");
        cmd.args([
            "configure",
            "export-credentials",
            "--profile",
            "cli-admin",
            "--format",
            "process",
        ]);
        cmd.env_clear()
            .envs(check.get_envs().filter_map(|(k, v)| Some((k, v?))));
        cmd
    };
    let out = cli().output().unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ASIACLICACHE"),
        "the AWS CLI did not answer from its cache: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Interleaved, so that a noisy moment of the machine hits every contender alike.
    let (mut ours, mut floor, mut theirs, mut truth) = (vec![], vec![], vec![], vec![]);
    for round in 0..ROUNDS {
        ours.extend(time_runs(1, || {
            env.cmd(["credential-process", "--profile", "admin"])
        }));
        floor.extend(time_runs(1, || {
            let mut cmd = Command::new(&floor_client);
            cmd.arg(env.socket())
                .arg("admin")
                .arg(mfa_agent::protocol::PROTOCOL_VERSION.to_string());
            cmd
        }));
        truth.extend(time_runs(1, || Command::new("/bin/true")));
        if round % 10 == 0 {
            theirs.extend(time_runs(1, cli));
        }
    }
    let (our_median, our_p90) = median_ms(ours);
    let (floor_median, floor_p90) = median_ms(floor);
    let (true_median, true_p90) = median_ms(truth);
    let (cli_median, cli_p90) = median_ms(theirs);
    println!("cache hit, whole process, interleaved (median / p90):");
    println!(
        "  /bin/true (any process here)          {true_median:8.2} ms / {true_p90:8.2} ms  ({ROUNDS} runs)"
    );
    println!(
        "  minimal client (the floor)            {floor_median:8.2} ms / {floor_p90:8.2} ms  ({ROUNDS} runs)"
    );
    println!(
        "  mfa-agent credential-process          {our_median:8.2} ms / {our_p90:8.2} ms  ({ROUNDS} runs)"
    );
    println!(
        "  aws configure export-credentials (v2) {cli_median:8.2} ms / {cli_p90:8.2} ms  ({} runs)",
        ROUNDS / 10
    );
    println!(
        "  credential-process / floor: {:.2}x (target: <= 1.3x); AWS CLI / credential-process: {:.0}x",
        our_median / floor_median,
        cli_median / our_median
    );
}

/// A mint without a code: a forced refresh of the role profile (AssumeRole signed by the
/// cached MFA session), interleaved with cache hits. What a mint adds to a hit, less what
/// the fake STS took, is the agent's own work: building the call, signing, TLS-free HTTP on
/// a pooled connection, parsing the answer.
fn cold_mint(env: &TestEnv, sts: &FakeSts) {
    const ROUNDS: usize = 100;
    let (mut mints, mut hits) = (vec![], vec![]);
    let calls_before = sts.assume_role_count();
    for _ in 0..ROUNDS {
        mints.extend(time_runs(1, || {
            env.cmd(["credential-process", "--profile", "admin", "--refresh"])
        }));
        hits.extend(time_runs(1, || {
            env.cmd(["credential-process", "--profile", "admin"])
        }));
    }
    assert_eq!(
        sts.assume_role_count() - calls_before,
        ROUNDS,
        "every refresh calls AssumeRole once"
    );
    let (mint_median, mint_p90) = median_ms(mints);
    let (hit_median, _) = median_ms(hits);
    let (sts_median, _) = median_ms(sts.handling_times());
    println!("cold mint, whole process (median / p90):");
    println!(
        "  credential-process --refresh (AssumeRole) {mint_median:8.2} ms / {mint_p90:8.2} ms  ({ROUNDS} runs)"
    );
    println!(
        "  the fake STS's own time per call          {sts_median:8.2} ms;  cache hit {hit_median:.2} ms"
    );
    println!(
        "  the agent's share of a mint: {:.2} ms (target: <= 5 ms)",
        mint_median - hit_median - sts_median
    );
}

/// Writes the AWS CLI's assume-role cache entry for `cli-admin`, keyed as botocore keys it:
/// the SHA-1 of the sorted JSON of the AssumeRole arguments.
fn seed_cli_cache(env: &TestEnv) {
    let key = Command::new("python3")
        .args([
            "-c",
            "import hashlib, json, sys; print(hashlib.sha1(json.dumps({'RoleArn': sys.argv[1], 'SerialNumber': sys.argv[2]}, sort_keys=True).encode()).hexdigest())",
            ROLE,
            SERIAL,
        ])
        .output()
        .unwrap();
    let key = String::from_utf8(key.stdout).unwrap().trim().to_owned();
    let expiration = aws_sdk_sts::primitives::DateTime::from_secs(
        i64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap()
            + 3600,
    )
    .fmt(aws_sdk_sts::primitives::DateTimeFormat::DateTime)
    .unwrap();
    let dir = env.path().join(".aws/cli/cache");
    std::fs::create_dir_all(&dir).unwrap();
    let entry = serde_json::json!({
        "Credentials": {
            "AccessKeyId": "ASIACLICACHE00000001",
            "SecretAccessKey": "cliCacheSecret",
            "SessionToken": "cliCacheToken",
            "Expiration": expiration,
        },
        "AssumedRoleUser": { "AssumedRoleId": "AROA:botocore", "Arn": format!("{ROLE}/botocore") },
    });
    std::fs::write(dir.join(format!("{key}.json")), entry.to_string()).unwrap();
}

/// Requests per second from `CLIENTS` connections, each sending `request` and reading one
/// line back, for `THROUGHPUT_SECONDS`.
fn requests_per_second(socket: &std::path::Path, hello: bool, request: &'static [u8]) -> f64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let done = Arc::new(AtomicUsize::new(0));
        let deadline = Instant::now() + Duration::from_secs(THROUGHPUT_SECONDS);
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (socket, done) = (socket.to_owned(), done.clone());
                tokio::spawn(async move {
                    let stream = UnixStream::connect(&socket).await.unwrap();
                    let (reader, mut writer) = stream.into_split();
                    let mut reader = BufReader::new(reader);
                    let mut line = String::new();
                    if hello {
                        writer.write_all(&common::after_hello("")).await.unwrap();
                        reader.read_line(&mut line).await.unwrap();
                    }
                    while Instant::now() < deadline {
                        writer.write_all(request).await.unwrap();
                        line.clear();
                        reader.read_line(&mut line).await.unwrap();
                        assert!(line.contains("credentials"), "unexpected reply: {line}");
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        done.load(Ordering::Relaxed) as f64 / THROUGHPUT_SECONDS as f64
    })
}

/// User plus system CPU time of process `pid` so far, in seconds.
fn cpu_seconds(pid: u64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) in parentheses.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0 // USER_HZ is 100 on Linux
}

fn throughput(env: &TestEnv) {
    const REQUEST: &[u8] = b"{\"type\":\"credentials\",\"profile\":\"admin\"}\n";
    let pid = daemon_pid(env);
    let cpu_before = cpu_seconds(pid);
    let agent = requests_per_second(&env.socket(), true, REQUEST);
    let cpu_per_request = (cpu_seconds(pid) - cpu_before) / (agent * THROUGHPUT_SECONDS as f64);

    // The baseline: a bare tokio echo-style server on the same kind of runtime, reading one
    // request line and writing a canned response line of the same size.
    let reply = {
        let out = env
            .run(["credential-process", "--profile", "admin"], "")
            .success();
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        let mut line = serde_json::json!({"type": "credentials", "access_key_id": json["AccessKeyId"], "secret_access_key": json["SecretAccessKey"], "session_token": json["SessionToken"], "expiration": 0, "region": "us-east-1"}).to_string();
        line.push('\n');
        line
    };
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("echo.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = UnixListener::from_std(listener).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let reply = reply.clone();
                tokio::spawn(async move {
                    let (reader, mut writer) = stream.into_split();
                    let mut reader = BufReader::new(reader);
                    let mut line = Vec::new();
                    while reader.read_until(b'\n', &mut line).await.unwrap_or(0) > 0 {
                        line.clear();
                        if writer.write_all(reply.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
    });
    let echo = requests_per_second(&socket, false, REQUEST);
    println!("daemon throughput, {CLIENTS} concurrent clients, {THROUGHPUT_SECONDS} s each:");
    println!("  mfa-agent daemon (cache hits)   {agent:10.0} req/s");
    println!("  bare tokio echo, same framing   {echo:10.0} req/s");
    println!("  ratio: {:.0}%  (target: >= 60%)", agent / echo * 100.0);
    println!(
        "  daemon CPU per request: {:.1} us (only successful credential replies count)",
        cpu_per_request * 1e6
    );
}

/// `VmRSS`, `VmHWM` (the peak) and `RssAnon` (the part that is not code or files mapped
/// from disk: heap and stacks) of process `pid`, in MB.
fn rss_mb(pid: u64) -> (f64, f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> f64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        let kb: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kb / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"), field("RssAnon:"))
}

fn daemon_pid(env: &TestEnv) -> u64 {
    let status = env.status();
    status["pid"].as_u64().unwrap()
}

fn memory(env: &TestEnv) {
    let pid = daemon_pid(env);
    std::thread::sleep(Duration::from_secs(1));
    let (rss, peak, anon) = rss_mb(pid);
    println!("daemon memory after serving the runs above, idle:");
    println!(
        "  RSS {rss:.1} MB  (target: <= 12 MB), of which heap and stacks {anon:.1} MB; peak (VmHWM) {peak:.1} MB"
    );
}

/// The tray on a private session bus with a stand-in panel (a StatusNotifierWatcher),
/// subscribed to the agent, idle.
fn tray_memory(env: &TestEnv) {
    let bus = common::dbus::PrivateBus::start();
    let (_watcher, items) = common::dbus::serve_watcher(&bus.address);
    let mut tray = env.cmd(["tray"]);
    tray.env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut tray = tray.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while items.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the tray did not register");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    let (rss, peak, anon) = rss_mb(u64::from(tray.id()));
    let _ = tray.kill();
    let _ = tray.wait();
    println!("tray memory, registered and subscribed, idle:");
    println!("  RSS {rss:.1} MB, of which heap and stacks {anon:.1} MB; peak (VmHWM) {peak:.1} MB");
}

fn single_flight() {
    const CALLERS: usize = 1000;
    let sts = FakeSts::start(AWS_SEED, 30);
    // A slow STS keeps the first mint in flight while all the others arrive.
    sts.inject(
        "GetSessionToken",
        [Fault::Delay(Duration::from_millis(500))],
    );
    let env = setup(&sts);
    let socket = env.socket();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let start = Instant::now();
    let served = runtime.block_on(async {
        let tasks: Vec<_> = (0..CALLERS)
            .map(|_| {
                let socket = socket.clone();
                tokio::spawn(async move {
                    let stream = UnixStream::connect(&socket).await.unwrap();
                    let (reader, mut writer) = stream.into_split();
                    writer
                        .write_all(&common::after_hello(
                            "{\"type\":\"credentials\",\"profile\":\"admin\"}\n",
                        ))
                        .await
                        .unwrap();
                    let mut lines = BufReader::new(reader).lines();
                    lines.next_line().await.unwrap();
                    let reply = lines.next_line().await.unwrap().unwrap_or_default();
                    reply.starts_with("{\"type\":\"credentials\"")
                })
            })
            .collect();
        let mut served = 0;
        for task in tasks {
            served += usize::from(task.await.unwrap());
        }
        served
    });
    // Counts, not times: these hold on any machine.
    assert_eq!(served, CALLERS, "every caller got credentials");
    assert_eq!(sts.gst_calls(), 1, "one GetSessionToken for all callers");
    assert_eq!(sts.assume_role_count(), 1, "one AssumeRole for all callers");
    println!("single-flight, {CALLERS} concurrent cold requests for one role profile:");
    println!(
        "  served {served}/{CALLERS} in {:.2} s; GetSessionToken calls: {}, AssumeRole calls: {}  (target: 1 GetSessionToken, all served)",
        start.elapsed().as_secs_f64(),
        sts.gst_calls(),
        sts.assume_role_count()
    );
}
