//! Fetch stage: `UID FETCH <set> (UID BODY.PEEK[])` in batches (RFC 3501 §6.4.5: PEEK leaves
//! `\Seen` alone, so no flag changes before the commit). Each message is handed to the
//! pipeline as it arrives — a few at a time, see [`CONCURRENT_MAILS`] — and the committed
//! ones of a batch are acknowledged together, then the checkpoint moves.

use super::ack::{self, Strategy, Target};
use super::checkpoint::{committed_through, search, MailboxState};
use super::connect::Session;
use super::names::uid_set;
use super::{timed, Committed, ImapError, Source};
use crate::config::ImapMailbox;
use crate::ingest::durable;
use crate::model::Reason;
use crate::pipeline::Outcome;
use crate::store::now_ms;
use crate::mail::scan::{self, OrderingKeys};
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// Mails of one batch in the pipeline at the same time, at most.
const CONCURRENT_MAILS: usize = 4;

/// Attempts after the first when the pipeline reports a transient error (20 ms doubling:
/// about 1.3 s in all) before the batch gives up and the session is retried later.
const TRANSIENT_RETRIES: u32 = 6;

/// What a pass works with besides the session and the mailbox state.
#[derive(Debug, Clone, Copy)]
pub struct Pass<'a> {
    pub source: &'a Source,
    pub mailbox: &'a ImapMailbox,
    pub strategy: Strategy,
    pub token: &'a CancellationToken,
}

/// Passes until the mailbox holds nothing more to take (mail that arrived meanwhile
/// included), or `token` is cancelled. `failures` (of the session's reconnection backoff)
/// is reset whenever mail is committed.
pub async fn drain(
    pass: Pass<'_>,
    session: &mut Session,
    state: &mut MailboxState,
    full: bool,
    failures: &mut u32,
) -> Result<(), ImapError> {
    let Pass { source, token, .. } = pass;
    let mut full = full;
    let mut before: Vec<u32> = Vec::new();
    loop {
        let uids = search(source, session, &state.checkpoint, full).await?;
        if uids.is_empty() || token.is_cancelled() {
            return Ok(());
        }
        if uids == before {
            // The last pass committed nothing and the same mail is still there.
            return Err(ImapError::Server(format!(
                "UID SEARCH keeps listing {} but FETCH returns nothing",
                uid_set(&uids)
            )));
        }
        debug!(count = uids.len(), full, "mail to fetch");
        let mut committed = 0;
        for batch in uids.chunks(source.cfg.batch_size.max(1) as usize) {
            if token.is_cancelled() {
                return Ok(());
            }
            let n = fetch_batch(pass, session, state, batch).await?;
            if n > 0 {
                // Progress: the next failure starts the backoff afresh.
                *failures = 0;
            }
            committed += n;
        }
        before = if committed == 0 { uids } else { Vec::new() };
        full = false;
    }
}

/// What one batch did.
#[derive(Debug, Default)]
struct BatchResult {
    /// UIDs of the batch the server returned with a body.
    returned: Vec<u32>,
    /// Committed, with where each goes.
    committed: Vec<(u32, Target)>,
    failure: Option<ImapError>,
}

/// Fetch, ingest, acknowledge and checkpoint one batch of UIDs (ascending); the number of
/// messages committed.
async fn fetch_batch(
    pass: Pass<'_>,
    session: &mut Session,
    state: &mut MailboxState,
    batch: &[u32],
) -> Result<usize, ImapError> {
    let Pass {
        source,
        mailbox,
        strategy,
        ..
    } = pass;
    let r = fetch_and_ingest(pass, session, state, batch).await?;
    if !r.committed.is_empty() {
        source.wake.notify_one();
        // SPEC §3 stage 8: the batch's commits are durable before the server hears of them.
        durable::barrier(&source.pipeline.store).await?;
    }
    ack::acknowledge(source, session, mailbox, strategy, &r.committed).await?;
    let done: Vec<u32> = r.committed.iter().map(|(uid, _)| *uid).collect();
    for uid in &done {
        durable::acknowledged(
            "imap",
            &format!("{}/{}/{uid}", mailbox.name, state.uidvalidity),
        );
    }
    if let Some(through) = committed_through(batch, &r.returned, &done) {
        let store = &source.pipeline.store;
        store
            .imap_advance_checkpoint(
                &source.account,
                &mailbox.name,
                state.uidvalidity,
                through,
                now_ms(),
            )
            .await?;
        state.checkpoint.last_uid = state.checkpoint.last_uid.max(through);
    }
    match r.failure {
        Some(e) => Err(e),
        None => Ok(done.len()),
    }
}

