//! The outbox worker (SPEC §7.1–§7.3): claim due items, send each through the transport,
//! record the outcome. Transient failures are retried with backoff until the item gives up
//! (`dead`); permanent ones are `failed` at once.
//!
//! [`send_due`] is one pass (for `casegate outbox send`); [`run`] is the daemon's task, one
//! `select!` loop on the shutdown token, a wake-up from the pipeline and a poll interval.

use super::backoff::{gives_up, next_delay_ms};
use super::transport::{Envelope, SendError, Transport};
use crate::compose::Composer;
use crate::config::{OutboundConfig, RetryConfig};
use crate::instance;
use crate::store::outbox::OutboxItem;
use crate::store::{now_ms, Store, StoreError};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Claims and their lease (SPEC §7.3): every claim names this process ([`instance::id`]);
/// while a pass sends, its claims are renewed every third of `outbound.claim_lease_secs`,
/// so a slow send keeps its item however long it takes and only a sender that stopped
/// (crashed, hung, cut off from the database) loses its items when the lease runs out. A
/// sender that is certainly gone — this process's own earlier worker run, or a dead process
/// on this machine — loses them at once ([`reclaim_gone_holders`]).
fn lease(cfg: &OutboundConfig) -> Duration {
    Duration::from_secs(cfg.claim_lease_secs.max(1))
}

/// How often [`run`] looks for due items without being woken (retries coming due).
pub const POLL_INTERVAL: Duration = Duration::from_secs(30);

/// Items claimed at once per send slot (`outbound.concurrency`), and at least: a claim is one
/// statement and one rendering pass, so a fan-out is not claimed one item at a time.
const CLAIMS_PER_SEND_SLOT: usize = 4;
const MIN_CLAIM: usize = 32;

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct SendSummary {
    pub sent: u64,
    pub retried: u64,
    pub failed: u64,
    pub dead: u64,
}

impl SendSummary {
    fn count(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Sent(_) => self.sent += 1,
            Outcome::Retry { .. } => self.retried += 1,
            Outcome::Failed(_) => self.failed += 1,
            Outcome::Dead(_) => self.dead += 1,
        }
    }
}

/// What becomes of an item after one attempt; the text is the reply or error recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent(String),
    Retry { reply: String, next_attempt_at: i64 },
    Failed(String),
    Dead(String),
}

/// Decide the outcome of one attempt (pure). `attempts` counts earlier attempts.
pub fn outcome(
    result: Result<String, SendError>,
    item: &OutboxItem,
    now_ms: i64,
    retry: &RetryConfig,
    jitter: f64,
) -> Outcome {
    match result {
        Ok(reply) => Outcome::Sent(reply),
        Err(SendError::Permanent(reply)) => Outcome::Failed(reply),
        Err(SendError::Transient(reply)) if gives_up(item.created_at, now_ms, retry) => {
            Outcome::Dead(reply)
        }
        Err(SendError::Transient(reply)) => {
            let attempts = u32::try_from(item.attempts.saturating_add(1)).unwrap_or(u32::MAX);
            let delay = next_delay_ms(attempts, retry, jitter);
            Outcome::Retry {
                reply,
                next_attempt_at: now_ms.saturating_add(delay),
            }
        }
    }
}

/// Claim and send everything due now, up to `cfg.concurrency` at once, until nothing is
/// due; return the counts.
pub async fn send_due(
    store: &Store,
    composer: &Arc<Composer>,
    transport: &Transport,
    cfg: &OutboundConfig,
) -> anyhow::Result<SendSummary> {
    send_pass(store, composer, transport, cfg, &CancellationToken::new()).await
}

