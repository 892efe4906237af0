//! Coordination duties over time (SPEC §8, §7.2, §7.5): when a reminder is due, which day a
//! daily job runs for, and what the coordinators are told (the daily summary, outbox items
//! given up, bouncing contacts).
//!
//! Pure: the scheduler (`schedule`) reads the clock and the database and passes `now` and
//! snapshots in; values come out.

use serde::{Deserialize, Serialize};

pub const DAY_MS: i64 = 86_400_000;
pub const HOUR_MS: i64 = 3_600_000;

/// SPEC §8: the reminder due for a vendor organization notified at `notified_at` that has
/// neither replied nor given a status: the largest of `days` that has passed by `now`.
/// Only the latest is sent when several passed (a scheduler that was down sends one).
pub fn reminder_due(notified_at: i64, days: &[u32], now: i64) -> Option<u32> {
    days.iter()
        .copied()
        .filter(|d| notified_at.saturating_add(i64::from(*d) * DAY_MS) <= now)
        .max()
}

/// `YYYY-MM-DD` (UTC) of an instant.
pub fn date_key(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// `YYYY-MM-DDTHH` (UTC) of an instant: the key of an hourly job.
pub fn hour_key(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%dT%H").to_string())
        .unwrap_or_default()
}

/// The day whose run of a daily job at `hour_utc` is the latest due at `now`: today once
/// the hour has come, else yesterday.
pub fn daily_key(now: i64, hour_utc: u32) -> String {
    let since_midnight = now.rem_euclid(DAY_MS);
    let due_today = since_midnight >= i64::from(hour_utc.min(23)) * HOUR_MS;
    date_key(if due_today { now } else { now - DAY_MS })
}

/// An instant written by a coordinator: RFC 3339 (`2026-04-20T14:00:00Z`, any offset),
/// `2026-04-20 14:00` or `2026-04-20 14:00:00` (UTC), or a date `2026-04-20` (00:00 UTC).
pub fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    for format in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, format) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    match chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        Ok(d) => Ok(d
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis())
            .unwrap_or_default()),
        Err(_) => Err(format!(
            "{s:?} is not a time: write 2026-04-20, 2026-04-20 14:00 (UTC) or 2026-04-20T14:00:00Z"
        )),
    }
}

/// A case as a line in the coordinators' mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseLine {
    pub case: String,
    pub title: String,
    /// An embargoed case's title goes only encrypted (SPEC §6.4).
    pub embargoed: bool,
    pub public_at: Option<i64>,
}

/// A vendor organization that has given no status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorLine {
    pub case: String,
    pub org: String,
    pub notified_at: Option<i64>,
}

/// A quarantine item waiting for a coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldLine {
    pub id: i64,
    pub reason: String,
    pub since: i64,
}

/// An outbox item given up (SPEC §7.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLine {
    pub id: i64,
    pub rcpt: String,
    pub kind: String,
    pub case: Option<String>,
    pub reply: String,
}

/// A contact marked bouncing (SPEC §7.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BouncingLine {
    pub email: String,
    pub since: i64,
}

/// A contact whose last usable key expires soon (SPEC §5.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyLine {
    pub contact: String,
    pub fingerprint: String,
    pub expires_at: i64,
}

/// The coordinators' daily summary (SPEC §8): what needs them today.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Daily {
    pub date: String,
    /// Open cases whose public date is at most 7 days away.
    pub due: Vec<CaseLine>,
    /// Open cases past their public date.
    pub past: Vec<CaseLine>,
    pub without_status: Vec<VendorLine>,
    /// Held for more than a day.
    pub quarantine: Vec<HeldLine>,
    pub dead: Vec<DeadLine>,
    pub bouncing: Vec<BouncingLine>,
    pub expiring: Vec<KeyLine>,
}

