//! Vendor status by mail (SPEC §8): a vendor contact starts a reply with lines such as
//!
//! ```text
//! Status: not affected
//! Statement: Our httpd is built without the vulnerable module.
//!   It has been so since 2019.
//! References: https://acme.example/psirt/2026-17
//! Share: yes
//! ```
//!
//! Only unquoted lines at the very top of the text count: the block starts at the first
//! non-empty line and ends at the first empty line or the first line that is not a field
//! or a continuation (indented, or following `Statement:`). Quoted lines (`>`) never count.
//!
//! Pure: text in, a value out. What is stored per (case, vendor organization) is a
//! [`StatusSnap`]; the view decides who sees it (SPEC §8: other participants only when
//! shared).

use crate::model::OrgId;
use serde::Serialize;
use std::fmt;

/// What a vendor says about a case (SPEC §1 "vendor status").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VendorStatus {
    Affected,
    NotAffected,
    Unknown,
    Fixed,
}

impl VendorStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            VendorStatus::Affected => "affected",
            VendorStatus::NotAffected => "not_affected",
            VendorStatus::Unknown => "unknown",
            VendorStatus::Fixed => "fixed",
        }
    }

    /// How people write it: `not affected`.
    pub fn label(self) -> &'static str {
        match self {
            VendorStatus::NotAffected => "not affected",
            other => other.as_str(),
        }
    }

    /// The stored spelling read back; anything else is `None`.
    pub fn from_stored(s: &str) -> Option<VendorStatus> {
        [
            VendorStatus::Affected,
            VendorStatus::NotAffected,
            VendorStatus::Unknown,
            VendorStatus::Fixed,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    /// `affected`, `not affected` (also `not_affected`, `not-affected`, `unaffected`),
    /// `unknown`, `fixed`; any case, surrounding spaces and a final full stop ignored.
    pub fn parse(s: &str) -> Option<VendorStatus> {
        let words: Vec<String> = s
            .trim()
            .trim_end_matches('.')
            .split(|c: char| c.is_whitespace() || c == '_' || c == '-')
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        match words
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["affected"] | ["vulnerable"] => Some(VendorStatus::Affected),
            ["not", "affected"] | ["unaffected"] | ["not", "vulnerable"] => {
                Some(VendorStatus::NotAffected)
            }
            ["unknown"] => Some(VendorStatus::Unknown),
            ["fixed"] => Some(VendorStatus::Fixed),
            _ => None,
        }
    }
}

/// The status of one vendor organization in a case, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusSnap {
    pub org: OrgId,
    /// `None`: only a statement was given so far.
    pub status: Option<VendorStatus>,
    /// Empty when none was given.
    pub statement: String,
    pub references: Vec<String>,
    /// Whether other participants may see it (SPEC §8); the default is not.
    pub share: bool,
    /// The statement arrived encrypted: it leaves only encrypted (docs/decisions.md).
    pub encrypted: bool,
    pub updated_at: i64,
}

impl StatusSnap {
    /// `update` applied to what was stored (`None`: nothing yet). A field the update does
    /// not give keeps its value; a statement-only update keeps the status.
    /// Content that arrived encrypted stays so: `encrypted` is sticky while the statement
    /// is kept.
    pub fn updated(
        org: OrgId,
        old: Option<&StatusSnap>,
        u: &StatusUpdate,
        encrypted: bool,
        now_ms: i64,
    ) -> StatusSnap {
        let kept = u.statement.is_none() && old.is_some_and(|o| o.encrypted);
        StatusSnap {
            encrypted: encrypted || kept,
            org,
            status: u.status.or(old.and_then(|o| o.status)),
            statement: u
                .statement
                .clone()
                .or_else(|| old.map(|o| o.statement.clone()))
                .unwrap_or_default(),
            references: if u.references.is_empty() {
                old.map(|o| o.references.clone()).unwrap_or_default()
            } else {
                u.references.clone()
            },
            share: u.share.or(old.map(|o| o.share)).unwrap_or(false),
            updated_at: now_ms,
        }
    }
}

