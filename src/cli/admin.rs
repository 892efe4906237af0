//! `init`, `route explain`, `org`, `contact`, `case`, `report`.

use super::{output, CmdResult, Failure};
use crate::audience;
use crate::compose::thread_name;
use crate::config::Config;
use crate::model::*;
use crate::pipeline::{Analysis, Pipeline};
use crate::store::cases::{NewCase, NewParticipant};
use crate::store::directory::NewContact;
use crate::store::world::WorldQuery;
use clap::Subcommand;
use rand::RngCore;
use serde::Serialize;
use std::path::{Path, PathBuf};

fn usage(flag: &str, message: String) -> Failure {
    Failure { code: super::EXIT_USAGE, message: format!("{flag}: {message}") }
}

fn parse_enum<T>(flag: &str, value: &str, parse: fn(&str) -> Option<T>, choices: String) -> Result<T, Failure> {
    parse(value).ok_or_else(|| usage(flag, format!("invalid value {value:?}; expected one of {choices}")))
}

pub async fn init(dir: &Path, domain: &str, database_url: Option<&str>) -> CmdResult {
    let mut secret = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut secret);
    let path = crate::config::write_init(dir, domain, database_url, secret)?;
    let cfg = super::load_config(Some(&path))?;
    crate::app::open_store(&cfg).await?;
    println!("wrote {}", path.display());
    println!("next: casegate --config {} org add ...", path.display());
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum RouteCmd {
    /// Show the evidence, decision, reason and audience for FILE.eml without changing anything.
    Explain {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

/// `route explain --json`: stable field names.
#[derive(Debug, Serialize)]
struct Explanation {
    decision: String,
    reason: String,
    reason_detail: String,
    thread: Option<String>,
    case: Option<String>,
    sender: Option<String>,
    assurance: Assurance,
    recipients: Vec<String>,
    digest: Vec<String>,
    direct: Vec<String>,
    evidence: EvidenceView,
}

#[derive(Debug, Serialize)]
struct EvidenceView {
    message_id: Option<String>,
    subject: Option<String>,
    machine: String,
    /// Our MTA's DMARC verdict for the From domain: pass, fail, none or absent.
    dmarc: crate::mail::auth_results::Dmarc,
    to_intake: bool,
    reply_keys: Vec<String>,
    case_addresses: Vec<String>,
    private_addresses: Vec<String>,
    threading: Option<String>,
    subject_tokens: Vec<String>,
    /// The OpenPGP evidence (SPEC §5.1), when the mail carried any.
    protection: Option<crate::pgp::Protection>,
    /// Every problem found while parsing.
    warnings: Vec<String>,
    /// The warnings that mean damaged content or an exceeded limit (the mail is held).
    damaged: Vec<String>,
}

pub async fn route(cfg: &Config, cmd: &RouteCmd) -> CmdResult {
    let RouteCmd::Explain { file, json } = cmd;
    let raw = std::fs::read(file).map_err(|e| usage("FILE", format!("cannot read {}: {e}", file.display())))?;
    let store = crate::app::open_store(cfg).await?;
    let pipeline = Pipeline::new(store, cfg);
    let a = pipeline.explain(&raw).await?;
    let x = explanation(&a);
    if *json {
        output::json(&x);
    } else {
        print_explanation(&x);
    }
    Ok(())
}

fn explanation(a: &Analysis) -> Explanation {
    let ev = &a.evidence;
    let (target, assurance) = match &a.decision.action {
        Action::Post { thread, assurance } | Action::Status { thread, assurance, .. } => (Some(*thread), *assurance),
        Action::StatusHelp { private, assurance } => (Some(*private), *assurance),
        Action::Info { channel, assurance, .. } => (Some(*channel), *assurance),
        Action::OpenReport { assurance } => (None, *assurance),
        Action::Quarantine { candidate } => (*candidate, crate::route::assurance(ev, &a.world, None)),
        _ => (None, crate::route::assurance(ev, &a.world, None)),
    };
    let thread = target.and_then(|t| a.world.thread(t));
    let author = ev.from.as_deref().and_then(|f| a.world.contact_by_email(f)).map(|c| c.id);
    let fan = match (&a.decision.action, thread) {
        (Action::Post { .. } | Action::Status { post_rest: true, .. } | Action::StatusHelp { .. }, Some(t)) => {
            let post = crate::view::PostItem {
                thread: t,
                author: author.map_or(crate::view::Author::Unknown, crate::view::Author::Contact),
                body: "",
                attachments: &[],
                created_at_ms: 0,
                pinned: false,
                direct: &ev.direct_recipients,
                arrival: crate::view::Arrival::of(ev.protection.as_ref()),
            };
            audience::fan_out(&a.world, &post)
        }
        _ => Default::default(),
    };
    let email = |id: &ContactId| a.world.contact(*id).map(|c| c.email.clone()).unwrap_or_default();
    let (digest, immediate): (Vec<_>, Vec<_>) = fan.deliveries.iter().partition(|d| d.mode == crate::view::Mode::Digest);
    Explanation {
        decision: a.decision.action.code().into(),
        reason: a.decision.reason.code().into(),
        reason_detail: a.decision.reason.to_string(),
        thread: thread.map(|t| thread_name(&a.world, t)),
        case: thread.and_then(|t| t.case).and_then(|c| a.world.case(c)).map(|c| c.public_id.clone()),
        sender: ev.from.clone(),
        assurance,
        recipients: immediate.iter().map(|d| d.email.clone()).collect(),
        digest: digest.iter().map(|d| d.email.clone()).collect(),
        direct: fan.direct.iter().map(email).collect(),
        evidence: evidence_view(a),
    }
}

fn evidence_view(a: &Analysis) -> EvidenceView {
    let ev = &a.evidence;
    let world = &a.world;
    let name = |t: ThreadId| world.thread(t).map(|t| thread_name(world, t)).unwrap_or_else(|| format!("thread {t} (unknown)"));
    EvidenceView {
        message_id: a.inbound.as_ref().and_then(|i| i.message_id.clone()),
        subject: a.inbound.as_ref().map(|i| i.subject.clone()),
        machine: format!("{:?}", ev.machine),
        dmarc: ev.dmarc,
        to_intake: ev.to_intake,
        reply_keys: ev
            .reply_keys
            .iter()
            .map(|k| match k {
                crate::route::ReplyKeyEvidence::Valid { thread, contact } => {
                    let who = world.contact(*contact).map(|c| c.email.clone()).unwrap_or_else(|| format!("contact {contact}"));
                    format!("valid: {} for {who}", name(*thread))
                }
                crate::route::ReplyKeyEvidence::Invalid => "invalid".into(),
            })
            .collect(),
        case_addresses: ev.case_addresses.clone(),
        private_addresses: ev.private_addresses.clone(),
        threading: ev.threading.map(|(t, via)| format!("{:?}: {}", via, name(t))),
        subject_tokens: ev.subject_tokens.iter().map(|t| format!("{t:?}")).collect(),
        protection: ev.protection.clone(),
        warnings: a.inbound.as_ref().map(|i| i.warnings.clone()).unwrap_or_default(),
        damaged: ev.damaged.clone(),
    }
}

fn print_explanation(x: &Explanation) {
    println!("decision:   {}", x.decision);
    println!("reason:     {}", x.reason_detail);
    println!("thread:     {}", x.thread.as_deref().unwrap_or("-"));
    println!("sender:     {} (assurance {})", x.sender.as_deref().unwrap_or("-"), x.assurance);
    println!("recipients: {}", if x.recipients.is_empty() { "-".into() } else { x.recipients.join(", ") });
    if !x.digest.is_empty() {
        println!("digest:     {}", x.digest.join(", "));
    }
    if !x.direct.is_empty() {
        println!("had it:     {}", x.direct.join(", "));
    }
    let e = &x.evidence;
    println!("evidence:");
    println!("  message-id:      {}", e.message_id.as_deref().unwrap_or("-"));
    println!("  subject:         {}", e.subject.as_deref().unwrap_or("-"));
    println!("  machine:         {}", e.machine);
    println!("  dmarc:           {}", e.dmarc.as_str());
    println!("  to intake:       {}", e.to_intake);
    println!("  reply keys:      {}", e.reply_keys.join("; "));
    println!("  case addresses:  {}", e.case_addresses.join(", "));
    println!("  private:         {}", e.private_addresses.join(", "));
    println!("  threading:       {}", e.threading.as_deref().unwrap_or("-"));
    println!("  subject tokens:  {}", e.subject_tokens.join(", "));
    println!("  openpgp:         {}", e.protection.as_ref().map(|p| p.summary()).unwrap_or_else(|| "-".into()));
    println!("  warnings:        {}", if e.warnings.is_empty() { "-" } else { "" });
    for w in &e.warnings {
        let mark = if e.damaged.contains(w) { "damaged" } else { "cosmetic" };
        println!("    {mark}: {w}");
    }
    for d in e.damaged.iter().filter(|d| !e.warnings.contains(d)) {
        println!("    damaged: {d}");
    }
}

#[derive(Debug, Subcommand)]
pub enum OrgCmd {
    /// Add an organization.
    Add {
        name: String,
        /// vendor, coordinator or reporter.
        #[arg(long)]
        kind: String,
        /// A mail domain of the organization (repeatable).
        #[arg(long = "domain")]
        domains: Vec<String>,
    },
    /// List organizations.
    List {
        #[arg(long)]
        json: bool,
    },
}

pub async fn org(cfg: &Config, cmd: &OrgCmd) -> CmdResult {
    match cmd {
        OrgCmd::Add { name, kind, domains } => {
            let kind = parse_enum("--kind", kind, OrgKind::parse, OrgKind::choices())?;
            let store = crate::app::open_store(cfg).await?;
            let id = store.add_org(name, kind, domains).await?;
            println!("organization {id}: {name} ({kind})");
        }
        OrgCmd::List { json } => {
            let orgs = crate::app::open_store(cfg).await?.list_orgs().await?;
            if *json {
                output::json(&orgs);
            } else {
                let rows: Vec<Vec<String>> =
                    orgs.iter().map(|o| vec![o.id.to_string(), o.name.clone(), o.kind.to_string(), o.domains.join(",")]).collect();
                output::table(&["ID", "NAME", "KIND", "DOMAINS"], &rows);
            }
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum ContactCmd {
    /// Add a contact.
    Add {
        email: String,
        #[arg(long, default_value = "")]
        name: String,
        /// The contact's organization, by name.
        #[arg(long)]
        org: Option<String>,
        /// immediate, digest or none.
        #[arg(long, default_value = "immediate")]
        notify: String,
        /// Send this contact encrypted mail only (notices until a key is known).
        #[arg(long)]
        encrypt_only: bool,
    },
    /// List contacts.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Send to a bouncing address again (SPEC §7.5); only failures from now on count.
    ClearBouncing { email: String },
}

pub async fn contact(cfg: &Config, cmd: &ContactCmd) -> CmdResult {
    let store = crate::app::open_store(cfg).await?;
    match cmd {
        ContactCmd::Add { email, name, org, notify, encrypt_only } => {
            let notify = parse_enum("--notify", notify, NotifyMode::parse, NotifyMode::choices())?;
            let org_id = match org {
                Some(o) => Some(store.org_by_name(o).await.map_err(|e| usage("--org", e.to_string()))?.id),
                None => None,
            };
            let name = if name.is_empty() { email.as_str() } else { name.as_str() };
            let c = NewContact { email, name, org: org_id, notify, encrypt_only: *encrypt_only };
            let id = store.add_contact(&c).await?;
            println!("contact {id}: {email}");
        }
        ContactCmd::List { json } => {
            let contacts = store.list_contacts().await?;
            let orgs = store.list_orgs().await?;
            if *json {
                output::json(&contacts);
            } else {
                let org_name = |id: Option<i64>| id.and_then(|i| orgs.iter().find(|o| o.id == i)).map(|o| o.name.clone()).unwrap_or_default();
                let bouncing = |b: bool| if b { "yes".to_string() } else { String::new() };
                let rows: Vec<Vec<String>> = contacts
                    .iter()
                    .map(|c| vec![c.id.to_string(), c.email.clone(), c.name.clone(), org_name(c.org), c.notify.to_string(), bouncing(c.bouncing)])
                    .collect();
                output::table(&["ID", "EMAIL", "NAME", "ORG", "NOTIFY", "BOUNCING"], &rows);
            }
        }
        ContactCmd::ClearBouncing { email } => {
            store.clear_bouncing(email, crate::store::now_ms()).await.map_err(|e| usage("EMAIL", e.to_string()))?;
            println!("{email} is no longer marked bouncing");
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum CaseCmd {
    /// Create a case (and its discussion thread).
    Create {
        #[arg(long)]
        title: String,
        /// Explicit id, e.g. VU#123456; random when omitted.
        #[arg(long)]
        id: Option<String>,
        /// Encryption required: recipients without a key get a content-free notice.
        #[arg(long)]
        embargoed: bool,
        /// Per-case minimum sender assurance (none, address, dmarc, reply-key, signed).
        #[arg(long)]
        min_assurance: Option<String>,
    },
    /// List cases.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show a case: participants, threads, history.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Add a participant: an organization or a lone contact.
    AddParticipant {
        id: String,
        #[arg(long, conflicts_with = "contact", required_unless_present = "contact")]
        org: Option<String>,
        #[arg(long)]
        contact: Option<String>,
        /// vendor, reporter or coordinator.
        #[arg(long, default_value = "vendor")]
        role: String,
        #[arg(long)]
        anonymous: bool,
        /// Shown instead of the participant's names when anonymous, e.g. "Vendor A".
        #[arg(long)]
        alias: Option<String>,
    },
    /// Send the initial-contact mail to a vendor organization of the case.
    Notify {
        id: String,
        #[arg(long)]
        org: String,
    },
    /// Set the case state (open, published, closed); publishing tells the participants.
    SetState { id: String, state: String },
    /// Move the public date and tell the participants in the case discussion.
    SetDate {
        id: String,
        /// 2026-04-20 (00:00 UTC), 2026-04-20 14:00 (UTC) or RFC 3339 (2026-04-20T14:00:00Z).
        date: String,
        /// Why, for the participants (e.g. evidence of active exploitation).
        #[arg(long)]
        reason: Option<String>,
    },
}

pub async fn case(cfg: &Config, cmd: &CaseCmd) -> CmdResult {
    let store = crate::app::open_store(cfg).await?;
    let prefix = &cfg.gateway.case_prefix;
    match cmd {
        CaseCmd::Create { title, id, embargoed, min_assurance } => {
            let min = match min_assurance {
                Some(m) => Some(parse_enum("--min-assurance", m, Assurance::parse, Assurance::choices())?),
                None => None,
            };
            let nc = NewCase { public_id: id.as_deref(), title, embargoed: *embargoed, min_assurance: min };
            let id = store.create_case(prefix, &nc).await.map_err(|e| usage("--id", e.to_string()))?;
            println!("{id}");
        }
        CaseCmd::List { json } => {
            let cases = store.list_cases().await?;
            if *json {
                output::json(&cases);
            } else {
                let rows: Vec<Vec<String>> = cases
                    .iter()
                    .map(|c| vec![c.id.clone(), c.state.clone(), if c.embargoed { "yes".into() } else { "no".into() }, c.title.clone()])
                    .collect();
                output::table(&["ID", "STATE", "EMBARGO", "TITLE"], &rows);
            }
        }
        CaseCmd::Show { id, json } => show_case(cfg, &store, id, *json).await?,
        CaseCmd::AddParticipant { id, org, contact, role, anonymous, alias } => {
            let role = parse_enum("--role", role, Role::parse, Role::choices())?;
            let (org_id, contact_id) = match (org, contact) {
                (Some(o), _) => (Some(store.org_by_name(o).await.map_err(|e| usage("--org", e.to_string()))?.id), None),
                (None, Some(c)) => (None, Some(store.contact_by_email(c).await.map_err(|e| usage("--contact", e.to_string()))?.id)),
                (None, None) => return Err(usage("--org", "give --org or --contact".into())),
            };
            let p = NewParticipant { org: org_id, contact: contact_id, role, anonymous: *anonymous, alias: alias.as_deref() };
            let composer = crate::compose::Composer::from_config(cfg);
            let joining = crate::coordination::Joining { case_public_id: id, participant: p };
            let queued = crate::coordination::add_participant(&store, &composer, &cfg.coordination, &joining).await?;
            println!("added to {id}");
            if !queued.is_empty() {
                println!("queued the case summary and the discussion so far for: {}", queued.join(", "));
            }
        }
        CaseCmd::Notify { id, org } => {
            let pipeline = Pipeline::new(store.clone(), cfg);
            let queued = crate::actions::notify_vendor(&store, &pipeline.composer, id, org).await?;
            println!("queued {} initial-contact message(s): {}", queued.len(), queued.join(", "));
        }
        CaseCmd::SetState { id, state } => set_state(cfg, &store, id, state).await?,
        CaseCmd::SetDate { id, date, reason } => set_date(cfg, &store, id, date, reason.as_deref()).await?,
    }
    Ok(())
}

/// `case set-state`; publishing tells the participants.
async fn set_state(cfg: &Config, store: &crate::store::Store, id: &str, state: &str) -> CmdResult {
    let state = parse_enum("STATE", state, CaseState::parse, CaseState::choices())?;
    let composer = crate::compose::Composer::from_config(cfg);
    let post = crate::coordination::set_state(store, &composer, id, state).await?;
    println!("{id} is {state}");
    if let Some(p) = post {
        println!("post {}: {} message(s) queued", p.post_id, p.outbox.len());
    }
    Ok(())
}

/// `case set-date`: the new public date, announced in the case discussion.
async fn set_date(cfg: &Config, store: &crate::store::Store, id: &str, date: &str, reason: Option<&str>) -> CmdResult {
    let at = crate::workflow::parse_time(date).map_err(|e| usage("DATE", e))?;
    let composer = crate::compose::Composer::from_config(cfg);
    let p = crate::coordination::set_public_date(store, &composer, id, at, reason).await?;
    println!("{id}: public date {}", crate::render::format_public_date(at));
    println!("post {}: {} message(s) queued", p.post_id, p.outbox.len());
    Ok(())
}

#[derive(Debug, Serialize)]
struct CaseView {
    case: CaseSnap,
    dates: Dates,
    participants: Vec<ParticipantView>,
    /// The current status of each vendor organization (SPEC §8).
    statuses: Vec<StatusRow>,
    /// Every status update as it was given.
    status_history: Vec<crate::store::status::StatusEvent>,
    threads: Vec<String>,
    history: Vec<crate::store::history::HistoryRow>,
}

#[derive(Debug, Serialize)]
struct Dates {
    created_at: Option<i64>,
    initial_contact_at: Option<i64>,
    public_at: Option<i64>,
}

#[derive(Debug, Serialize)]
struct StatusRow {
    org: String,
    /// `affected`, `not_affected`, `unknown`, `fixed`, or null: none given.
    status: Option<String>,
    statement: String,
    references: Vec<String>,
    share: bool,
    updated_at: Option<i64>,
}

#[derive(Debug, Serialize)]
struct ParticipantView {
    name: String,
    role: Role,
    anonymous: bool,
    alias: String,
    contacts: Vec<String>,
}

async fn show_case(_cfg: &Config, store: &crate::store::Store, id: &str, json: bool) -> CmdResult {
    let world = store.world(&WorldQuery { case_public_ids: vec![id.to_string()], ..Default::default() }).await?;
    let case = world.case_by_public_id(id).ok_or_else(|| usage("ID", format!("no case {id}")))?.clone();
    let participants: Vec<ParticipantView> = case
        .participants
        .iter()
        .map(|p| {
            let name = p.org.and_then(|o| world.org(o)).map(|o| o.name.clone())
                .or_else(|| p.contact.and_then(|c| world.contact(c)).map(|c| c.email.clone()))
                .unwrap_or_default();
            let contacts = world.contacts.iter().filter(|c| (p.org.is_some() && c.org == p.org) || Some(c.id) == p.contact).map(|c| c.email.clone()).collect();
            ParticipantView { name, role: p.role, anonymous: p.anonymous, alias: p.alias.clone(), contacts }
        })
        .collect();
    let threads = world.threads.iter().map(|t| thread_name(&world, t)).collect();
    let history = store.case_history(case.id).await?;
    let record = store.case_record(case.id).await?;
    let statuses = status_rows(&world, &case, &record.statuses);
    let dates = Dates { created_at: history.iter().find(|h| h.kind == "case-created").map(|h| h.at), initial_contact_at: record.initial_contact_at, public_at: record.public_at };
    let status_history = store.status_history(case.id).await?;
    let view = CaseView { case, dates, participants, statuses, status_history, threads, history };
    if json {
        output::json(&view);
        return Ok(());
    }
    println!("{} {} ({}{})", view.case.public_id, view.case.title, view.case.state, if view.case.embargoed { ", embargoed" } else { "" });
    let date = |d: Option<i64>| d.map(crate::render::format_public_date).unwrap_or_else(|| "-".into());
    println!("  initial contact {}, public date {}", date(view.dates.initial_contact_at), date(view.dates.public_at));
    for s in &view.statuses {
        let shared = if s.share { "shared" } else { "not shared" };
        println!("  status {}: {} ({shared}) {}", s.org, s.status.as_deref().unwrap_or("none"), s.statement.lines().next().unwrap_or(""));
    }
    for p in &view.participants {
        let anon = if p.anonymous { format!(" anonymous as {:?}", p.alias) } else { String::new() };
        println!("  {} {}{}: {}", p.role, p.name, anon, p.contacts.join(", "));
    }
    for t in &view.threads {
        println!("  thread {t}");
    }
    for h in &view.history {
        println!("  {} {} {}", output::time(h.at), h.kind, h.detail);
    }
    Ok(())
}

/// Every vendor organization of the case with its status (none given: null).
fn status_rows(world: &World, case: &CaseSnap, statuses: &[crate::status::StatusSnap]) -> Vec<StatusRow> {
    case.participants
        .iter()
        .filter(|p| p.role == Role::Vendor)
        .filter_map(|p| p.org.and_then(|o| world.org(o)))
        .map(|o| {
            let s = statuses.iter().find(|s| s.org == o.id);
            StatusRow {
                org: o.name.clone(),
                status: s.and_then(|s| s.status).map(|v| v.as_str().to_string()),
                statement: s.map(|s| s.statement.clone()).unwrap_or_default(),
                references: s.map(|s| s.references.clone()).unwrap_or_default(),
                share: s.is_some_and(|s| s.share),
                updated_at: s.map(|s| s.updated_at),
            }
        })
        .collect()
}

#[derive(Debug, Subcommand)]
pub enum ReportCmd {
    /// List reports.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one report.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Accept a report: create its case (or add it to an existing one with --into) and
    /// make the reporter a participant.
    Accept {
        id: String,
        /// The title of the new case.
        #[arg(long, required_unless_present = "into", conflicts_with = "into")]
        title: Option<String>,
        /// An existing case the report becomes part of, e.g. VU#123456.
        #[arg(long)]
        into: Option<String>,
        /// The reporter asked not to take part in the case.
        #[arg(long)]
        no_reporter: bool,
    },
    /// Decline a report and tell the reporter (coordination.decline_text, or --text).
    Decline {
        id: String,
        /// What the reporter is told instead of the configured wording.
        #[arg(long)]
        text: Option<String>,
    },
}

pub async fn report(cfg: &Config, cmd: &ReportCmd) -> CmdResult {
    let store = crate::app::open_store(cfg).await?;
    match cmd {
        ReportCmd::List { json } => {
            let reports = store.list_reports().await?;
            if *json {
                output::json(&reports);
            } else {
                let rows: Vec<Vec<String>> = reports
                    .iter()
                    .map(|r| vec![r.id.clone(), r.state.clone(), r.reporter.clone(), r.case.clone().unwrap_or_default(), r.subject.clone()])
                    .collect();
                output::table(&["ID", "STATE", "REPORTER", "CASE", "SUBJECT"], &rows);
            }
        }
        ReportCmd::Show { id, json } => {
            let reports = store.list_reports().await?;
            let r = reports.iter().find(|r| r.id.eq_ignore_ascii_case(id)).ok_or_else(|| usage("ID", format!("no report {id}")))?;
            if *json {
                output::json(r);
            } else {
                println!("{} ({})\n  reporter:  {} (assurance {})\n  subject:   {}\n  case:      {}\n  received:  {}",
                    r.id, r.state, r.reporter, r.assurance, r.subject, r.case.as_deref().unwrap_or("-"), output::time(r.created_at));
            }
        }
        ReportCmd::Accept { id, title, into, no_reporter } => {
            let composer = crate::compose::Composer::from_config(cfg);
            let case = crate::coordination::accept_report(&store, &composer, cfg, id, into.as_deref(), title.as_deref(), !no_reporter)
                .await
                .map_err(|e| match (&e, into) {
                    (crate::store::StoreError::NotFound(_), Some(_)) => usage("--into", e.to_string()),
                    _ => Failure::from(e),
                })?;
            println!("{case}");
        }
        ReportCmd::Decline { id, text } => {
            let composer = crate::compose::Composer::from_config(cfg);
            let text = text.as_deref().unwrap_or(&cfg.coordination.decline_text);
            let p = crate::coordination::decline_report(&store, &composer, id, text).await?;
            println!("{id} declined; {} message(s) queued", p.outbox.len());
        }
    }
    Ok(())
}
