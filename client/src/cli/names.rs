//! Profile and seed names for shell completion (`mfa-agent complete-names KIND`, which the
//! completion scripts run on TAB), and the part of each script that asks for them: where a
//! command takes a profile (`exec PROFILE`, `--profile PROFILE`) or an existing seed
//! (`code NAME`, `seed export NAME`), TAB offers the names there are, as aws-vault does.
//!
//! Profiles come from the AWS files as the AWS CLI finds them (`AWS_CONFIG_FILE`,
//! `AWS_SHARED_CREDENTIALS_FILE`), read here without the agent; seeds from the agent, only
//! when one runs (a TAB never starts one).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Result;
use clap::CommandFactory;

use super::Cli;
use crate::aws::shared_file::{self, Document, FileKind};
use crate::paths::Paths;
use crate::protocol::SeedList;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NameKind {
    Profiles,
    Seeds,
}

/// Prints the names of `kind`, one per line; nothing (and success) when there are none or
/// they cannot be read: a completion never shows an error.
pub(super) fn print(kind: NameKind) -> ExitCode {
    let names = match kind {
        NameKind::Profiles => profiles(),
        NameKind::Seeds => seeds().unwrap_or_default(),
    };
    for name in names {
        println!("{name}");
    }
    ExitCode::SUCCESS
}

fn profiles() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let files = [
        (
            crate::aws::config_edit::config_path().ok(),
            FileKind::Config,
        ),
        (super::creds::credentials_file().ok(), FileKind::Credentials),
    ];
    for (path, kind) in files {
        let Some(text) = path.and_then(|p| std::fs::read_to_string(p).ok()) else {
            continue;
        };
        let Ok(doc) = Document::parse(&text, kind) else {
            continue;
        };
        names.extend(
            doc.settings()
                .keys()
                .filter_map(|section| shared_file::profile_of(section, kind))
                .map(str::to_owned),
        );
    }
    names
}

fn seeds() -> Result<BTreeSet<String>> {
    let paths = Paths::from_env()?;
    let mut client = crate::client::Client::connect(&paths, false)?;
    let listing = client.call(SeedList, |_| {})?;
    Ok(listing.seeds.into_iter().map(|s| s.name).collect())
}

/// Where a command line takes a name: the subcommand path, the argument (`--profile`, or
/// the first positional when `None`), and which names.
struct Slot {
    path: String,
    long: Option<String>,
    kind: NameKind,
}

/// Every place a profile or an existing seed is named, from the command definitions: an
/// argument called `profile`, or a seed's `name` whose help begins "The seed's name".
fn slots() -> Vec<Slot> {
    fn walk(cmd: &clap::Command, path: &[&str], out: &mut Vec<Slot>) {
        for arg in cmd.get_arguments() {
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            let kind = match arg.get_id().as_str() {
                "profile" => NameKind::Profiles,
                "name" if help.starts_with("The seed's name") => NameKind::Seeds,
                _ => continue,
            };
            out.push(Slot {
                path: path.join(" "),
                long: arg.get_long().map(|l| format!("--{l}")),
                kind,
            });
        }
        for sub in cmd.get_subcommands() {
            let mut deeper = path.to_vec();
            deeper.push(sub.get_name());
            walk(sub, &deeper, out);
        }
    }
    let mut out = Vec::new();
    walk(&Cli::command(), &[], &mut out);
    out
}

fn kind_word(kind: NameKind) -> &'static str {
    match kind {
        NameKind::Profiles => "profiles",
        NameKind::Seeds => "seeds",
    }
}

/// A bash function that offers names where they go and leaves every other word to
/// clap's completion function (`_mfa__agent`), registered in its place.
pub(super) fn bash_addition() -> String {
    let (mut options, mut positionals) = (String::new(), String::new());
    for slot in slots() {
        let kind = kind_word(slot.kind);
        match &slot.long {
            Some(long) => {
                let _ = writeln!(options, "        \"{}|{long}\") kind={kind} ;;", slot.path);
            }
            None => {
                let _ = writeln!(positionals, "        \"{}\") kind={kind} ;;", slot.path);
            }
        }
    }
    format!(
        r#"
# Profile and seed names where a command takes one (mfa-agent complete-names).
_mfa_agent_names() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}" w kind=""
    local words=()
    for w in "${{COMP_WORDS[@]:1:COMP_CWORD-1}}"; do
        [[ $w == -* ]] || words+=("$w")
    done
    local path="${{words[*]}}"
    case "$path|$prev" in
{options}    esac
    if [[ -z $kind && $cur != -* ]]; then
        case "$path" in
{positionals}        esac
    fi
    if [[ -n $kind ]]; then
        COMPREPLY=( $(compgen -W "$(mfa-agent complete-names "$kind" 2>/dev/null)" -- "$cur") )
        return 0
    fi
    _mfa__agent "$@"
}}
complete -F _mfa_agent_names -o nosort -o bashdefault -o default mfa-agent
"#
    )
}

/// fish: the names as the values of those arguments.
pub(super) fn fish_addition() -> String {
    let mut out = String::from("\n# Profile and seed names where a command takes one.\n");
    for slot in slots() {
        let mut words = slot.path.split(' ');
        let first = words.next().unwrap_or_default();
        let rest: Vec<&str> = words.collect();
        let mut condition = format!("__fish_mfa_agent_using_subcommand {first}");
        if let Some(last) = rest.last() {
            let _ = write!(condition, "; and __fish_seen_subcommand_from {last}");
        }
        let option = slot
            .long
            .as_deref()
            .map(|l| format!(" -l {} -r", l.trim_start_matches('-')))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "complete -c mfa-agent -n \"{condition}\"{option} -f -a \"(mfa-agent complete-names {} 2>/dev/null)\"",
            kind_word(slot.kind)
        );
    }
    out
}

/// zsh: clap's `_default` action of those arguments becomes the names.
pub(super) fn zsh_fixed(script: &str) -> String {
    let mut out = String::new();
    for line in script.split_inclusive('\n') {
        let kind = if line.starts_with("'--profile=[") || line.starts_with("':profile -- ") {
            Some("profiles")
        } else if line.starts_with("':name -- The seed'\\''s name") {
            Some("seeds")
        } else {
            None
        };
        match kind {
            Some(kind) if line.contains(":_default'") => {
                out.push_str(&line.replace(":_default'", &format!(":_mfa_agent_names {kind}'")));
            }
            _ => out.push_str(line),
        }
    }
    // Defined before the script's own function runs (autoloaded, it runs last).
    // `_arguments` puts compadd options between an action's name and its words: the kind
    // is the last argument, and the rest go to compadd.
    let helper = "_mfa_agent_names() {\n    local -a names\n    names=(${(f)\"$(mfa-agent complete-names ${@[-1]} 2>/dev/null)\"})\n    compadd \"${(@)@[1,-2]}\" -a names\n}\n\n";
    match out.find("\n_mfa-agent() {") {
        Some(at) => {
            out.insert_str(at + 1, helper);
            out
        }
        None => out + helper,
    }
}
