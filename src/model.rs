//! The domain model shared by the pure core: identifiers, enumerations, snapshots of
//! stored state, and the decision vocabulary (`Decision`, `Action`, `Reason`).
//!
//! Everything here is plain data. The I/O shell (`store`) loads snapshots; the pure core
//! (`route`, `audience`, `render`) reads them and returns values.

use crate::status::StatusUpdate;
use serde::Serialize;
use std::fmt;

pub type OrgId = i64;
pub type ContactId = i64;
pub type CaseId = i64;
pub type ReportId = i64;
pub type ThreadId = i64;
pub type PostId = i64;
pub type OutboxId = i64;

/// Declares a string-backed enum with `as_str`, `parse` and `Display`, so that the same
/// spelling is used in the database, the config, the CLI and JSON output.
macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $s),+ } }
            pub fn parse(s: &str) -> Option<Self> {
                let s = s.trim().to_ascii_lowercase().replace('_', "-");
                match s.as_str() { $($s => Some($name::$variant),)+ _ => None }
            }
            /// The accepted spellings, for error messages.
            pub fn choices() -> String {
                [$($s),+].join(", ")
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

string_enum!(OrgKind { Vendor => "vendor", Coordinator => "coordinator", Reporter => "reporter" });
string_enum!(Role { Vendor => "vendor", Reporter => "reporter", Coordinator => "coordinator" });
string_enum!(NotifyMode { Immediate => "immediate", Digest => "digest", None => "none" });
string_enum!(CaseState { Open => "open", Published => "published", Closed => "closed" });
string_enum!(ReportState { New => "new", Accepted => "accepted", Declined => "declined" });
string_enum!(ThreadKind { Discussion => "discussion", Private => "private", Report => "report" });
string_enum!(PostSource { Email => "email", Cli => "cli", System => "system" });
string_enum!(OutboxState {
    Pending => "pending", Sending => "sending", Sent => "sent", Failed => "failed", Dead => "dead"
});
string_enum!(OutboxKind {
    Notification => "notification", Acknowledgement => "acknowledgement",
    Notice => "notice", VendorNotification => "vendor-notification", Digest => "digest",
    CaseSummary => "case-summary", Joined => "late-joiner", Reminder => "reminder",
    CoordinatorSummary => "coordinator-summary", DeadNotice => "dead-notice",
    BouncingNotice => "bouncing-notice"
});
string_enum!(
    /// Sender assurance (SPEC §4), weakest first so that `Ord` compares strength.
    Assurance { None => "none", Address => "address", Dmarc => "dmarc", ReplyKey => "reply-key", Signed => "signed" }
);

/// An organization as the core sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgSnap {
    pub id: OrgId,
    pub name: String,
    pub kind: OrgKind,
    /// Lowercase mail domains of the organization.
    pub domains: Vec<String>,
}

/// A contact (one person, one address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContactSnap {
    pub id: ContactId,
    /// Lowercase address.
    pub email: String,
    pub name: String,
    pub org: Option<OrgId>,
    pub notify: NotifyMode,
    /// Receives only encrypted mail (SPEC §6.4); without OpenPGP this means "notice only".
    pub encrypt_only: bool,
    /// Three permanent delivery failures in a row (SPEC §7.5): sent nothing until a
    /// coordinator clears it.
    pub bouncing: bool,
}

/// A participant of a case: an organization, or a lone contact (a reporter without one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParticipantSnap {
    pub org: Option<OrgId>,
    pub contact: Option<ContactId>,
    pub role: Role,
    pub anonymous: bool,
    /// Shown instead of names when anonymous, e.g. "Vendor A".
    pub alias: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaseSnap {
    pub id: CaseId,
    /// `VU#123456`.
    pub public_id: String,
    pub title: String,
    pub state: CaseState,
    pub embargoed: bool,
    /// Per-case override of `posting.min_assurance`.
    pub min_assurance: Option<Assurance>,
    pub discussion: ThreadId,
    /// Private thread of each participating organization.
    pub private_threads: Vec<(OrgId, ThreadId)>,
    pub participants: Vec<ParticipantSnap>,
}

