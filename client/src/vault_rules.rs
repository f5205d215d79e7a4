//! What a client checks of the vault before it asks the agent, so that a mistake is said
//! before the user types a secret or starts an agent: a seed name's shape, and that
//! `--store` names the store the vault keeps its secrets in. The agent checks both again: it
//! is the one that reads and changes the vault.

use std::path::Path;

use serde::Deserialize;
use thiserror::Error;

use crate::protocol::StoreKind;

/// The vault's index (`XDG_DATA_HOME/mfa-agent/seeds.json`): names and parameters of seeds,
/// and which store holds their secrets. Nothing in it is secret.
pub const INDEX_FILE: &str = "seeds.json";

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{name:?} is not a usable seed name")]
pub struct BadName {
    pub name: String,
}

impl BadName {
    pub const ADVICE: &'static str =
        "use 1-64 letters, digits, '.', '_', '-' or '@', starting with a letter or digit";
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("this vault keeps its seeds in the {actual}, not the {requested} asked for")]
pub struct StoreMismatch {
    pub actual: StoreKind,
    pub requested: StoreKind,
}

impl StoreMismatch {
    pub const ADVICE: &'static str =
        "drop --store (moving seeds between stores is not supported yet)";
}

/// Seed names appear in commands, config files and keyring labels: keep them plain.
pub fn validate_name(name: &str) -> Result<(), BadName> {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(BadName { name: name.into() })
    }
}

/// Refuses `requested` when the vault in `data_dir` keeps its secrets in another store. A
/// vault that does not exist yet, or an index this cannot read, passes: the agent creates
/// the one and says what is wrong with the other (with how to restore it).
pub fn check_store(data_dir: &Path, requested: StoreKind) -> Result<(), StoreMismatch> {
    #[derive(Deserialize)]
    struct Stored {
        store: StoreKind,
    }
    let Ok(text) = std::fs::read(data_dir.join(INDEX_FILE)) else {
        return Ok(());
    };
    match serde_json::from_slice::<Stored>(&text) {
        Ok(Stored { store: actual }) if actual != requested => {
            Err(StoreMismatch { actual, requested })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["work", "prod-admin", "a.b_c@d", "9"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-flag", "has space", "slash/y", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_store_other_than_the_vaults_is_refused_and_a_missing_or_damaged_index_left_to_the_agent() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            check_store(dir.path(), StoreKind::File),
            Ok(()),
            "no vault yet"
        );
        std::fs::write(dir.path().join(INDEX_FILE), "{\"store\": ").unwrap();
        assert_eq!(check_store(dir.path(), StoreKind::File), Ok(()), "damaged");
        std::fs::write(
            dir.path().join(INDEX_FILE),
            r#"{"version": 2, "store": "keyring", "seeds": {}}"#,
        )
        .unwrap();
        assert_eq!(check_store(dir.path(), StoreKind::Keyring), Ok(()));
        assert_eq!(
            check_store(dir.path(), StoreKind::File),
            Err(StoreMismatch {
                actual: StoreKind::Keyring,
                requested: StoreKind::File
            })
        );
    }
}
