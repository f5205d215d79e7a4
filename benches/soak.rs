//! The soak (run with `tests/run --soak [SECONDS]`, 60 s by default): the daemon at full rate
//! from many clients for a minute, which the default suite has no time for. Prints errors,
//! latency percentiles and the daemon's memory over the run, and fails on any error or on
//! RSS growth of 1 MB or more after the warm-up.
//!
//! Each client connects, says hello, asks for a cached role session 100 times and hangs up,
//! over and over: steady state is the daemon's accept path, peer naming and audit log as well
//! as its cache hits.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)] // figures for people, not exact arithmetic

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::AWS_SEED;
use common::fake_sts::FakeSts;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

const CLIENTS: usize = 64;
const REQUESTS_PER_CONNECTION: usize = 100;
const WARM_UP: Duration = Duration::from_secs(5);
const RSS_GROWTH_LIMIT_MB: f64 = 1.0;
const REQUEST: &[u8] = b"{\"type\":\"credentials\",\"profile\":\"admin\"}\n";

fn main() {
    mfa_agent::sys::raise_fd_limit();
    let seconds: u64 = std::env::var("MFA_AGENT_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let sts = FakeSts::start(AWS_SEED, 30);
    let env = common::minting::setup(&sts);
    // One real mint; everything after is served from the cache.
    env.run(["credential-process", "--profile", "admin"], "")
        .success();
    let pid = env.status()["pid"].as_u64().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || sample_rss(pid, &stop))
    };
    let run = load(&env.socket(), Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let rss = sampler.join().unwrap();

    let report = Report::new(run, &rss, seconds);
    report.print(seconds);
    assert_eq!(report.errors, 0, "the soak saw errors");
    assert!(
        report.rss_growth_mb < RSS_GROWTH_LIMIT_MB,
        "RSS grew by {:.2} MB after the warm-up",
        report.rss_growth_mb
    );
    assert_eq!(
        sts.gst_calls(),
        1,
        "one GetSessionToken for the whole soak: every request was a cache hit"
    );
}

/// What the clients saw: each request's latency in microseconds, and the failures.
struct Run {
    latencies_us: Vec<u32>,
    errors: usize,
    first_error: Option<String>,
}

/// `CLIENTS` connections' worth of load on `socket` for `length`.
fn load(socket: &std::path::Path, length: Duration) -> Run {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let errors = Arc::new(AtomicUsize::new(0));
        let deadline = Instant::now() + length;
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (socket, errors) = (socket.to_owned(), errors.clone());
                tokio::spawn(async move { client(&socket, deadline, &errors).await })
            })
            .collect();
        let mut run = Run {
            latencies_us: Vec::new(),
            errors: 0,
            first_error: None,
        };
        for task in tasks {
            let (latencies, first_error) = task.await.unwrap();
            run.latencies_us.extend(latencies);
            run.first_error = run.first_error.or(first_error);
        }
        run.errors = errors.load(Ordering::Relaxed);
        run
    })
}

/// One client until `deadline`: connections of `REQUESTS_PER_CONNECTION` requests each.
/// Returns its latencies and the first error it saw; counts every error in `errors`.
async fn client(
    socket: &std::path::Path,
    deadline: Instant,
    errors: &AtomicUsize,
) -> (Vec<u32>, Option<String>) {
    let mut latencies = Vec::new();
    let mut first_error = None;
    let mut fail = |what: String| {
        errors.fetch_add(1, Ordering::Relaxed);
        first_error.get_or_insert(what);
    };
    let hello = common::after_hello("");
    while Instant::now() < deadline {
        let stream = match UnixStream::connect(socket).await {
            Ok(stream) => stream,
            Err(e) => {
                fail(format!("connect: {e}"));
                continue;
            }
        };
        let (reader, mut writer) = stream.into_split();
        let mut reader = BufReader::new(reader);
        let mut line = String::new();
        if writer.write_all(&hello).await.is_err() || reader.read_line(&mut line).await.is_err() {
            fail("hello failed".into());
            continue;
        }
        for _ in 0..REQUESTS_PER_CONNECTION {
            let start = Instant::now();
            line.clear();
            let answered = writer.write_all(REQUEST).await.is_ok()
                && reader.read_line(&mut line).await.is_ok();
            if answered && line.starts_with("{\"type\":\"credentials\"") {
                latencies.push(u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX));
            } else {
                fail(format!("reply: {:?}", line.trim_end()));
                break;
            }
            if Instant::now() >= deadline {
                break;
            }
        }
    }
    (latencies, first_error)
}

/// `VmRSS` of `pid` in MB, or None once it is gone.
fn rss_mb(pid: u64) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The daemon's RSS once a second (time since the start, MB) until `stop`.
fn sample_rss(pid: u64, stop: &AtomicBool) -> Vec<(Duration, f64)> {
    let start = Instant::now();
    let mut samples = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        if let Some(rss) = rss_mb(pid) {
            samples.push((start.elapsed(), rss));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    samples
}

struct Report {
    requests: usize,
    errors: usize,
    first_error: Option<String>,
    /// p50, p99, p99.9 and the maximum, in microseconds.
    percentiles: [u32; 4],
    rss_after_warm_up_mb: f64,
    rss_end_mb: f64,
    rss_peak_mb: f64,
    rss_growth_mb: f64,
}

impl Report {
    fn new(mut run: Run, samples: &[(Duration, f64)], seconds: u64) -> Self {
        run.latencies_us.sort_unstable();
        let at = |fraction: f64| -> u32 {
            let all = &run.latencies_us;
            all.get(((all.len() as f64 * fraction) as usize).min(all.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0)
        };
        let after_warm_up = samples
            .iter()
            .find(|(t, _)| *t >= WARM_UP.min(Duration::from_secs(seconds / 2)))
            .map_or(0.0, |s| s.1);
        let end = samples.last().map_or(0.0, |s| s.1);
        Report {
            requests: run.latencies_us.len(),
            errors: run.errors,
            first_error: run.first_error,
            percentiles: [at(0.5), at(0.99), at(0.999), at(1.0)],
            rss_after_warm_up_mb: after_warm_up,
            rss_end_mb: end,
            rss_peak_mb: samples.iter().map(|s| s.1).fold(0.0, f64::max),
            rss_growth_mb: end - after_warm_up,
        }
    }

    fn print(&self, seconds: u64) {
        let [p50, p99, p999, max] = self.percentiles;
        println!(
            "soak, {CLIENTS} clients for {seconds} s ({REQUESTS_PER_CONNECTION} cached-role requests per connection):"
        );
        println!(
            "  {} requests, {:.0} req/s, errors: {}{}  (target: 0)",
            self.requests,
            self.requests as f64 / seconds as f64,
            self.errors,
            self.first_error
                .as_deref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        );
        println!("  latency p50 {p50} us, p99 {p99} us, p99.9 {p999} us, max {max} us");
        println!(
            "  daemon RSS after the warm-up {:.1} MB, at the end {:.1} MB, peak {:.1} MB: growth {:+.2} MB  (target: < {RSS_GROWTH_LIMIT_MB} MB)",
            self.rss_after_warm_up_mb, self.rss_end_mb, self.rss_peak_mb, self.rss_growth_mb
        );
    }
}
