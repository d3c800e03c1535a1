//! Every task of one forward (serve loops, connections, pod watches, SPDY
//! sessions) is spawned here, so that none outlives the forward: one
//! token stops them all, and the tracker says when the last has ended.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Debug, Clone, Default)]
pub(crate) struct Tasks {
    /// Cancelled when the forward stops. Connections watch it themselves, to
    /// close cleanly; other tasks are dropped where they stand.
    pub stop: CancellationToken,
    tracker: TaskTracker,
}

impl Tasks {
    /// Runs `task`, which must end soon after `stop` is cancelled.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.tracker.spawn(task);
    }

    /// Runs `task` until it ends or `stop` (this forward's token, or a child
    /// of it) is cancelled.
    pub(crate) fn spawn_until(
        &self,
        stop: CancellationToken,
        task: impl Future<Output = ()> + Send + 'static,
    ) {
        self.tracker.spawn(stop.run_until_cancelled_owned(task));
    }

    /// Stops every task and waits at most `grace` for them to end. `false`
    /// if some were still running then.
    pub(crate) async fn stop(&self, grace: Duration) -> bool {
        self.stop.cancel();
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
    }
}