impl fmt::Display for VendorStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A status block read from the top of a mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusUpdate {
    /// `None` when the block only carries a statement (kept with the current status).
    pub status: Option<VendorStatus>,
    pub statement: Option<String>,
    pub references: Vec<String>,
    /// `Share: yes|no`; `None` when not given (the default is not to share).
    pub share: Option<bool>,
}

/// Why a status block could not be read; the vendor is told, with the syntax.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusSyntaxError {
    /// The offending line as written.
    pub line: String,
    pub problem: String,
}

impl fmt::Display for StatusSyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {:?}", self.problem, self.line)
    }
}

/// What the top of a mail says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusBlock {
    /// No status block: an ordinary mail.
    None,
    Update {
        update: StatusUpdate,
        rest: String,
    },
    Malformed {
        error: StatusSyntaxError,
        rest: String,
    },
}

/// The syntax, for the reply to a malformed block.
pub const SYNTAX: &str = "Status: affected | not affected | unknown | fixed\n\
Statement: one or more lines of text (optional)\n\
References: one or more URLs (optional)\n\
Share: yes | no (optional; whether other participants see the statement, default no)\n\
\n\
The lines must come first in your message, before any other text, and not quoted.";

/// The text of the system post that confirms a recorded status to the vendor, in its
/// private thread (only its organization and the coordinators read it).
pub fn confirmation(case: &str, org: &str, s: &StatusSnap) -> String {
    let status = s
        .status
        .map(|v| v.label().to_string())
        .unwrap_or_else(|| "none given yet".into());
    let mut out = format!("Your status for {case} is recorded for {org}.\n\nStatus: {status}\n");
    if !s.statement.trim().is_empty() {
        out.push_str("Statement:\n");
        for line in s.statement.lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    for r in &s.references {
        out.push_str(&format!("Reference: {r}\n"));
    }
    out.push_str(if s.share {
        "Shared: yes. The other participants of the case see this status and statement\n(in the case summary).\n"
    } else {
        "Shared: no. Only your organization and the coordinators see this status and\nstatement; send \"Share: yes\" to show them to the other participants.\n"
    });
    out.push_str("\nTo change it, start a new message with a status block; lines you leave out\nkeep their value.\n");
    out
}

/// The text of the system post that answers a status block that cannot be read.
pub fn syntax_help(case: &str, error: &StatusSyntaxError) -> String {
    let problem = if error.line.is_empty() {
        error.problem.clone()
    } else {
        format!("{}: \"{}\"", error.problem, error.line)
    };
    format!(
        "Your message about {case} starts like a status block, but we could not read it\n\
         ({problem}), so no status was recorded. Your message went no further than this\n\
         private thread of your organization with the coordinators.\n\n\
         A status block looks like this:\n\n{SYNTAX}\n"
    )
}

const FIELDS: [&str; 4] = ["status", "statement", "references", "share"];

/// Reads the status block at the top of `text`; `rest` is the text after it, as written.
pub fn parse(text: &str) -> StatusBlock {
    let lines: Vec<&str> = text.lines().collect();
    let Some(start) = lines.iter().position(|l| !l.trim().is_empty()) else {
        return StatusBlock::None;
    };
    if field(lines[start]).is_none() {
        return StatusBlock::None;
    }
    let mut block = Builder::default();
    let mut end = lines.len();
    for (i, line) in lines.iter().enumerate().skip(start) {
        if line.trim().is_empty() {
            end = i;
            break;
        }
        if !block.take(line) {
            end = i;
            break;
        }
    }
    let rest = lines[end..].join("\n").trim_start_matches('\n').to_string();
    match block.finish() {
        Ok(update) => StatusBlock::Update { update, rest },
        Err(error) => StatusBlock::Malformed { error, rest },
    }
}

/// `Name: value` for one of the block's field names (any case); the name lowercase.
fn field(line: &str) -> Option<(&'static str, &str)> {
    let (name, value) = line.split_once(':')?;
    let name = name.trim().to_ascii_lowercase();
    FIELDS
        .iter()
        .find(|f| **f == name)
        .map(|f| (*f, value.trim()))
}

#[derive(Debug, Default)]
struct Builder {
    status: Option<Result<VendorStatus, String>>,
    statement: Option<Vec<String>>,
    references: Vec<String>,
    share: Option<Result<bool, String>>,
    /// The last field seen takes continuation lines.
    last: Option<&'static str>,
}

impl Builder {
    /// Takes one non-empty line; `false` when the line is not part of the block.
    fn take(&mut self, line: &str) -> bool {
        if line.trim_start().starts_with('>') {
            return false;
        }
        if let Some((name, value)) = field(line) {
            self.set(name, value, line);
            self.last = Some(name);
            return true;
        }
        let continuation = line.starts_with([' ', '\t']) || self.last == Some("statement");
        match self.last {
            Some("statement") | Some("references") if continuation => {
                let v = line.trim();
                if self.last == Some("statement") {
                    self.statement
                        .get_or_insert_with(Vec::new)
                        .push(v.to_string());
                } else {
                    self.references
                        .extend(v.split_whitespace().map(str::to_string));
                }
                true
            }
            _ => false,
        }
    }

    fn set(&mut self, name: &'static str, value: &str, line: &str) {
        match name {
            "status" => {
                self.status = Some(VendorStatus::parse(value).ok_or_else(|| line.to_string()))
            }
            "statement" => {
                self.statement = Some(
                    vec![value.to_string()]
                        .into_iter()
                        .filter(|v| !v.is_empty())
                        .collect(),
                )
            }
            "references" => self
                .references
                .extend(value.split_whitespace().map(str::to_string)),
            _ => {
                let share = match value.trim().to_ascii_lowercase().as_str() {
                    "yes" | "y" | "true" => Ok(true),
                    "no" | "n" | "false" => Ok(false),
                    _ => Err(line.to_string()),
                };
                self.share = Some(share);
            }
        }
    }

    fn finish(self) -> Result<StatusUpdate, StatusSyntaxError> {
        let bad = |line: String, problem: &str| StatusSyntaxError {
            line,
            problem: problem.to_string(),
        };
        let status = self
            .status
            .transpose()
            .map_err(|l| bad(l, "unknown status"))?;
        let share = self
            .share
            .transpose()
            .map_err(|l| bad(l, "Share must be yes or no"))?;
        let statement = self
            .statement
            .map(|s| s.join("\n"))
            .filter(|s| !s.trim().is_empty());
        if let Some(r) = self.references.iter().find(|r| !is_url(r)) {
            return Err(bad(r.clone(), "a reference must be an http or https URL"));
        }
        if status.is_none() && statement.is_none() {
            return Err(bad(
                String::new(),
                "a status block needs a Status or a Statement line",
            ));
        }
        Ok(StatusUpdate {
            status,
            statement,
            references: self.references,
            share,
        })
    }
}

fn is_url(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && s.len() > 10
        && !s.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(text: &str) -> (StatusUpdate, String) {
        match parse(text) {
            StatusBlock::Update { update, rest } => (update, rest),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_full_block_at_the_top() {
        let (u, rest) = update(
            "\nstatus: Not Affected.\nStatement: Built without mod_x.\n  Since 2019.\nReferences: https://acme.example/a\n https://acme.example/b\nSHARE: yes\n\nThanks, Alice\n> Status: affected\n",
        );
        assert_eq!(u.status, Some(VendorStatus::NotAffected));
        assert_eq!(
            u.statement.as_deref(),
            Some("Built without mod_x.\nSince 2019.")
        );
        assert_eq!(
            u.references,
            ["https://acme.example/a", "https://acme.example/b"]
        );
        assert_eq!(u.share, Some(true));
        assert_eq!(rest, "Thanks, Alice\n> Status: affected");
    }

    #[test]
    fn spellings_of_each_status() {
        for (s, want) in [
            ("affected", VendorStatus::Affected),
            ("AFFECTED", VendorStatus::Affected),
            ("not_affected", VendorStatus::NotAffected),
            ("not-affected", VendorStatus::NotAffected),
            ("not   affected", VendorStatus::NotAffected),
            ("unknown", VendorStatus::Unknown),
            ("Fixed.", VendorStatus::Fixed),
        ] {
            assert_eq!(VendorStatus::parse(s), Some(want), "{s}");
        }
        assert_eq!(VendorStatus::parse("maybe"), None);
        assert_eq!(VendorStatus::parse("affected not"), None);
    }

    #[test]
    fn only_the_unquoted_top_counts() {
        assert_eq!(
            parse("> Status: affected\n\nNo status from us yet."),
            StatusBlock::None
        );
        assert_eq!(
            parse("Hi all,\nStatus: affected\n"),
            StatusBlock::None,
            "text before the block"
        );
        assert_eq!(parse(""), StatusBlock::None);
        assert_eq!(parse("Statusbericht folgt."), StatusBlock::None);
        let (u, rest) = update("Status: fixed\n> Status: affected\nquoted below");
        assert_eq!(u.status, Some(VendorStatus::Fixed));
        assert_eq!(rest, "> Status: affected\nquoted below");
    }

    #[test]
    fn unknown_values_are_answered_not_ignored() {
        let StatusBlock::Malformed { error, .. } = parse("Status: maybe\n\nbody") else {
            panic!("not malformed")
        };
        assert_eq!(error.problem, "unknown status");
        assert_eq!(error.line, "Status: maybe");
        let StatusBlock::Malformed { error, .. } = parse("Status: affected\nShare: perhaps") else {
            panic!()
        };
        assert!(error.problem.contains("Share"));
        let StatusBlock::Malformed { error, .. } =
            parse("Status: affected\nReferences: see our site")
        else {
            panic!()
        };
        assert!(error.problem.contains("URL"));
        let StatusBlock::Malformed { .. } = parse("Share: yes\n") else {
            panic!("a block without status or statement")
        };
    }

    #[test]
    fn a_later_update_keeps_what_it_does_not_give() {
        let (first, _) = update("Status: affected\nStatement: We ship 4.2.\nShare: yes\nReferences: https://acme.example/a");
        let old = StatusSnap::updated(7, None, &first, false, 1);
        assert_eq!(
            (old.status, old.share, old.statement.as_str()),
            (Some(VendorStatus::Affected), true, "We ship 4.2.")
        );
        let (second, _) = update("Statement: 4.2 is out.");
        let new = StatusSnap::updated(7, Some(&old), &second, false, 2);
        assert_eq!(
            (
                new.status,
                new.share,
                new.statement.as_str(),
                new.updated_at
            ),
            (Some(VendorStatus::Affected), true, "4.2 is out.", 2)
        );
        assert_eq!(new.references, ["https://acme.example/a"]);
        let (unshare, _) = update("Status: fixed\nShare: no");
        assert!(!StatusSnap::updated(7, Some(&new), &unshare, false, 3).share);
        assert_eq!(StatusSnap::updated(7, None, &second, false, 4).status, None);
        for v in [
            VendorStatus::Affected,
            VendorStatus::NotAffected,
            VendorStatus::Unknown,
            VendorStatus::Fixed,
        ] {
            assert_eq!(VendorStatus::from_stored(v.as_str()), Some(v));
        }
        assert_eq!(VendorStatus::from_stored("not affected"), None);
        let secret = StatusSnap::updated(7, None, &first, true, 5);
        assert!(
            StatusSnap::updated(7, Some(&secret), &unshare, false, 6).encrypted,
            "the encrypted statement is kept"
        );
        assert!(
            !StatusSnap::updated(7, Some(&secret), &second, false, 7).encrypted,
            "a new plain statement replaces it"
        );
    }

    #[test]
    fn a_statement_alone_is_an_update() {
        let (u, rest) = update("Statement: A fix ships in 7.3.\n");
        assert_eq!((u.status, u.share), (None, None));
        assert_eq!(u.statement.as_deref(), Some("A fix ships in 7.3."));
        assert_eq!(rest, "");
    }
}
