//! A full disk and a read-only disk under the agent's state and data directories: a tiny
//! tmpfs mounted over each (which needs root; CI runs as root). Whatever cannot be written
//! fails at once with an error that says what and where; sessions already minted keep being
//! served; nothing is lost; once the disk has room again everything works, and no code went
//! to STS twice (the strict fake refuses a reused one).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::TestEnv;
use common::fake_sts::FakeSts;
use common::minting::{SHORT_SEED, setup_with};

/// A small tmpfs over a directory, unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
    filler: PathBuf,
}

impl Tmpfs {
    fn over(dir: &Path) -> Self {
        assert_eq!(
            mfa_agent::sys::current_uid(),
            0,
            "this test mounts a small tmpfs to fill a disk, which needs root (CI runs as root)"
        );
        std::fs::create_dir_all(dir).unwrap();
        mount(&["-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs"], dir);
        Tmpfs {
            dir: dir.to_owned(),
            filler: dir.join("filler"),
        }
    }

    /// Takes every free block, so the next write fails with ENOSPC.
    fn fill(&self) {
        use std::io::Write;
        let mut file = std::fs::File::create(&self.filler).unwrap();
        let block = [0u8; 4096];
        while file.write_all(&block).is_ok() {}
        // The last partial block: tmpfs allocates whole pages.
        while file.write_all(&[0]).is_ok() {}
    }

    fn free(&self) {
        std::fs::remove_file(&self.filler).unwrap();
    }

    /// A read-only bind mount over the disk (the agent holds its logs open, so the disk itself
    /// cannot be remounted): every file opened afresh, as each atomic write's, gets EROFS.
    fn read_only(&self, read_only: bool) {
        if read_only {
            mount(&["--bind", self.dir.to_str().unwrap()], &self.dir);
            mount(&["-o", "remount,bind,ro"], &self.dir);
        } else {
            let status = Command::new("umount").arg(&self.dir).status().unwrap();
            assert!(status.success(), "umount {}", self.dir.display());
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // The tmpfs, and the read-only bind over it if a failed test left one.
        for _ in 0..2 {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&self.dir)
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

fn mount(args: &[&str], dir: &Path) {
    let out = Command::new("mount").args(args).arg(dir).output().unwrap();
    assert!(
        out.status.success(),
        "mount {args:?} {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `credential-process` for `profile`: its result, and that it came within a few seconds
/// (a disk error is no reason to wait).
fn credentials(env: &TestEnv, profile: &str) -> common::Run {
    let start = Instant::now();
    let run = env.run(["credential-process", "--profile", profile], "");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "answered in {:?}",
        start.elapsed()
    );
    run
}

fn daemon_answers(env: &TestEnv) {
    let status = env.status();
    assert!(status["pid"].as_u64().is_some(), "{status}");
}

#[test]
fn a_full_or_read_only_state_dir_stops_new_codes_clearly_and_loses_nothing() {
    let sts = FakeSts::start(SHORT_SEED, 3);
    let env = setup_with(&sts, SHORT_SEED, 3, "");
    let state = Tmpfs::over(&env.path().join(".local/state/mfa-agent"));
    env.start_daemon();
    let first: serde_json::Value =
        serde_json::from_str(&credentials(&env, "base").success()).unwrap();

    // Full: what is in memory still serves, a role from the MFA session included (it needs
    // no code), but the replay guard cannot record a new code, so none is sent.
    state.fill();
    let cached: serde_json::Value =
        serde_json::from_str(&credentials(&env, "base").success()).unwrap();
    assert_eq!(
        cached["AccessKeyId"], first["AccessKeyId"],
        "the session already minted is still served from memory"
    );
    credentials(&env, "admin").success();
    env.run(["lock"], "").success();
    let calls = sts.gst_calls();
    let refused = credentials(&env, "base").failure(&[
        "could not record which MFA code was sent",
        "No space left on device",
        "free some space",
    ]);
    assert!(!refused.contains("SecretAccessKey"), "{refused}");
    assert_eq!(sts.gst_calls(), calls, "no code went to STS unrecorded");
    daemon_answers(&env);

    // Read-only: the same, with what the disk said.
    state.free();
    state.read_only(true);
    credentials(&env, "base").failure(&["Read-only file system", "make it writable"]);
    assert_eq!(sts.gst_calls(), calls, "no code went to STS unrecorded");
    daemon_answers(&env);

    // Room again: minting works, and with codes never sent before (the fake refuses reuse).
    state.read_only(false);
    credentials(&env, "base").success();
    credentials(&env, "admin").success();
    let codes = sts.codes_received();
    let unique: std::collections::HashSet<_> = codes.iter().collect();
    assert_eq!(
        unique.len(),
        codes.len(),
        "no code was sent twice: {codes:?}"
    );
    assert_eq!(sts.rejected_codes(), 0);
}

#[test]
fn a_full_data_dir_refuses_a_new_seed_and_keeps_the_old_ones() {
    let sts = FakeSts::start(SHORT_SEED, 3);
    let env = setup_with(&sts, SHORT_SEED, 3, "");
    env.stop_daemon();
    // The index (seeds.json) moves onto the small disk with what it holds.
    let data = env.data_dir();
    let saved = std::fs::read(data.join("seeds.json")).unwrap();
    std::fs::remove_dir_all(&data).unwrap();
    let disk = Tmpfs::over(&data);
    std::fs::write(data.join("seeds.json"), &saved).unwrap();
    env.start_daemon();

    disk.fill();
    env.run(
        ["seed", "add", "spare", "--uri", "-"],
        &format!("otpauth://totp/spare?secret={SHORT_SEED}"),
    )
    .failure(&["No space left on device", "free some space"]);
    daemon_answers(&env);
    let list = env.run(["seed", "list"], "").success();
    assert!(list.contains("work") && !list.contains("spare"), "{list}");
    credentials(&env, "base").success();

    // With room again the same name goes in: the failed add left nothing in its way.
    disk.free();
    env.run(
        ["seed", "add", "spare", "--uri", "-"],
        &format!("otpauth://totp/spare?secret={SHORT_SEED}"),
    )
    .success();
    let list = env.run(["seed", "list"], "").success();
    assert!(list.contains("work") && list.contains("spare"), "{list}");
}
