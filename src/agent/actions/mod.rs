//! What the agent does for each vault and security-key request: codes, seeds, long-term
//! keys, enrolment. Each runs inside the [door](super::door): one at a time, with its
//! prompts relayed to the client that asked.

mod code;
pub(super) mod credentials;
mod creds;
mod iam;
mod keys;
mod login;
mod rotate;
mod seeds;

use super::door::Visitor;
use super::minter::Minter;
use super::prompt::Progress;
use crate::protocol::{
    AwsDevices, AwsResync, AwsUnenroll, Code, ConsoleLogin, CredsAdd, CredsExport, CredsRemove,
    CredsRotate, KeyEnroll, KeyRemove, KeyTest, Request, Response, SeedExport, SeedImport,
    SeedLink, SeedRemove, SeedRename,
};

/// Carries out a vault or key request. Errors are for the user, whole: `{err:#}`.
///
/// One flat match, one arm per request, each naming what the request does for its touch
/// prompts and calling its action: long, but split it and the request is matched twice.
#[allow(clippy::too_many_lines)]
pub(super) async fn handle(
    request: Request,
    minter: &Minter,
    progress: Progress,
) -> anyhow::Result<Response> {
    let visitor = |subject: String, purpose: String| Visitor {
        progress: progress.clone(),
        subject,
        purpose,
    };
    match request {
        Request::Code(Code { seed, next }) => {
            let v = visitor(format!("seed {seed}"), format!("show the code of {seed}"));
            code::code(minter, &v, seed, next).await
        }
        Request::SeedList => {
            seeds::list(minter, &visitor("seeds".into(), "list seeds".into())).await
        }
        Request::SeedAdd(add) => {
            let name = &add.name;
            let v = visitor(format!("seed {name}"), format!("add the seed {name}"));
            seeds::add(minter, &v, add).await
        }
        Request::SeedRename(SeedRename { name, new_name }) => {
            let v = visitor(format!("seed {name}"), format!("rename the seed {name}"));
            seeds::rename(minter, &v, name, new_name).await
        }
        Request::SeedLink(SeedLink { name, serial }) => {
            let v = visitor(format!("seed {name}"), format!("link the seed {name}"));
            seeds::link(minter, &v, name, serial).await
        }
        Request::SeedRemove(SeedRemove { name, yes }) => {
            let v = visitor(format!("seed {name}"), format!("remove the seed {name}"));
            seeds::remove(minter, &v, name, yes).await
        }
        Request::SeedRecover => seeds::recover(minter).await,
        Request::SeedImport(SeedImport { text, store }) => {
            let v = visitor("seed import".into(), "import seeds".into());
            seeds::import(minter, &v, &text, store).await
        }
        Request::SeedExport(SeedExport { name }) => {
            let v = visitor(format!("seed {name}"), format!("export the seed {name}"));
            seeds::export(minter, &v, name).await
        }
        Request::CredsList => {
            creds::list(minter, &visitor("keys".into(), "list keys".into())).await
        }
        Request::CredsAdd(CredsAdd {
            profile,
            access_key_id,
            secret_access_key,
            replace,
            store,
        }) => {
            let v = visitor(profile.clone(), format!("store the keys of {profile}"));
            let keys = crate::aws::LongTermKeys {
                access_key_id,
                secret_access_key,
            };
            creds::add(minter, &v, profile, keys, replace, store).await
        }
        Request::CredsRemove(CredsRemove { profile, yes }) => {
            let v = visitor(profile.clone(), format!("remove the keys of {profile}"));
            creds::remove(minter, &v, profile, yes).await
        }
        Request::CredsExport(CredsExport { profile }) => {
            let v = visitor(profile.clone(), format!("hand out the keys of {profile}"));
            creds::export(minter, &v, profile).await
        }
        Request::CredsRotate(CredsRotate { profile }) => {
            let v = visitor(profile.clone(), format!("rotate the keys of {profile}"));
            rotate::rotate(minter, &v, profile).await
        }
        Request::ConsoleLogin(ConsoleLogin { profile }) => {
            let v = visitor(profile.clone(), format!("open the console as {profile}"));
            login::login(minter, &v, profile).await
        }
        Request::KeyList => {
            keys::list(minter, &visitor("security keys".into(), "list keys".into())).await
        }
        Request::KeyEnroll(KeyEnroll { name, pin, device }) => {
            let v = visitor(format!("key {name}"), "add a backup key".into());
            keys::enroll(minter, &v, name, pin, device).await
        }
        Request::KeyTest(KeyTest { name }) => {
            let v = visitor(format!("key {name}"), "test it".into());
            keys::test(minter, &v, name).await
        }
        Request::KeyRemove(KeyRemove { name, yes }) => {
            let v = visitor(format!("key {name}"), format!("remove the key {name}"));
            keys::remove(minter, &v, name, yes).await
        }
        Request::AwsEnroll(enrol) => {
            let profile = &enrol.profile;
            let v = visitor(
                profile.clone(),
                format!("enrol an MFA device for {profile}"),
            );
            iam::enroll(minter, &v, enrol).await
        }
        Request::AwsResync(AwsResync { profile }) => {
            let v = visitor(
                profile.clone(),
                format!("resynchronise {profile}'s MFA device"),
            );
            iam::resync(minter, &v, profile).await
        }
        Request::AwsUnenroll(AwsUnenroll { profile, user, yes }) => {
            let v = visitor(profile.clone(), format!("remove {profile}'s MFA device"));
            iam::unenroll(minter, &v, profile, user, yes).await
        }
        Request::AwsDevices(AwsDevices { profile }) => {
            let v = visitor(profile.clone(), format!("list {profile}'s MFA devices"));
            iam::devices(minter, &v, profile).await
        }
        // Served by the connection itself: the handshake, the hot path, status and control.
        Request::Hello(_)
        | Request::Answer(_)
        | Request::Status
        | Request::Subscribe
        | Request::Stop
        | Request::Lock
        | Request::Credentials(_) => {
            anyhow::bail!("the connection serves this request itself, not the vault")
        }
    }
}
