//! SPDY connections upgraded ahead of the next local connection to a pod.
//! A new connection then costs one round trip for its stream pair, as with
//! kubectl's shared connection, instead of a TLS resumption, an upgrade and
//! the API server dialling the kubelet (5-7 ms of a new connection on the
//! test bed). A standby names no port, so the pod sees nothing until it is
//! used.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::pods::PodSet;
use super::spdy;
use super::stream::Upgrade;
use super::tasks::Tasks;
use crate::cluster::within;

/// Older standbys are dropped rather than used: well inside any streaming
/// idle timeout (5 minutes on CIS-hardened nodes), and short enough that
/// short-lived exec credentials used for the upgrade are still current.
const MAX_AGE: Duration = Duration::from_secs(20);

/// At most one standby per pod, keyed by pod UID.
#[derive(Default)]
pub(crate) struct Standbys {
    slots: Mutex<HashMap<String, Slot>>,
}

#[derive(Default)]
struct Slot {
    ready: Option<(Upgrade, Instant)>,
    opening: bool,
}

impl Standbys {
    /// A fresh standby for the pod, if one is ready. Standbys of pods that
    /// are gone are dropped on the way.
    pub(crate) fn take(&self, uid: &str, pods: &PodSet) -> Option<Upgrade> {
        let mut slots = self.slots.lock().expect("standby lock");
        slots.retain(|uid, _| pods.still_exists(uid));
        let (io, opened) = slots.get_mut(uid)?.ready.take()?;
        (opened.elapsed() < MAX_AGE).then_some(io)
    }

    /// Upgrades the next standby for the pod in the background (a task of
    /// the forward, dropped when it stops), unless one is ready or on its
    /// way. A failure is left to the next connection, which opens its own.
    pub(crate) fn refill(
        self: &Arc<Self>,
        tasks: &Tasks,
        client: &kube::Client,
        namespace: &str,
        pod: &str,
        uid: &str,
        limit: Duration,
    ) {
        {
            let mut slots = self.slots.lock().expect("standby lock");
            let slot = slots.entry(uid.to_owned()).or_default();
            if slot.opening || slot.ready.is_some() {
                return;
            }
            slot.opening = true;
        }
        let (standbys, client) = (self.clone(), client.clone());
        let (namespace, pod, uid) = (namespace.to_owned(), pod.to_owned(), uid.to_owned());
        tasks.spawn_until(tasks.stop.clone(), async move {
            let upgrading = spdy::upgrade(&client, &namespace, &pod);
            let upgraded = within(limit, upgrading).await.and_then(Result::ok);
            let mut slots = standbys.slots.lock().expect("standby lock");
            if let Some(slot) = slots.get_mut(&uid) {
                slot.opening = false;
                slot.ready = upgraded.map(|io| (io, Instant::now()));
            }
        });
    }
}