impl Daily {
    /// Nothing to tell: no mail is sent.
    pub fn is_empty(&self) -> bool {
        self.due.is_empty()
            && self.past.is_empty()
            && self.without_status.is_empty()
            && self.quarantine.is_empty()
            && self.dead.is_empty()
            && self.bouncing.is_empty()
            && self.expiring.is_empty()
    }
}

/// Open cases by their public date at `now`: (due within 7 days, past).
pub fn by_public_date(cases: Vec<CaseLine>, now: i64) -> (Vec<CaseLine>, Vec<CaseLine>) {
    let (mut due, mut past) = (Vec::new(), Vec::new());
    for c in cases {
        match c.public_at {
            Some(at) if at < now => past.push(c),
            Some(at) if at <= now + 7 * DAY_MS => due.push(c),
            _ => {}
        }
    }
    (due, past)
}

/// What the coordinators are told, and only they (SPEC §7.2, §7.5, §8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "note", rename_all = "kebab-case")]
pub enum CoordinatorNote {
    Daily(Daily),
    /// Outbox items given up, told at once.
    Dead {
        items: Vec<DeadLine>,
    },
    /// Contacts newly marked bouncing, told once.
    Bouncing {
        contacts: Vec<BouncingLine>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_passed_reminder_day_is_due() {
        let days = [7, 14];
        assert_eq!(reminder_due(0, &days, 7 * DAY_MS - 1), None);
        assert_eq!(reminder_due(0, &days, 7 * DAY_MS), Some(7));
        assert_eq!(reminder_due(0, &days, 13 * DAY_MS), Some(7));
        assert_eq!(reminder_due(0, &days, 20 * DAY_MS), Some(14));
        assert_eq!(reminder_due(0, &[], 20 * DAY_MS), None);
        assert_eq!(reminder_due(i64::MAX, &days, 0), None);
    }

    #[test]
    fn a_daily_job_is_due_for_today_once_its_hour_came() {
        // 2026-03-16 06:59 and 07:00 UTC.
        let day = 1_773_619_200_000;
        assert_eq!(daily_key(day + 7 * HOUR_MS - 60_000, 7), "2026-03-15");
        assert_eq!(daily_key(day + 7 * HOUR_MS, 7), "2026-03-16");
        assert_eq!(daily_key(day, 0), "2026-03-16");
        assert_eq!(hour_key(day + 7 * HOUR_MS + 5), "2026-03-16T07");
    }

    #[test]
    fn times_as_coordinators_write_them() {
        let day = 1_776_643_200_000; // 2026-04-20 00:00 UTC
        assert_eq!(parse_time("2026-04-20"), Ok(day));
        assert_eq!(parse_time(" 2026-04-20 14:00 "), Ok(day + 14 * HOUR_MS));
        assert_eq!(
            parse_time("2026-04-20T14:00:30"),
            Ok(day + 14 * HOUR_MS + 30_000)
        );
        assert_eq!(
            parse_time("2026-04-20T16:00:00+02:00"),
            Ok(day + 14 * HOUR_MS)
        );
        assert!(parse_time("next monday")
            .unwrap_err()
            .contains("not a time"));
        assert!(parse_time("2026-02-30").is_err());
    }

    #[test]
    fn cases_due_within_a_week_or_past() {
        let line = |case: &str, public_at| CaseLine {
            case: case.into(),
            title: String::new(),
            embargoed: false,
            public_at,
        };
        let now = 100 * DAY_MS;
        let (due, past) = by_public_date(
            vec![
                line("a", Some(now + 7 * DAY_MS)),
                line("b", Some(now - 1)),
                line("c", Some(now + 8 * DAY_MS)),
                line("d", None),
            ],
            now,
        );
        assert_eq!(
            due.iter().map(|c| c.case.as_str()).collect::<Vec<_>>(),
            ["a"]
        );
        assert_eq!(
            past.iter().map(|c| c.case.as_str()).collect::<Vec<_>>(),
            ["b"]
        );
        assert!(Daily::default().is_empty());
    }
}
