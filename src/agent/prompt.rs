//! How a request reaches the user while it runs: the prompts it sends to the waiting
//! client ("touch your security key", a PIN to type), and who asked, for the prompts to
//! name.

use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::mpsc::error::SendError;

use crate::aws::context::AwsContext;
use crate::protocol::AskKind;
use crate::secret::SecretString;

/// What a request needs the waiting client to show or ask.
pub enum Prompt {
    /// "waiting 12 s for a fresh MFA code", "touch your security key (main) to approve base".
    Tell(String),
    /// A question for the user (a PIN, a passphrase, a confirmation); the answer comes back
    /// on `reply` (`None`: the client cannot ask, it has no terminal).
    Ask {
        kind: AskKind,
        message: String,
        reply: tokio::sync::oneshot::Sender<Option<SecretString>>,
    },
}

/// The waiting client, for the request's prompts, and who it is (the program behind it),
/// for the prompts to name: "touch your security key (main) to approve prod for terraform
/// (pid 4242)".
#[derive(Clone)]
pub struct Progress {
    client: UnboundedSender<Prompt>,
    /// The client's AWS context: the profiles it sees and the way it reaches AWS.
    context: Arc<AwsContext>,
    asker: Option<Arc<str>>,
    /// The program alone ("terraform"): what `confirm = "each-program"` approves.
    program: Option<Arc<str>>,
}

impl Progress {
    #[must_use]
    pub fn new(client: UnboundedSender<Prompt>, context: Arc<AwsContext>) -> Self {
        Self {
            client,
            context,
            asker: None,
            program: None,
        }
    }

    /// Names the program that asked.
    #[must_use]
    pub fn asked_by(mut self, peer: &super::peer::Peer) -> Self {
        self.asker = Some(peer.to_string().into());
        self.program = Some(peer.program.as_str().into());
        self
    }

    /// The AWS context the request runs in.
    #[must_use]
    pub fn context(&self) -> &Arc<AwsContext> {
        &self.context
    }

    /// `profile` as prompts name it: with its context where that is not the default
    /// ("ops (AWS_CONFIG_FILE=/home/me/project/aws.config)").
    #[must_use]
    pub fn named(&self, profile: &str) -> String {
        match self.context.id().label() {
            Some(label) => format!("{profile} ({label})"),
            None => profile.to_owned(),
        }
    }

    /// The program that asked ("terraform"), or "unknown".
    #[must_use]
    pub fn program(&self) -> &str {
        self.program.as_deref().unwrap_or("unknown")
    }

    pub fn send(&self, prompt: Prompt) -> Result<(), SendError<Prompt>> {
        self.client.send(prompt)
    }

    /// Whether the client hung up.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// The program behind the client, as prompts name it ("terraform (pid 4242)").
    #[must_use]
    pub fn asker(&self) -> Option<&str> {
        self.asker.as_deref()
    }

    /// What a request for `profile` asks the user to approve, naming the program.
    #[must_use]
    pub fn approval_of(&self, profile: &str) -> String {
        let profile = self.named(profile);
        match &self.asker {
            Some(asker) => format!("approve {profile} for {asker}"),
            None => format!("approve {profile}"),
        }
    }
}
