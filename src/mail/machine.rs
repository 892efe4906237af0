//! Machine mail (SPEC §3 stage 3): our own loop marker, bounces (delivery status
//! notifications) and auto-replies. Such mail is recorded but never posted into a thread
//! and never answered.
//!
//! Out-of-office subjects are matched at the start of the subject only, the way
//! responders write them (`Automatic reply: …`, `Abwesenheitsnotiz: …`), so that a
//! person who writes "out of office next week" in the middle of a subject is still heard.

use super::{AddressBook, Inbound};

/// The header every outbound message carries; its value is the gateway's domain.
pub const LOOP_HEADER: &str = "X-Casegate-Loop";

/// What kind of sender wrote a mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MachineClass {
    Human,
    /// One of our own messages came back.
    OwnLoop,
    /// A delivery status notification.
    Bounce,
    /// An automatic response; `why` names the signal, e.g. `Auto-Submitted: auto-replied`.
    AutoReply {
        why: String,
    },
}

/// Classifies a mail, first match wins: own loop, bounce, auto-reply, human.
pub fn classify(inbound: &Inbound, book: &AddressBook) -> MachineClass {
    if is_own_loop(inbound, book) {
        return MachineClass::OwnLoop;
    }
    if is_bounce(inbound) {
        return MachineClass::Bounce;
    }
    match auto_reply_signal(inbound) {
        Some(why) => MachineClass::AutoReply { why },
        None => MachineClass::Human,
    }
}

/// RFC 5321 §4.5.5: a null reverse-path (`Return-Path: <>`), used by notifications so
/// that they are never answered.
pub fn is_null_return_path(inbound: &Inbound) -> bool {
    inbound
        .return_path
        .as_deref()
        .is_some_and(|p| p.trim().is_empty())
}

fn is_own_loop(inbound: &Inbound, book: &AddressBook) -> bool {
    let domain = book.domain.trim();
    !domain.is_empty()
        && inbound
            .header_values(LOOP_HEADER)
            .any(|v| v.trim().eq_ignore_ascii_case(domain))
}

/// Subjects of the delivery status notifications of common MTAs (Postfix, Gmail, Exim,
/// Sendmail, Exchange, qmail), lowercase.
const DSN_SUBJECTS: &[&str] = &[
    "undelivered mail returned to sender",
    "delivery status notification",
    "mail delivery failed",
    "returned mail",
    "undeliverable:",
    "undeliverable mail",
    "delivery failure",
    "failure notice",
    "mail delivery subsystem",
];

fn is_bounce(inbound: &Inbound) -> bool {
    // RFC 3464 §2 / RFC 6522: a DSN is multipart/report; report-type=delivery-status.
    if inbound.content_type == "multipart/report"
        && inbound.report_type.as_deref() == Some("delivery-status")
    {
        return true;
    }
    let from_mailer = inbound.from.as_ref().is_some_and(|from| {
        let local = from
            .address
            .rsplit_once('@')
            .map_or(from.address.as_str(), |(l, _)| l);
        local.eq_ignore_ascii_case("mailer-daemon") || local.eq_ignore_ascii_case("postmaster")
    });
    let subject = inbound.subject.to_lowercase();
    from_mailer
        && (is_null_return_path(inbound) || DSN_SUBJECTS.iter().any(|s| subject.contains(s)))
}

/// Headers whose mere presence marks an automatic response (de-facto conventions of
/// vacation programs and ticket systems).
const AUTO_HEADERS: &[&str] = &["X-Autoreply", "X-Autorespond", "X-Autoresponder"];

/// RFC 3834 §3.1.8 discusses `Precedence`: these values mark machine mail. `list` is
/// not among them: a person's mail that came through a mailing list is still a person's
/// (it is only never answered, see `intake`).
const AUTO_PRECEDENCE: &[&str] = &["bulk", "junk", "auto_reply"];

