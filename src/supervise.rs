//! Supervision of `serve`'s long-lived tasks (SPEC §10): every ingest task (one per IMAP
//! mailbox, the Maildir), the outbox worker, the schedulers and the HTTP endpoint runs under
//! [`supervise`], which restarts a task that ended before shutdown — it panicked or gave up
//! with an error — after a backoff. [`Health`] says which tasks are alive: `/healthz`
//! answers 503 naming a dead task, and the systemd watchdog is not pinged while one is dead.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::error;

/// The first wait before a restart; it doubles up to [`MAX_RESTART_DELAY`].
pub const FIRST_RESTART_DELAY: Duration = Duration::from_secs(1);
pub const MAX_RESTART_DELAY: Duration = Duration::from_secs(60);

/// The state of one supervised task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    Running,
    /// Ended before shutdown; restarted after a backoff.
    Dead {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    state: TaskState,
    restarts: u64,
}

/// Which supervised tasks are alive; shared by the supervisors, `/healthz`, `/metrics` and
/// the watchdog.
#[derive(Debug, Clone, Default)]
pub struct Health {
    tasks: Arc<Mutex<BTreeMap<String, Entry>>>,
}

/// One task as `/metrics` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskStatus {
    pub name: String,
    pub alive: bool,
    pub restarts: u64,
}

impl Health {
    fn update(&self, name: &str, f: impl FnOnce(&mut Entry)) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        let entry = tasks.entry(name.to_string()).or_insert(Entry {
            state: TaskState::Running,
            restarts: 0,
        });
        f(entry);
    }

    /// `name` is running (again).
    pub fn running(&self, name: &str) {
        self.update(name, |e| e.state = TaskState::Running);
    }

    /// `name` ended before shutdown, for `reason`.
    pub fn dead(&self, name: &str, reason: &str) {
        self.update(name, |e| {
            e.state = TaskState::Dead {
                reason: reason.to_string(),
            };
            e.restarts += 1;
        });
    }

    /// The tasks that are not alive, with why, by name.
    pub fn dead_tasks(&self) -> Vec<(String, String)> {
        let tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks
            .iter()
            .filter_map(|(name, e)| match &e.state {
                TaskState::Dead { reason } => Some((name.clone(), reason.clone())),
                TaskState::Running => None,
            })
            .collect()
    }

    /// Every task, by name.
    pub fn tasks(&self) -> Vec<TaskStatus> {
        let tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks
            .iter()
            .map(|(name, e)| TaskStatus {
                name: name.clone(),
                alive: e.state == TaskState::Running,
                restarts: e.restarts,
            })
            .collect()
    }

    /// One line naming the dead tasks (`maildir: panicked: …; imap:INBOX: …`), or `None`.
    pub fn problem(&self) -> Option<String> {
        let dead = self.dead_tasks();
        (!dead.is_empty()).then(|| {
            dead.iter()
                .map(|(n, r)| format!("task {n} is not running ({r})"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

/// How long to wait before restart number `failures` (1, 2, …) of a task that keeps dying.
pub fn restart_delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_RESTART_DELAY
        .saturating_mul(1u32 << doublings)
        .min(MAX_RESTART_DELAY)
}

/// Why a task ended: its error, or its panic message.
fn ended(result: Result<Result<(), String>, tokio::task::JoinError>) -> String {
    match result {
        Ok(Ok(())) => "ended".into(),
        Ok(Err(e)) => format!("failed: {e}"),
        Err(e) if e.is_panic() => {
            let payload = e.into_panic();
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned());
            format!("panicked: {}", msg.unwrap_or_else(|| "(no message)".into()))
        }
        Err(e) => format!("cancelled: {e}"),
    }
}

/// Run the task `start` makes, as `name`, until `shutdown`: whenever it ends before
/// shutdown (returns, fails or panics) it is marked dead in `health`, and started again
/// after [`restart_delay`]; a task that ran longer than [`MAX_RESTART_DELAY`] before dying
/// starts over from the first delay.
pub async fn supervise<F, Fut>(
    name: String,
    health: Health,
    shutdown: CancellationToken,
    mut start: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let mut failures = 0u32;
    loop {
        health.running(&name);
        let started = Instant::now();
        let result = tokio::spawn(start()).await;
        if shutdown.is_cancelled() {
            return;
        }
        let reason = ended(result);
        failures = if started.elapsed() > MAX_RESTART_DELAY {
            1
        } else {
            failures.saturating_add(1)
        };
        let delay = restart_delay(failures);
        error!(task = %name, %reason, restart_in_ms = delay.as_millis() as u64, "task stopped; restarting it");
        health.dead(&name, &reason);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn restart_delays_double_up_to_a_minute() {
        let secs: Vec<u64> = (1..=9).map(|n| restart_delay(n).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(restart_delay(u32::MAX), MAX_RESTART_DELAY);
    }

    /// Poll `f` every 5 ms for up to 30 s.
    async fn until(what: &str, f: impl Fn() -> bool) {
        let start = Instant::now();
        while !f() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "timed out waiting until {what}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_panicking_task_is_reported_dead_and_restarted() {
        let (health, stop) = (Health::default(), CancellationToken::new());
        let runs = Arc::new(AtomicU32::new(0));
        let (counter, task_stop) = (runs.clone(), stop.clone());
        let sup = tokio::spawn(supervise(
            "t".into(),
            health.clone(),
            stop.clone(),
            move || {
                let (run, task_stop) = (counter.fetch_add(1, Ordering::SeqCst), task_stop.clone());
                async move {
                    match run {
                        0 => panic!("boom"),
                        1 => Err("no folder".to_string()),
                        _ => {
                            task_stop.cancelled().await;
                            Ok(())
                        }
                    }
                }
            },
        ));
        // Each death is visible for its restart delay (1 s, then 2 s).
        until("the panic is reported", || {
            health.dead_tasks() == vec![("t".to_string(), "panicked: boom".to_string())]
        })
        .await;
        assert_eq!(
            health.problem().unwrap(),
            "task t is not running (panicked: boom)"
        );
        until("the error is reported", || {
            health.dead_tasks() == vec![("t".to_string(), "failed: no folder".to_string())]
        })
        .await;
        until("the third run is alive", || {
            runs.load(Ordering::SeqCst) == 3 && health.problem().is_none()
        })
        .await;
        assert_eq!(
            health.tasks(),
            vec![TaskStatus {
                name: "t".into(),
                alive: true,
                restarts: 2
            }]
        );
        stop.cancel();
        sup.await.unwrap();
    }
}
