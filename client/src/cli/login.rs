//! `mfa-agent login P [--print]`: opens the AWS console signed in with the profile's
//! session. The sign-in link is a bearer token for 15 minutes: it is handed to the browser
//! in a page of the user's own (0600, in the agent's private runtime directory), never on a
//! command line that any local user could read in `ps`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result, bail};

use super::Agent;
use crate::protocol::ConsoleLogin;
use crate::secret::SecretString;

/// How long a sign-in link works (AWS: 15 minutes); older pages are deleted.
const LINK_LIFETIME: Duration = Duration::from_secs(15 * 60);

pub(super) fn run(agent: &Agent, profile: String, print: bool) -> Result<ExitCode> {
    let shown = profile.clone();
    let url = agent.call(ConsoleLogin { profile })?;
    if print {
        println!("{}", url.expose());
        return Ok(ExitCode::SUCCESS);
    }
    let page = write_page(&agent.paths.runtime_dir, &url)?;
    let opened = Command::new("xdg-open").arg(&page).status();
    if !matches!(&opened, Ok(status) if status.success()) {
        // The page holds a working sign-in link: not left behind when nothing opened it.
        let _ = std::fs::remove_file(&page);
    }
    let status = opened.with_context(|| {
        format!("failed to run xdg-open; open the console with `mfa-agent login {shown} --print` and paste the link into a browser")
    })?;
    if !status.success() {
        bail!(
            "xdg-open failed ({status}); run `mfa-agent login {shown} --print` and open the link yourself"
        );
    }
    eprintln!("opened the AWS console for {shown} (the sign-in link works for 15 minutes)");
    Ok(ExitCode::SUCCESS)
}

/// A page that sends the browser on to `url`, readable by the user alone; pages of earlier
/// logins whose links have expired are deleted.
fn write_page(dir: &Path, url: &SecretString) -> Result<PathBuf> {
    remove_expired_pages(dir);
    let escaped = url.expose().replace('&', "&amp;").replace('"', "&quot;");
    let html = SecretString::new(format!(
        "<!doctype html><meta charset=\"utf-8\"><meta name=\"referrer\" content=\"no-referrer\"><meta http-equiv=\"refresh\" content=\"0; url={escaped}\"><title>AWS console</title>\n"
    ));
    let path = dir.join(format!("login-{:016x}.html", crate::random::u64()));
    crate::atomic::create_user_file(&path, html.expose().as_bytes())
        .with_context(|| format!("failed to write {}", path.display()))?;
    Ok(path)
}

fn remove_expired_pages(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age > LINK_LIFETIME);
        if old && name.to_string_lossy().starts_with("login-") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