/// Read the batch's FETCH responses and ingest the messages as they arrive, up to
/// [`CONCURRENT_MAILS`] at a time: while one waits for the database another is parsed.
/// Mails that share an ordering key (a reply and what it answers, one sender's mails, see
/// [`scan::ordering_keys`]) are processed in arrival order. After a failure (or a cancelled
/// token) the remaining responses are read and left unprocessed.
async fn fetch_and_ingest(
    pass: Pass<'_>,
    session: &mut Session,
    state: &MailboxState,
    batch: &[u32],
) -> Result<BatchResult, ImapError> {
    let Pass {
        source,
        mailbox,
        token,
        ..
    } = pass;
    let t = source.step_timeout();
    let uidvalidity = state.uidvalidity;
    let mut r = BatchResult::default();
    let mut bodiless: Vec<u32> = Vec::new();
    let mut running = FuturesUnordered::new();
    let mut keys: Vec<(u32, OrderingKeys)> = Vec::new();
    let mut stream = timed(
        t,
        "UID FETCH",
        session.uid_fetch(uid_set(batch), "(UID BODY.PEEK[])"),
    )
    .await?;
    loop {
        let next = tokio::select! {
            Some(done) = running.next() => {
                r.finished(done, &mut keys);
                continue;
            }
            next = tokio::time::timeout(t, stream.next()), if running.len() < CONCURRENT_MAILS => next,
        };
        let next = next.map_err(|_| ImapError::Timeout {
            what: "UID FETCH",
            secs: t.as_secs(),
        })?;
        let Some(item) = next else { break };
        let fetched = item.map_err(|source| ImapError::Imap {
            what: "UID FETCH",
            source,
        })?;
        // RFC 3501 §7.4.2: unsolicited FETCH responses (flag changes of other mail) may come
        // in between; only the batch's UIDs count.
        let Some(uid) = fetched.uid.filter(|u| batch.contains(u)) else {
            continue;
        };
        let Some(raw) = fetched.body() else {
            bodiless.push(uid);
            continue;
        };
        r.returned.push(uid);
        if r.failure.is_some() || token.is_cancelled() {
            continue;
        }
        let mine = scan::ordering_keys(raw);
        while keys.iter().any(|(_, k)| k.conflicts(&mine)) {
            let Some(done) = running.next().await else { break };
            r.finished(done, &mut keys);
        }
        if r.failure.is_some() {
            continue;
        }
        keys.push((uid, mine));
        let raw = raw.to_vec();
        running.push(async move { (uid, ingest_one(source, mailbox, uidvalidity, uid, &raw).await) });
    }
    while let Some(done) = running.next().await {
        r.finished(done, &mut keys);
    }
    r.no_body(bodiless);
    Ok(r)
}

impl BatchResult {
    fn finished(&mut self, (uid, result): (u32, Result<Target, ImapError>), keys: &mut Vec<(u32, OrderingKeys)>) {
        keys.retain(|(u, _)| *u != uid);
        match result {
            Ok(target) => self.committed.push((uid, target)),
            Err(e) => {
                self.failure.get_or_insert(e);
            }
        }
    }

    /// A message listed without its body is still there but could not be read: keep the
    /// checkpoint below it and try again later.
    fn no_body(&mut self, mut bodiless: Vec<u32>) {
        bodiless.retain(|u| !self.returned.contains(u));
        if let Some(uid) = bodiless.first() {
            let e = ImapError::Server(format!("UID FETCH {uid}: the server returned no body"));
            self.failure.get_or_insert(e);
            self.returned.extend(&bodiless);
        }
    }
}

/// Stages 1–8 for one message; where it goes once committed.
async fn ingest_one(
    source: &Source,
    mailbox: &ImapMailbox,
    uidvalidity: u32,
    uid: u32,
    raw: &[u8],
) -> Result<Target, ImapError> {
    let source_ref = format!("{}/{uidvalidity}/{uid}", mailbox.name);
    #[cfg(debug_assertions)]
    crate::fault::source_task(raw);
    let mut attempt = 0;
    let started = Instant::now();
    let outcome = loop {
        match source.pipeline.ingest(raw, "imap", &source_ref).await {
            Ok(o) => break o,
            // A busy database clears in moments: try again with the bytes in hand.
            Err(e) if e.is_transient() && attempt < TRANSIENT_RETRIES => {
                debug!(%source_ref, error = %e, attempt, "transient; retrying");
                tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
                attempt += 1;
            }
            Err(e) => {
                warn!(%source_ref, error = %e, transient = e.is_transient(), "not ingested; left on the server");
                return Err(ImapError::Ingest {
                    source_ref,
                    source: e,
                });
            }
        }
    };
    let at = Instant::now();
    durable::committed("imap", &source_ref);
    let target = target_of(source, &outcome).await?;
    if let Some(observer) = &source.observer {
        let ingest_time = at.duration_since(started);
        let _ = observer.send(Committed {
            mailbox: mailbox.name.clone(),
            uid,
            outcome,
            at,
            ingest_time,
        });
    }
    Ok(target)
}

/// Quarantined mail goes to the Quarantine folder; a re-fetched message already processed
/// (a crash before its acknowledgement) goes where its first decision sent it.
async fn target_of(source: &Source, outcome: &Outcome) -> Result<Target, ImapError> {
    if outcome.decision == "quarantine" {
        return Ok(Target::Quarantine);
    }
    if outcome.reason == Reason::Duplicate.code() {
        let first = source
            .pipeline
            .store
            .inbound_row(outcome.inbound_id)
            .await?;
        if first.action.as_deref() == Some("quarantine") {
            return Ok(Target::Quarantine);
        }
    }
    Ok(Target::Processed)
}
