//! Routing: a pure function from the evidence about one mail to a [`Decision`]
//! (SPEC §3 stages 6 and 7, §2, §4).
//!
//! The shell gathers [`Evidence`] (parsed mail, machine class, verified keys, lookups of
//! Message-IDs we sent) and a [`World`] holding every case, report, thread and contact the
//! evidence names. `decide` reads both and returns what to do and why. It never guesses:
//! signals that disagree send the mail to quarantine.

use crate::audience;
use crate::mail::auth_results::Dmarc;
use crate::mail::machine::MachineClass;
use crate::mail::tokens::SubjectToken;
use crate::model::*;
use crate::pgp::Protection;
use crate::status::StatusBlock;

/// Posting policy (SPEC §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `posting.min_assurance`; a case may override it.
    pub min_assurance: Assurance,
}

/// A reply address found among the recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyKeyEvidence {
    /// The HMAC verified and names this (thread, contact); the thread may not exist.
    Valid { thread: ThreadId, contact: ContactId },
    /// Bad encoding or HMAC.
    Invalid,
}

/// How a Message-ID we know was referenced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadingVia {
    InReplyTo,
    References,
}

/// Everything known about one mail before deciding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// Size of the raw mail and the configured limit.
    pub size: u64,
    pub max_size: u64,
    /// Set when the mail could not be parsed (or has no From address).
    pub parse_error: Option<String>,
    /// Content damage and exceeded limits found while parsing (`Inbound::damaged`).
    pub damaged: Vec<String>,
    /// An earlier processed mail has the same Message-ID (or the same bytes).
    pub duplicate: bool,
    pub machine: MachineClass,
    /// The outbox item named by a VERP bounce address, when verified.
    pub bounce_outbox: Option<OutboxId>,
    /// Lowercase From address.
    pub from: Option<String>,
    /// Our border MTA's DMARC verdict for the From domain (the topmost trusted
    /// Authentication-Results header that gives one).
    pub dmarc: Dmarc,
    /// Lowercase To and Cc addresses.
    pub direct_recipients: Vec<String>,
    /// The mail was sent to an intake address.
    pub to_intake: bool,
    pub reply_keys: Vec<ReplyKeyEvidence>,
    /// Public ids from case discussion addresses (`cases+vu123456@`).
    pub case_addresses: Vec<String>,
    /// Public ids from private addresses (`cases+vu123456-private@`).
    pub private_addresses: Vec<String>,
    /// Public ids from info addresses (`cases+vu123456-info@`).
    pub info_addresses: Vec<String>,
    /// A Message-ID from In-Reply-To (else References) that belongs to a thread.
    pub threading: Option<(ThreadId, ThreadingVia)>,
    pub subject_tokens: Vec<SubjectToken>,
    /// The OpenPGP evidence of stage 4 (SPEC §5); `None` when the mail carried none.
    pub protection: Option<Protection>,
    /// Earlier mails with the same ciphertext: (their thread, their lowercase sender).
    pub ciphertext_seen: Vec<(Option<ThreadId>, String)>,
    /// The status block at the top of the (opened) text (SPEC §8).
    pub status: StatusBlock,
    /// How many attachments the mail carries (posted with the text after a status block).
    pub attachments: usize,
}

impl Evidence {
    /// Evidence for a mail with no signals (a starting point for callers and tests).
    pub fn empty(size: u64, max_size: u64) -> Self {
        Evidence {
            size,
            max_size,
            parse_error: None,
            damaged: Vec::new(),
            duplicate: false,
            machine: MachineClass::Human,
            bounce_outbox: None,
            from: None,
            dmarc: Dmarc::Absent,
            direct_recipients: Vec::new(),
            to_intake: false,
            reply_keys: Vec::new(),
            case_addresses: Vec::new(),
            private_addresses: Vec::new(),
            info_addresses: Vec::new(),
            threading: None,
            subject_tokens: Vec::new(),
            protection: None,
            ciphertext_seen: Vec::new(),
            status: StatusBlock::None,
            attachments: 0,
        }
    }
}

/// A signal that names one thread, strongest kind first (the routed reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SignalKind {
    ReplyKey,
    PrivateAddress,
    CaseAddress,
    Threading,
    SubjectToken,
}

impl SignalKind {
    fn reason(self) -> Reason {
        match self {
            SignalKind::ReplyKey => Reason::ReplyKey,
            SignalKind::PrivateAddress => Reason::PrivateAddress,
            SignalKind::CaseAddress => Reason::CaseAddress,
            SignalKind::Threading => Reason::Threading,
            SignalKind::SubjectToken => Reason::SubjectToken,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            SignalKind::ReplyKey => "reply-key",
            SignalKind::PrivateAddress => "private-address",
            SignalKind::CaseAddress => "case-address",
            SignalKind::Threading => "threading",
            SignalKind::SubjectToken => "subject-token",
        }
    }
}

