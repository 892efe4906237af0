//! The coordination workflow's writes (SPEC §6.6, §8): vendor status updates and case
//! summary requests from the pipeline, and the coordinators' actions (public date, state,
//! declined reports, participants joining). Like every write, each is decided first (the
//! texts, the audience and what each recipient gets, through the view) and stored in one
//! transaction; the outbox worker renders what was decided.
//!
//! Status confirmations, syntax help, date announcements, publication and decline notices
//! are system posts in their threads: they stay in the thread's record, and reach its
//! readers as any post does.

use crate::compose::Composer;
use crate::config::CoordinationConfig;
use crate::delivery::{self, NewDelivery, Payload, Planned, PostPlan};
use crate::model::*;
use crate::render::format_public_date;
use crate::status::{self, StatusBlock, StatusSnap};
use crate::store::cases::NewParticipant;
use crate::store::posts::{self, NewPost, PostResult};
use crate::store::status::CaseRecord;
use crate::store::world::WorldQuery;
use crate::store::{now_ms, Store, StoreError, WriteTx};
use crate::view::{Arrival, Author, CaseFacts, Item, PostItem};

pub type Result<T> = std::result::Result<T, StoreError>;

/// A post by the gateway itself ("Coordinators"), decided before its transaction.
#[derive(Debug, Clone)]
pub struct SystemPost {
    pub thread: ThreadId,
    pub case: Option<CaseId>,
    pub body: String,
    pub pinned: bool,
    pub plan: PostPlan,
}

impl SystemPost {
    /// `body` in `thread`; its deliveries as the view decides them now.
    pub fn plan(
        composer: &Composer,
        world: &World,
        thread: &ThreadSnap,
        body: String,
        pinned: bool,
    ) -> SystemPost {
        let item = PostItem {
            thread,
            author: Author::System,
            body: &body,
            attachments: &[],
            created_at_ms: now_ms(),
            pinned,
            direct: &[],
            arrival: Arrival::Plain,
        };
        let plan = crate::actions::plan_post(composer, world, &item);
        let case = crate::audience::case_of_thread(world, thread).map(|c| c.id);
        SystemPost {
            thread: thread.id,
            case,
            body,
            pinned,
            plan,
        }
    }

    /// The post as it is stored.
    pub fn new_post(&self) -> NewPost<'_> {
        NewPost {
            thread: self.thread,
            case: self.case,
            author: None,
            source: PostSource::System,
            body: &self.body,
            attachments: &[],
            inbound: None,
            inbound_message_id: None,
            // Written by the gateway: no mail identity is involved.
            assurance: Assurance::Address,
            pinned: self.pinned,
            direct: &[],
        }
    }

    pub(crate) async fn insert(&self, conn: &mut WriteTx) -> Result<PostResult> {
        posts::insert_post(conn, &self.new_post(), &self.plan).await
    }
}

/// What a status mail or an info request will write, decided before the transaction.
#[derive(Debug, Clone)]
pub enum MailPlan {
    /// The new status and its confirmation in the vendor's private thread.
    Status {
        case: CaseId,
        snap: StatusSnap,
        confirmation: SystemPost,
    },
    /// The syntax, answered in the vendor's private thread.
    Help { help: SystemPost },
    /// The case summary for the sender, unless rate-limited (`since`).
    Info {
        case: CaseId,
        thread: ThreadId,
        delivery: Option<NewDelivery>,
        since: i64,
    },
}

/// The world, the mail and the time a [`MailPlan`] is decided from.
pub struct MailCtx<'a> {
    pub store: &'a Store,
    pub composer: &'a Composer,
    pub world: &'a World,
    pub decision: &'a Decision,
    pub status: &'a StatusBlock,
    pub sender: Option<&'a ContactSnap>,
    /// The mail arrived encrypted (its statement leaves only encrypted).
    pub encrypted: bool,
    pub info_interval_ms: i64,
}

