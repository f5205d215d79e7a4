//! The gate: what each request uses, decided in one place for every request type, so that
//! the policy that follows from it cannot be forgotten by a new one (the match below has no
//! catch-all: a new request does not build until it is named here).
//!
//! What follows from the use:
//! - a **session** is reached only through `actions::credentials::session`, which
//!   applies `confirm = "each-program"` to the program that asked, forced refresh or not;
//! - a **secret** (a code, an export) opens only with the approval the vault asks for (a
//!   touch under `touch = "each"`, or the unlock);
//! - the **key set** changes only with a fresh approval of a key enrolled at that moment,
//!   never a data key an earlier touch left open (actions/keys.rs enters the door without
//!   it);
//! - every use but "nothing" leaves an audit entry: the operation, its subject, the program
//!   that asked and the outcome, never a secret.

use crate::protocol::{
    AwsDevices, AwsEnroll, AwsResync, AwsUnenroll, Code, ConsoleLogin, Credentials, CredsAdd,
    CredsExport, CredsRemove, CredsRotate, KeyEnroll, KeyRemove, KeyTest, Request, SeedAdd,
    SeedExport, SeedImport, SeedLink, SeedRemove, SeedRename,
};

/// What a request uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Uses {
    /// Nothing secret and nothing changed: status, lists, lock.
    Nothing,
    /// A profile's MFA session (credentials, a console sign-in, the IAM calls made with it).
    Session,
    /// A secret itself: a TOTP code, an exported seed.
    Secret,
    /// What the vault holds (a seed or long-term keys added, renamed, removed).
    Vault,
    /// The security keys that seal or guard the vault.
    KeySet,
}

/// One request as the gate sees it.
#[derive(Debug, PartialEq, Eq)]
pub struct Operation<'a> {
    /// What is done, for the audit log: "credentials", "code", "key remove".
    pub name: &'static str,
    /// What it is done to: a profile, a seed's or a key's name; empty for the whole vault.
    pub subject: &'a str,
    pub uses: Uses,
}

/// What `request` uses, and the words the audit log gives it.
#[must_use]
pub fn operation(request: &Request) -> Operation<'_> {
    use Uses::{KeySet, Nothing, Secret, Session, Vault};
    let op = |name, subject, uses| Operation {
        name,
        subject,
        uses,
    };
    match request {
        Request::Hello(_)
        | Request::Answer(_)
        | Request::Status
        | Request::Subscribe
        | Request::Lock
        | Request::Stop => op("", "", Nothing),
        Request::SeedList => op("seed list", "", Nothing),
        Request::CredsList => op("creds list", "", Nothing),
        Request::KeyList => op("key list", "", Nothing),
        Request::Credentials(Credentials {
            profile,
            force_refresh,
            ..
        }) => op(
            if *force_refresh {
                "credentials refresh"
            } else {
                "credentials"
            },
            profile,
            Session,
        ),
        Request::ConsoleLogin(ConsoleLogin { profile }) => op("login", profile, Session),
        Request::AwsUnenroll(AwsUnenroll { profile, .. }) => op("aws unenroll", profile, Session),
        Request::CredsRotate(CredsRotate { profile }) => op("creds rotate", profile, Session),
        // With the long-term keys alone (self-service policies allow these without MFA);
        // a resync also spends two codes of the seed.
        Request::AwsDevices(AwsDevices { profile }) => op("aws devices", profile, Secret),
        Request::AwsResync(AwsResync { profile }) => op("aws resync", profile, Secret),
        Request::AwsEnroll(AwsEnroll { profile, .. }) => op("aws enroll", profile, Vault),
        Request::Code(Code { seed, .. }) => op("code", seed, Secret),
        Request::SeedExport(SeedExport { name }) => op("seed export", name, Secret),
        Request::SeedAdd(SeedAdd { name, .. }) => op("seed add", name, Vault),
        Request::SeedRename(SeedRename { name, .. }) => op("seed rename", name, Vault),
        Request::SeedLink(SeedLink { name, .. }) => op("seed link", name, Vault),
        Request::SeedRemove(SeedRemove { name, .. }) => op("seed remove", name, Vault),
        Request::SeedImport(SeedImport { .. }) => op("seed import", "", Vault),
        Request::SeedRecover => op("seed recover", "", Vault),
        Request::CredsAdd(CredsAdd { profile, .. }) => op("creds add", profile, Vault),
        Request::CredsRemove(CredsRemove { profile, .. }) => op("creds remove", profile, Vault),
        Request::CredsExport(CredsExport { profile }) => op("creds export", profile, Secret),
        Request::KeyEnroll(KeyEnroll { name, .. }) => op("key enroll", name, KeySet),
        Request::KeyTest(KeyTest { name }) => op("key test", name, KeySet),
        Request::KeyRemove(KeyRemove { name, .. }) => op("key remove", name, KeySet),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_use_of_a_session_names_its_profile() {
        let requests: [Request; 4] = [
            ConsoleLogin {
                profile: "prod".into(),
            }
            .into(),
            CredsRotate {
                profile: "prod".into(),
            }
            .into(),
            AwsUnenroll {
                profile: "prod".into(),
                user: None,
                yes: true,
            }
            .into(),
            Credentials {
                profile: "prod".into(),
                force_refresh: true,
                user: None,
            }
            .into(),
        ];
        for request in requests {
            let op = operation(&request);
            assert_eq!((op.subject, op.uses), ("prod", Uses::Session), "{op:?}");
        }
        let export = Request::from(SeedExport {
            name: "work".into(),
        });
        let op = operation(&export);
        assert_eq!(
            (op.name, op.subject, op.uses),
            ("seed export", "work", Uses::Secret)
        );
    }
}
