//! What the agent does for each vault and security-key request: codes, seeds, long-term
//! keys, enrolment. Each runs inside the [door](super::door): one at a time, with its
//! prompts relayed to the client that asked.

mod code;
pub mod credentials;
mod creds;
mod iam;
mod keys;
mod login;
mod rotate;
mod seeds;

use super::door::Visitor;
use super::minter::Minter;
use super::prompt::Progress;
use crate::protocol::{Request, Response};

/// Carries out a vault or key request. Errors are for the user, whole: `{err:#}`.
pub async fn handle(
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
        Request::Code { seed, next } => {
            let v = visitor(format!("seed {seed}"), format!("show the code of {seed}"));
            code::code(minter, &v, seed, next).await
        }
        Request::SeedList => {
            seeds::list(minter, &visitor("seeds".into(), "list seeds".into())).await
        }
        Request::SeedAdd {
            name,
            material,
            serial,
            store,
            replace,
        } => {
            let v = visitor(format!("seed {name}"), format!("add the seed {name}"));
            seeds::add(
                minter,
                &v,
                seeds::NewSeed {
                    name,
                    material,
                    serial,
                    replace,
                },
                store,
            )
            .await
        }
        Request::SeedRename { name, new_name } => {
            let v = visitor(format!("seed {name}"), format!("rename the seed {name}"));
            seeds::rename(minter, &v, name, new_name).await
        }
        Request::SeedLink { name, serial } => {
            let v = visitor(format!("seed {name}"), format!("link the seed {name}"));
            seeds::link(minter, &v, name, serial).await
        }
        Request::SeedRemove { name, yes } => {
            let v = visitor(format!("seed {name}"), format!("remove the seed {name}"));
            seeds::remove(minter, &v, name, yes).await
        }
        Request::SeedRecover => seeds::recover(minter).await,
        Request::SeedImport { text, store } => {
            let v = visitor("seed import".into(), "import seeds".into());
            seeds::import(minter, &v, &text, store).await
        }
        Request::SeedExport { name } => {
            let v = visitor(format!("seed {name}"), format!("export the seed {name}"));
            seeds::export(minter, &v, name).await
        }
        request @ (Request::CredsList
        | Request::CredsAdd { .. }
        | Request::CredsRemove { .. }
        | Request::CredsExport { .. }
        | Request::CredsRotate { .. }) => creds::handle(request, minter, progress).await,
        Request::ConsoleLogin { profile } => {
            let v = visitor(profile.clone(), format!("open the console as {profile}"));
            login::login(minter, &v, profile).await
        }
        Request::KeyList => {
            keys::list(minter, &visitor("security keys".into(), "list keys".into())).await
        }
        Request::KeyEnroll { name, pin, device } => {
            let v = visitor(format!("key {name}"), "add a backup key".into());
            keys::enroll(minter, &v, name, pin, device).await
        }
        Request::KeyTest { name } => {
            let v = visitor(format!("key {name}"), "test it".into());
            keys::test(minter, &v, name).await
        }
        Request::KeyRemove { name, yes } => {
            let v = visitor(format!("key {name}"), format!("remove the key {name}"));
            keys::remove(minter, &v, name, yes).await
        }
        request @ (Request::AwsEnroll { .. }
        | Request::AwsResync { .. }
        | Request::AwsUnenroll { .. }
        | Request::AwsDevices { .. }) => iam::handle(request, minter, progress).await,
        other => anyhow::bail!("{other:?} is not a vault request"),
    }
}
