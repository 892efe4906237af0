//! The scheduler (SPEC §8, §5.4, §7.2, §7.5): all periodic work of `serve` on one clock.
//! [`run_due`] does what is due at a given instant, each job once per due item even across
//! restarts (a row in `schedule_runs`, written in the transaction that queues the job's
//! messages); `serve` calls it every [`TICK`], `casegate schedule run --now TIME` once.
//!
//! | job | due | item |
//! |---|---|---|
//! | key-expiry warnings (SPEC §5.4) | hourly | the hour |
//! | digests (SPEC §8) | daily at `digest.hour_utc` | the date |
//! | reminders to silent vendors (SPEC §8) | `coordination.reminder_days` after the initial contact | case, organization, day |
//! | notices of outbox items given up (SPEC §7.2) | at once | the outbox item |
//! | notices of bouncing contacts (SPEC §7.5) | at once | the contact and since when |
//! | the coordinators' daily summary (SPEC §8) | daily at `coordination.summary_hour_utc` | the date |

use crate::compose::Composer;
use crate::config::Config;
use crate::coordination::plan_item;
use crate::delivery::{Payload, Planned};
use crate::model::*;
use crate::store::schedule::{JobRun, Silent};
use crate::store::world::WorldQuery;
use crate::store::{now_ms, Store, StoreError};
use crate::view::{CaseFacts, Item};
use crate::workflow::{self, CoordinatorNote, Daily};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How often `serve` runs what is due. Notices of items given up and of bouncing contacts
/// go out within this time.
pub const TICK: Duration = Duration::from_secs(30);

/// Job names, as recorded in `schedule_runs` and the history.
pub const KEY_CHECK: &str = "key-check";
pub const DIGEST: &str = "digest";
pub const REMINDER: &str = "reminder";
pub const DEAD_NOTICE: &str = "dead-notice";
pub const BOUNCING_NOTICE: &str = "bouncing-notice";
pub const COORDINATOR_SUMMARY: &str = "coordinator-summary";

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunSummary {
    pub key_warnings: u64,
    pub digests: crate::digest::DigestSummary,
    /// Messages queued per job.
    pub reminders: u64,
    pub dead_notices: u64,
    pub bouncing_notices: u64,
    pub coordinator_summaries: u64,
}

impl RunSummary {
    /// Whether anything was queued for the outbox.
    pub fn queued(&self) -> bool {
        self.digests.messages
            + self.reminders
            + self.dead_notices
            + self.bouncing_notices
            + self.coordinator_summaries
            > 0
    }
}

/// Everything due at `now`.
pub async fn run_due(
    store: &Store,
    composer: &Composer,
    cfg: &Config,
    now: i64,
) -> Result<RunSummary, StoreError> {
    let mut s = RunSummary::default();
    store.refresh_keyring(&composer.pgp).await?;
    // Each warning and each digested post is given once by itself: the work is done, then
    // the run recorded.
    let hour = workflow::hour_key(now);
    if !store.has_run(KEY_CHECK, &hour).await? {
        s.key_warnings = store.warn_expiring_keys(&composer.pgp, now).await?.len() as u64;
        once(store, KEY_CHECK, &hour, now).await?;
    }
    let day = workflow::daily_key(now, cfg.digest.hour_utc);
    if daily_due(store, DIGEST, &day, now).await? {
        s.digests = crate::digest::send_digests(store, composer).await?;
        once(store, DIGEST, &day, now).await?;
    }
    s.reminders = reminders(store, composer, &cfg.coordination.reminder_days, now).await?;
    s.dead_notices = dead_notices(store, composer, now).await?;
    s.bouncing_notices = bouncing_notices(store, composer, now).await?;
    s.coordinator_summaries =
        coordinator_summary(store, composer, cfg.coordination.summary_hour_utc, now).await?;
    Ok(s)
}