/// SPEC §8: what a status mail or an info request writes besides the post, if anything.
pub async fn plan_mail(m: &MailCtx<'_>) -> Result<Option<MailPlan>> {
    match &m.decision.action {
        Action::Status {
            private,
            org,
            update,
            ..
        } => plan_status(m, *private, *org, update).await,
        Action::StatusHelp { private, .. } => Ok(plan_help(m, *private)),
        Action::Info { case, channel, .. } => plan_info(m, *case, *channel).await,
        _ => Ok(None),
    }
}

/// The new status (an update keeps what it leaves out) and its confirmation in the
/// organization's private thread.
async fn plan_status(
    m: &MailCtx<'_>,
    private: ThreadId,
    org: OrgId,
    update: &crate::status::StatusUpdate,
) -> Result<Option<MailPlan>> {
    let w = m.world;
    let Some((thread, case)) = thread_and_case(w, private) else {
        return Ok(None);
    };
    let record = m.store.case_record(case.id).await?;
    let old = record.statuses.iter().find(|s| s.org == org);
    let snap = StatusSnap::updated(org, old, update, m.encrypted, now_ms());
    let org_name = w.org(org).map(|o| o.name.clone()).unwrap_or_default();
    let text = status::confirmation(&case.public_id, &org_name, &snap);
    let confirmation = SystemPost::plan(m.composer, w, thread, text, false);
    Ok(Some(MailPlan::Status {
        case: case.id,
        snap,
        confirmation,
    }))
}

/// The syntax, answered in the organization's private thread.
fn plan_help(m: &MailCtx<'_>, private: ThreadId) -> Option<MailPlan> {
    let (Some((thread, case)), StatusBlock::Malformed { error, .. }) =
        (thread_and_case(m.world, private), m.status)
    else {
        return None;
    };
    let text = status::syntax_help(&case.public_id, error);
    Some(MailPlan::Help {
        help: SystemPost::plan(m.composer, m.world, thread, text, false),
    })
}

/// The case summary for the sender, as the view decides it now.
async fn plan_info(m: &MailCtx<'_>, case: CaseId, channel: ThreadId) -> Result<Option<MailPlan>> {
    let (Some(case), Some(sender)) = (m.world.case(case), m.sender) else {
        return Ok(None);
    };
    let record = m.store.case_record(case.id).await?;
    let facts = CaseFacts {
        case,
        public_date_ms: record.public_at,
        statuses: &record.statuses,
    };
    let item = Item::Summary {
        facts,
        posts: &[],
        joined: false,
    };
    let payload = Payload::Summary {
        case: case.id,
        posts: Vec::new(),
    };
    let planned = plan_item(
        m.composer,
        m.world,
        &item,
        OutboxKind::CaseSummary,
        [sender],
        &payload,
    );
    Ok(Some(MailPlan::Info {
        case: case.id,
        thread: channel,
        delivery: planned.deliveries.into_iter().next(),
        since: now_ms() - m.info_interval_ms,
    }))
}

fn thread_and_case(w: &World, thread: ThreadId) -> Option<(&ThreadSnap, &CaseSnap)> {
    let t = w.thread(thread)?;
    Some((t, crate::audience::case_of_thread(w, t)?))
}

/// The deliveries of a non-post item to `candidates`, as the view decides them now.
pub(crate) fn plan_item<'w>(
    composer: &Composer,
    world: &'w World,
    item: &Item,
    kind: OutboxKind,
    candidates: impl IntoIterator<Item = &'w ContactSnap>,
    payload: &Payload,
) -> Planned {
    let now = now_ms();
    let domain = &composer.book().domain;
    delivery::plan_item(
        world,
        item,
        kind,
        candidates,
        |c| composer.facts(c, None, now),
        || posts::new_message_id(domain),
        payload,
    )
}

/// What [`apply_mail`] wrote.
#[derive(Debug, Default)]
pub struct MailApplied {
    /// Addresses a message was queued for.
    pub recipients: Vec<String>,
}

