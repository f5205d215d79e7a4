//! The AWS shared files as mfa-agent reads and edits them (`creds import`, `aws enroll
//! --write-config`), checked against two readers nobody here wrote: the Rust SDK's parser
//! (`aws_config::profile::load`) and botocore's (the AWS CLI's), on the same files, in every
//! header and comment form they accept. An edit changes its own profile's lines and no byte
//! of any other.

use crate::common;

use std::collections::BTreeMap;
use std::process::Command;

use aws_runtime::env_config::file::EnvConfigFiles;
use aws_types::os_shim_internal::{Env, Fs};
use mfa_agent::aws::config_edit::with_setting;
use mfa_agent::aws::shared_file::{Document, FileKind, profile_of, remove_settings};

const KEYS: [&str; 3] = [
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
];

/// Credentials files in the forms people write: comments after headers and values, `;`
/// comments, CRLF, tabs, upper-case keys, no final newline, `a=b#c` (a value, not a comment).
const CREDENTIALS: &[&str] = &[
    "[default]\naws_access_key_id = AKIADEFAULT00000\naws_secret_access_key = d\n[work] # my work account\naws_access_key_id = AKIAWORK00000000\naws_secret_access_key = w\n",
    "# keys\n[default] ; main\naws_access_key_id=AKIADEFAULT00000\naws_secret_access_key=d/e+f\n\n\n; between\n[work]\t# tab\nAWS_ACCESS_KEY_ID = AKIAWORK00000000\nAws_Secret_Access_Key = w#x\nregion = eu-west-1\n",
    "[default]\r\naws_access_key_id = AKIADEFAULT00000\r\naws_secret_access_key = d\r\n\r\n[work]\r\naws_access_key_id = AKIAWORK00000000\r\naws_secret_access_key = w\r\naws_session_token = t",
    "[work]\naws_access_key_id = AKIAWORK00000000\naws_secret_access_key = w ; old note\n[default]\naws_secret_access_key = d # note\naws_access_key_id = AKIADEFAULT00000\n",
    "[default]\naws_access_key_id\t=\tAKIADEFAULT00000\naws_secret_access_key =   d   \n# [work] is commented out\n[work]  \naws_access_key_id = AKIAWORK00000000\naws_secret_access_key = w\n",
];

/// Config files with the same forms, plus `[profile   x]` spacing and nested settings.
const CONFIGS: &[&str] = &[
    "[default]\nregion = eu-west-1\n[profile work] # my work account\nregion = us-east-1\nmfa_serial = arn:aws:iam::1:mfa/w ; phone\n",
    "# settings\n[profile work]\ns3 =\n  max_concurrent_requests = 20\n  max_queue_size = 100\nregion=eu-west-1#x\n\n[profile  prod] ; live\nrole_arn = arn:aws:iam::1:role/p\nsource_profile = work\n[sso-session corp]\nsso_region = eu-west-1\n",
    "[profile work]\r\nregion = eu-west-1\r\n\r\n[default]\r\nregion = us-east-1",
];

