//! `mfa-agent log`: the agent's audit log, who asked for which credentials and how it went.
//! The log holds no secret; it is read straight from `XDG_STATE_HOME/mfa-agent`.

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::audit_log::Entry;
use crate::clock::iso8601;
use crate::paths::Paths;

/// How often `--follow` looks for new entries.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);

pub(super) fn run(paths: &Paths, follow: bool, json: bool) -> Result<ExitCode> {
    let path = paths.state_dir.join("audit.log");
    let mut rotated = path.clone().into_os_string();
    rotated.push(".1");
    let mut shown = 0;
    for file in [Path::new(&rotated), path.as_path()] {
        if let Ok(f) = std::fs::File::open(file) {
            shown += print_lines(BufReader::new(f), json)?;
        }
    }
    if !follow {
        if shown == 0 && !json {
            eprintln!("no requests logged yet ({})", path.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    // From the end of what was shown, for as long as the user watches (Ctrl-C ends it).
    let mut offset = std::fs::metadata(&path).map_or(0, |m| m.len());
    loop {
        std::thread::sleep(FOLLOW_EVERY);
        let Ok(mut file) = std::fs::File::open(&path) else {
            continue;
        };
        let len = file.metadata().map_or(0, |m| m.len());
        if len < offset {
            offset = 0; // rotated: the new file starts over
        }
        if len > offset {
            file.seek(SeekFrom::Start(offset))
                .with_context(|| format!("failed to read {}", path.display()))?;
            print_lines(BufReader::new(&file), json)?;
            offset = len;
        }
    }
}

fn print_lines(reader: impl BufRead, json: bool) -> Result<usize> {
    let mut count = 0;
    for line in reader.lines() {
        let line = line?;
        if json {
            println!("{line}");
            count += 1;
            continue;
        }
        // A line that is not an entry (cut short by a crash) is skipped, not fatal.
        let Ok(entry) = serde_json::from_str::<Entry>(&line) else {
            continue;
        };
        println!(
            "{}  {:<7} {} {}  {} (pid {})",
            iso8601(entry.time),
            entry.outcome,
            entry.operation,
            entry.profile,
            entry.program,
            entry.pid
        );
        count += 1;
    }
    Ok(count)
}