fn auto_reply_signal(inbound: &Inbound) -> Option<String> {
    // RFC 3834 §5: any value other than "no" (parameters after ';' aside) is automatic.
    let auto_submitted = inbound.header_values("Auto-Submitted").find(|value| {
        let keyword = value.split(';').next().unwrap_or_default().trim();
        !keyword.eq_ignore_ascii_case("no")
    });
    if let Some(value) = auto_submitted {
        return Some(format!("Auto-Submitted: {}", value.trim()));
    }
    for name in AUTO_HEADERS {
        if let Some(value) = inbound.header_values(name).next() {
            return Some(format!("{name}: {}", value.trim()));
        }
    }
    // X-Auto-Response-Suppress asks others not to respond; it says nothing about the
    // sender, so it is deliberately not a signal.
    let precedence = inbound.header_values("Precedence").find(|v| {
        AUTO_PRECEDENCE
            .iter()
            .any(|p| v.trim().eq_ignore_ascii_case(p))
    });
    if let Some(value) = precedence {
        return Some(format!("Precedence: {}", value.trim()));
    }
    out_of_office_subject(&inbound.subject).map(|phrase| format!("subject: {phrase}"))
}

/// Out-of-office and automatic-reply subject openings, by language. Matched
/// case-insensitively at the start of the subject, after leading blanks and brackets.
const OUT_OF_OFFICE: &[&str] = &[
    // English
    "Out of Office",
    "Out of the Office",
    "Automatic reply",
    "Auto:",
    "Autoreply",
    "Auto-reply",
    "Auto reply",
    "Auto response",
    "Automatic response",
    "Away from the office",
    // German
    "Abwesenheitsnotiz",
    "Automatische Antwort",
    // French
    "Réponse automatique",
    "Reponse automatique",
    "Absence du bureau",
    // Spanish
    "Respuesta automática",
    "Respuesta automatica",
    "Fuera de la oficina",
    // Italian
    "Risposta automatica",
    "Fuori sede",
    "Fuori ufficio",
    // Portuguese
    "Resposta automática",
    "Resposta automatica",
    "Ausente",
    // Dutch
    "Afwezigheidsbericht",
    "Automatisch antwoord",
    // Swedish
    "Frånvaro",
    "Automatiskt svar",
    // Norwegian and Danish
    "Autosvar",
    "Automatisk svar",
    "Fravær",
    // Finnish
    "Poissa",
    "Automaattinen vastaus",
    // Polish
    "Nieobecność",
    "Odpowiedź automatyczna",
    // Japanese
    "自動応答",
    "自動返信",
    "不在",
    // Chinese
    "自动回复",
    "自動回覆",
];

/// The out-of-office phrase a subject opens with, if any.
fn out_of_office_subject(subject: &str) -> Option<&'static str> {
    let opening = subject.trim_start_matches(|c: char| c.is_whitespace() || "[(【「".contains(c));
    let opening = opening.to_lowercase();
    OUT_OF_OFFICE.iter().copied().find(|phrase| {
        let phrase = phrase.to_lowercase();
        opening.starts_with(&phrase) && word_ends(&opening[phrase.len()..], &phrase)
    })
}

/// A phrase matches only as whole words: "Ausente" must not match "Ausentes …" but
/// "Abwesenheitsnotiz:" and CJK phrases need no separator.
fn word_ends(rest: &str, phrase: &str) -> bool {
    let last_is_letter = phrase
        .chars()
        .last()
        .is_some_and(|c| c.is_alphabetic() && !is_cjk(c));
    !last_is_letter || rest.chars().next().is_none_or(|c| !c.is_alphanumeric())
}