/// A signal resolved against the world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    pub kind: SignalKind,
    pub thread: ThreadId,
}

/// Decide what to do with one mail.
pub fn decide(ev: &Evidence, world: &World, policy: &Policy) -> Decision {
    if let Some(d) = screen(ev) {
        return d;
    }
    if !ev.info_addresses.is_empty() {
        return info_request(ev, world, policy);
    }
    let target = match resolve_target(ev, world) {
        Ok(Some(t)) => t,
        Ok(None) if ev.to_intake => {
            if replayed(ev, None) {
                return Decision::quarantine(Reason::CiphertextReplayed, None);
            }
            return Decision::new(Action::OpenReport { assurance: assurance(ev, world, None) }, Reason::NewReport);
        }
        Ok(None) => return Decision::quarantine(Reason::NoTarget, None),
        Err((reason, candidate)) => return Decision::quarantine(reason, candidate),
    };
    if replayed(ev, Some(target.thread)) {
        return Decision::quarantine(Reason::CiphertextReplayed, Some(target.thread));
    }
    authorize(ev, world, policy, target)
}

/// Stages 1–3: size, parse, duplicates and machine mail, before any routing.
fn screen(ev: &Evidence) -> Option<Decision> {
    if ev.size > ev.max_size {
        return Some(Decision::quarantine(Reason::Oversize { size: ev.size, limit: ev.max_size }, None));
    }
    if let Some(error) = &ev.parse_error {
        return Some(Decision::quarantine(Reason::Unparseable { error: error.clone() }, None));
    }
    if ev.duplicate {
        return Some(Decision::ignore(Reason::Duplicate));
    }
    match &ev.machine {
        MachineClass::Human => malformed(ev).or_else(|| pgp_refusal(ev)),
        MachineClass::OwnLoop => Some(Decision::ignore(Reason::OwnLoop)),
        MachineClass::Bounce => {
            Some(Decision::new(Action::Bounce { outbox: ev.bounce_outbox }, Reason::DeliveryStatus))
        }
        MachineClass::AutoReply { why } => Some(Decision::ignore(Reason::AutoReply { why: why.clone() })),
    }
}

/// SPEC §3: a mail whose content was damaged in parsing (or that exceeds a limit) is held
/// with the warnings, never forwarded as if whole; a coordinator may release it knowingly.
fn malformed(ev: &Evidence) -> Option<Decision> {
    if ev.damaged.is_empty() {
        return None;
    }
    Some(Decision::quarantine(Reason::Malformed { detail: ev.damaged.join("; ") }, None))
}

/// SPEC §5.2: refused protection (SED, MDC, weak hashes) or ciphertext not for the
/// gateway holds the mail before any routing; no plaintext was released.
fn pgp_refusal(ev: &Evidence) -> Option<Decision> {
    let refusal = ev.protection.as_ref()?.refusal.as_ref()?;
    Some(Decision::quarantine(refusal.reason(), None))
}

/// SPEC §5.2 ("Re: What's up Johnny"): ciphertext seen before from another sender, or in
/// another thread (a new report is always another thread), is never opened into this one.
fn replayed(ev: &Evidence, thread: Option<ThreadId>) -> bool {
    replay_refused(&ev.ciphertext_seen, ev.from.as_deref().unwrap_or_default(), thread)
}

/// The replay rule on the records of one ciphertext, `(their thread, their sender)`: a
/// record from another sender, or one naming another thread, or any record when this mail
/// names no thread (a new report is always another thread) refuses it.
pub fn replay_refused(seen: &[(Option<ThreadId>, String)], from: &str, thread: Option<ThreadId>) -> bool {
    seen.iter().any(|(t, sender)| {
        !sender.eq_ignore_ascii_case(from) || thread.is_none() || (t.is_some() && *t != thread)
    })
}

type Refusal = (Reason, Option<ThreadId>);

