//! Setting one key of one profile in `~/.aws/config` the way a person would: the file's
//! comments, order and other settings stay as they were, the change is atomic, and the
//! file as it was is kept beside it.

use std::io;
use std::path::{Path, PathBuf};

use crate::atomic;
use crate::aws::shared_file::{self, Document, FileKind, Line};

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
    let new = with_setting(old.as_deref().unwrap_or(""), profile, key, value)?;
    let backup = match &old {
        Some(text) => {
            let backup = backup_path(path);
            // The config file may hold static keys too: its copy is the user's alone
            // (0600, whatever an older copy's mode), and a link planted there is replaced,
            // not followed.
            atomic::replace_private(&backup, text.as_bytes())?;
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

/// Removes `key` from `profile`'s section of the file at `path`, keeping everything else
/// byte for byte and the file as it was beside it (`PATH.bak`). Returns whether the key was
/// there (nothing is written when it was not).
pub fn remove(path: &Path, profile: &str, key: &'static str) -> io::Result<bool> {
    let old = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let (new, removed) = shared_file::remove_settings(&old, FileKind::Config, profile, &[key])
        .map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{e}; fix it, then retry"),
            )
        })?;
    if removed.is_empty() {
        return Ok(false);
    }
    atomic::replace_private(&backup_path(path), old.as_bytes())?;
    atomic::replace_user_file(path, new.as_bytes())?;
    Ok(true)
}

/// The key of the setting that follows the last of `keys` in `profile`'s section (skipping
/// `keys` themselves): where they go back with [`with_setting_before`].
#[must_use]
pub fn setting_after(text: &str, kind: FileKind, profile: &str, keys: &[&str]) -> Option<String> {
    let doc = Document::parse(text, kind).ok()?;
    let section = doc.section_of(profile)?;
    let last = section.clone().rev().find(|&i| {
        matches!(doc.line(i).1, Line::Setting { key, .. } if keys.iter().any(|k| k.eq_ignore_ascii_case(key)))
    })?;
    (last + 1..section.end).find_map(|i| match doc.line(i).1 {
        Line::Setting { key, .. } if !keys.iter().any(|k| k.eq_ignore_ascii_case(key)) => {
            Some(key.to_owned())
        }
        _ => None,
    })
}

fn backup_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".bak");
    path.with_file_name(name)
}

/// The header line naming `profile` in a file of `kind`.
fn header(kind: FileKind, profile: &str) -> String {
    if profile == "default" || kind == FileKind::Credentials {
        format!("[{profile}]")
    } else {
        format!("[profile {profile}]")
    }
}

/// `text` with `key = value` set in `profile`'s section: an existing setting of the key is
/// replaced, else the line goes after the section's last setting, else a new section is
/// appended. Sections are found as the AWS tools find them (`[profile work] # note` is
/// `work`'s); the result is read back, and must differ from `text` in that one setting.
pub fn with_setting(text: &str, profile: &str, key: &str, value: &str) -> io::Result<String> {
    with_setting_in(text, FileKind::Config, profile, key, value)
}

/// [`with_setting`] in a file of `kind` (the credentials file's sections are `[NAME]`).
pub fn with_setting_in(
    text: &str,
    kind: FileKind,
    profile: &str,
    key: &str,
    value: &str,
) -> io::Result<String> {
    with_setting_before(text, kind, profile, key, value, None)
}