/// Whether a daily job is due for the day `key`: not run for it yet. A job that never ran
/// starts with the day of its first run, recorded as done: a new gateway does not send
/// the summary of a day that passed before it started.
async fn daily_due(store: &Store, job: &str, key: &str, now: i64) -> Result<bool, StoreError> {
    if store.has_run(job, key).await? {
        return Ok(false);
    }
    if !store.ever_ran(job).await? {
        once(store, job, key, now).await?;
        return Ok(false);
    }
    Ok(true)
}

/// Records a job without messages for `item`; `true` when it had not run for it.
async fn once(store: &Store, job: &str, item: &str, now: i64) -> Result<bool, StoreError> {
    let planned = Planned::default();
    store
        .record_run(&JobRun {
            job,
            items: vec![item.to_string()],
            case: None,
            thread: None,
            planned: &planned,
            now,
        })
        .await
}

/// SPEC §8: a reminder to every vendor organization notified `reminder_days` ago that has
/// neither replied nor given a status, in its private thread.
async fn reminders(
    store: &Store,
    composer: &Composer,
    days: &[u32],
    now: i64,
) -> Result<u64, StoreError> {
    let mut queued = 0;
    for v in store.silent_vendors().await? {
        let Some(day) = workflow::reminder_due(v.notified_at, days, now) else {
            continue;
        };
        if store.has_run(REMINDER, &reminder_key(&v, day)).await? {
            continue;
        }
        queued += remind(store, composer, &v, days, day, now).await?;
    }
    Ok(queued)
}

fn reminder_key(v: &Silent, day: u32) -> String {
    format!("case {}/org {}/day {day}", v.case, v.org)
}

async fn remind(
    store: &Store,
    composer: &Composer,
    v: &Silent,
    days: &[u32],
    day: u32,
    now: i64,
) -> Result<u64, StoreError> {
    let world = store
        .world(&WorldQuery {
            case_ids: vec![v.case],
            ..Default::default()
        })
        .await?;
    let (Some(case), record) = (world.case(v.case), store.case_record(v.case).await?) else {
        return Ok(0);
    };
    let Some(private) = case.private_thread_of(v.org) else {
        return Ok(0);
    };
    let facts = CaseFacts {
        case,
        public_date_ms: record.public_at,
        statuses: &record.statuses,
    };
    let item = Item::Reminder {
        facts,
        org: v.org,
        day,
    };
    let payload = Payload::Reminder { org: v.org, day };
    let planned = plan_item(
        composer,
        &world,
        &item,
        OutboxKind::Reminder,
        world.contacts.iter().filter(|c| c.org == Some(v.org)),
        &payload,
    );
    // The earlier days are done too: a scheduler that was down sends only the latest.
    let items = days
        .iter()
        .filter(|d| **d <= day)
        .map(|d| reminder_key(v, *d))
        .collect();
    let run = JobRun {
        job: REMINDER,
        items,
        case: Some(case.id),
        thread: Some(private),
        planned: &planned,
        now,
    };
    Ok(if store.record_run(&run).await? {
        planned.deliveries.len() as u64
    } else {
        0
    })
}

/// The coordinators, for a note to them.
async fn coordinators_world(store: &Store) -> Result<World, StoreError> {
    store.world(&WorldQuery::default()).await
}

/// A note to every coordinator, recorded as run for `items`.
async fn tell_coordinators(
    store: &Store,
    composer: &Composer,
    job: &str,
    items: Vec<String>,
    note: CoordinatorNote,
    now: i64,
) -> Result<u64, StoreError> {
    let world = coordinators_world(store).await?;
    let kind = match &note {
        CoordinatorNote::Daily(_) => OutboxKind::CoordinatorSummary,
        CoordinatorNote::Dead { .. } => OutboxKind::DeadNotice,
        CoordinatorNote::Bouncing { .. } => OutboxKind::BouncingNotice,
    };
    let payload = Payload::Coordinators(note);
    let Payload::Coordinators(note) = &payload else {
        return Ok(0);
    };
    let planned = plan_item(
        composer,
        &world,
        &Item::Coordinators(note),
        kind,
        world.coordinators(),
        &payload,
    );
    let run = JobRun {
        job,
        items,
        case: None,
        thread: None,
        planned: &planned,
        now,
    };
    Ok(if store.record_run(&run).await? {
        planned.deliveries.len() as u64
    } else {
        0
    })
}

