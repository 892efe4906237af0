//! The inbound pipeline (SPEC §3): store the raw bytes, gather evidence, decide, apply in
//! one transaction. Every source (Maildir, stdin, IMAP) calls [`Pipeline::ingest`] and
//! acknowledges its mail only after it returns `Ok`.

use crate::stages::Stage;
use std::time::Instant;
use crate::compose::{thread_name, Composer};
use crate::config::Config;
use crate::mail::machine;
use crate::mail::tokens::{self, GatewayAddress, SubjectToken};
use crate::mail::{self, AddressBook, Inbound};
use crate::model::*;
use crate::pgp;
use crate::replykey;
use crate::route::{self, Evidence, Policy, ReplyKeyEvidence, ThreadingVia};
use crate::instance;
use crate::store::inbound::{Attempt, Stored};
use crate::store::posts::{self, AckPlan, NewPost, NewReport, PostResult, ReportResult};
use crate::{audience, delivery, intake};
use crate::store::world::WorldQuery;
use crate::store::{self, Store, StoreError};
use crate::view::{Arrival, Author, PostItem};
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use tracing::{info, warn};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the same mail is being processed by another delivery; offer it again later")]
    Busy,
}

impl PipelineError {
    /// Whether the source should offer the mail again later (MTA exit 75, IMAP no ack).
    pub fn is_transient(&self) -> bool {
        match self {
            PipelineError::Store(e) => e.is_transient(),
            PipelineError::Busy => true,
        }
    }
}

/// Everything known about one mail after stage 7: for applying, and for `route explain`.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub inbound: Option<Inbound>,
    pub evidence: Evidence,
    pub world: World,
    pub decision: Decision,
}

/// What happened to one mail.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub inbound_id: i64,
    pub message_id: Option<String>,
    pub decision: String,
    pub reason: String,
    pub reason_detail: String,
    pub thread: Option<String>,
    pub case: Option<String>,
    pub report: Option<String>,
    /// Sender assurance, for posts and new reports.
    pub assurance: Option<Assurance>,
    pub post_id: Option<i64>,
    pub quarantine_id: Option<i64>,
    /// Addresses a message was queued for.
    pub recipients: Vec<String>,
}

/// The inbound pipeline, shared by every source.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub store: Store,
    pub composer: Arc<Composer>,
    policy: Policy,
    trusted_authserv_ids: Vec<String>,
    max_size: u64,
    limits: mail::Limits,
    ack_interval_ms: i64,
    ack_policy: crate::config::AckPolicy,
    ack_max_per_hour: i64,
    info_interval_ms: i64,
}

/// How many attempts to process one stored mail may end without a decision (a panic, or
/// the process dying on it) before the mail is held as `processing-error` without being
/// parsed again.
pub const MAX_ATTEMPTS: i64 = 3;

/// How long one attempt holds a stored mail against concurrent offers of the same bytes,
/// unless its process is seen dead sooner.
const ATTEMPT_HOLD_MS: i64 = 2 * 60 * 1000;