/// Stage 8 of a status mail or an info request, in the pipeline's transaction.
pub(crate) async fn apply_mail(
    tx: &mut WriteTx,
    plan: &MailPlan,
    sender: Option<ContactId>,
    inbound: i64,
) -> Result<MailApplied> {
    let mut out = MailApplied::default();
    match plan {
        MailPlan::Status {
            case,
            snap,
            confirmation,
        } => {
            let s = crate::store::status::NewStatus {
                case: *case,
                thread: confirmation.thread,
                snap,
                contact: sender,
                inbound: Some(inbound),
            };
            crate::store::status::record(tx, &s).await?;
            let r = confirmation.insert(tx).await?;
            out.recipients.extend(r.outbox.into_iter().map(|o| o.1));
        }
        MailPlan::Help { help } => {
            let r = help.insert(tx).await?;
            out.recipients.extend(r.outbox.into_iter().map(|o| o.1));
        }
        MailPlan::Info {
            case,
            thread,
            delivery,
            since,
        } => {
            if let Some(d) = delivery {
                if crate::store::status::queue_summary(tx, d, *thread, *case, *since, now_ms())
                    .await?
                    .is_some()
                {
                    out.recipients.push(d.rcpt.clone());
                }
            }
        }
    }
    Ok(out)
}

/// The text after a status block, posted into the thread the mail was written to.
pub fn rest_of(block: &StatusBlock) -> &str {
    match block {
        StatusBlock::Update { rest, .. } | StatusBlock::Malformed { rest, .. } => rest,
        StatusBlock::None => "",
    }
}

async fn case_world(store: &Store, case_public_id: &str) -> Result<World> {
    store
        .world(&WorldQuery {
            case_public_ids: vec![case_public_id.to_string()],
            ..Default::default()
        })
        .await
}

fn case_in<'w>(world: &'w World, case_public_id: &str) -> Result<&'w CaseSnap> {
    world
        .case_by_public_id(case_public_id)
        .ok_or_else(|| StoreError::NotFound(format!("no case {case_public_id}")))
}

fn discussion_of<'w>(world: &'w World, case: &CaseSnap) -> Result<&'w ThreadSnap> {
    world
        .thread(case.discussion)
        .ok_or_else(|| StoreError::NotFound(format!("no discussion in {}", case.public_id)))
}

/// SPEC §8 "Dates": a coordinator moves the public date; the participants are told in the
/// case discussion (a pinned system post). Returns the post.
pub async fn set_public_date(
    store: &Store,
    composer: &Composer,
    case_public_id: &str,
    at: i64,
    reason: Option<&str>,
) -> Result<PostResult> {
    let world = case_world(store, case_public_id).await?;
    let case = case_in(&world, case_public_id)?;
    let old = store.case_record(case.id).await?.public_at;
    let mut body = format!(
        "The public date of {} is now {}",
        case.public_id,
        format_public_date(at)
    );
    match old {
        Some(o) if o != at => body.push_str(&format!(" (it was {}).\n", format_public_date(o))),
        _ => body.push_str(".\n"),
    }
    if let Some(r) = reason.map(str::trim).filter(|r| !r.is_empty()) {
        body.push_str(&format!("\nReason: {r}\n"));
    }
    body.push_str("\nTell the coordinators if this date does not work for you.\n");
    store.refresh_keyring(&composer.pgp).await?;
    let post = SystemPost::plan(composer, &world, discussion_of(&world, case)?, body, true);
    let detail = format!(
        "{} → {}{}",
        old.map(format_public_date)
            .unwrap_or_else(|| "not set".into()),
        format_public_date(at),
        reason.map(|r| format!(": {r}")).unwrap_or_default()
    );
    store.set_public_date(case.id, at, &detail, &post).await
}