/// What the Rust SDK reads: profile -> the given keys' values.
fn sdk_read(
    text: &str,
    kind: FileKind,
    keys: &[&str],
) -> BTreeMap<String, BTreeMap<String, String>> {
    let fs = Fs::from_slice(&[("/f", text)]);
    let (config, credentials) = match kind {
        FileKind::Config => ("/f", "/none"),
        FileKind::Credentials => ("/none", "/f"),
    };
    let env = Env::from_slice(&[
        ("AWS_CONFIG_FILE", config),
        ("AWS_SHARED_CREDENTIALS_FILE", credentials),
    ]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let set = runtime
        .block_on(aws_config::profile::load(
            &fs,
            &env,
            &EnvConfigFiles::default(),
            None,
        ))
        .unwrap_or_else(|e| panic!("the SDK cannot read {text:?}: {e}"));
    set.profiles()
        .map(|name| {
            let profile = set.get_profile(name).unwrap();
            let values = keys
                .iter()
                .filter_map(|k| profile.get(k).map(|v| ((*k).to_owned(), v.to_owned())))
                .collect();
            (name.to_owned(), values)
        })
        .collect()
}

/// What botocore reads: section (as written) -> key -> value.
fn botocore_read(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(common::moto::venv().join("bin/python"))
        .args([
            "-c",
            "import json, sys; from botocore.configloader import raw_config_parse; print(json.dumps(raw_config_parse(sys.argv[1], parse_subsections=False)))",
        ])
        .arg(&path)
        .output()
        .expect("the venv's python runs");
    assert!(
        out.status.success(),
        "botocore cannot read {text:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// What mfa-agent reads, as profile -> key -> value.
fn ours(text: &str, kind: FileKind) -> BTreeMap<String, BTreeMap<String, String>> {
    let doc = Document::parse(text, kind).unwrap();
    doc.settings()
        .into_iter()
        .filter_map(|(section, values)| {
            let profile = profile_of(&section, kind)?.to_owned();
            let values = values
                .into_iter()
                .map(|(k, pieces)| (k, pieces.join("\n")))
                .collect();
            Some((profile, values))
        })
        .collect()
}

fn keys_in(read: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<String> {
    let mut keys: Vec<String> = read.values().flat_map(|v| v.keys().cloned()).collect();
    keys.sort();
    keys.dedup();
    keys
}

#[test]
fn mfa_agent_reads_the_shared_files_as_the_rust_sdk_and_botocore_do() {
    for (text, kind) in CREDENTIALS
        .iter()
        .map(|t| (*t, FileKind::Credentials))
        .chain(CONFIGS.iter().map(|t| (*t, FileKind::Config)))
    {
        let ours = ours(text, kind);
        let keys = keys_in(&ours);
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        assert_eq!(
            sdk_read(text, kind, &keys),
            ours,
            "the Rust SDK reads {text:?} otherwise"
        );
        // botocore keeps inline comments in values (`d # note`), which no key, region or
        // ARN contains: for the rest, it reads what the SDK and mfa-agent read.
        let botocore = botocore_read(text);
        for (profile, values) in &ours {
            let section = botocore
                .iter()
                .find(|(s, _)| profile_of(s, kind) == Some(profile.as_str()))
                .unwrap_or_else(|| panic!("botocore has no [{profile}] in {text:?}: {botocore:?}"))
                .1;
            for (key, value) in values {
                let theirs = &section[key];
                assert!(
                    theirs == value
                        || theirs
                            .strip_prefix(value.as_str())
                            .is_some_and(|rest| rest.starts_with([' ', '\t'])
                                && rest.trim_start().starts_with(['#', ';'])),
                    "botocore reads {key} of [{profile}] as {theirs:?}, mfa-agent as {value:?}, in {text:?}"
                );
            }
        }
    }
}

/// Every line of the text that is not in `profile`'s section.
fn other_sections(text: &str, kind: FileKind, profile: &str) -> Vec<String> {
    let doc = Document::parse(text, kind).unwrap();
    let own = doc.section_of(profile).unwrap_or(0..0);
    (0..doc.len())
        .filter(|i| !own.contains(i))
        .map(|i| doc.line(i).0.to_owned())
        .collect()
}

#[test]
fn taking_a_profiles_keys_out_leaves_every_other_profile_byte_for_byte() {
    for text in CREDENTIALS {
        for profile in ["default", "work"] {
            let (kept, removed) =
                remove_settings(text, FileKind::Credentials, profile, &KEYS).unwrap();
            let before = sdk_read(text, FileKind::Credentials, &KEYS);
            let after = sdk_read(&kept, FileKind::Credentials, &KEYS);
            let want: Vec<(&str, &str)> = KEYS
                .iter()
                .filter_map(|k| before[profile].get(*k).map(|v| (*k, v.as_str())))
                .collect();
            assert_eq!(removed, want, "the SDK's values of [{profile}] in {text:?}");
            assert!(
                after[profile].is_empty(),
                "keys left in [{profile}]: {kept:?}"
            );
            assert_eq!(
                other_sections(&kept, FileKind::Credentials, profile),
                other_sections(text, FileKind::Credentials, profile),
                "other profiles changed when taking [{profile}]'s keys out of {text:?}"
            );
        }
    }
}

#[test]
fn setting_a_config_value_changes_that_setting_and_no_other_byte() {
    for text in CONFIGS {
        for profile in ["default", "work", "prod", "new"] {
            let edited = with_setting(text, profile, "mfa_serial", "arn:aws:iam::1:mfa/new")
                .unwrap_or_else(|e| panic!("[{profile}] of {text:?}: {e}"));
            let keys = ["mfa_serial", "region", "role_arn", "source_profile", "s3"];
            let mut want = sdk_read(text, FileKind::Config, &keys);
            want.entry(profile.to_owned())
                .or_default()
                .insert("mfa_serial".into(), "arn:aws:iam::1:mfa/new".into());
            assert_eq!(
                sdk_read(&edited, FileKind::Config, &keys),
                want,
                "[{profile}] of {text:?} became {edited:?}"
            );
            let had_it = Document::parse(text, FileKind::Config)
                .unwrap()
                .section_of(profile)
                .is_some();
            if had_it {
                assert_eq!(
                    other_sections(&edited, FileKind::Config, profile),
                    other_sections(text, FileKind::Config, profile),
                    "other profiles changed when setting [{profile}] in {text:?}: {edited:?}"
                );
            } else {
                assert!(
                    edited.starts_with(text),
                    "a new section goes after the file as it was: {edited:?}"
                );
            }
            assert!(
                botocore_read(&edited).len() >= botocore_read(text).len(),
                "the AWS CLI reads the edit: {edited:?}"
            );
        }
    }
}
