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

pub async fn init(dir: &Path, domain: &str) -> CmdResult {
    let mut secret = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut secret);
    let path = crate::config::write_init(dir, domain, secret)?;
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
        Action::Post { thread, assurance } => (Some(*thread), *assurance),
        Action::OpenReport { assurance } => (None, *assurance),
        Action::Quarantine { candidate } => (*candidate, crate::route::assurance(ev, &a.world, None)),
        _ => (None, crate::route::assurance(ev, &a.world, None)),
    };
    let thread = target.and_then(|t| a.world.thread(t));
    let author = ev.from.as_deref().and_then(|f| a.world.contact_by_email(f)).map(|c| c.id);
    let fan = match (&a.decision.action, thread) {
        (Action::Post { .. }, Some(t)) => {
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
                let rows: Vec<Vec<String>> = contacts
                    .iter()
                    .map(|c| vec![c.id.to_string(), c.email.clone(), c.name.clone(), org_name(c.org), c.notify.to_string()])
                    .collect();
                output::table(&["ID", "EMAIL", "NAME", "ORG", "NOTIFY"], &rows);
            }
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
    /// Set the case state (open, published, closed).
    SetState { id: String, state: String },
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
            store.add_participant(id, &p).await?;
            println!("added to {id}");
        }
        CaseCmd::Notify { id, org } => {
            let pipeline = Pipeline::new(store.clone(), cfg);
            let queued = crate::actions::notify_vendor(&store, &pipeline.composer, id, org).await?;
            println!("queued {} initial-contact message(s): {}", queued.len(), queued.join(", "));
        }
        CaseCmd::SetState { id, state } => {
            let state = parse_enum("STATE", state, CaseState::parse, CaseState::choices())?;
            store.set_case_state(id, state).await?;
            println!("{id} is {state}");
        }
    }
    Ok(())
}

#[derive(Debug, Serialize)]
struct CaseView {
    case: CaseSnap,
    participants: Vec<ParticipantView>,
    threads: Vec<String>,
    history: Vec<crate::store::history::HistoryRow>,
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
    let view = CaseView { case, participants, threads, history };
    if json {
        output::json(&view);
        return Ok(());
    }
    println!("{} {} ({}{})", view.case.public_id, view.case.title, view.case.state, if view.case.embargoed { ", embargoed" } else { "" });
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
    /// Accept a report: create its case and make the reporter a participant.
    Accept {
        id: String,
        #[arg(long)]
        title: String,
        /// The reporter asked not to take part in the case.
        #[arg(long)]
        no_reporter: bool,
    },
    /// Decline a report.
    Decline { id: String },
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
        ReportCmd::Accept { id, title, no_reporter } => {
            let case = store.accept_report(id, &cfg.gateway.case_prefix, title, !no_reporter).await?;
            println!("{case}");
        }
        ReportCmd::Decline { id } => {
            store.decline_report(id).await?;
            println!("{id} declined");
        }
    }
    Ok(())
}