/// SPEC §7.2: the coordinators are told at once of outbox items given up (but for their
/// own notes, which could not reach them anyway).
async fn dead_notices(store: &Store, composer: &Composer, now: i64) -> Result<u64, StoreError> {
    let own = [
        OutboxKind::CoordinatorSummary,
        OutboxKind::DeadNotice,
        OutboxKind::BouncingNotice,
    ];
    let fresh: Vec<_> = store
        .dead_items_without(DEAD_NOTICE)
        .await?
        .into_iter()
        .filter(|d| !own.iter().any(|k| k.as_str() == d.kind))
        .collect();
    if fresh.is_empty() {
        return Ok(0);
    }
    let items = fresh.iter().map(|d| d.id.to_string()).collect();
    tell_coordinators(
        store,
        composer,
        DEAD_NOTICE,
        items,
        CoordinatorNote::Dead { items: fresh },
        now,
    )
    .await
}

/// SPEC §7.5: the coordinators are told once of each contact marked bouncing.
async fn bouncing_notices(store: &Store, composer: &Composer, now: i64) -> Result<u64, StoreError> {
    let mut fresh = Vec::new();
    for b in store.bouncing_contacts().await? {
        if !store
            .has_run(BOUNCING_NOTICE, &format!("{} since {}", b.email, b.since))
            .await?
        {
            fresh.push(b);
        }
    }
    if fresh.is_empty() {
        return Ok(0);
    }
    let items = fresh
        .iter()
        .map(|b| format!("{} since {}", b.email, b.since))
        .collect();
    tell_coordinators(
        store,
        composer,
        BOUNCING_NOTICE,
        items,
        CoordinatorNote::Bouncing { contacts: fresh },
        now,
    )
    .await
}

/// SPEC §8: the coordinators' daily summary; nothing is sent on a day with nothing in it.
async fn coordinator_summary(
    store: &Store,
    composer: &Composer,
    hour_utc: u32,
    now: i64,
) -> Result<u64, StoreError> {
    let date = workflow::daily_key(now, hour_utc);
    if !daily_due(store, COORDINATOR_SUMMARY, &date, now).await? {
        return Ok(0);
    }
    let (due, past) = workflow::by_public_date(store.dated_open_cases().await?, now);
    let keys = composer.pgp.keyring();
    let expiring = keys
        .expiring(
            now,
            crate::store::keys::EXPIRY_WARNING_DAYS * workflow::DAY_MS,
        )
        .into_iter()
        .map(|e| workflow::KeyLine {
            contact: e.email,
            fingerprint: e.fingerprint,
            expires_at: e.expires_at_ms,
        })
        .collect();
    let daily = Daily {
        date: date.clone(),
        due,
        past,
        without_status: store.vendors_without_status().await?,
        quarantine: store.held_over_a_day(now).await?,
        dead: store.dead_items().await?,
        bouncing: store.bouncing_contacts().await?,
        expiring,
    };
    if daily.is_empty() {
        once(store, COORDINATOR_SUMMARY, &date, now).await?;
        return Ok(0);
    }
    tell_coordinators(
        store,
        composer,
        COORDINATOR_SUMMARY,
        vec![date],
        CoordinatorNote::Daily(daily),
        now,
    )
    .await
}

/// `serve`'s scheduler task: what is due at start and then every [`TICK`]; the outbox
/// worker is woken when something was queued.
pub async fn run(
    store: Store,
    composer: Arc<Composer>,
    cfg: Arc<Config>,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    loop {
        match run_due(&store, &composer, &cfg, now_ms()).await {
            Ok(s) => {
                if s.key_warnings > 0 {
                    tracing::info!(warnings = s.key_warnings, "key expiry warnings given");
                }
                if s.queued() {
                    tracing::info!(summary = ?s, "scheduled work queued");
                    wake.notify_one();
                }
            }
            Err(e) => tracing::warn!(error = %e, "scheduled work failed; trying again"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(TICK) => {}
        }
    }
}