/// `case set-state`: a new state; publishing tells the participants in the case discussion
/// (a pinned system post). Returns the post, if one was written.
pub async fn set_state(
    store: &Store,
    composer: &Composer,
    case_public_id: &str,
    state: CaseState,
) -> Result<Option<PostResult>> {
    let world = case_world(store, case_public_id).await?;
    let case = case_in(&world, case_public_id)?;
    let post = if state == CaseState::Published && case.state != CaseState::Published {
        let date = store
            .case_record(case.id)
            .await?
            .public_at
            .map(|d| format!(" (public date {})", format_public_date(d)))
            .unwrap_or_default();
        let body = format!(
            "{} has been published{date}.\n\nThe case stays open for statements: a vendor can still record or update its\nstatus and statement by mail, starting a message with a status block\n(Status:, Statement:, References:, Share:).\n",
            case.public_id
        );
        store.refresh_keyring(&composer.pgp).await?;
        Some(SystemPost::plan(
            composer,
            &world,
            discussion_of(&world, case)?,
            body,
            true,
        ))
    } else {
        None
    };
    store
        .set_case_state_with(case.id, state, post.as_ref())
        .await
}

/// `report decline`: the report is declined and the reporter told, in the report thread,
/// with `text` (the configured wording unless given).
pub async fn decline_report(
    store: &Store,
    composer: &Composer,
    report_public_id: &str,
    text: &str,
) -> Result<PostResult> {
    let world = store
        .world(&WorldQuery {
            report_public_ids: vec![report_public_id.to_string()],
            ..Default::default()
        })
        .await?;
    let report = world
        .report_by_public_id(report_public_id)
        .ok_or_else(|| StoreError::NotFound(format!("no report {report_public_id}")))?;
    if report.state != ReportState::New {
        return Err(StoreError::Invalid(format!(
            "report {report_public_id} is {}, not new",
            report.state
        )));
    }
    let thread = world
        .thread(report.thread)
        .ok_or_else(|| StoreError::NotFound(format!("no thread for {report_public_id}")))?;
    store.refresh_keyring(&composer.pgp).await?;
    let post = SystemPost::plan(
        composer,
        &world,
        thread,
        format!("{}\n", text.trim_end()),
        true,
    );
    store
        .decline_report_with(report.id, report_public_id, &post)
        .await
}

/// A participant to add, and whether their contacts get the discussion so far.
#[derive(Debug, Clone)]
pub struct Joining<'a> {
    pub case_public_id: &'a str,
    pub participant: NewParticipant<'a>,
}

/// SPEC §6.6: a participant added after the discussion started gets, on joining, the case
/// summary and (when `cfg.late_joiner_history`) the discussion so far, as each of its
/// contacts may see it, in one message replying into the discussion. Decided on a world
/// where the participant is added already; stored with the participant. Returns the
/// addresses queued.
pub async fn add_participant(
    store: &Store,
    composer: &Composer,
    cfg: &CoordinationConfig,
    j: &Joining<'_>,
) -> Result<Vec<String>> {
    let late = plan_joined(store, composer, cfg, j).await?;
    store
        .add_participant_with(j.case_public_id, &j.participant, late.as_ref())
        .await?;
    Ok(late
        .map(|l| l.planned.deliveries.into_iter().map(|d| d.rcpt).collect())
        .unwrap_or_default())
}

/// The late joiner's messages, decided before the participant is stored.
#[derive(Debug, Clone)]
pub struct Joined {
    pub discussion: ThreadId,
    pub planned: Planned,
}

