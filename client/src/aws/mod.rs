//! What a client knows of AWS's own files and keys: the shared config and credentials files
//! (`~/.aws/config`, `~/.aws/credentials`), read and edited as text, and the shape of an IAM
//! user's long-term keys. Calling AWS is the agent's job, not a client's.

pub mod config_edit;
pub mod shared_file;

use thiserror::Error;

use crate::protocol::mask;
use crate::secret::SecretString;

/// The most roles between a profile and its long-term keys (AWS has no limit; a longer
/// chain is a mistake in the file).
pub const MAX_CHAIN: usize = 8;

/// Long-term IAM user keys, the source of every MFA session.
#[derive(Clone)]
pub struct LongTermKeys {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
}

#[derive(Debug, Error)]
pub enum KeysError {
    #[error(
        "expected an access key id and a secret access key (separated by a space, newline or comma)"
    )]
    Shape,
    #[error("{0:?} does not look like an access key id (AKIA... in the IAM console)")]
    BadKeyId(String),
    #[error("that is a temporary (ASIA...) key; store the long-term AKIA... key of your IAM user")]
    Temporary,
    #[error("the secret access key is too short; copy all 40 characters")]
    ShortSecret,
}

impl LongTermKeys {
    /// Accepts "AKID SECRET" on one or two lines, or the IAM console's CSV downloads: the
    /// access key's ("Access key ID,Secret access key") and a new user's (with user name,
    /// password and console link columns around them).
    pub fn parse(text: &str) -> Result<Self, KeysError> {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        if let (Some(header), Some(row)) = (lines.next(), lines.next()) {
            let columns: Vec<String> = header
                .split(',')
                .map(|c| c.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
                .collect();
            let at = |name: &str| columns.iter().position(|c| c == name);
            if let (Some(id), Some(secret)) = (at("access key id"), at("secret access key")) {
                let values: Vec<&str> = row.split(',').map(str::trim).collect();
                let (Some(akid), Some(secret)) = (values.get(id), values.get(secret)) else {
                    return Err(KeysError::Shape);
                };
                let keys = Self {
                    access_key_id: (*akid).to_owned(),
                    secret_access_key: SecretString::new((*secret).to_owned()),
                };
                keys.validate()?;
                return Ok(keys);
            }
        }
        let fields: Vec<&str> = text
            .lines()
            .filter(|l| !l.to_ascii_lowercase().contains("access key id"))
            .flat_map(|l| l.split([',', ' ', '\t']))
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .collect();
        let [akid, secret] = fields.as_slice() else {
            return Err(KeysError::Shape);
        };
        let keys = Self {
            access_key_id: (*akid).to_owned(),
            secret_access_key: SecretString::new((*secret).to_owned()),
        };
        keys.validate()?;
        Ok(keys)
    }

    /// Checks that the keys look like an IAM user's long-term keys.
    pub fn validate(&self) -> Result<(), KeysError> {
        let akid = &self.access_key_id;
        if !(16..=128).contains(&akid.len()) || !akid.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(KeysError::BadKeyId(mask(akid)));
        }
        if akid.starts_with("ASIA") {
            return Err(KeysError::Temporary);
        }
        if self.secret_access_key.expose().len() < 16 {
            return Err(KeysError::ShortSecret);
        }
        Ok(())
    }
}

impl std::fmt::Debug for LongTermKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LongTermKeys")
            .field("access_key_id", &mask(&self.access_key_id))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_from_pairs_and_iam_csv() {
        let pair =
            LongTermKeys::parse("AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n")
                .unwrap();
        assert_eq!(pair.access_key_id, "AKIAIOSFODNN7EXAMPLE");
        let csv = LongTermKeys::parse("Access key ID,Secret access key\nAKIAIOSFODNN7EXAMPLE,wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n").unwrap();
        assert_eq!(
            csv.secret_access_key.expose(),
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        );
        let new_user = LongTermKeys::parse("\u{feff}User name,Password,Access key ID,Secret access key,Console login link\nalice,,AKIAIOSFODNN7EXAMPLE,wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY,https://123456789012.signin.aws.amazon.com/console\n").unwrap();
        assert_eq!(new_user.access_key_id, "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(
            new_user.secret_access_key.expose(),
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        );
        assert!(LongTermKeys::parse("only-one").is_err());
        assert!(
            LongTermKeys::parse("ASIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
                .is_err()
        );
    }
}