/// The thread every signal agrees on, `None` when there is no signal at all.
pub fn resolve_target(ev: &Evidence, world: &World) -> Result<Option<Signal>, Refusal> {
    let strong = thread_signals(ev, world)?;
    let first = strong.iter().min_by_key(|s| s.kind).cloned();
    if let Some(s) = strong.iter().find(|s| Some(s.thread) != first.as_ref().map(|f| f.thread)) {
        let f = first.as_ref().map(|f| f.kind.as_str()).unwrap_or_default();
        let detail = format!("{} and {} name different threads", f, s.kind.as_str());
        return Err((Reason::ConflictingIdentifiers { detail }, None));
    }
    let token_threads = token_threads(ev, world, first.as_ref())?;
    match first {
        Some(f) => Ok(Some(f)),
        None => match token_threads.as_slice() {
            [] => Ok(None),
            [t, rest @ ..] if rest.iter().all(|r| r == t) => {
                Ok(Some(Signal { kind: SignalKind::SubjectToken, thread: *t }))
            }
            _ => Err((
                Reason::ConflictingIdentifiers { detail: "subject tokens name different threads".into() },
                None,
            )),
        },
    }
}

/// Reply keys, case and private addresses and threading, each resolved to a thread.
fn thread_signals(ev: &Evidence, world: &World) -> Result<Vec<Signal>, Refusal> {
    let mut out = Vec::new();
    for key in &ev.reply_keys {
        match key {
            ReplyKeyEvidence::Valid { thread, .. } if world.thread(*thread).is_some() => {
                out.push(Signal { kind: SignalKind::ReplyKey, thread: *thread })
            }
            _ => return Err((Reason::InvalidReplyKey, None)),
        }
    }
    for id in &ev.case_addresses {
        let case = known_case(world, id)?;
        out.push(Signal { kind: SignalKind::CaseAddress, thread: case.discussion });
    }
    for id in &ev.private_addresses {
        let case = known_case(world, id)?;
        let thread = private_thread(ev, world, case)?;
        out.push(Signal { kind: SignalKind::PrivateAddress, thread });
    }
    if let Some((thread, _)) = ev.threading {
        out.push(Signal { kind: SignalKind::Threading, thread });
    }
    Ok(out)
}

fn known_case<'w>(world: &'w World, public_id: &str) -> Result<&'w CaseSnap, Refusal> {
    world
        .case_by_public_id(public_id)
        .ok_or_else(|| (Reason::UnknownCase { token: public_id.to_string() }, None))
}

/// SPEC §2: the private address means the sender's own organization's thread (vendor), or
/// the thread of the one vendor organization among the To/Cc recipients (coordinator).
fn private_thread(ev: &Evidence, world: &World, case: &CaseSnap) -> Result<ThreadId, Refusal> {
    let sender = ev
        .from
        .as_deref()
        .and_then(|f| world.contact_by_email(f))
        .ok_or((Reason::UnknownSender, None))?;
    if world.is_coordinator(sender) {
        let mut orgs: Vec<OrgId> = ev
            .direct_recipients
            .iter()
            .filter_map(|a| world.contact_by_email(a))
            .filter_map(|c| c.org)
            .filter(|o| is_vendor_participant(case, *o))
            .collect();
        orgs.sort_unstable();
        orgs.dedup();
        return match orgs.as_slice() {
            [org] => case
                .private_thread_of(*org)
                .ok_or((Reason::AmbiguousPrivateTarget { vendors: 0 }, None)),
            _ => Err((Reason::AmbiguousPrivateTarget { vendors: orgs.len() }, None)),
        };
    }
    sender
        .org
        .and_then(|o| case.private_thread_of(o))
        .ok_or((Reason::NotAParticipant, Some(case.discussion)))
}

fn is_vendor_participant(case: &CaseSnap, org: OrgId) -> bool {
    case.participants.iter().any(|p| p.org == Some(org) && p.role == Role::Vendor)
}

/// Subject tokens: each must agree with the strong signal when there is one; without one,
/// each names a thread (a case's discussion, a report's thread).
fn token_threads(ev: &Evidence, world: &World, strong: Option<&Signal>) -> Result<Vec<ThreadId>, Refusal> {
    let candidate = strong.map(|s| s.thread);
    let mut out = Vec::new();
    for token in &ev.subject_tokens {
        let (thread, case) = match token {
            SubjectToken::Case { public_id } => {
                let c = world
                    .case_by_public_id(public_id)
                    .ok_or_else(|| (Reason::UnknownCase { token: public_id.clone() }, candidate))?;
                (c.discussion, Some(c.id))
            }
            SubjectToken::Report { public_id } => {
                let r = world
                    .report_by_public_id(public_id)
                    .ok_or_else(|| (Reason::UnknownReport { token: public_id.clone() }, candidate))?;
                (r.thread, r.case)
            }
        };
        if let Some(s) = strong {
            let s_case = world.thread(s.thread).and_then(|t| t.case);
            let agrees = s.thread == thread || (case.is_some() && s_case == case);
            if !agrees {
                let detail = format!("{} and the subject token name different threads", s.kind.as_str());
                return Err((Reason::ConflictingIdentifiers { detail }, None));
            }
        }
        out.push(thread);
    }
    Ok(out)
}

