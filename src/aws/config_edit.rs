//! Setting one key of one profile in `~/.aws/config` the way a person would: the file's
//! comments, order and other settings stay as they were, the change is atomic, and the
//! file as it was is kept beside it.

use std::io;
use std::path::{Path, PathBuf};

use crate::atomic;

/// Where `~/.aws/config` is: `AWS_CONFIG_FILE`, else under `HOME`.
pub fn config_path() -> io::Result<PathBuf> {
    if let Some(path) = std::env::var_os("AWS_CONFIG_FILE").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let home = std::env::var_os("HOME").ok_or_else(|| io::Error::other("HOME is not set"))?;
    Ok(PathBuf::from(home).join(".aws/config"))
}

/// Sets `key = value` in `[profile NAME]` (`[default]` for the default profile) of the
/// file at `path`, creating the section or the file if need be. The previous file is
/// kept as `PATH.bak`; returns its path when there was one.
pub fn set(path: &Path, profile: &str, key: &str, value: &str) -> io::Result<Option<PathBuf>> {
    let old = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let new = with_setting(old.as_deref().unwrap_or(""), profile, key, value);
    let backup = match &old {
        Some(text) => {
            let backup = backup_path(path);
            write_backup(&backup, text)?;
            Some(backup)
        }
        None => None,
    };
    if old.is_some() {
        atomic::replace_user_file(path, new.as_bytes())?;
    } else {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        atomic::create_user_file(path, new.as_bytes())?;
    }
    Ok(backup)
}

/// The config file may hold static keys too: its copy is the user's alone (0600), and a
/// link planted where it goes is not followed.
fn write_backup(path: &Path, text: &str) -> io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

fn backup_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".bak");
    path.with_file_name(name)
}

/// The header line naming `profile` in the config file.
fn header(profile: &str) -> String {
    if profile == "default" {
        "[default]".into()
    } else {
        format!("[profile {profile}]")
    }
}

/// Whether `line` is the header of `profile` (spacing inside the brackets aside).
fn is_header_of(line: &str, profile: &str) -> bool {
    let Some(inner) = line
        .trim()
        .strip_prefix('[')
        .and_then(|l| l.strip_suffix(']'))
    else {
        return false;
    };
    let words: Vec<&str> = inner.split_whitespace().collect();
    match words.as_slice() {
        ["profile", name] => *name == profile,
        [name] => *name == "default" && profile == "default",
        _ => false,
    }
}

/// `text` with `key = value` set in `profile`'s section: an existing line for the key is
/// replaced, else the line goes after the section's last setting, else a new section is
/// appended.
#[must_use]
pub fn with_setting(text: &str, profile: &str, key: &str, value: &str) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let setting = format!("{key} = {value}\n");
    let Some(start) = lines.iter().position(|l| is_header_of(l, profile)) else {
        let mut out = text.to_owned();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&header(profile));
        out.push('\n');
        out.push_str(&setting);
        return out;
    };
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.trim_start().starts_with('['))
        .map_or(lines.len(), |i| start + 1 + i);
    let is_key = |line: &str| {
        line.split_once('=')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case(key))
    };
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    if let Some(i) = (start + 1..end).find(|&i| is_key(lines[i])) {
        out[i] = setting;
    } else {
        // After the last non-blank, non-comment line of the section.
        let last = (start..end)
            .rev()
            .find(|&i| {
                let t = lines[i].trim();
                !t.is_empty() && !t.starts_with('#') && !t.starts_with(';')
            })
            .unwrap_or(start);
        if !out[last].ends_with('\n') {
            out[last].push('\n');
        }
        out.insert(last + 1, setting);
    }
    out.concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "# my settings\n[default]\nregion = eu-west-1\n\n[profile base]\n# keys live in mfa-agent\nregion = us-east-1\n\n[profile prod]\ncredential_process = mfa-agent credential-process --profile prod\n";

    #[test]
    fn a_setting_goes_into_its_section_and_nothing_else_moves() {
        let out = with_setting(CONFIG, "base", "mfa_serial", "arn:aws:iam::1:mfa/a");
        assert_eq!(
            out,
            CONFIG.replace(
                "region = us-east-1\n",
                "region = us-east-1\nmfa_serial = arn:aws:iam::1:mfa/a\n"
            )
        );
        // Set again: the line is replaced, not repeated.
        let again = with_setting(&out, "base", "mfa_serial", "arn:aws:iam::1:mfa/b");
        assert_eq!(again.matches("mfa_serial").count(), 1);
        assert!(again.contains("mfa_serial = arn:aws:iam::1:mfa/b\n"));
        // The last section, without a final newline.
        let prod = with_setting(CONFIG.trim_end(), "prod", "region", "us-east-1");
        assert!(
            prod.ends_with("--profile prod\nregion = us-east-1\n"),
            "{prod}"
        );
        // `[default]` and a profile that is not there yet.
        let default = with_setting(CONFIG, "default", "mfa_serial", "X");
        assert!(default.contains("[default]\nregion = eu-west-1\nmfa_serial = X\n"));
        let new = with_setting(CONFIG, "other", "mfa_serial", "Y");
        assert!(new.starts_with(CONFIG) && new.ends_with("\n[profile other]\nmfa_serial = Y\n"));
    }

    #[test]
    fn the_file_is_rewritten_through_its_link_with_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("dotfiles-config");
        std::fs::write(&target, CONFIG).unwrap();
        let link = dir.path().join("config");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let backup = set(&link, "base", "mfa_serial", "S").unwrap().unwrap();
        assert_eq!(std::fs::read_to_string(backup).unwrap(), CONFIG);
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(
            std::fs::read_to_string(&target)
                .unwrap()
                .contains("mfa_serial = S\n")
        );
        // No file yet: created, no backup.
        let fresh = dir.path().join("aws/config");
        assert!(set(&fresh, "base", "mfa_serial", "S").unwrap().is_none());
        assert_eq!(
            std::fs::read_to_string(&fresh).unwrap(),
            "[profile base]\nmfa_serial = S\n"
        );
    }
}
