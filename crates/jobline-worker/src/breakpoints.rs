//! Named pause points for tests (meilisearch's breakpoint pattern, small): a test arms a name,
//! the handler that passes it stops there until the test releases it or the job is cancelled.
//! Unarmed names cost one map lookup, so handlers call them in production code too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

/// The set of armed pause points, shared by a runtime and the test that drives it.
#[derive(Debug, Clone, Default)]
pub struct Breakpoints {
    armed: Arc<Mutex<HashMap<String, Arc<Point>>>>,
}

#[derive(Debug)]
struct Point {
    /// Passes still to let through before the point stops one (`arm_nth`).
    skip: Mutex<usize>,
    reached: Notify,
    go: Semaphore,
}

/// A test's handle on one armed pause point.
#[derive(Debug)]
pub struct Breakpoint {
    point: Arc<Point>,
}

impl Breakpoints {
    /// Arms `name`: the next handler passing it waits there.
    pub fn arm(&self, name: &str) -> Breakpoint {
        self.arm_nth(name, 1)
    }

    /// Arms `name` for its `n`-th pass from now (1 = the next): the passes before go through,
    /// so a test can stop a bulk job right after its `n`-th committed batch.
    pub fn arm_nth(&self, name: &str, n: usize) -> Breakpoint {
        let point = Arc::new(Point {
            skip: Mutex::new(n.saturating_sub(1)),
            reached: Notify::new(),
            go: Semaphore::new(0),
        });
        self.armed.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_owned(), point.clone());
        Breakpoint { point }
    }

    /// Called by handlers. Waits if `name` is armed (once: passing disarms it) until the test
    /// releases it or `cancel` fires.
    pub(crate) async fn pass(&self, name: &str, cancel: &CancellationToken) {
        let point = {
            let mut armed = self.armed.lock().unwrap_or_else(|e| e.into_inner());
            let due = armed.get(name).is_some_and(|p| {
                let mut skip = p.skip.lock().unwrap_or_else(|e| e.into_inner());
                let due = *skip == 0;
                *skip = skip.saturating_sub(1);
                due
            });
            if due {
                armed.remove(name)
            } else {
                None
            }
        };
        if let Some(point) = point {
            point.reached.notify_one();
            tokio::select! {
                permit = point.go.acquire() => {
                    if let Ok(p) = permit {
                        p.forget();
                    }
                }
                () = cancel.cancelled() => {}
            }
        }
    }
}

impl Breakpoint {
    /// Waits until a handler stands at the point.
    pub async fn reached(&self) {
        self.point.reached.notified().await;
    }

    /// Lets the waiting handler go on.
    pub fn release(&self) {
        self.point.go.add_permits(1);
    }
}
