//! AWS: reading profiles from `~/.aws/config` and calling STS and IAM.

mod call;
pub mod context;
pub mod http;
pub mod iam;
pub mod profile;
pub mod sts;

pub use mfa_agent_client::aws::{KeysError, LongTermKeys, config_edit, shared_file};