/// The target thread is known: is the thread open, may the sender post, strongly enough?
fn authorize(ev: &Evidence, world: &World, policy: &Policy, target: Signal) -> Decision {
    let Some(thread) = world.thread(target.thread) else {
        return Decision::quarantine(Reason::NoTarget, None);
    };
    let case = thread.case.and_then(|c| world.case(c));
    let candidate = Some(thread.id);
    if case.is_some_and(|c| c.state == CaseState::Closed) {
        return Decision::quarantine(Reason::CaseClosed, candidate);
    }
    let report = thread.report.and_then(|r| world.report(r));
    if report.is_some_and(|r| r.state == ReportState::Declined) {
        return Decision::quarantine(Reason::ReportDeclined, candidate);
    }
    let Some(sender) = ev.from.as_deref().and_then(|f| world.contact_by_email(f)) else {
        return Decision::quarantine(Reason::UnknownSender, candidate);
    };
    if !audience::may_read(world, thread, sender.id) {
        return Decision::quarantine(Reason::NotAParticipant, candidate);
    }
    let have = assurance(ev, world, Some(sender));
    let need = case.and_then(|c| c.min_assurance).unwrap_or(policy.min_assurance);
    if have < need {
        return Decision::quarantine(Reason::BelowAssurance { have, need }, candidate);
    }
    match vendor_status(ev, thread, case, sender, have) {
        Some(d) => d,
        None => Decision::new(Action::Post { thread: thread.id, assurance: have }, target.kind.reason()),
    }
}

/// SPEC §8: a status block from a contact of a vendor organization of the case, written in
/// the case discussion or the organization's private thread, is a status update (or, when
/// it cannot be read, answered with the syntax); from anyone else, or anywhere else, the
/// mail is an ordinary post. Statements are welcome after publication too.
fn vendor_status(ev: &Evidence, thread: &ThreadSnap, case: Option<&CaseSnap>, sender: &ContactSnap, have: Assurance) -> Option<Decision> {
    if ev.status == StatusBlock::None || thread.kind == ThreadKind::Report {
        return None;
    }
    let case = case?;
    let org = sender.org.filter(|o| is_vendor_participant(case, *o))?;
    let private = case.private_thread_of(org)?;
    if thread.kind == ThreadKind::Private && thread.id != private {
        return None;
    }
    Some(match &ev.status {
        StatusBlock::Update { update, rest } => {
            let post_rest = !rest.trim().is_empty() || ev.attachments > 0;
            let action = Action::Status { thread: thread.id, private, org, assurance: have, update: update.clone(), post_rest };
            Decision::new(action, Reason::StatusUpdate)
        }
        StatusBlock::Malformed { error, .. } => {
            Decision::new(Action::StatusHelp { private, assurance: have }, Reason::StatusMalformed { problem: error.to_string() })
        }
        StatusBlock::None => return None,
    })
}

/// SPEC §2, §8: a mail to `cases+vu123456-info@` asks for the case summary. It is answered
/// to an authorized participant only (assurance per policy), in their private channel;
/// anything else is held like any mail that may not post. A request is never also a post:
/// another address signal (a reply key, a case or private address) is held.
fn info_request(ev: &Evidence, world: &World, policy: &Policy) -> Decision {
    let mut ids: Vec<String> = ev.info_addresses.iter().map(|i| i.to_ascii_uppercase()).collect();
    ids.dedup();
    let case = match ids.as_slice() {
        [one] => match known_case(world, one) {
            Ok(c) => c,
            Err((reason, candidate)) => return Decision::quarantine(reason, candidate),
        },
        _ => return Decision::quarantine(Reason::ConflictingIdentifiers { detail: "info addresses of different cases".into() }, None),
    };
    let candidate = Some(case.discussion);
    if !ev.reply_keys.is_empty() || !ev.case_addresses.is_empty() || !ev.private_addresses.is_empty() {
        return Decision::quarantine(Reason::InfoWithOtherTarget, candidate);
    }
    if let Err((reason, _)) = token_threads(ev, world, Some(&Signal { kind: SignalKind::CaseAddress, thread: case.discussion })) {
        return Decision::quarantine(reason, None);
    }
    if replayed(ev, Some(case.discussion)) {
        return Decision::quarantine(Reason::CiphertextReplayed, candidate);
    }
    if case.state == CaseState::Closed {
        return Decision::quarantine(Reason::CaseClosed, candidate);
    }
    let Some(sender) = ev.from.as_deref().and_then(|f| world.contact_by_email(f)) else {
        return Decision::quarantine(Reason::UnknownSender, candidate);
    };
    if !world.thread(case.discussion).is_some_and(|t| audience::may_read(world, t, sender.id)) {
        return Decision::quarantine(Reason::NotAParticipant, candidate);
    }
    let have = assurance(ev, world, Some(sender));
    let need = case.min_assurance.unwrap_or(policy.min_assurance);
    if have < need {
        return Decision::quarantine(Reason::BelowAssurance { have, need }, candidate);
    }
    let channel = audience::private_channel(world, case, sender).unwrap_or(case.discussion);
    Decision::new(Action::Info { case: case.id, channel, assurance: have }, Reason::InfoRequest)
}

