//! The SPDY session of each pod, shared by every local connection to it, as
//! kubectl shares one: a new connection then costs one round trip for its
//! stream pair instead of a TLS handshake, an upgrade and the API server
//! dialling the kubelet. A session is opened by the first connection to its
//! pod and replaced when it ends or stops taking streams; a pod that is
//! replaced gets a session of its own, so connections follow the pod.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use super::pods::PodSet;
use super::spdy::Session;
use super::stream::OpenError;

/// At most one session per pod, keyed by pod UID.
#[derive(Default)]
pub(crate) struct Sessions {
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Session>>>>>,
}

impl Sessions {
    /// The pod's open session, or one `start` opens (concurrent callers for
    /// the same pod wait for it rather than open their own). `stale` is a
    /// session that just failed a caller: it is retired and not returned.
    /// Also says whether the session was already open. Slots of pods that
    /// are gone are dropped on the way.
    pub(crate) async fn get<F, Fut>(
        &self,
        uid: &str,
        pods: &PodSet,
        stale: Option<&Session>,
        start: F,
    ) -> Result<(Session, bool), OpenError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Session, OpenError>>,
    {
        if let Some(stale) = stale {
            stale.retire();
        }
        let slot = {
            let mut slots = self.slots.lock().expect("session map lock");
            slots.retain(|uid, _| pods.still_exists(uid));
            slots.entry(uid.to_owned()).or_default().clone()
        };
        let mut slot = slot.lock().await;
        if let Some(session) = slot.as_ref().filter(|session| session.is_open()) {
            return Ok((session.clone(), true));
        }
        *slot = None;
        let session = start().await?;
        *slot = Some(session.clone());
        Ok((session, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn session() -> Session {
        let (ours, _theirs) = tokio::io::duplex(1024);
        // The task is not run: these tests only look at the handles.
        let (session, _task) = Session::start(ours, Duration::from_secs(3600), async {
            std::future::pending().await
        });
        session
    }

    /// A pod's open session is shared; a retired one is replaced, once.
    #[tokio::test]
    async fn an_open_session_is_shared_and_a_stale_one_replaced() {
        let sessions = Sessions::default();
        let mut pods = PodSet::default();
        pods.existing.extend(["uid".to_owned(), "other".to_owned()]);
        let first = session();
        let given = first.clone();
        let (got, shared) = sessions
            .get("uid", &pods, None, || async { Ok(given) })
            .await
            .unwrap();
        assert!(got.same(&first) && !shared);
        let (got, shared) = sessions
            .get("uid", &pods, None, || async { panic!("not needed") })
            .await
            .unwrap();
        assert!(got.same(&first) && shared);
        let second = session();
        let given = second.clone();
        let (got, shared) = sessions
            .get("uid", &pods, Some(&first), || async { Ok(given) })
            .await
            .unwrap();
        assert!(got.same(&second) && !shared);
        assert!(!first.is_open());
        let err = sessions
            .get("other", &pods, None, || async {
                Err(OpenError("refused".to_owned()))
            })
            .await
            .err()
            .unwrap();
        assert_eq!(err.to_string(), "refused");
    }
}