/// How long a concurrent offer waits for the attempt in progress to decide.
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl Pipeline {
    pub fn new(store: Store, cfg: &Config) -> Pipeline {
        Pipeline {
            store,
            composer: Arc::new(Composer::from_config(cfg)),
            policy: Policy { min_assurance: cfg.posting.min_assurance },
            trusted_authserv_ids: cfg.posting.trusted_authserv_ids.clone(),
            max_size: cfg.inbound.max_message_bytes,
            limits: cfg.inbound.limits,
            ack_interval_ms: (cfg.intake.ack_interval_secs as i64).saturating_mul(1000),
            ack_policy: cfg.intake.acknowledge,
            ack_max_per_hour: i64::try_from(cfg.intake.ack_max_per_hour).unwrap_or(i64::MAX),
            info_interval_ms: i64::try_from(cfg.coordination.info_interval_secs).unwrap_or(i64::MAX / 1000).saturating_mul(1000),
        }
    }

    /// `inbound.max_message_bytes`: larger mail is stored in chunks and held as oversize.
    pub fn max_message_bytes(&self) -> u64 {
        self.max_size
    }

    fn book(&self) -> &AddressBook {
        self.composer.book()
    }

    /// Parse the mail unless it is over the size limit (then `None`: it is held as oversize).
    fn parse_within_limit(&self, raw: &[u8]) -> Option<Result<Inbound, mail::parse::ParseError>> {
        #[cfg(debug_assertions)]
        crate::fault::inject(raw);
        (raw.len() as u64 <= self.max_size).then(|| mail::parse::parse_with(raw, &self.limits))
    }

    /// Stages 1–8 for one mail. `Ok` means stored and decided: the source may acknowledge.
    ///
    /// The raw bytes are stored first (stage 1), with only a cheap header scan before.
    /// Everything after runs isolated: a panic ends the attempt, is recorded, and after
    /// [`MAX_ATTEMPTS`] the mail is quarantined as `processing-error`; it never ends ingest.
    #[tracing::instrument(skip_all, fields(source, source_ref, message_id, decision))]
    pub async fn ingest(&self, raw: &[u8], source: &str, source_ref: &str) -> Result<Outcome, PipelineError> {
        let message_id = mail::scan::message_id(raw);
        tracing::Span::current().record("message_id", message_id.as_deref().unwrap_or(""));
        let holder = instance::holder_id(rand::random());
        let _active = instance::Active::register(&holder);
        let ended = |h: &str| instance::work_ended(h, &holder);
        let now = store::now_ms();
        let attempt = Attempt { holder: &holder, now, until: now + ATTEMPT_HOLD_MS, holder_is_dead: &ended };
        let (id, mut failures) = match self.store.store_raw(raw, message_id.as_deref(), source, source_ref, &attempt).await? {
            Stored::Done(id) => return self.already_done(id).await,
            Stored::Busy(id) => return self.await_other_attempt(id).await,
            stored => (stored.id(), stored.failures()),
        };
        loop {
            if failures >= MAX_ATTEMPTS {
                return self.hold_poison(id, raw).await;
            }
            match AssertUnwindSafe(self.process(id, raw, message_id.as_deref())).catch_unwind().await {
                Ok(Err(e)) if e.is_transient() => {
                    if let Err(f) = self.store.release_attempt(id, &holder).await {
                        warn!(error = %f, "could not release the mail; its hold expires by itself");
                    }
                    return Err(e);
                }
                Ok(result) => return result,
                Err(panic) => {
                    let error = panic_message(panic.as_ref());
                    warn!(%error, failures, "processing panicked");
                    let now = store::now_ms();
                    let next = Attempt { now, until: now + ATTEMPT_HOLD_MS, ..attempt };
                    match self.store.retry_attempt(id, &error, &next).await? {
                        Some(f) => failures = f,
                        None => return self.already_done(id).await,
                    }
                }
            }
        }
    }

    /// Stages 1 and 8 for a mail over the size limit, read from `head` then `rest`: stored
    /// in chunks as it is read (never whole in memory) and held as `oversize`.
    pub async fn ingest_oversize(&self, head: &[u8], rest: &mut (dyn std::io::Read + Send), source: &str, source_ref: &str) -> Result<Outcome, PipelineError> {
        let message_id = mail::scan::message_id(head);
        let holder = instance::holder_id(rand::random());
        let dead = |h: &str| instance::holder_is_dead(h, &holder, instance::process_alive);
        let now = store::now_ms();
        let attempt = Attempt { holder: &holder, now, until: now + ATTEMPT_HOLD_MS, holder_is_dead: &dead };
        let (stored, size) = self.store.store_chunked(head, rest, message_id.as_deref(), (source, source_ref), &attempt).await?;
        if let Stored::Done(id) = stored {
            return self.already_done(id).await;
        }
        let evidence = Evidence::empty(size, self.max_size);
        let decision = route::decide(&evidence, &World::default(), &self.policy);
        let analysis = Analysis { inbound: None, evidence, world: World::default(), decision };
        self.apply(stored.id(), head, message_id.as_deref(), &analysis).await
    }

    /// Another live attempt is processing the same bytes: wait for its decision and answer
    /// as for a re-delivery, or ask the source to offer the mail again later.
    async fn await_other_attempt(&self, id: i64) -> Result<Outcome, PipelineError> {
        let deadline = tokio::time::Instant::now() + BUSY_WAIT;
        while tokio::time::Instant::now() < deadline {
            if self.store.is_processed(id).await? {
                return self.already_done(id).await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Err(PipelineError::Busy)
    }

    /// Stages 2–8 for a stored mail.
    async fn process(&self, id: i64, raw: &[u8], message_id: Option<&str>) -> Result<Outcome, PipelineError> {
        let analysis = match self.analyze(raw, id).await {
            Ok(a) => a,
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => self.failed_analysis(raw, e.to_string()),
        };
        tracing::Span::current().record("decision", analysis.decision.reason.code());
        let outcome = match self.apply(id, raw, message_id, &analysis).await {
            Ok(o) => o,
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => {
                warn!(error = %e, "apply failed; quarantining");
                self.apply(id, raw, message_id, &self.failed_analysis(raw, e.to_string())).await?
            }
        };
        info!(decision = %outcome.decision, reason = %outcome.reason_detail, thread = ?outcome.thread, "ingested");
        Ok(outcome)
    }

    /// A mail whose processing failed [`MAX_ATTEMPTS`] times: held with the last failure
    /// seen, without parsing it again.
    async fn hold_poison(&self, id: i64, raw: &[u8]) -> Result<Outcome, PipelineError> {
        let error = self.store.last_error(id).await?.unwrap_or_else(|| "the process ended while processing this mail".into());
        let error = format!("{error} (gave up after {MAX_ATTEMPTS} attempts)");
        warn!(%error, "holding a mail that cannot be processed");
        let message_id = mail::scan::message_id(raw);
        self.apply(id, raw, message_id.as_deref(), &self.failed_analysis(raw, error)).await
    }

    /// A processing error that is not transient: the mail goes to quarantine with it.
    fn failed_analysis(&self, raw: &[u8], error: String) -> Analysis {
        let reason = Reason::ProcessingError { error };
        Analysis {
            inbound: None,
            evidence: Evidence::empty(raw.len() as u64, self.max_size),
            world: World::default(),
            decision: Decision::quarantine(reason, None),
        }
    }

    /// The same bytes came again after they were processed: record, change nothing.
    async fn already_done(&self, id: i64) -> Result<Outcome, PipelineError> {
        let row = self.store.inbound_row(id).await?;
        let mut conn = self.store.pool.acquire().await.map_err(StoreError::from)?;
        store::history::record(&mut conn, "duplicate-delivery", None, row.thread_id, Some(id), "same bytes again").await?;
        Ok(Outcome {
            inbound_id: id,
            message_id: row.message_id,
            decision: Action::Ignore.code().into(),
            reason: Reason::Duplicate.code().into(),
            reason_detail: format!("same bytes as inbound message {id}, already {}", row.reason.unwrap_or_default()),
            thread: None,
            case: None,
            report: None,
            assurance: None,
            post_id: None,
            quarantine_id: None,
            recipients: vec![],
        })
    }

    /// Dry run: everything up to the decision, no writes (`route explain`).
    pub async fn explain(&self, raw: &[u8]) -> Result<Analysis, PipelineError> {
        self.analyze(raw, -1).await
    }

    /// Stages 2–7: gather the evidence and decide.
    async fn analyze(&self, raw: &[u8], id: i64) -> Result<Analysis, PipelineError> {
        let mut ev = Evidence::empty(raw.len() as u64, self.max_size);
        let inbound = match cpu(|| Stage::Parse.time(|| self.parse_within_limit(raw))) {
            None => None,
            Some(Err(e)) => {
                ev.parse_error = Some(e.to_string());
                None
            }
            Some(Ok(i)) if i.from.is_none() => {
                ev.parse_error = Some("no From address".into());
                Some(i)
            }
            Some(Ok(i)) => Some(i),
        };
        let mut world = World::default();
        let mut inbound = inbound;
        let mut routing = std::time::Duration::ZERO;
        if let (Some(inb), None) = (inbound.as_mut(), &ev.parse_error) {
            // A damaged mail is held as it is: nothing is decrypted for it.
            if inb.damaged.is_empty() {
                let opened = Instant::now();
                let guard = self.guard(raw, inb, id).await?;
                self.open_protection(raw, inb, id, &guard, &mut ev).await?;
                Stage::Open.add(opened.elapsed());
            }
            let routed = Instant::now();
            ev.damaged = inb.damaged.clone();
            self.gather(inb, raw, id, &mut ev).await?;
            world = self.store.world(&world_query(&ev)).await?;
            routing = routed.elapsed();
        }
        let decided = Instant::now();
        let decision = route::decide(&ev, &world, &self.policy);
        Stage::Route.add(routing + decided.elapsed());
        Ok(Analysis { inbound, evidence: ev, world, decision })
    }

    /// Stage 4 (SPEC §5): open the OpenPGP protection. The opened mail (decrypted content,
    /// protected Subject and threading) replaces the parsed one for every later stage.
    async fn open_protection(&self, raw: &[u8], inb: &mut Inbound, id: i64, guard: &pgp::open::Guard, ev: &mut Evidence) -> Result<(), PipelineError> {
        let state = &self.composer.pgp;
        self.store.refresh_keyring(state).await?;
        let keyring = state.keyring();
        let from = inb.from.as_ref().map(mail::Mailbox::key);
        let ctx = pgp::open::OpenCtx { gateway: state.gateway.as_deref(), keyring: &keyring, from: from.as_deref(), now_ms: store::now_ms() };
        let opened = cpu(|| pgp::open::open_guarded(raw, &ctx, guard));
        if opened.protection.is_empty() {
            return Ok(());
        }
        *inb = pgp::open::routing_inbound(inb, &opened);
        if let Some(sha) = &opened.protection.ciphertext_sha256 {
            ev.ciphertext_seen = self.store.seen_ciphertext(sha, id).await?;
        }
        tracing::debug!(protection = %opened.protection.summary(), "opened");
        ev.protection = Some(opened.protection);
        Ok(())
    }

    /// SPEC §5.2, before anything is decrypted: every ciphertext of the mail (wherever it
    /// sits) is looked up, and those seen before from another sender or in another thread
    /// than the one the outer mail names are refused. Decompression is capped at the size
    /// limit of a mail.
    async fn guard(&self, raw: &[u8], inb: &Inbound, id: i64) -> Result<pgp::open::Guard, PipelineError> {
        let mut guard = pgp::open::Guard { max_plaintext_bytes: usize::try_from(self.max_size).unwrap_or(usize::MAX), ..Default::default() };
        let mut seen = Vec::new();
        for sha in cpu(|| pgp::open::ciphertext_hashes(raw)) {
            let records = self.store.seen_ciphertext(&sha, id).await?;
            if !records.is_empty() {
                seen.push((sha, records));
            }
        }
        if seen.is_empty() {
            return Ok(guard);
        }
        let mut outer = Evidence::empty(raw.len() as u64, self.max_size);
        self.gather(inb, raw, id, &mut outer).await?;
        let world = self.store.world(&world_query(&outer)).await?;
        let thread = route::resolve_target(&outer, &world).ok().flatten().map(|s| s.thread);
        let from = inb.from.as_ref().map(mail::Mailbox::key).unwrap_or_default();
        guard.refused_ciphertexts = seen.into_iter().filter(|(_, r)| route::replay_refused(r, &from, thread)).map(|(sha, _)| sha).collect();
        Ok(guard)
    }

    /// Fill the evidence from the parsed mail and the database.
    async fn gather(&self, inb: &Inbound, raw: &[u8], id: i64, ev: &mut Evidence) -> Result<(), PipelineError> {
        ev.from = inb.from.as_ref().map(mail::Mailbox::key);
        ev.direct_recipients = inb.direct_recipients();
        ev.duplicate = self.store.is_duplicate(mail::scan::message_id(raw).as_deref(), raw, id).await?;
        ev.machine = machine::classify(inb, self.book());
        ev.dmarc = mail::auth_results::dmarc_result(inb, &self.trusted_authserv_ids);
        for addr in inb.recipient_addresses() {
            self.address_signal(&addr, ev);
        }
        ev.threading = self.threading(inb).await?;
        ev.subject_tokens = tokens::subject_tokens(&inb.subject, self.book());
        // SPEC §8: a status block counts only at the top of the text as written.
        ev.status = crate::status::parse(&inb.text);
        ev.attachments = inb.attachments.len();
        Ok(())
    }

    fn address_signal(&self, addr: &str, ev: &mut Evidence) {
        let secret = &self.composer.secret;
        match tokens::classify_address(addr, self.book()) {
            Some(GatewayAddress::Intake) => ev.to_intake = true,
            Some(GatewayAddress::Case { public_id }) => push_unique(&mut ev.case_addresses, public_id),
            Some(GatewayAddress::CasePrivate { public_id }) => push_unique(&mut ev.private_addresses, public_id),
            Some(GatewayAddress::CaseInfo { public_id }) => push_unique(&mut ev.info_addresses, public_id),
            Some(GatewayAddress::Reply { key }) => {
                let k = match replykey::parse_reply_key(secret, &key) {
                    Ok((thread, contact)) => ReplyKeyEvidence::Valid { thread, contact },
                    Err(_) => ReplyKeyEvidence::Invalid,
                };
                if !ev.reply_keys.contains(&k) {
                    ev.reply_keys.push(k);
                }
            }
            Some(GatewayAddress::Bounce { key }) => ev.bounce_outbox = replykey::parse_bounce_key(secret, &key).ok(),
            Some(GatewayAddress::Bare) | Some(GatewayAddress::UnknownTag { .. }) | None => {}
        }
    }

    /// In-Reply-To first; else the newest References entry that belongs to a thread.
    async fn threading(&self, inb: &Inbound) -> Result<Option<(ThreadId, ThreadingVia)>, PipelineError> {
        let ids: Vec<&str> = inb.in_reply_to.iter().chain(&inb.references).map(String::as_str).collect();
        let known = self.store.threads_of_message_ids(&ids).await?;
        let thread = |m: &String| known.iter().find(|(k, _)| k == m).map(|(_, t)| *t);
        if let Some(t) = inb.in_reply_to.iter().find_map(thread) {
            return Ok(Some((t, ThreadingVia::InReplyTo)));
        }
        Ok(inb.references.iter().rev().find_map(thread).map(|t| (t, ThreadingVia::References)))
    }

    /// Stage 8: one transaction, then the source may be acknowledged. The transaction
    /// first takes the stored mail from `received` to `processed` (another process that got
    /// there first means: nothing to do), then decides duplicates (SPEC §3 stage 2) where no
    /// concurrent delivery can slip between the check and the write.
    async fn apply(&self, id: i64, raw: &[u8], message_id: Option<&str>, a: &Analysis) -> Result<Outcome, PipelineError> {
        let plan = Stage::Decide.time_async(self.plan(a)).await?;
        let stored = Instant::now();
        let mut tx = self.store.begin_write().await?;
        if !store::inbound::claim(&mut tx, id).await? {
            drop(tx);
            return self.already_done(id).await;
        }
        let sha = store::inbound::sha256_hex(raw);
        let duplicate;
        let a = if a.decision.reason != Reason::Duplicate && store::inbound::duplicate_of(&mut tx, message_id, &sha, id).await?.is_some() {
            duplicate = self.as_duplicate(a);
            &duplicate
        } else {
            a
        };
        let d = &a.decision;
        let mut out = self.outcome(id, a);
        let mut thread = None;
        match &d.action {
            Action::Post { thread: t, assurance } => {
                thread = Some(*t);
                let r = self.apply_post(&mut tx, id, a, (*t, *assurance), None, &plan).await?;
                out.post_id = Some(r.post_id);
                out.recipients = r.outbox.iter().map(|o| o.1.clone()).collect();
            }
            Action::Status { .. } | Action::StatusHelp { .. } | Action::Info { .. } => {
                thread = self.apply_coordination(&mut tx, id, a, &plan, &mut out).await?;
            }
            Action::OpenReport { assurance } => {
                let r = self.apply_report(&mut tx, id, a, *assurance, &plan).await?;
                thread = Some(r.thread);
                out.report = Some(r.report.clone());
                out.thread = Some(format!("report:{}", r.report));
                out.post_id = Some(r.post.post_id);
                out.recipients = r.post.outbox.iter().map(|o| o.1.clone()).collect();
                if r.acknowledgement.is_some() {
                    out.recipients.push(a.evidence.from.clone().unwrap_or_default());
                }
            }
            Action::Quarantine { candidate } => {
                out.quarantine_id = Some(posts::insert_quarantine(&mut tx, id, &d.reason, *candidate).await?);
            }
            Action::Ignore => {
                store::history::record(&mut tx, "ignored", None, None, Some(id), &d.reason.to_string()).await?;
            }
            Action::Bounce { outbox } => {
                let summary = a.inbound.as_ref().map(bounce_summary).unwrap_or_default();
                posts::record_bounce(&mut tx, id, *outbox, &summary).await?;
            }
        }
        let pgp_thread = match &d.action {
            Action::Quarantine { candidate } => *candidate,
            _ => thread,
        };
        self.apply_protection(&mut tx, id, a, pgp_thread, out.post_id).await?;
        store::inbound::record_decision(&mut tx, id, d, thread).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Stage::Store.add(stored.elapsed());
        out.recipients.sort();
        Ok(out)
    }

    /// Stage 8 of a status mail (SPEC §8): the text after the block posted where it was
    /// written, the status recorded and confirmed; of a malformed one: the whole mail in
    /// the private thread with the syntax; of an info request: the summary queued. Returns
    /// the thread the mail belongs to.
    async fn apply_coordination(&self, tx: &mut store::WriteTx, id: i64, a: &Analysis, plan: &Plan, out: &mut Outcome) -> Result<Option<ThreadId>, PipelineError> {
        let rest = crate::coordination::rest_of(&a.evidence.status);
        let posted = match &a.decision.action {
            Action::Status { thread, assurance, post_rest: true, .. } => Some((*thread, *assurance, Some(rest))),
            Action::StatusHelp { private, assurance } => Some((*private, *assurance, None)),
            _ => None,
        };
        if let Some((t, assurance, body)) = posted {
            let r = self.apply_post(tx, id, a, (t, assurance), body, plan).await?;
            out.post_id = Some(r.post_id);
            out.recipients.extend(r.outbox.iter().map(|o| o.1.clone()));
        }
        let sender = a.evidence.from.as_deref().and_then(|f| a.world.contact_by_email(f)).map(|c| c.id);
        if let Some(m) = &plan.mail {
            let applied = crate::coordination::apply_mail(tx, m, sender, id).await?;
            out.recipients.extend(applied.recipients);
        }
        Ok(match &a.decision.action {
            Action::Status { thread, .. } => Some(*thread),
            Action::StatusHelp { private, .. } => Some(*private),
            Action::Info { channel, .. } => Some(*channel),
            _ => None,
        })
    }

    /// The same analysis, decided again knowing the mail is a duplicate.
    fn as_duplicate(&self, a: &Analysis) -> Analysis {
        let mut d = a.clone();
        d.evidence.duplicate = true;
        d.decision = route::decide(&d.evidence, &d.world, &self.policy);
        d
    }

    /// Stage 8, OpenPGP part: the evidence with the inbound message and the post, the
    /// ciphertext for the replay rule, and for a post the keys the sender offered (stored
    /// unconfirmed, SPEC §5.4).
    async fn apply_protection(
        &self,
        tx: &mut store::WriteTx,
        id: i64,
        a: &Analysis,
        thread: Option<ThreadId>,
        post: Option<PostId>,
    ) -> Result<(), PipelineError> {
        let from = a.evidence.from.as_deref().unwrap_or_default();
        if let Some(p) = &a.evidence.protection {
            store::keys::store_protection(tx, id, post, p).await?;
            let replay = a.decision.reason == Reason::CiphertextReplayed;
            if let (None, false) = (&p.refusal, replay) {
                let root = p.ciphertext_sha256.iter().filter(|sha| !p.ciphertexts.contains(sha));
                for sha in p.ciphertexts.iter().chain(root) {
                    store::keys::record_ciphertext(tx, sha, thread, from, id).await?;
                }
            }
        }
        let posted = matches!(a.decision.action, Action::Post { .. } | Action::Status { post_rest: true, .. } | Action::StatusHelp { .. });
        if let (true, Some(inb)) = (posted, &a.inbound) {
            if let Some(author) = a.world.contact_by_email(from) {
                let offered = pgp::open::candidate_keys(inb, from, store::now_ms());
                store::keys::store_candidates(tx, author.id, &offered, id).await?;
            }
        }
        Ok(())
    }

    /// What a post or a new report will send, decided before the transaction: the
    /// audience (who gets the content, who the notice, who the digest, SPEC §6), each
    /// delivery's Message-ID, for a report the acknowledgement (SPEC §8), and for a status
    /// mail or an info request what the workflow writes (`coordination`).
    async fn plan(&self, a: &Analysis) -> Result<Plan, PipelineError> {
        let author = a.evidence.from.as_deref().and_then(|f| a.world.contact_by_email(f)).map(|c| c.id);
        let inb = a.inbound.as_ref();
        let post = |thread, direct, body| mail_post(a, author, thread, direct, body);
        let rest = crate::coordination::rest_of(&a.evidence.status);
        let mut plan = match &a.decision.action {
            Action::Post { thread, .. } => match a.world.thread(*thread) {
                Some(t) => self.fan_out(&a.world, &post(t, &a.evidence.direct_recipients, None)),
                None => Plan::default(),
            },
            Action::Status { thread, post_rest: true, .. } => match a.world.thread(*thread) {
                Some(t) => self.fan_out(&a.world, &post(t, &a.evidence.direct_recipients, Some(rest))),
                None => Plan::default(),
            },
            // A malformed status block goes no further than the private thread.
            Action::StatusHelp { private, .. } => match a.world.thread(*private) {
                Some(t) => self.fan_out(&a.world, &post(t, &[], None)),
                None => Plan::default(),
            },
            Action::OpenReport { .. } => {
                let (world, thread) = provisional_report(a, author);
                let mut plan = self.fan_out(&world, &post(&thread, &[], None));
                plan.ack = inb.and_then(|inb| self.ack_plan(inb, &a.evidence));
                plan
            }
            _ => Plan::default(),
        };
        let ctx = crate::coordination::MailCtx {
            store: &self.store,
            composer: &self.composer,
            world: &a.world,
            decision: &a.decision,
            status: &a.evidence.status,
            sender: author.and_then(|c| a.world.contact(c)),
            encrypted: Arrival::of(a.evidence.protection.as_ref()) != Arrival::Plain,
            info_interval_ms: self.info_interval_ms,
        };
        plan.mail = crate::coordination::plan_mail(&ctx).await?;
        Ok(plan)
    }

    fn fan_out(&self, world: &World, post: &PostItem) -> Plan {
        Plan { post: crate::actions::plan_post(&self.composer, world, post), ..Plan::default() }
    }

    /// SPEC §8: the acknowledgement of a new report, within the rate limits.
    fn ack_plan(&self, inb: &Inbound, ev: &Evidence) -> Option<AckPlan> {
        let rcpt = intake::acknowledgement_to(inb, sender_authenticated(ev), self.book(), self.ack_policy)?;
        let now = store::now_ms();
        Some(AckPlan {
            rcpt,
            message_id: posts::new_message_id(&self.book().domain),
            sender_since: now - self.ack_interval_ms,
            global_since: now - 3_600_000,
            global_max: self.ack_max_per_hour,
        })
    }

    /// A post of the mail into `thread`: its text, or `body` (the text after a status
    /// block).
    async fn apply_post(
        &self,
        tx: &mut store::WriteTx,
        id: i64,
        a: &Analysis,
        (thread, assurance): (ThreadId, Assurance),
        body: Option<&str>,
        plan: &Plan,
    ) -> Result<PostResult, PipelineError> {
        let inb = a.inbound.as_ref().ok_or_else(|| StoreError::Invalid("post without a parsed mail".into()))?;
        let t = a.world.thread(thread).ok_or_else(|| StoreError::NotFound(format!("thread {thread}")))?;
        let author = a.evidence.from.as_deref().and_then(|f| a.world.contact_by_email(f)).map(|c| c.id);
        let np = NewPost {
            thread: t.id,
            case: audience::case_of_thread(&a.world, t).map(|c| c.id),
            author,
            source: PostSource::Email,
            body: body.unwrap_or(&inb.text),
            attachments: &inb.attachments,
            inbound: Some(id),
            inbound_message_id: inb.message_id.as_deref(),
            assurance,
            pinned: false,
            direct: &a.evidence.direct_recipients,
        };
        Ok(posts::insert_post(tx, &np, &plan.post).await?)
    }

    async fn apply_report(
        &self,
        tx: &mut store::WriteTx,
        id: i64,
        a: &Analysis,
        assurance: Assurance,
        plan: &Plan,
    ) -> Result<ReportResult, PipelineError> {
        let inb = a.inbound.as_ref().ok_or_else(|| StoreError::Invalid("report without a parsed mail".into()))?;
        let from = inb.from.as_ref().ok_or_else(|| StoreError::Invalid("report without From".into()))?;
        let nr = NewReport {
            from: &from.key(),
            from_name: from.name.as_deref().unwrap_or(""),
            subject: &inb.subject,
            body: &inb.text,
            attachments: &inb.attachments,
            inbound: id,
            inbound_message_id: inb.message_id.as_deref(),
            assurance,
            candidates: &pgp::open::candidate_keys(inb, &from.key(), store::now_ms()),
        };
        Ok(posts::open_report(tx, &nr, &plan.post, plan.ack.as_ref()).await?)
    }

    fn outcome(&self, id: i64, a: &Analysis) -> Outcome {
        let target = match &a.decision.action {
            Action::Post { thread, .. } | Action::Status { thread, .. } => Some(*thread),
            Action::StatusHelp { private, .. } => Some(*private),
            Action::Info { channel, .. } => Some(*channel),
            Action::Quarantine { candidate } => *candidate,
            _ => None,
        };
        let t = target.and_then(|t| a.world.thread(t));
        Outcome {
            inbound_id: id,
            message_id: a.inbound.as_ref().and_then(|i| i.message_id.clone()),
            decision: a.decision.action.code().into(),
            reason: a.decision.reason.code().into(),
            reason_detail: a.decision.reason.to_string(),
            thread: t.map(|t| thread_name(&a.world, t)),
            case: t.and_then(|t| t.case).and_then(|c| a.world.case(c)).map(|c| c.public_id.clone()),
            report: None,
            assurance: match a.decision.action {
                Action::Post { assurance, .. }
                | Action::OpenReport { assurance }
                | Action::Status { assurance, .. }
                | Action::StatusHelp { assurance, .. }
                | Action::Info { assurance, .. } => Some(assurance),
                _ => None,
            },
            post_id: None,
            quarantine_id: None,
            recipients: vec![],
        }
    }
}

/// The mail as a post into `thread` (its text, or `body`), for deciding its audience.
fn mail_post<'a>(a: &'a Analysis, author: Option<ContactId>, thread: &'a ThreadSnap, direct: &'a [String], body: Option<&'a str>) -> PostItem<'a> {
    let inb = a.inbound.as_ref();
    PostItem {
        thread,
        author: Author::of(author, PostSource::Email),
        body: body.or(inb.map(|i| i.text.as_str())).unwrap_or_default(),
        attachments: inb.map_or(&[][..], |i| i.attachments.as_slice()),
        created_at_ms: store::now_ms(),
        pinned: false,
        direct,
        // Content that arrived encrypted leaves only encrypted (SPEC §6.4 applied to §5.1).
        arrival: Arrival::of(a.evidence.protection.as_ref()),
    }
}

/// Whether the From address of a mail is proven, whoever sent it (known contact or not):
/// a trusted DMARC pass, or a good signature over the whole mail by a certificate that
/// names the From address.
fn sender_authenticated(ev: &Evidence) -> bool {
    let from = ev.from.as_deref().unwrap_or_default();
    let signed = ev.protection.as_ref().is_some_and(|p| {
        p.coverage == pgp::Coverage::Full && p.signature == pgp::SigStatus::Good && p.refusal.is_none() && p.signer_user_ids.iter().any(|u| u.eq_ignore_ascii_case(from))
    });
    ev.dmarc == crate::mail::auth_results::Dmarc::Pass || signed
}

/// What one mail's post will send, decided before its transaction.
#[derive(Debug, Default)]
struct Plan {
    post: delivery::PostPlan,
    ack: Option<AckPlan>,
    /// What a status mail or an info request writes besides the post.
    mail: Option<crate::coordination::MailPlan>,
}

/// The report thread a new report will get, for deciding its audience before it exists:
/// coordinators and the reporter (SPEC §6.1). Its ids are placeholders.
fn provisional_report(a: &Analysis, reporter: Option<ContactId>) -> (World, ThreadSnap) {
    let mut world = a.world.clone();
    let thread = ThreadSnap { id: -1, kind: ThreadKind::Report, case: None, org: None, report: Some(-1) };
    let report = ReportSnap { id: -1, public_id: String::new(), reporter: reporter.unwrap_or(-1), state: ReportState::New, case: None, thread: -1, subject: String::new() };
    world.reports.push(report);
    world.threads.push(thread.clone());
    (world, thread)
}

/// Runs CPU-heavy work (parsing, decrypting) without holding up the async workers: on a
/// multi-threaded runtime this worker's other tasks move to the rest of the pool meanwhile.
fn cpu<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// The message of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into());
    format!("panic: {text}")
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

/// What the decision needs loaded: every case, report and thread the evidence names.
fn world_query(ev: &Evidence) -> WorldQuery {
    let mut q = WorldQuery::default();
    q.case_public_ids.extend(ev.case_addresses.iter().chain(&ev.private_addresses).chain(&ev.info_addresses).cloned());
    for t in &ev.subject_tokens {
        match t {
            SubjectToken::Case { public_id } => q.case_public_ids.push(public_id.clone()),
            SubjectToken::Report { public_id } => q.report_public_ids.push(public_id.clone()),
        }
    }
    for k in &ev.reply_keys {
        if let ReplyKeyEvidence::Valid { thread, .. } = k {
            q.thread_ids.push(*thread);
        }
    }
    q.thread_ids.extend(ev.threading.map(|t| t.0));
    q.emails.extend(ev.from.iter().cloned());
    q.emails.extend(ev.direct_recipients.iter().cloned());
    q
}

/// A short description of a DSN for the history: the first lines of its text.
fn bounce_summary(inb: &Inbound) -> String {
    let text: String = inb.text.lines().filter(|l| !l.trim().is_empty()).take(6).collect::<Vec<_>>().join(" | ");
    let mut s = format!("{}: {}", inb.subject, text);
    s.truncate(s.char_indices().nth(500).map(|(i, _)| i).unwrap_or(s.len()));
    s
}
