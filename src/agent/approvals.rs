//! Which programs the user approved for each session under `confirm = "each-program"`
//! (the policy, and the asking, are in `actions/credentials.rs`). Approvals last for the
//! session's life: a new session starts with none.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use crate::aws::context::ContextId;
use crate::protocol::SessionCredentials;

/// Per profile (in its caller's context): the session (by access key id) and the programs
/// approved for it.
#[derive(Default)]
pub struct Approvals(Mutex<HashMap<ProfileInContext, (String, HashSet<String>)>>);

/// A profile name in a caller's context.
type ProfileInContext = (ContextId, String);

impl Approvals {
    /// Whether `program` was approved for `session` of `profile`.
    #[must_use]
    pub fn allow(
        &self,
        context: &ContextId,
        profile: &str,
        session: &SessionCredentials,
        program: &str,
    ) -> bool {
        self.0
            .lock()
            .expect("approvals lock poisoned")
            .get(&(context.clone(), profile.to_owned()))
            .is_some_and(|(key, programs)| {
                *key == session.access_key_id && programs.contains(program)
            })
    }

    /// Moves the programs approved for `profile`'s session to `renewed`, its forced refresh:
    /// a refresh replaces the session, not the user's approvals.
    pub fn renew(&self, context: &ContextId, profile: &str, renewed: &SessionCredentials) {
        if let Some(entry) = self
            .0
            .lock()
            .expect("approvals lock poisoned")
            .get_mut(&(context.clone(), profile.to_owned()))
        {
            entry.0.clone_from(&renewed.access_key_id);
        }
    }

    /// Approves `program` for `session` of `profile` (forgetting approvals of an older one).
    pub fn grant(
        &self,
        context: &ContextId,
        profile: &str,
        session: &SessionCredentials,
        program: &str,
    ) {
        let mut approvals = self.0.lock().expect("approvals lock poisoned");
        let entry = approvals
            .entry((context.clone(), profile.to_owned()))
            .or_insert_with(|| (session.access_key_id.clone(), HashSet::new()));
        if entry.0 != session.access_key_id {
            *entry = (session.access_key_id.clone(), HashSet::new());
        }
        entry.1.insert(program.to_owned());
    }
}
