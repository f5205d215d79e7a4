//! The lines of the AWS shared files (`~/.aws/config`, `~/.aws/credentials`) as the AWS SDKs
//! read them, for the commands that edit those files: one classifier, so that what we change
//! is what every AWS tool would read, and a check that nothing else changed.
//!
//! The rules are the SDKs' shared-file rules (aws-config's parser follows them; botocore
//! agrees wherever a file is valid for both):
//! - a line is blank, or a comment when it starts with `#` or `;`;
//! - `[...]` is a section header; a comment may follow it (`[work] # my account`);
//! - a line that starts with a space or tab continues the setting above it;
//! - anything else is `key = value`; the key is case-insensitive, and a `#` or `;` after
//!   whitespace starts an inline comment (`secret = abc # note` has the value `abc`).

use std::collections::BTreeMap;
use std::ops::Range;

use thiserror::Error;

/// Which shared file: they name profiles differently (`[profile work]` against `[work]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Config,
    Credentials,
}

/// One line, classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line<'a> {
    Blank,
    Comment,
    /// `[...]`: the words between the brackets, comment and outer spaces stripped.
    Section(&'a str),
    /// `key = value`: the key as written, the value without spaces or inline comment.
    Setting {
        key: &'a str,
        value: &'a str,
    },
    /// An indented line: more of the setting above (its value continues, or nests).
    Continuation(&'a str),
    /// A line no AWS tool reads: a header without `]`, a setting without `=` or name.
    Invalid(&'static str),
}

const WHITESPACE: &[char] = &[' ', '\t'];
const COMMENT: &[char] = &['#', ';'];

/// Classifies one line (its line ending, if any, is ignored).
#[must_use]
pub fn classify(line: &str) -> Line<'_> {
    let line = line.trim_end_matches(['\n', '\r']);
    if line.trim_matches(WHITESPACE).is_empty() {
        Line::Blank
    } else if line.starts_with(COMMENT) {
        Line::Comment
    } else if line.starts_with('[') {
        match without_comment(line, false)
            .strip_prefix('[')
            .and_then(|l| l.strip_suffix(']'))
        {
            Some(inner) => Line::Section(inner.trim_matches(WHITESPACE)),
            None => Line::Invalid("a section header must end with ']'"),
        }
    } else if line.starts_with(WHITESPACE) {
        Line::Continuation(line.trim_matches(WHITESPACE))
    } else {
        match without_comment(line, true).split_once('=') {
            None => Line::Invalid("a setting needs an '=' (key = value)"),
            Some((key, _)) if key.trim_matches(WHITESPACE).is_empty() => {
                Line::Invalid("a setting needs a name before its '='")
            }
            Some((key, value)) => Line::Setting {
                key: key.trim_matches(WHITESPACE),
                value: value.trim_matches(WHITESPACE),
            },
        }
    }
}

/// `line` up to its comment: in a header a `#`/`;` anywhere starts one, in a setting only
/// after whitespace (`a=b#c` is the value `b#c`).
fn without_comment(line: &str, needs_whitespace: bool) -> &str {
    let line = line.trim_matches(WHITESPACE);
    let mut after_space = false;
    for (i, c) in line.char_indices() {
        if COMMENT.contains(&c) && (after_space || !needs_whitespace) {
            return line[..i].trim_matches(WHITESPACE);
        }
        after_space = c.is_whitespace();
    }
    line
}

/// The profile a section header names in a file of this kind, if it names one:
/// `[default]`/`[profile work]` in the config file, `[work]` in the credentials file.
#[must_use]
pub fn profile_of(section: &str, kind: FileKind) -> Option<&str> {
    let (prefix, name) = match section.split_once(WHITESPACE) {
        Some((prefix, name)) => (Some(prefix), name.trim_matches(WHITESPACE)),
        None => (None, section),
    };
    match (kind, prefix) {
        (FileKind::Config, Some("profile")) | (FileKind::Credentials, None) => Some(name),
        (FileKind::Config, None) if name == "default" => Some(name),
        _ => None,
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FileError {
    #[error("line {line} is not what AWS tools read ({why})")]
    Invalid { line: usize, why: &'static str },
    #[error("line {line} is a setting before any [section]")]
    Orphan { line: usize },
    #[error("[{section}] appears {count} times (the AWS CLI refuses such a file)")]
    Repeated { section: String, count: usize },
}

/// A whole file, each line kept as written beside what it is.
pub struct Document<'a> {
    lines: Vec<(&'a str, Line<'a>)>,
    kind: FileKind,
}

/// Every section's settings as the SDKs see them: section (words joined by one space) ->
/// lower-case key -> the value's pieces (its own line's, then each continuation's). Borrowed
/// from the text, so that comparing two files copies no secret.
pub type Settings<'a> = BTreeMap<String, BTreeMap<String, Vec<&'a str>>>;

impl<'a> Document<'a> {
    /// Classifies every line; a line no AWS tool reads, a setting outside any section or a
    /// section written twice is an error, because an edit could not tell what it changes.
    pub fn parse(text: &'a str, kind: FileKind) -> Result<Self, FileError> {
        let lines: Vec<_> = text
            .split_inclusive('\n')
            .map(|raw| (raw, classify(raw)))
            .collect();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut in_section = false;
        for (i, (_, line)) in lines.iter().enumerate() {
            match line {
                Line::Invalid(why) => return Err(FileError::Invalid { line: i + 1, why }),
                Line::Section(name) => {
                    in_section = true;
                    *seen.entry(normalised(name)).or_default() += 1;
                }
                Line::Setting { .. } | Line::Continuation(_) if !in_section => {
                    return Err(FileError::Orphan { line: i + 1 });
                }
                _ => {}
            }
        }
        if let Some((section, &count)) = seen.iter().find(|(_, n)| **n > 1) {
            return Err(FileError::Repeated {
                section: section.clone(),
                count,
            });
        }
        Ok(Self { lines, kind })
    }

    /// The lines of `profile`'s section, header included, or `None` when it has none.
    #[must_use]
    pub fn section_of(&self, profile: &str) -> Option<Range<usize>> {
        let start = self.lines.iter().position(|(_, line)| {
            matches!(line, Line::Section(name) if profile_of(name, self.kind) == Some(profile))
        })?;
        let end = self.lines[start + 1..]
            .iter()
            .position(|(_, line)| matches!(line, Line::Section(_)))
            .map_or(self.lines.len(), |i| start + 1 + i);
        Some(start..end)
    }

    /// The setting `key` in `range`: the lines it spans (with its continuations) and its
    /// value as written on its own line.
    #[must_use]
    pub fn setting(&self, range: Range<usize>, key: &str) -> Option<(Range<usize>, &'a str)> {
        let at = range.clone().find(|&i| {
            matches!(self.lines[i].1, Line::Setting { key: k, .. } if k.eq_ignore_ascii_case(key))
        })?;
        let Line::Setting { value, .. } = self.lines[at].1 else {
            return None;
        };
        let end = (at + 1..range.end)
            .find(|&i| !matches!(self.lines[i].1, Line::Continuation(_)))
            .unwrap_or(range.end);
        Some((at..end, value))
    }

    #[must_use]
    pub fn line(&self, i: usize) -> (&'a str, Line<'a>) {
        self.lines[i]
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The text with the lines in `drop` left out and `insert` put before line `at`.
    #[must_use]
    pub fn edited(&self, drop: &[Range<usize>], at: usize, insert: &str) -> String {
        let mut out = String::new();
        for (i, (raw, _)) in self.lines.iter().enumerate() {
            if i == at {
                out.push_str(insert);
            }
            if !drop.iter().any(|r| r.contains(&i)) {
                out.push_str(raw);
            }
        }
        if at >= self.lines.len() {
            out.push_str(insert);
        }
        out
    }

    /// What the SDKs read from this file.
    #[must_use]
    pub fn settings(&self) -> Settings<'a> {
        let mut all = Settings::new();
        let mut section = None;
        let mut key = None;
        for (_, line) in &self.lines {
            match *line {
                Line::Section(name) => {
                    let name = normalised(name);
                    all.entry(name.clone()).or_default();
                    section = Some(name);
                    key = None;
                }
                Line::Setting { key: k, value } => {
                    let k = k.to_ascii_lowercase();
                    if let Some(s) = &section {
                        all.entry(s.clone())
                            .or_default()
                            .insert(k.clone(), vec![value]);
                    }
                    key = Some(k);
                }
                Line::Continuation(more) => {
                    if let (Some(s), Some(k)) = (&section, &key)
                        && let Some(value) = all.get_mut(s).and_then(|m| m.get_mut(k))
                    {
                        value.push(more);
                    }
                }
                Line::Blank | Line::Comment | Line::Invalid(_) => {}
            }
        }
        all
    }

    /// The normalised section name `profile` has in this file.
    #[must_use]
    pub fn section_name(&self, profile: &str) -> String {
        match self.kind {
            FileKind::Config if profile != "default" => format!("profile {profile}"),
            _ => profile.to_owned(),
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum EditError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("the {key} of [{section}] continues on the indented line after it")]
    Continued { key: String, section: String },
    #[error("the edit of [{section}] would change other settings of the file")]
    Unverified { section: String },
}

/// The settings an edit took out: each key with its value as written.
pub type Removed<'a> = Vec<(&'static str, &'a str)>;

/// `text` without the settings `keys` of `profile`'s section (each with its continuation
/// lines), and the values removed, in the order of `keys`. Every other line stays byte for
/// byte, and the new text must read back as the old one minus those settings. A setting that
/// continues on further lines is refused, since none of the keys this is for does.
pub fn remove_settings<'a>(
    text: &'a str,
    kind: FileKind,
    profile: &str,
    keys: &[&'static str],
) -> Result<(String, Removed<'a>), EditError> {
    let doc = Document::parse(text, kind)?;
    let Some(section) = doc.section_of(profile) else {
        return Ok((text.to_owned(), Vec::new()));
    };
    let mut removed = Vec::new();
    let mut drop = Vec::new();
    for &key in keys {
        let Some((lines, value)) = doc.setting(section.clone(), key) else {
            continue;
        };
        if lines.len() > 1 {
            return Err(EditError::Continued {
                key: key.to_owned(),
                section: doc.section_name(profile),
            });
        }
        removed.push((key, value));
        drop.push(lines);
    }
    let new = doc.edited(&drop, doc.len(), "");
    let mut expected = doc.settings();
    if let Some(settings) = expected.get_mut(&doc.section_name(profile)) {
        settings.retain(|key, _| !keys.contains(&key.as_str()));
    }
    verify(&new, kind, &expected, &doc.section_name(profile))?;
    Ok((new, removed))
}

/// Reads `new` back and checks that the AWS tools would see `expected` in it.
pub fn verify(
    new: &str,
    kind: FileKind,
    expected: &Settings,
    section: &str,
) -> Result<(), EditError> {
    let reread = Document::parse(new, kind).map(|d| d.settings());
    if reread.as_ref() == Ok(expected) {
        Ok(())
    } else {
        Err(EditError::Unverified {
            section: section.to_owned(),
        })
    }
}

/// A section name with its words joined by one space (`profile   work` is `profile work`).
fn normalised(section: &str) -> String {
    section.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_classified_as_the_sdks_read_them() {
        use Line::*;
        let cases: &[(&str, Line)] = &[
            ("", Blank),
            (" \t\r\n", Blank),
            ("# a comment\n", Comment),
            ("; a comment", Comment),
            ("[work]\n", Section("work")),
            ("[work] # my work account\n", Section("work")),
            ("[ profile  work ];c", Section("profile  work")),
            ("[work", Invalid("a section header must end with ']'")),
            (
                "[work] trailing",
                Invalid("a section header must end with ']'"),
            ),
            ("  # indented", Continuation("# indented")),
            ("\tkey = v", Continuation("key = v")),
            (
                "a=b\r\n",
                Setting {
                    key: "a",
                    value: "b",
                },
            ),
            (
                "Key = abc # note\n",
                Setting {
                    key: "Key",
                    value: "abc",
                },
            ),
            (
                "key = abc#note",
                Setting {
                    key: "key",
                    value: "abc#note",
                },
            ),
            (
                "key = a;b ;c",
                Setting {
                    key: "key",
                    value: "a;b",
                },
            ),
            (
                "key = b=c",
                Setting {
                    key: "key",
                    value: "b=c",
                },
            ),
            (
                "key =",
                Setting {
                    key: "key",
                    value: "",
                },
            ),
            ("no equals", Invalid("a setting needs an '=' (key = value)")),
            ("= v", Invalid("a setting needs a name before its '='")),
        ];
        for (text, want) in cases {
            assert_eq!(classify(text), *want, "{text:?}");
        }
    }

    #[test]
    fn profiles_are_named_as_each_file_names_them() {
        use FileKind::*;
        assert_eq!(profile_of("default", Config), Some("default"));
        assert_eq!(profile_of("profile work", Config), Some("work"));
        assert_eq!(profile_of("profile \t work", Config), Some("work"));
        assert_eq!(profile_of("work", Config), None);
        assert_eq!(profile_of("sso-session corp", Config), None);
        assert_eq!(profile_of("work", Credentials), Some("work"));
        assert_eq!(profile_of("profile work", Credentials), None);
    }

    #[test]
    fn files_an_edit_could_misread_are_refused() {
        let kind = FileKind::Credentials;
        let err = |text| Document::parse(text, kind).err().unwrap();
        assert_eq!(
            err("[a]\nx\n"),
            FileError::Invalid {
                line: 2,
                why: "a setting needs an '=' (key = value)"
            }
        );
        assert_eq!(err("k = v\n[a]\n"), FileError::Orphan { line: 1 });
        assert_eq!(
            err("[a]\n[b]\n[ a ]\n"),
            FileError::Repeated {
                section: "a".into(),
                count: 2
            }
        );
    }

    #[test]
    fn settings_join_continuations_and_sections_end_at_the_next_header() {
        let text = "[default] # d\nregion = eu-west-1 ; home\ns3 =\n  max_concurrent_requests = 20\n\n[other]\nk = v\n";
        let doc = Document::parse(text, FileKind::Credentials).unwrap();
        let settings = doc.settings();
        assert_eq!(settings["default"]["region"], ["eu-west-1"]);
        assert_eq!(
            settings["default"]["s3"],
            ["", "max_concurrent_requests = 20"]
        );
        assert_eq!(doc.section_of("default"), Some(0..5));
        assert_eq!(doc.section_of("other"), Some(5..7));
        assert_eq!(doc.setting(0..5, "S3"), Some((2..4, "")));
        assert_eq!(doc.section_of("nope"), None);
        assert_eq!(
            doc.edited(std::slice::from_ref(&(2..4)), 5, "x = y\n"),
            "[default] # d\nregion = eu-west-1 ; home\n\nx = y\n[other]\nk = v\n"
        );
    }
}
