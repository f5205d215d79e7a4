//! Session credentials held in memory, one slot per key, with single-flight minting: when
//! many callers want the same missing session at once, one mints and the rest wait for it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::MintError;
use crate::aws::context::ContextId;
use crate::protocol::{SessionCredentials, SessionName, SessionSummary, mask};

/// A session's place in the cache: the caller's context and which session.
pub(super) type SessionKey = (ContextId, SessionName);

#[derive(Default)]
pub struct SessionCache {
    slots: Mutex<HashMap<SessionKey, Arc<tokio::sync::Mutex<Slot>>>>,
}

#[derive(Default)]
struct Slot {
    session: Option<Arc<SessionCredentials>>,
    minted_at: Option<Instant>,
    /// The last failure, shared with callers that were already waiting when it happened,
    /// so a failing STS sees one call, not one per waiting caller.
    failure: Option<(Instant, MintError)>,
}

impl SessionCache {
    /// Returns the cached session for `key` if it has more than `margin_secs` left (and,
    /// with `force`, was minted after this call began); otherwise runs `mint` once for all
    /// concurrent callers of the same key.
    pub async fn get_or_mint<F, Fut>(
        &self,
        key: &SessionKey,
        margin_secs: u64,
        force: bool,
        mint: F,
    ) -> Result<Arc<SessionCredentials>, MintError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<SessionCredentials, MintError>>,
    {
        let arrived = Instant::now();
        let slot = self.slot(key);
        let mut slot = slot.lock().await;
        if let Some((at, err)) = &slot.failure
            && *at >= arrived
        {
            return Err(err.clone());
        }
        if let (Some(session), Some(minted_at)) = (&slot.session, slot.minted_at) {
            let fresh_enough = !force || minted_at >= arrived;
            if fresh_enough
                && seconds_left(session) > i64::try_from(margin_secs).unwrap_or(i64::MAX)
            {
                return Ok(session.clone());
            }
        }
        match mint().await {
            Ok(session) => {
                let session = Arc::new(session);
                slot.session = Some(session.clone());
                slot.minted_at = Some(Instant::now());
                slot.failure = None;
                Ok(session)
            }
            Err(err) => {
                slot.failure = Some((Instant::now(), err.clone()));
                Err(err)
            }
        }
    }

    /// The cached session for `key` if it is fresh, without waiting for a mint in flight:
    /// the fast path of a cache hit.
    pub fn fresh(&self, key: &SessionKey, margin_secs: u64) -> Option<Arc<SessionCredentials>> {
        let slot = self
            .slots
            .lock()
            .expect("cache lock poisoned")
            .get(key)?
            .clone();
        let slot = slot.try_lock().ok()?;
        let session = slot.session.as_ref()?;
        (seconds_left(session) > i64::try_from(margin_secs).unwrap_or(i64::MAX))
            .then(|| session.clone())
    }

    fn slot(&self, key: &SessionKey) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut slots = self.slots.lock().expect("cache lock poisoned");
        slots.entry(key.clone()).or_default().clone()
    }

    /// Drops every session; returns how many there were, counted as [`Self::summaries`]
    /// lists them. A mint in flight finishes into a slot that is no longer reachable.
    pub fn clear(&self) -> usize {
        let held = self.summaries().len();
        self.slots.lock().expect("cache lock poisoned").clear();
        held
    }

    /// Callers inside [`Self::get_or_mint`]: the ones minting and the ones waiting for their
    /// mint. Each holds a handle on its slot, as the map does.
    pub fn waiting(&self) -> usize {
        let slots = self.slots.lock().expect("cache lock poisoned");
        slots.values().map(|slot| Arc::strong_count(slot) - 1).sum()
    }

    /// The cached sessions, without their secrets (busy slots are skipped), each once: a
    /// source profile's own session and the MFA session of its roles are one session (one
    /// GetSessionToken), listed as the profile's.
    pub fn summaries(&self) -> Vec<SessionSummary> {
        let slots = self.slots.lock().expect("cache lock poisoned");
        let mut out: Vec<SessionSummary> = slots
            .iter()
            .filter_map(|((context, name), slot)| {
                let slot = slot.try_lock().ok()?;
                let session = slot.session.as_ref()?;
                Some(SessionSummary {
                    name: name.clone(),
                    context: context.label().map(str::to_owned),
                    access_key: mask(&session.access_key_id),
                    expiration: session.expiration,
                })
            })
            .collect();
        // A profile sorts before an MFA session: the profile's name is kept.
        out.sort_by(|a, b| a.name.cmp(&b.name));
        let mut seen = std::collections::HashSet::new();
        out.retain(|s| seen.insert((s.access_key.clone(), s.expiration)));
        out.sort_by(|a, b| (&a.context, &a.name).cmp(&(&b.context, &b.name)));
        out
    }
}

fn seconds_left(session: &SessionCredentials) -> i64 {
    session.expiration - crate::clock::unix_now_i64()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::secret::SecretString;

    fn key(profile: &str) -> SessionKey {
        (
            ContextId::default(),
            SessionName::Profile(profile.to_owned()),
        )
    }

    fn session(expires_in: i64) -> SessionCredentials {
        let now = crate::clock::unix_now_i64();
        SessionCredentials {
            access_key_id: "ASIATEST".into(),
            secret_access_key: SecretString::new("s".into()),
            session_token: SecretString::new("t".into()),
            expiration: now + expires_in,
            region: None,
        }
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_mint() {
        let cache = Arc::new(SessionCache::default());
        let mints = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let (cache, mints) = (cache.clone(), mints.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_mint(&key("p"), 60, false, || async {
                            mints.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                            Ok(session(3600))
                        })
                        .await
                })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap().is_ok());
        }
        assert_eq!(mints.load(Ordering::SeqCst), 1);
        assert_eq!(cache.summaries().len(), 1);
        assert_eq!(cache.clear(), 1);
        assert!(cache.summaries().is_empty());
    }

    #[tokio::test]
    async fn sessions_inside_the_margin_are_minted_again_and_failures_are_not_cached() {
        let cache = SessionCache::default();
        cache
            .get_or_mint(&key("p"), 900, false, || async { Ok(session(600)) })
            .await
            .unwrap();
        let again = cache
            .get_or_mint(&key("p"), 900, false, || async { Ok(session(3600)) })
            .await
            .unwrap();
        assert!(
            seconds_left(&again) > 900,
            "the near-expiry session was replaced"
        );

        let failed = cache
            .get_or_mint(&key("q"), 0, false, || async {
                Err(MintError::PinentryTask {
                    detail: "boom".into(),
                })
            })
            .await;
        assert!(failed.is_err());
        let later = cache
            .get_or_mint(&key("q"), 0, false, || async { Ok(session(3600)) })
            .await;
        assert!(
            later.is_ok(),
            "a caller arriving after a failure tries again"
        );
    }

    #[tokio::test]
    async fn force_refresh_mints_even_when_fresh() {
        let cache = SessionCache::default();
        let first = cache
            .get_or_mint(&key("p"), 0, false, || async { Ok(session(3600)) })
            .await
            .unwrap();
        let mut fresh = session(7200);
        fresh.access_key_id = "ASIANEW".into();
        assert!(cache.fresh(&key("p"), 0).is_some());
        assert!(
            cache.fresh(&key("p"), 7200).is_none(),
            "inside the margin is not fresh"
        );
        assert!(cache.fresh(&key("other"), 0).is_none());
        let forced = cache
            .get_or_mint(&key("p"), 0, true, || async move { Ok(fresh) })
            .await
            .unwrap();
        assert_ne!(first.access_key_id, forced.access_key_id);
    }
}