/// One pass that stops claiming once `stop` is cancelled, but always finishes the sends
/// already under way (items claimed and rendered count as under way). The first store error is returned after the in-flight sends end.
async fn send_pass(
    store: &Store,
    composer: &Arc<Composer>,
    transport: &Transport,
    cfg: &OutboundConfig,
    stop: &CancellationToken,
) -> anyhow::Result<SendSummary> {
    let (holder, lease) = (instance::id(), lease(cfg));
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    if let Err(e) = reclaim_gone_holders(store, holder).await {
        tracing::warn!(error = %e, "cannot check for claims of gone senders");
    }
    let _renewal = renew_while_sending(store.clone(), holder, lease);
    let limit = cfg.concurrency.max(1);
    let mut summary = SendSummary::default();
    let mut first_error: Option<anyhow::Error> = None;
    let mut tasks: JoinSet<Result<Outcome, StoreError>> = JoinSet::new();
    // Claimed and rendered, not yet handed to a send task: claims are made a batch at a
    // time (one statement, one rendering pass over both cores), sends `limit` at a time.
    let mut queue: VecDeque<OutboxItem> = VecDeque::new();
    let batch = i64::try_from(limit.saturating_mul(CLAIMS_PER_SEND_SLOT).max(MIN_CLAIM)).unwrap_or(i64::MAX);
    loop {
        if tasks.len() >= limit {
            collect(tasks.join_next().await, &mut summary, &mut first_error);
            continue;
        }
        let Some(item) = queue.pop_front() else {
            if stop.is_cancelled() || first_error.is_some() {
                break;
            }
            match claim_and_render(store, composer, batch, lease_ms, holder).await {
                Ok(items) if items.is_empty() => break,
                Ok(items) => queue.extend(items),
                Err(e) => first_error = Some(e.into()),
            }
            continue;
        };
        let (store, transport, retry) = (store.clone(), transport.clone(), cfg.retry.clone());
        let span = tracing::info_span!("send", outbox_id = item.id, message_id = %item.message_id);
        tasks.spawn(send_one(store, transport, item, retry).instrument(span));
    }
    while let Some(joined) = tasks.join_next().await {
        collect(Some(joined), &mut summary, &mut first_error);
    }
    match first_error {
        Some(e) => Err(e.context(format!("outbox pass stopped after {summary:?}"))),
        None => Ok(summary),
    }
}

/// Claim up to `batch` due items and render those that need it.
async fn claim_and_render(
    store: &Store,
    composer: &Arc<Composer>,
    batch: i64,
    lease_ms: i64,
    holder: &str,
) -> Result<Vec<OutboxItem>, StoreError> {
    let claimed = store.claim_due_outbox(now_ms(), batch, lease_ms, holder).await?;
    if claimed.is_empty() {
        return Ok(claimed);
    }
    super::render::render_claimed(store, composer, claimed).await
}

/// Put back the claims of senders that are certainly gone (a dead process on this
/// machine: [`instance::holder_is_dead`]); how many items.
pub(crate) async fn reclaim_gone_holders(store: &Store, me: &str) -> Result<u64, StoreError> {
    let mut total = 0;
    for holder in store.outbox_claim_holders().await? {
        if instance::holder_is_dead(&holder, me, instance::process_alive) {
            let n = store.reclaim_outbox(&holder, now_ms()).await?;
            tracing::warn!(%holder, items = n, "the process that claimed these items is gone; sending them again");
            total += n;
        }
    }
    Ok(total)
}

/// Renews `holder`'s claims every third of `lease` until dropped (the end of a pass).
struct Renewal(tokio::task::JoinHandle<()>);

impl Drop for Renewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn renew_while_sending(store: Store, holder: &'static str, lease: Duration) -> Renewal {
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    Renewal(tokio::spawn(async move {
        loop {
            tokio::time::sleep(lease / 3).await;
            if let Err(e) = store.renew_outbox_claims(holder, now_ms(), lease_ms).await {
                tracing::warn!(error = %e, "cannot renew the outbox claims; retrying");
            }
        }
    }))
}

type Joined = Result<Result<Outcome, StoreError>, tokio::task::JoinError>;

fn collect(
    joined: Option<Joined>,
    summary: &mut SendSummary,
    first_error: &mut Option<anyhow::Error>,
) {
    let err: anyhow::Error = match joined {
        None => return,
        Some(Ok(Ok(outcome))) => {
            summary.count(&outcome);
            return;
        }
        Some(Ok(Err(e))) => e.into(),
        Some(Err(e)) => e.into(),
    };
    tracing::error!(error = %err, "recording an outbox outcome failed");
    first_error.get_or_insert(err);
}