/// [`with_setting_in`], a new line going before the setting `before` of the section where
/// there is one (putting back a setting where it was).
pub fn with_setting_before(
    text: &str,
    kind: FileKind,
    profile: &str,
    key: &str,
    value: &str,
    before: Option<&str>,
) -> io::Result<String> {
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let doc =
        Document::parse(text, kind).map_err(|e| invalid(format!("{e}; fix it, then retry")))?;
    let setting = format!("{key} = {value}\n");
    let new = match doc.section_of(profile) {
        None => {
            let mut out = text.to_owned();
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&header(kind, profile));
            out.push('\n');
            out.push_str(&setting);
            out
        }
        Some(section) => {
            if let Some((lines, _)) = doc.setting(section.clone(), key) {
                doc.edited(std::slice::from_ref(&lines), lines.start, &setting)
            } else if let Some((next, _)) =
                before.and_then(|next| doc.setting(section.clone(), next))
            {
                doc.edited(&[], next.start, &setting)
            } else {
                // After the section's last setting (or its header), before its trailing
                // blank lines and comments.
                let last = section
                    .clone()
                    .rev()
                    .find(|&i| !matches!(doc.line(i).1, Line::Blank | Line::Comment))
                    .unwrap_or(section.start);
                let setting = if doc.line(last).0.ends_with('\n') {
                    setting
                } else {
                    format!("\n{setting}")
                };
                doc.edited(&[], last + 1, &setting)
            }
        }
    };
    let mut expected = doc.settings();
    expected
        .entry(doc.section_name(profile))
        .or_default()
        .insert(key.to_ascii_lowercase(), vec![value]);
    shared_file::verify(&new, kind, &expected, &doc.section_name(profile))
        .map_err(|e| invalid(e.to_string()))?;
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "# my settings\n[default]\nregion = eu-west-1\n\n[profile base]\n# keys live in mfa-agent\nregion = us-east-1\n\n[profile prod]\ncredential_process = mfa-agent credential-process --profile prod\n";

    #[test]
    fn a_setting_goes_into_its_section_and_nothing_else_moves() {
        let out = with_setting(CONFIG, "base", "mfa_serial", "arn:aws:iam::1:mfa/a").unwrap();
        assert_eq!(
            out,
            CONFIG.replace(
                "region = us-east-1\n",
                "region = us-east-1\nmfa_serial = arn:aws:iam::1:mfa/a\n"
            )
        );
        // Set again: the line is replaced, not repeated.
        let again = with_setting(&out, "base", "mfa_serial", "arn:aws:iam::1:mfa/b").unwrap();
        assert_eq!(again.matches("mfa_serial").count(), 1);
        assert!(again.contains("mfa_serial = arn:aws:iam::1:mfa/b\n"));
        // The last section, without a final newline.
        let prod = with_setting(CONFIG.trim_end(), "prod", "region", "us-east-1").unwrap();
        assert!(
            prod.ends_with("--profile prod\nregion = us-east-1\n"),
            "{prod}"
        );
        // `[default]` and a profile that is not there yet.
        let default = with_setting(CONFIG, "default", "mfa_serial", "X").unwrap();
        assert!(default.contains("[default]\nregion = eu-west-1\nmfa_serial = X\n"));
        let new = with_setting(CONFIG, "other", "mfa_serial", "Y").unwrap();
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

    /// `aws enroll --write-config` added a second `[profile work]` after a header that
    /// carried a comment: the AWS CLI then refuses the whole file.
    #[test]
    fn a_commented_header_is_its_profiles_section() {
        let text = "[profile work] # my work account\nregion = eu-west-1\n\n# next\n[profile prod]\nregion = us-east-1";
        let out = with_setting(text, "work", "mfa_serial", "S").unwrap();
        assert_eq!(
            out,
            text.replace("eu-west-1\n", "eu-west-1\nmfa_serial = S\n")
        );
        let out = with_setting(text, "prod", "region", "eu-north-1").unwrap();
        assert_eq!(out, text.replace("us-east-1", "eu-north-1\n"));
        let err = with_setting("[profile a]\n[profile  a]\n", "a", "k", "v").unwrap_err();
        assert!(err.to_string().contains("appears 2 times"), "{err}");
    }

    #[test]
    fn the_backup_is_private_even_over_an_older_open_one() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        std::fs::write(&config, CONFIG).unwrap();
        let old_backup = dir.path().join("config.bak");
        std::fs::write(&old_backup, "old").unwrap();
        std::fs::set_permissions(&old_backup, std::fs::Permissions::from_mode(0o644)).unwrap();
        let backup = set(&config, "base", "mfa_serial", "S").unwrap().unwrap();
        let mode = std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_to_string(backup).unwrap(), CONFIG);
    }
}
