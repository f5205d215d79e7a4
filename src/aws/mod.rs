//! AWS: reading profiles from `~/.aws/config` and calling STS.

pub mod profile;
pub mod sts;

use crate::secret::SecretString;

/// Long-term IAM user keys, the source of every MFA session.
pub struct LongTermKeys {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
}

impl std::fmt::Debug for LongTermKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LongTermKeys")
            .field("access_key_id", &crate::protocol::mask(&self.access_key_id))
            .finish_non_exhaustive()
    }
}