async fn plan_joined(
    store: &Store,
    composer: &Composer,
    cfg: &CoordinationConfig,
    j: &Joining<'_>,
) -> Result<Option<Joined>> {
    let world = joined_world(store, j).await?;
    let case = case_in(&world, j.case_public_id)?;
    let so_far = store.thread_posts(case.discussion).await?;
    if so_far.is_empty() {
        return Ok(None);
    }
    let discussion = discussion_of(&world, case)?;
    let shown: Vec<(PostId, Arrival)> = if cfg.late_joiner_history {
        so_far
    } else {
        Vec::new()
    };
    let items = form_items(discussion, &shown);
    let record: CaseRecord = store.case_record(case.id).await?;
    let facts = CaseFacts {
        case,
        public_date_ms: record.public_at,
        statuses: &record.statuses,
    };
    let item = Item::Summary {
        facts,
        posts: &items,
        joined: true,
    };
    let payload = Payload::Summary {
        case: case.id,
        posts: shown.iter().map(|(id, _)| *id).collect(),
    };
    let p = &j.participant;
    let candidates = world
        .contacts
        .iter()
        .filter(|c| (p.org.is_some() && c.org == p.org) || Some(c.id) == p.contact);
    store.refresh_keyring(&composer.pgp).await?;
    let planned = plan_item(
        composer,
        &world,
        &item,
        OutboxKind::Joined,
        candidates,
        &payload,
    );
    Ok(Some(Joined {
        discussion: discussion.id,
        planned,
    }))
}

/// What the view's decision (content or notice) needs of each post of the discussion so
/// far: where it is and how it arrived. The content is rendered from the stored posts when
/// it is sent.
fn form_items<'a>(discussion: &'a ThreadSnap, posts: &[(PostId, Arrival)]) -> Vec<PostItem<'a>> {
    posts
        .iter()
        .map(|(_, a)| PostItem {
            thread: discussion,
            author: Author::Unknown,
            body: "",
            attachments: &[],
            created_at_ms: 0,
            pinned: false,
            direct: &[],
            arrival: *a,
        })
        .collect()
}

/// The case with the joining participant added already, and its contacts.
async fn joined_world(store: &Store, j: &Joining<'_>) -> Result<World> {
    let p = &j.participant;
    let mut q = WorldQuery {
        case_public_ids: vec![j.case_public_id.to_string()],
        contact_ids: p.contact.into_iter().collect(),
        ..Default::default()
    };
    if let Some(org) = p.org {
        q.contact_ids.extend(store.org_contact_ids(org).await?);
    }
    let mut world = store.world(&q).await?;
    let case = case_in(&world, j.case_public_id)?.id;
    let joining = ParticipantSnap {
        org: p.org,
        contact: p.contact,
        role: p.role,
        anonymous: p.anonymous,
        alias: p.alias.unwrap_or_default().to_string(),
    };
    if let Some(c) = world.cases.iter_mut().find(|c| c.id == case) {
        c.participants.push(joining);
    }
    Ok(world)
}

/// `report accept`: a new case, or (with `into`) an existing one; the reporter joins it
/// unless they asked not to, and when the case's discussion started already they get the
/// summary and the discussion so far (SPEC §6.6). Returns the case's public id.
pub async fn accept_report(
    store: &Store,
    composer: &Composer,
    cfg: &crate::config::Config,
    report_public_id: &str,
    into: Option<&str>,
    title: Option<&str>,
    reporter_participates: bool,
) -> Result<String> {
    let prefix = &cfg.gateway.case_prefix;
    let Some(into) = into else {
        let title = title.ok_or_else(|| StoreError::Invalid("a new case needs a title".into()))?;
        return store
            .accept_report(report_public_id, prefix, title, reporter_participates)
            .await;
    };
    let reporter = store.report_reporter(report_public_id).await?;
    let participant = NewParticipant {
        org: None,
        contact: Some(reporter),
        role: Role::Reporter,
        anonymous: false,
        alias: None,
    };
    let joins = reporter_participates && !store.is_participant(into, reporter).await?;
    let late = match joins {
        true => {
            plan_joined(
                store,
                composer,
                &cfg.coordination,
                &Joining {
                    case_public_id: into,
                    participant: participant.clone(),
                },
            )
            .await?
        }
        false => None,
    };
    store
        .accept_report_into(
            report_public_id,
            into,
            joins.then_some(&participant),
            late.as_ref(),
        )
        .await
}
