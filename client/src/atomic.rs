//! Crash-safe file writes: a reader sees the old file or the new one, never a torn mix.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// What the user can do about a failed write, said after the error that names the file:
/// "free some space on that disk, then try again". None for errors that carry their own
/// advice (the ones mfa-agent makes, as [`ensure_private_dir`]'s).
#[must_use]
pub fn what_to_do(e: &io::Error) -> Option<&'static str> {
    e.raw_os_error()?;
    Some(match e.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge => {
            "free some space on that disk, then try again"
        }
        io::ErrorKind::ReadOnlyFilesystem => {
            "the disk is mounted read-only: make it writable, then try again"
        }
        io::ErrorKind::PermissionDenied => {
            "check that the directory is yours and writable, then try again"
        }
        _ => "check that disk, then try again",
    })
}

/// Creates one of mfa-agent's own directories (and parents) readable by the owner only, and
/// tightens it if it existed. A directory that is a symlink or belongs to someone else (a
/// `/tmp` fallback another user created first) is refused, not used.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let meta = fs::symlink_metadata(dir)?;
    let me = crate::sys::current_uid();
    if !meta.is_dir() || meta.uid() != me {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is not a directory of yours (uid {}, you are {me}); remove it, or set XDG_RUNTIME_DIR / XDG_STATE_HOME to a directory you own",
                dir.display(),
                meta.uid()
            ),
        ));
    }
    if meta.permissions().mode() & 0o777 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Writes `contents` to `path`, in one of mfa-agent's own directories (made private), with
/// mode 0600: a temporary file in the same directory is written and fsynced, then renamed
/// over `path`, then the directory is fsynced.
pub fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    ensure_private_dir(parent_of(path))?;
    replace(path, contents)
}

/// Replaces a file of the user's (`~/.aws/credentials`) atomically with mode 0600, leaving
/// its directory as it is. A symlink is followed: the file it points to is rewritten (a
/// dotfiles repository keeps its link), not replaced by a copy beside a stale original.
pub(crate) fn replace_user_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    replace(&fs::canonicalize(path)?, contents)
}

/// Writes a private copy of a user's file (`config.bak`) beside it, atomically, with mode
/// 0600 whatever an earlier copy's mode was; a symlink at `path` is replaced, not followed.
pub(crate) fn replace_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    replace(path, contents)
}

/// Creates a new file the user named (an exported QR code) with mode 0600: never over an
/// existing file or through a symlink, and without touching its directory.
pub(crate) fn create_user_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn replace(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = parent_of(path);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("path has no file name"))?;
    // A random part too: a temp file left by a process killed mid-write (whose pid may come
    // round again) never blocks a later write.
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{:016x}",
        name.to_string_lossy(),
        std::process::id(),
        crate::random::u64()
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_files_keep_their_directory_and_their_links() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("project");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o2775)).unwrap();
        create_user_file(&shared.join("qr.png"), b"png").unwrap();
        let mode = std::fs::metadata(&shared).unwrap().permissions().mode() & 0o7777;
        assert_eq!(
            mode, 0o2775,
            "the setgid project directory is left as it was"
        );
        assert!(
            create_user_file(&shared.join("qr.png"), b"again").is_err(),
            "no overwrite"
        );

        let target = dir.path().join("dotfiles-credentials");
        std::fs::write(&target, b"old").unwrap();
        let link = dir.path().join("credentials");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(
            create_user_file(&link, b"x").is_err(),
            "never through a symlink"
        );
        replace_user_file(&link, b"new").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            std::fs::read(&target).unwrap(),
            b"new",
            "the real file is rewritten"
        );
    }

    #[test]
    fn a_stale_temp_file_from_a_killed_write_blocks_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay.json");
        // What a `kill -9` between create and rename leaves, under this very pid.
        let stale = dir
            .path()
            .join(format!(".replay.json.tmp-{}", std::process::id()));
        std::fs::write(&stale, b"half").unwrap();
        write_private(&path, b"whole").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"whole");
    }

    #[test]
    fn writes_replace_whole_file_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/index.json");
        write_private(&path, b"first, longer contents").unwrap();
        write_private(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn existing_dir_is_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("open");
        fs::create_dir(&sub).unwrap();
        fs::set_permissions(&sub, fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&sub).unwrap();
        assert_eq!(
            fs::metadata(&sub).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}