/// SPEC §4: the sender's assurance. Only From, the reply key and signatures count.
pub fn assurance(ev: &Evidence, world: &World, sender: Option<&ContactSnap>) -> Assurance {
    let sender = sender.or_else(|| ev.from.as_deref().and_then(|f| world.contact_by_email(f)));
    let Some(sender) = sender else { return Assurance::None };
    // SPEC §4, §5.2: a good signature over the whole root by a certificate of this contact.
    if ev.protection.as_ref().and_then(Protection::authenticated) == Some(sender.id) {
        return Assurance::Signed;
    }
    let keyed = ev
        .reply_keys
        .iter()
        .any(|k| matches!(k, ReplyKeyEvidence::Valid { contact, .. } if *contact == sender.id));
    // SPEC §4: a reply key is a bearer secret; it authenticates its owner unless our MTA
    // says the From domain failed DMARC (the From is forged). `none` still counts: vendors
    // without DMARC are what reply keys are for.
    if keyed && ev.dmarc != Dmarc::Fail {
        Assurance::ReplyKey
    } else if ev.dmarc == Dmarc::Pass {
        Assurance::Dmarc
    } else {
        Assurance::Address
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CORA: ContactId = 1;
    const ALICE: ContactId = 2;
    const BOB: ContactId = 3;
    const IVAN: ContactId = 4;

    fn contact(id: ContactId, email: &str, org: OrgId) -> ContactSnap {
        ContactSnap { id, email: email.into(), name: email.into(), org: Some(org), notify: NotifyMode::Immediate, encrypt_only: false, bouncing: false }
    }

    /// Case 10 (VU#111111) with Acme (org 2, private thread 101) and Globex (org 3,
    /// private thread 102); discussion 100. Initech (org 4) is not a participant.
    fn world() -> World {
        let org = |id, name: &str, kind| OrgSnap { id, name: name.into(), kind, domains: vec![] };
        let vendor = |o| ParticipantSnap { org: Some(o), contact: None, role: Role::Vendor, anonymous: false, alias: String::new() };
        let thread = |id, kind, org| ThreadSnap { id, kind, case: Some(10), org, report: None };
        World {
            orgs: vec![org(1, "CERT", OrgKind::Coordinator), org(2, "Acme", OrgKind::Vendor), org(3, "Globex", OrgKind::Vendor), org(4, "Initech", OrgKind::Vendor)],
            contacts: vec![contact(CORA, "cora@cert.example", 1), contact(ALICE, "alice@acme.example", 2), contact(BOB, "bob@globex.example", 3), contact(IVAN, "ivan@initech.example", 4)],
            cases: vec![CaseSnap {
                id: 10,
                public_id: "VU#111111".into(),
                title: "t".into(),
                state: CaseState::Open,
                embargoed: false,
                min_assurance: None,
                discussion: 100,
                private_threads: vec![(2, 101), (3, 102)],
                participants: vec![vendor(2), vendor(3)],
            }],
            reports: vec![],
            threads: vec![thread(100, ThreadKind::Discussion, None), thread(101, ThreadKind::Private, Some(2)), thread(102, ThreadKind::Private, Some(3))],
        }
    }

    fn ev(from: &str) -> Evidence {
        Evidence { from: Some(from.into()), ..Evidence::empty(100, 1000) }
    }

    const POLICY: Policy = Policy { min_assurance: Assurance::Dmarc };

    fn status(text: &str) -> StatusBlock {
        crate::status::parse(text)
    }

    #[test]
    fn a_vendor_status_block_is_recorded_and_only_the_rest_is_posted() {
        let mut e = ev("alice@acme.example");
        e.reply_keys.push(ReplyKeyEvidence::Valid { thread: 100, contact: ALICE });
        e.status = status("Status: not affected\nShare: yes\n");
        let d = decide(&e, &world(), &POLICY);
        assert_eq!(d.reason, Reason::StatusUpdate);
        let Action::Status { thread, private, org, post_rest, ref update, .. } = d.action else { panic!("{d:?}") };
        assert_eq!((thread, private, org, post_rest), (100, 101, 2, false));
        assert_eq!(update.share, Some(true));
        e.status = status("Status: affected\n\nDetails follow.");
        assert!(matches!(decide(&e, &world(), &POLICY).action, Action::Status { post_rest: true, .. }));
        e.status = status("Status: fixed");
        e.attachments = 1;
        assert!(matches!(decide(&e, &world(), &POLICY).action, Action::Status { post_rest: true, .. }), "an attachment is posted");
    }

    #[test]
    fn a_malformed_status_block_goes_to_the_private_thread_with_help() {
        let mut e = ev("alice@acme.example");
        e.dmarc = Dmarc::Pass;
        e.case_addresses.push("VU#111111".into());
        e.status = status("Status: maybe\n\nWe are looking.");
        let d = decide(&e, &world(), &POLICY);
        assert_eq!(d.action, Action::StatusHelp { private: 101, assurance: Assurance::Dmarc });
        assert_eq!(d.reason.code(), "status-malformed");
        assert!(d.reason.to_string().contains("unknown status"), "{}", d.reason);
    }

    #[test]
    fn status_lines_from_others_or_below_policy_are_not_a_status() {
        let mut e = ev("cora@cert.example");
        e.dmarc = Dmarc::Pass;
        e.case_addresses.push("VU#111111".into());
        e.status = status("Status: affected");
        assert_eq!(decide(&e, &world(), &POLICY).action, Action::Post { thread: 100, assurance: Assurance::Dmarc }, "a coordinator's mail is a post");
        let mut bob = ev("bob@globex.example");
        bob.case_addresses.push("VU#111111".into());
        bob.status = status("Status: affected");
        assert_eq!(decide(&bob, &world(), &POLICY).reason.code(), "below-assurance");
        bob.dmarc = Dmarc::Pass;
        bob.case_addresses.clear();
        bob.threading = Some((101, ThreadingVia::InReplyTo));
        assert_eq!(decide(&bob, &world(), &POLICY).reason, Reason::NotAParticipant, "not in another vendor's private thread");
    }

    #[test]
    fn info_requests_are_answered_to_participants_only() {
        let mut e = ev("alice@acme.example");
        e.dmarc = Dmarc::Pass;
        e.info_addresses.push("VU#111111".into());
        assert_eq!(decide(&e, &world(), &POLICY), Decision::new(Action::Info { case: 10, channel: 101, assurance: Assurance::Dmarc }, Reason::InfoRequest));
        let mut cora = ev("cora@cert.example");
        cora.dmarc = Dmarc::Pass;
        cora.info_addresses.push("vu#111111".into());
        assert!(matches!(decide(&cora, &world(), &POLICY).action, Action::Info { channel: 100, .. }), "coordinators get it in the discussion");
        let mut ivan = ev("ivan@initech.example");
        ivan.dmarc = Dmarc::Pass;
        ivan.info_addresses.push("VU#111111".into());
        assert_eq!(decide(&ivan, &world(), &POLICY), Decision::quarantine(Reason::NotAParticipant, Some(100)));
        ivan.from = Some("mallory@evil.example".into());
        assert_eq!(decide(&ivan, &world(), &POLICY).reason, Reason::UnknownSender);
        e.dmarc = Dmarc::Absent;
        assert_eq!(decide(&e, &world(), &POLICY).reason.code(), "below-assurance");
        e.dmarc = Dmarc::Pass;
        e.case_addresses.push("VU#111111".into());
        assert_eq!(decide(&e, &world(), &POLICY).reason, Reason::InfoWithOtherTarget);
        e.case_addresses.clear();
        e.info_addresses.push("VU#999999".into());
        assert_eq!(decide(&e, &world(), &POLICY).reason.code(), "conflicting-identifiers");
    }

    #[test]
    fn reply_key_of_the_sender_posts_with_reply_key_assurance() {
        let mut e = ev("alice@acme.example");
        e.reply_keys.push(ReplyKeyEvidence::Valid { thread: 100, contact: ALICE });
        let d = decide(&e, &world(), &POLICY);
        assert_eq!(d, Decision::new(Action::Post { thread: 100, assurance: Assurance::ReplyKey }, Reason::ReplyKey));
    }

    #[test]
    fn a_colleague_using_a_reply_key_needs_dmarc() {
        let mut e = ev("bob@globex.example");
        e.reply_keys.push(ReplyKeyEvidence::Valid { thread: 100, contact: ALICE });
        let d = decide(&e, &world(), &POLICY);
        assert_eq!(d.reason, Reason::BelowAssurance { have: Assurance::Address, need: Assurance::Dmarc });
        e.dmarc = Dmarc::Pass;
        assert_eq!(decide(&e, &world(), &POLICY).action, Action::Post { thread: 100, assurance: Assurance::Dmarc });
    }

    #[test]
    fn a_reply_key_does_not_authenticate_a_from_that_failed_dmarc() {
        let mut e = ev("alice@acme.example");
        e.reply_keys.push(ReplyKeyEvidence::Valid { thread: 100, contact: ALICE });
        e.dmarc = Dmarc::Fail;
        assert_eq!(decide(&e, &world(), &POLICY).reason, Reason::BelowAssurance { have: Assurance::Address, need: Assurance::Dmarc });
        for vendor_without_dmarc in [Dmarc::None, Dmarc::Absent] {
            e.dmarc = vendor_without_dmarc;
            assert_eq!(decide(&e, &world(), &POLICY).action, Action::Post { thread: 100, assurance: Assurance::ReplyKey });
        }
    }

    #[test]
    fn disagreeing_signals_are_never_guessed() {
        let mut e = ev("alice@acme.example");
        e.reply_keys.push(ReplyKeyEvidence::Valid { thread: 101, contact: ALICE });
        e.case_addresses.push("VU#111111".into());
        assert_eq!(decide(&e, &world(), &POLICY).reason.code(), "conflicting-identifiers");
    }

    #[test]
    fn a_private_reply_key_agrees_with_its_case_token() {
        let mut e = ev("alice@acme.example");
        e.reply_keys.push(ReplyKeyEvidence::Valid { thread: 101, contact: ALICE });
        e.subject_tokens.push(SubjectToken::Case { public_id: "VU#111111".into() });
        assert_eq!(decide(&e, &world(), &POLICY).action, Action::Post { thread: 101, assurance: Assurance::ReplyKey });
    }

    #[test]
    fn coordinator_private_address_needs_exactly_one_vendor() {
        let mut e = ev("cora@cert.example");
        e.dmarc = Dmarc::Pass;
        e.private_addresses.push("VU#111111".into());
        e.direct_recipients = vec!["bob@globex.example".into()];
        assert_eq!(decide(&e, &world(), &POLICY).action, Action::Post { thread: 102, assurance: Assurance::Dmarc });
        e.direct_recipients.push("alice@acme.example".into());
        assert_eq!(decide(&e, &world(), &POLICY).reason, Reason::AmbiguousPrivateTarget { vendors: 2 });
        e.direct_recipients = vec!["ivan@initech.example".into()];
        assert_eq!(decide(&e, &world(), &POLICY).reason, Reason::AmbiguousPrivateTarget { vendors: 0 });
    }

    #[test]
    fn non_participants_and_strangers_are_held() {
        let mut e = ev("ivan@initech.example");
        e.dmarc = Dmarc::Pass;
        e.case_addresses.push("VU#111111".into());
        assert_eq!(decide(&e, &world(), &POLICY), Decision::quarantine(Reason::NotAParticipant, Some(100)));
        e.from = Some("mallory@evil.example".into());
        assert_eq!(decide(&e, &world(), &POLICY), Decision::quarantine(Reason::UnknownSender, Some(100)));
    }

    #[test]
    fn vendors_cannot_read_each_others_private_thread() {
        let mut e = ev("bob@globex.example");
        e.dmarc = Dmarc::Pass;
        e.threading = Some((101, ThreadingVia::InReplyTo));
        assert_eq!(decide(&e, &world(), &POLICY).reason, Reason::NotAParticipant);
    }

    #[test]
    fn no_signal_opens_a_report_only_at_intake() {
        let mut e = ev("someone@else.example");
        assert_eq!(decide(&e, &world(), &POLICY).reason, Reason::NoTarget);
        e.to_intake = true;
        assert_eq!(decide(&e, &world(), &POLICY).action, Action::OpenReport { assurance: Assurance::None });
    }

    #[test]
    fn machine_mail_and_oversize_come_first() {
        let mut e = ev("alice@acme.example");
        e.reply_keys.push(ReplyKeyEvidence::Valid { thread: 100, contact: ALICE });
        e.machine = MachineClass::AutoReply { why: "x".into() };
        assert_eq!(decide(&e, &world(), &POLICY).action, Action::Ignore);
        e.size = 2000;
        assert_eq!(decide(&e, &world(), &POLICY).reason, Reason::Oversize { size: 2000, limit: 1000 });
    }

    #[test]
    fn damaged_content_is_held_before_routing_but_machine_mail_is_not() {
        let mut e = ev("alice@acme.example");
        e.reply_keys.push(ReplyKeyEvidence::Valid { thread: 100, contact: ALICE });
        e.damaged = vec!["part 3: invalid or truncated base64; decoded what could be read".into()];
        let d = decide(&e, &world(), &POLICY);
        assert_eq!((d.action.code(), d.reason.code()), ("quarantine", "malformed"));
        assert!(d.reason.to_string().contains("truncated base64"), "{}", d.reason);
        e.machine = MachineClass::AutoReply { why: "x".into() };
        assert_eq!(decide(&e, &world(), &POLICY).action, Action::Ignore);
    }

    #[test]
    fn closed_cases_and_per_case_policy() {
        let mut w = world();
        let mut e = ev("alice@acme.example");
        e.dmarc = Dmarc::Pass;
        e.case_addresses.push("VU#111111".into());
        w.cases[0].min_assurance = Some(Assurance::ReplyKey);
        assert_eq!(decide(&e, &w, &POLICY).reason, Reason::BelowAssurance { have: Assurance::Dmarc, need: Assurance::ReplyKey });
        w.cases[0].state = CaseState::Closed;
        assert_eq!(decide(&e, &w, &POLICY).reason, Reason::CaseClosed);
    }

    fn signed_by(contact: ContactId) -> Protection {
        Protection {
            signature: crate::pgp::SigStatus::Good,
            coverage: crate::pgp::Coverage::Full,
            signer_contact: Some(contact),
            ..Protection::default()
        }
    }

    #[test]
    fn a_bound_signature_is_the_signed_level_and_satisfies_a_signed_case() {
        let mut w = world();
        w.cases[0].min_assurance = Some(Assurance::Signed);
        let mut e = ev("alice@acme.example");
        e.case_addresses.push("VU#111111".into());
        e.dmarc = Dmarc::Pass;
        assert_eq!(decide(&e, &w, &POLICY).reason, Reason::BelowAssurance { have: Assurance::Dmarc, need: Assurance::Signed });
        e.protection = Some(signed_by(ALICE));
        assert_eq!(decide(&e, &w, &POLICY).action, Action::Post { thread: 100, assurance: Assurance::Signed });
        let mut partial = signed_by(ALICE);
        partial.coverage = crate::pgp::Coverage::Partial;
        e.protection = Some(partial);
        assert_eq!(decide(&e, &w, &POLICY).reason, Reason::BelowAssurance { have: Assurance::Dmarc, need: Assurance::Signed });
        e.protection = Some(signed_by(BOB));
        assert_eq!(decide(&e, &w, &POLICY).reason.code(), "below-assurance", "signed by someone else");
    }

    #[test]
    fn refused_protection_is_held_before_routing() {
        let mut e = ev("alice@acme.example");
        e.reply_keys.push(ReplyKeyEvidence::Valid { thread: 100, contact: ALICE });
        e.protection = Some(Protection { refusal: Some(crate::pgp::Refusal::Sed), ..Protection::default() });
        let d = decide(&e, &world(), &POLICY);
        assert_eq!((d.action.code(), d.reason.code()), ("quarantine", "pgp-refused"));
    }

    #[test]
    fn replayed_ciphertext_is_refused_from_another_sender_or_thread() {
        let mut e = ev("alice@acme.example");
        e.reply_keys.push(ReplyKeyEvidence::Valid { thread: 100, contact: ALICE });
        e.ciphertext_seen = vec![(Some(100), "alice@acme.example".into())];
        assert_eq!(decide(&e, &world(), &POLICY).action, Action::Post { thread: 100, assurance: Assurance::ReplyKey });
        e.ciphertext_seen = vec![(Some(101), "alice@acme.example".into())];
        assert_eq!(decide(&e, &world(), &POLICY).reason, Reason::CiphertextReplayed);
        e.ciphertext_seen = vec![(Some(100), "bob@globex.example".into())];
        assert_eq!(decide(&e, &world(), &POLICY).reason, Reason::CiphertextReplayed);
        let mut intake = ev("alice@acme.example");
        intake.to_intake = true;
        intake.ciphertext_seen = vec![(Some(100), "alice@acme.example".into())];
        assert_eq!(decide(&intake, &world(), &POLICY).reason, Reason::CiphertextReplayed);
    }
}