/// Send one claimed item and record what happened.
async fn send_one(
    store: Store,
    transport: Transport,
    item: OutboxItem,
    retry: RetryConfig,
) -> Result<Outcome, StoreError> {
    let envelope = Envelope {
        from: item.envelope_from.clone(),
        to: item.rcpt.clone(),
    };
    let sent = std::time::Instant::now();
    let result = transport.send(&envelope, &item.bytes).await;
    let now = now_ms();
    let outcome = outcome(result, &item, now, &retry, rand::random::<f64>());
    match &outcome {
        Outcome::Sent(reply) => {
            tracing::info!(rcpt = %item.rcpt, %reply, "sent");
            store.mark_outbox_sent(item.id, reply, now).await?;
        }
        Outcome::Retry {
            reply,
            next_attempt_at,
        } => {
            tracing::warn!(rcpt = %item.rcpt, %reply, next_attempt_at, "send failed, will retry");
            store
                .mark_outbox_retry(item.id, reply, *next_attempt_at, now)
                .await?;
        }
        Outcome::Failed(reply) => {
            tracing::warn!(rcpt = %item.rcpt, %reply, "send failed permanently");
            store.mark_outbox_failed(item.id, reply, now).await?;
        }
        Outcome::Dead(reply) => {
            tracing::error!(rcpt = %item.rcpt, %reply, "giving up on delivery");
            store.mark_outbox_dead(item.id, reply, now).await?;
        }
    }
    crate::stages::Stage::Send.add(sent.elapsed());
    Ok(outcome)
}