impl CaseSnap {
    pub fn private_thread_of(&self, org: OrgId) -> Option<ThreadId> {
        self.private_threads.iter().find(|(o, _)| *o == org).map(|(_, t)| *t)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportSnap {
    pub id: ReportId,
    /// `VRF#26-11-BCDFG`.
    pub public_id: String,
    pub reporter: ContactId,
    pub state: ReportState,
    pub case: Option<CaseId>,
    pub thread: ThreadId,
    pub subject: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThreadSnap {
    pub id: ThreadId,
    pub kind: ThreadKind,
    pub case: Option<CaseId>,
    /// The organization of a private thread.
    pub org: Option<OrgId>,
    pub report: Option<ReportId>,
}

/// The slice of the world a decision or a fan-out needs: the thread, its case or report,
/// and every organization and contact that can read it, plus all coordinators.
#[derive(Debug, Clone, Default, Serialize)]
pub struct World {
    pub orgs: Vec<OrgSnap>,
    pub contacts: Vec<ContactSnap>,
    pub cases: Vec<CaseSnap>,
    pub reports: Vec<ReportSnap>,
    pub threads: Vec<ThreadSnap>,
}

impl World {
    pub fn org(&self, id: OrgId) -> Option<&OrgSnap> {
        self.orgs.iter().find(|o| o.id == id)
    }
    pub fn contact(&self, id: ContactId) -> Option<&ContactSnap> {
        self.contacts.iter().find(|c| c.id == id)
    }
    pub fn contact_by_email(&self, email: &str) -> Option<&ContactSnap> {
        self.contacts.iter().find(|c| c.email.eq_ignore_ascii_case(email))
    }
    pub fn case(&self, id: CaseId) -> Option<&CaseSnap> {
        self.cases.iter().find(|c| c.id == id)
    }
    pub fn case_by_public_id(&self, public_id: &str) -> Option<&CaseSnap> {
        self.cases.iter().find(|c| c.public_id.eq_ignore_ascii_case(public_id))
    }
    pub fn report(&self, id: ReportId) -> Option<&ReportSnap> {
        self.reports.iter().find(|r| r.id == id)
    }
    pub fn report_by_public_id(&self, public_id: &str) -> Option<&ReportSnap> {
        self.reports.iter().find(|r| r.public_id.eq_ignore_ascii_case(public_id))
    }
    pub fn thread(&self, id: ThreadId) -> Option<&ThreadSnap> {
        self.threads.iter().find(|t| t.id == id)
    }
    pub fn org_kind_of(&self, contact: &ContactSnap) -> Option<OrgKind> {
        contact.org.and_then(|o| self.org(o)).map(|o| o.kind)
    }
    pub fn is_coordinator(&self, contact: &ContactSnap) -> bool {
        self.org_kind_of(contact) == Some(OrgKind::Coordinator)
    }
    pub fn coordinators(&self) -> impl Iterator<Item = &ContactSnap> {
        self.contacts.iter().filter(|c| self.is_coordinator(c))
    }
}

/// What to do with an inbound mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Post into an existing thread (case discussion, private thread or report thread).
    Post { thread: ThreadId, assurance: Assurance },
    /// Open a new report from a mail to an intake address.
    OpenReport { assurance: Assurance },
    /// Hold for a coordinator; `candidate` is the thread it would most likely belong to.
    Quarantine { candidate: Option<ThreadId> },
    /// Record only (duplicate, auto-reply, our own loop).
    Ignore,
    /// A delivery status notification; `outbox` is the item its VERP address binds.
    Bounce { outbox: Option<OutboxId> },
    /// SPEC §8: a vendor's status block, recorded for `org` and confirmed in its private
    /// thread; the text after the block (when there is any, `post_rest`) is posted into
    /// `thread`. The block itself is never posted (a statement that is not shared must not
    /// reach other participants).
    Status { thread: ThreadId, private: ThreadId, org: OrgId, assurance: Assurance, update: StatusUpdate, post_rest: bool },
    /// A status block that cannot be read: the whole mail goes into the vendor's private
    /// thread (never further), with a reply explaining the syntax.
    StatusHelp { private: ThreadId, assurance: Assurance },
    /// SPEC §8: the case summary for the sender, in their private channel `channel`.
    Info { case: CaseId, channel: ThreadId, assurance: Assurance },
}

impl Action {
    pub fn code(&self) -> &'static str {
        match self {
            Action::Post { .. } => "post",
            Action::OpenReport { .. } => "open-report",
            Action::Quarantine { .. } => "quarantine",
            Action::Ignore => "ignore",
            Action::Bounce { .. } => "bounce",
            Action::Status { .. } => "status",
            Action::StatusHelp { .. } => "status-help",
            Action::Info { .. } => "info",
        }
    }
}

/// Why. Every decision carries one; its `code()` is stable and used in the database, the
/// logs, `route explain --json` and the golden fixtures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    // Routed.
    ReplyKey,
    Threading,
    SubjectToken,
    CaseAddress,
    PrivateAddress,
    NewReport,
    /// A vendor's status block (SPEC §8).
    StatusUpdate,
    /// A status block that cannot be read, and why.
    StatusMalformed { problem: String },
    /// A case summary request to the info address.
    InfoRequest,
    // Ignored.
    Duplicate,
    AutoReply { why: String },
    OwnLoop,
    // Bounces.
    DeliveryStatus,
    // Quarantined.
    ConflictingIdentifiers { detail: String },
    BelowAssurance { have: Assurance, need: Assurance },
    NotAParticipant,
    UnknownSender,
    CaseClosed,
    ReportDeclined,
    UnknownCase { token: String },
    UnknownReport { token: String },
    InvalidReplyKey,
    AmbiguousPrivateTarget { vendors: usize },
    /// The info address with another signal: a request is not also a post.
    InfoWithOtherTarget,
    NoTarget,
    Oversize { size: u64, limit: u64 },
    Unparseable { error: String },
    /// Parsed, but content was damaged (truncated, broken transfer encoding, a missing
    /// boundary) or a structural limit was exceeded: held, never forwarded as if whole.
    Malformed { detail: String },
    ProcessingError { error: String },
    /// OpenPGP protection that must not be opened or trusted (SPEC §5.2): a SED packet, a
    /// missing or bad MDC, an MD5/SHA-1 data signature. No plaintext is released.
    PgpRefused { why: String },
    /// Encrypted, but not to a gateway key (or no gateway key is configured).
    PgpUndecryptable { detail: String },
    /// The same ciphertext came before in another thread or from another sender (SPEC §5.2).
    CiphertextReplayed,
    /// Released or rejected by a coordinator (for history).
    ReleasedByCoordinator,
}