fn is_cjk(c: char) -> bool {
    matches!(c, '\u{3040}'..='\u{30ff}' | '\u{3400}'..='\u{4dbf}' | '\u{4e00}'..='\u{9fff}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::parse::parse;
    use crate::mail::Mailbox;
    use proptest::prelude::*;

    fn book() -> AddressBook {
        AddressBook {
            domain: "example.org".to_string(),
            local_part: "cases".to_string(),
            intake: vec!["security@example.org".to_string()],
            case_prefix: "VU#".to_string(),
        }
    }

    fn mail(from: &str, subject: &str, headers: &[(&str, &str)]) -> Inbound {
        Inbound {
            from: Some(Mailbox {
                name: None,
                address: from.to_string(),
            }),
            subject: subject.to_string(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            content_type: "text/plain".to_string(),
            ..Inbound::default()
        }
    }

    fn human() -> Inbound {
        mail(
            "alice@vendor.example",
            "Re: [VU#123456] Buffer overflow",
            &[],
        )
    }

    fn auto_why(inbound: &Inbound) -> Option<String> {
        match classify(inbound, &book()) {
            MachineClass::AutoReply { why } => Some(why),
            _ => None,
        }
    }

    fn parsed(s: &str) -> Inbound {
        parse(s.replace('\n', "\r\n").as_bytes()).expect("parses")
    }

    #[test]
    fn plain_replies_are_human() {
        assert_eq!(classify(&human(), &book()), MachineClass::Human);
        let m = mail(
            "alice@vendor.example",
            "Re: Automatic reply: [VU#123456]",
            &[
                ("Auto-Submitted", "no"),
                ("X-Auto-Response-Suppress", "All"),
                ("Precedence", "first-class"),
            ],
        );
        assert_eq!(classify(&m, &book()), MachineClass::Human);
    }

    #[test]
    fn own_loop_marker_comes_first() {
        let mut m = mail(
            "cases@example.org",
            "Automatic reply: x",
            &[
                ("x-casegate-loop", " EXAMPLE.org "),
                ("Auto-Submitted", "auto-generated"),
            ],
        );
        m.content_type = "multipart/report".to_string();
        m.report_type = Some("delivery-status".to_string());
        assert_eq!(classify(&m, &book()), MachineClass::OwnLoop);
        let other = mail(
            "cases@other.example",
            "x",
            &[(LOOP_HEADER, "other.example")],
        );
        assert_eq!(classify(&other, &book()), MachineClass::Human);
    }

    #[test]
    fn delivery_status_reports_are_bounces() {
        let mut m = human();
        m.content_type = "multipart/report".to_string();
        m.report_type = Some("delivery-status".to_string());
        assert_eq!(classify(&m, &book()), MachineClass::Bounce);
        m.report_type = Some("disposition-notification".to_string());
        assert_eq!(classify(&m, &book()), MachineClass::Human);
    }

    #[test]
    fn mailer_daemon_needs_null_path_or_dsn_subject() {
        let mut m = mail("MAILER-DAEMON@mx.vendor.example", "Hello", &[]);
        assert_eq!(classify(&m, &book()), MachineClass::Human);
        m.return_path = Some(String::new());
        assert_eq!(classify(&m, &book()), MachineClass::Bounce);
        for subject in [
            "Undelivered Mail Returned to Sender",
            "Delivery Status Notification (Failure)",
            "Mail delivery failed: returning message to sender",
            "Returned mail: see transcript for details",
            "Undeliverable: [VU#123456] New post",
        ] {
            let m = mail("postmaster@vendor.example", subject, &[]);
            assert_eq!(classify(&m, &book()), MachineClass::Bounce, "{subject}");
            let person = mail("alice@vendor.example", subject, &[]);
            assert_eq!(classify(&person, &book()), MachineClass::Human, "{subject}");
        }
    }

    #[test]
    fn null_return_path() {
        let mut m = human();
        assert!(!is_null_return_path(&m));
        m.return_path = Some("alice@vendor.example".to_string());
        assert!(!is_null_return_path(&m));
        m.return_path = Some(String::new());
        assert!(is_null_return_path(&m));
        // RFC 3834 §3.3: auto-replies also use <>; alone it is not a bounce.
        assert_eq!(classify(&m, &book()), MachineClass::Human);
    }

    #[test]
    fn auto_submitted_values() {
        for value in [
            "auto-replied",
            "auto-generated",
            "auto-notified; owner-email=\"a@b\"",
            "AUTO-REPLIED",
        ] {
            let m = mail("alice@vendor.example", "x", &[("Auto-Submitted", value)]);
            assert_eq!(auto_why(&m), Some(format!("Auto-Submitted: {value}")));
        }
        let m = mail("alice@vendor.example", "x", &[("auto-submitted", "No")]);
        assert_eq!(auto_why(&m), None);
    }

    #[test]
    fn vendor_autoreply_headers_and_precedence() {
        for name in ["X-Autoreply", "X-Autorespond", "x-autoresponder"] {
            let m = mail("alice@vendor.example", "x", &[(name, "yes")]);
            assert!(auto_why(&m).is_some_and(|w| w.ends_with(": yes")), "{name}");
        }
        for value in ["bulk", "junk", "auto_reply", " Bulk "] {
            let m = mail("alice@vendor.example", "x", &[("Precedence", value)]);
            assert_eq!(auto_why(&m), Some(format!("Precedence: {}", value.trim())));
        }
        let m = mail(
            "alice@vendor.example",
            "x",
            &[("X-Auto-Response-Suppress", "DR, OOF, AutoReply")],
        );
        assert_eq!(auto_why(&m), None);
    }

    #[test]
    fn list_mail_is_human() {
        let list = mail("alice@vendor.example", "x", &[("Precedence", "list")]);
        assert_eq!(classify(&list, &book()), MachineClass::Human);
        let footer = mail(
            "alice@vendor.example",
            "x",
            &[("List-Id", "<psirt.lists.vendor.example>")],
        );
        assert_eq!(classify(&footer, &book()), MachineClass::Human);
    }

    #[test]
    fn out_of_office_subjects_in_many_languages() {
        let cases = [
            ("Out of Office: [VU#123456] status", "Out of Office"),
            ("OUT OF OFFICE", "Out of Office"),
            ("Automatic reply: [VU#123456]", "Automatic reply"),
            ("Auto: Re: [VU#123456]", "Auto:"),
            ("Autoreply: x", "Autoreply"),
            ("Abwesenheitsnotiz: [VU#123456]", "Abwesenheitsnotiz"),
            ("Automatische Antwort: AW: x", "Automatische Antwort"),
            ("Réponse automatique : x", "Réponse automatique"),
            ("Absence du bureau", "Absence du bureau"),
            ("Respuesta automática: x", "Respuesta automática"),
            ("Fuera de la oficina", "Fuera de la oficina"),
            ("Risposta automatica: x", "Risposta automatica"),
            ("Fuori sede", "Fuori sede"),
            ("Resposta automática: x", "Resposta automática"),
            ("Ausente: x", "Ausente"),
            ("Afwezigheidsbericht: x", "Afwezigheidsbericht"),
            ("Automatisch antwoord: x", "Automatisch antwoord"),
            ("Frånvaro: x", "Frånvaro"),
            ("Autosvar: x", "Autosvar"),
            ("Fravær: x", "Fravær"),
            ("Poissa: x", "Poissa"),
            ("Automaattinen vastaus: x", "Automaattinen vastaus"),
            ("Nieobecność: x", "Nieobecność"),
            ("Odpowiedź automatyczna: x", "Odpowiedź automatyczna"),
            ("自動応答: [VU#123456]", "自動応答"),
            ("不在のお知らせ", "不在"),
            ("自动回复: [VU#123456]", "自动回复"),
            ("[Out of Office] back Monday", "Out of Office"),
        ];
        for (subject, phrase) in cases {
            let m = mail("alice@vendor.example", subject, &[]);
            assert_eq!(
                auto_why(&m),
                Some(format!("subject: {phrase}")),
                "{subject}"
            );
        }
    }

    #[test]
    fn people_mentioning_absence_are_still_heard() {
        for subject in [
            "Re: Out of Office: [VU#123456]",
            "[VU#123456] I will be out of office next week",
            "Ausentes en la reunión",
            "Automatically generated test vectors",
            "Poissakeskustelu",
        ] {
            let m = mail("alice@vendor.example", subject, &[]);
            assert_eq!(classify(&m, &book()), MachineClass::Human, "{subject}");
        }
    }

    #[test]
    fn real_shaped_mails() {
        let ooo = parsed(crate::mail::parse::tests::EXCHANGE_OOO);
        assert_eq!(
            classify(&ooo, &book()),
            MachineClass::AutoReply {
                why: "Auto-Submitted: auto-generated".to_string()
            }
        );
        let dsn = parsed(
            "Return-Path: <>
From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"

--b
Content-Type: text/plain

failed
--b
Content-Type: message/delivery-status

Action: failed
--b--
",
        );
        assert_eq!(classify(&dsn, &book()), MachineClass::Bounce);
        let gmail_vacation = parsed(
            "From: Bob <bob@gmail.example>
To: cases+r-abc@example.org
Subject: Re: [VU#123456] New post
Auto-Submitted: auto-replied
Precedence: bulk

I'm on vacation.
",
        );
        assert_eq!(
            classify(&gmail_vacation, &book()),
            MachineClass::AutoReply {
                why: "Auto-Submitted: auto-replied".to_string()
            }
        );
    }

    proptest! {
        #[test]
        fn classify_never_panics(
            subject in "\\PC{0,40}",
            name in "[A-Za-z-]{1,20}",
            value in "\\PC{0,20}",
            from in "\\PC{0,30}",
        ) {
            let m = mail(&from, &subject, &[(&name, &value)]);
            let _ = classify(&m, &book());
        }
    }
}