/// The daemon's outbox task. Sends whatever is due when woken by `wake` (the pipeline calls
/// `notify_one` after committing outbox items, so a wake-up during a pass is not lost) or
/// every [`POLL_INTERVAL`]. On `shutdown` it claims nothing more, lets the sends under way
/// finish, closes pooled connections and returns.
pub async fn run(
    store: Store,
    composer: Arc<Composer>,
    transport: Transport,
    cfg: OutboundConfig,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    // Nothing of this process is being sent yet: claims it holds are left by an earlier run
    // of this task (restarted after a panic), and can be sent again at once.
    match store.reclaim_outbox(instance::id(), now_ms()).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            items = n,
            "sending again the items an earlier run of the outbox worker claimed"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "cannot take back this process's earlier claims; they expire by themselves")
        }
    }
    let mut poll = tokio::time::interval(POLL_INTERVAL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = wake.notified() => {}
            _ = poll.tick() => {}
        }
        match send_pass(&store, &composer, &transport, &cfg, &shutdown).await {
            Ok(s) if s == SendSummary::default() => {}
            Ok(s) => tracing::info!(
                sent = s.sent,
                retried = s.retried,
                failed = s.failed,
                dead = s.dead,
                "outbox pass"
            ),
            Err(e) => tracing::error!(error = %format!("{e:#}"), "outbox pass failed"),
        }
    }
    transport.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TransportKind;

    fn retry() -> RetryConfig {
        RetryConfig {
            initial_secs: 60,
            max_secs: 21_600,
            give_up_secs: 432_000,
        }
    }

    fn item(attempts: i64, created_at: i64) -> OutboxItem {
        OutboxItem {
            id: 1,
            kind: "notification".into(),
            rcpt: "a@x.example".into(),
            envelope_from: "b@gw.example".into(),
            message_id: "<m@gw>".into(),
            bytes: b"x".to_vec(),
            attempts,
            created_at,
            thread_id: None,
            post_id: None,
            report_id: None,
            contact_id: None,
            content: "full".into(),
            payload: None,
        }
    }

    /// A composer for items that carry their bytes already (nothing is rendered).
    fn composer() -> Arc<Composer> {
        use crate::mail::AddressBook;
        let book = AddressBook { domain: "gw.example".into(), local_part: "cases".into(), intake: vec![], case_prefix: "VU#".into() };
        Arc::new(Composer {
            gateway: crate::render::Gateway { name: "GW".into(), book },
            secret: vec![7; 32],
            max_attachment_bytes: 1 << 20,
            pgp: Arc::new(crate::pgp::PgpState::new(None)),
        })
    }

    #[test]
    fn transient_failures_back_off() {
        let t = || Err(SendError::Transient("451 later".into()));
        let first = outcome(t(), &item(0, 0), 1000, &retry(), 0.0);
        assert_eq!(
            first,
            Outcome::Retry {
                reply: "451 later".into(),
                next_attempt_at: 61_000
            }
        );
        let third = outcome(t(), &item(2, 0), 1000, &retry(), 0.0);
        assert_eq!(
            third,
            Outcome::Retry {
                reply: "451 later".into(),
                next_attempt_at: 241_000
            }
        );
    }

    #[test]
    fn transient_failure_after_five_days_is_dead() {
        let now = 432_000_000;
        let r = outcome(
            Err(SendError::Transient("421".into())),
            &item(30, 0),
            now,
            &retry(),
            0.5,
        );
        assert_eq!(r, Outcome::Dead("421".into()));
    }

    #[test]
    fn permanent_failure_fails_at_once_and_success_is_sent() {
        let r = outcome(
            Err(SendError::Permanent("550 no".into())),
            &item(0, 0),
            1,
            &retry(),
            0.0,
        );
        assert_eq!(r, Outcome::Failed("550 no".into()));
        assert_eq!(
            outcome(Ok("250 ok".into()), &item(9, 0), 1, &retry(), 0.0),
            Outcome::Sent("250 ok".into())
        );
    }

    fn file_cfg(dir: &std::path::Path) -> OutboundConfig {
        OutboundConfig {
            transport: TransportKind::File,
            max_attachment_bytes: 1 << 20,
            file_dir: Some(dir.to_path_buf()),
            smtp: None,
            sendmail_path: "/usr/sbin/sendmail".into(),
            retry: retry(),
            concurrency: 3,
            claim_lease_secs: 60,
        }
    }

    async fn insert(store: &Store, n: usize) {
        for i in 0..n {
            let bytes = format!("Message-ID: <{i}@gw>\r\n\r\nbody {i}\r\n").into_bytes();
            store.queue_rendered(&format!("r{i}@x.example"), "b@gw.example", &format!("<{i}@gw>"), &bytes).await.unwrap();
        }
    }

    #[tokio::test]
    async fn run_sends_on_wake_and_stops_on_shutdown() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}", tmp.path().join("t.db").display()))
            .await
            .unwrap();
        let out = tmp.path().join("out");
        let cfg = file_cfg(&out);
        let transport = Transport::from_config(&cfg).unwrap();
        let (wake, shutdown) = (Arc::new(Notify::new()), CancellationToken::new());
        let task = tokio::spawn(run(
            store.clone(),
            composer(),
            transport,
            cfg,
            wake.clone(),
            shutdown.clone(),
        ));
        // Let the first (immediate) poll tick pass, so that only the wake-up can explain a
        // delivery within the next 10 s (the next tick is 30 s away).
        tokio::time::sleep(Duration::from_millis(300)).await;
        insert(&store, 7).await;
        wake.notify_one();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while store.outbox_depth().await.unwrap() > 0 {
            assert!(std::time::Instant::now() < deadline, "outbox not drained");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 7);
    }

    /// A holder id of this machine and boot whose process has exited.
    fn gone_holder() -> String {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let me: Vec<&str> = instance::id().split('/').collect();
        format!("{}/{}/{pid}/00000000000000ff", me[0], me[1])
    }

    #[tokio::test]
    async fn claims_of_a_gone_process_and_of_an_earlier_run_are_sent_at_once() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}", tmp.path().join("t.db").display()))
            .await
            .unwrap();
        let cfg = file_cfg(&tmp.path().join("out"));
        let transport = Transport::from_config(&cfg).unwrap();
        insert(&store, 4).await;
        // Two items claimed for an hour by a process that is gone, two by this process
        // (an earlier run of the worker task).
        assert_eq!(
            store
                .claim_due_outbox(now_ms(), 2, 3_600_000, &gone_holder())
                .await
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            store
                .claim_due_outbox(now_ms(), 2, 3_600_000, instance::id())
                .await
                .unwrap()
                .len(),
            2
        );
        let s = send_due(&store, &composer(), &transport, &cfg).await.unwrap();
        assert_eq!(s.sent, 2, "the gone process's items, at once");
        let (wake, shutdown) = (Arc::new(Notify::new()), CancellationToken::new());
        let task = tokio::spawn(run(store.clone(), composer(), transport, cfg, wake, shutdown.clone()));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while store.outbox_depth().await.unwrap() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "this process's earlier claims are not taken back"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        shutdown.cancel();
        task.await.unwrap();
        let reclaimed: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM history WHERE kind = 'send-reclaimed'")
                .fetch_one(&store.pool)
                .await
                .unwrap();
        assert_eq!(reclaimed, 4);
    }

    #[tokio::test]
    async fn send_due_drains_more_than_one_batch() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}", tmp.path().join("t.db").display()))
            .await
            .unwrap();
        let cfg = file_cfg(&tmp.path().join("out"));
        let transport = Transport::from_config(&cfg).unwrap();
        insert(&store, 10).await;
        let s = send_due(&store, &composer(), &transport, &cfg).await.unwrap();
        assert_eq!(
            s,
            SendSummary {
                sent: 10,
                ..Default::default()
            }
        );
        assert_eq!(
            send_due(&store, &composer(), &transport, &cfg).await.unwrap(),
            SendSummary::default()
        );
    }
}