impl Reason {
    pub fn code(&self) -> &'static str {
        use Reason::*;
        match self {
            ReplyKey => "reply-key",
            Threading => "threading",
            SubjectToken => "subject-token",
            CaseAddress => "case-address",
            PrivateAddress => "private-address",
            NewReport => "new-report",
            StatusUpdate => "status-update",
            StatusMalformed { .. } => "status-malformed",
            InfoRequest => "info-request",
            Duplicate => "duplicate",
            AutoReply { .. } => "auto-reply",
            OwnLoop => "own-loop",
            DeliveryStatus => "delivery-status",
            ConflictingIdentifiers { .. } => "conflicting-identifiers",
            BelowAssurance { .. } => "below-assurance",
            NotAParticipant => "not-a-participant",
            UnknownSender => "unknown-sender",
            CaseClosed => "case-closed",
            ReportDeclined => "report-declined",
            UnknownCase { .. } => "unknown-case",
            UnknownReport { .. } => "unknown-report",
            InvalidReplyKey => "invalid-reply-key",
            AmbiguousPrivateTarget { .. } => "ambiguous-private-target",
            InfoWithOtherTarget => "info-with-other-target",
            NoTarget => "no-target",
            Oversize { .. } => "oversize",
            Unparseable { .. } => "unparseable",
            Malformed { .. } => "malformed",
            ProcessingError { .. } => "processing-error",
            PgpRefused { .. } => "pgp-refused",
            PgpUndecryptable { .. } => "pgp-undecryptable",
            CiphertextReplayed => "ciphertext-replayed",
            ReleasedByCoordinator => "released-by-coordinator",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Reason::*;
        match self {
            AutoReply { why } => write!(f, "auto-reply ({why})"),
            ConflictingIdentifiers { detail } => write!(f, "conflicting-identifiers: {detail}"),
            BelowAssurance { have, need } => {
                write!(f, "below-assurance: sender assurance {have}, policy needs {need}")
            }
            UnknownCase { token } => write!(f, "unknown-case: {token}"),
            UnknownReport { token } => write!(f, "unknown-report: {token}"),
            AmbiguousPrivateTarget { vendors } => write!(
                f,
                "ambiguous-private-target: {vendors} vendor organizations among the recipients, need exactly one"
            ),
            Oversize { size, limit } => write!(f, "oversize: {size} bytes, limit {limit}"),
            StatusMalformed { problem } => write!(f, "status-malformed: {problem}"),
            Unparseable { error } => write!(f, "unparseable: {error}"),
            Malformed { detail } => write!(f, "malformed: {detail}"),
            ProcessingError { error } => write!(f, "processing-error: {error}"),
            PgpRefused { why } => write!(f, "pgp-refused: {why}"),
            PgpUndecryptable { detail } => write!(f, "pgp-undecryptable: {detail}"),
            other => f.write_str(other.code()),
        }
    }
}

/// A decision: what and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    pub reason: Reason,
}

impl Decision {
    pub fn new(action: Action, reason: Reason) -> Self {
        Decision { action, reason }
    }
    pub fn quarantine(reason: Reason, candidate: Option<ThreadId>) -> Self {
        Decision { action: Action::Quarantine { candidate }, reason }
    }
    pub fn ignore(reason: Reason) -> Self {
        Decision { action: Action::Ignore, reason }
    }
}

/// A file attached to a post or a mail, byte-exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl Attachment {
    pub fn sha256_hex(&self) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(&self.bytes))
    }
}
