//! The audit log's lines, as the agent writes them (`agent::audit`) and `mfa-agent log`
//! reads them: one JSON object per request.

use serde::{Deserialize, Serialize};

/// One request, as logged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// Unix seconds.
    pub time: i64,
    /// What was done: "credentials", "code", "key remove" (the gate's names). Logs written
    /// before operations were named hold credentials requests only.
    #[serde(default = "credentials")]
    pub operation: String,
    /// What it was done to: the profile, or the seed's or key's name.
    pub profile: String,
    pub program: String,
    pub pid: u32,
    /// "hit" (from the cache), "issued" (minted, or shared from a mint), "done", "failed",
    /// "abandoned" (the client left first).
    pub outcome: String,
}

fn credentials() -> String {
    "credentials".into()
}
