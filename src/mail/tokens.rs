//! Case and report tokens in subjects, and the meaning of the gateway's own addresses
//! (SPEC §2).
//!
//! Tokens are found anywhere in a decoded subject, so reply prefixes (`Re:`, `AW:`,
//! `SV:`, `RE[2]:` …) and vendor tracking ids around them do not matter. A token is a
//! whole word: it is not preceded by a letter or digit, and not followed by one.

use super::AddressBook;

/// A case or report id found in a subject, normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectToken {
    /// `VU#123456` (the configured prefix and six digits).
    Case { public_id: String },
    /// `VRF#26-11-BCDFG` (uppercase).
    Report { public_id: String },
}

/// What one of the gateway's addresses stands for (SPEC §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayAddress {
    /// An intake address (`security@domain`).
    Intake,
    /// `cases@domain` without a tag.
    Bare,
    /// `cases+vu123456@domain`: the case discussion.
    Case { public_id: String },
    /// `cases+vu123456-private@domain`: a private thread of the case.
    CasePrivate { public_id: String },
    /// `cases+vu123456-info@domain`: a case summary request.
    CaseInfo { public_id: String },
    /// `cases+r-<key>@domain`: a reply address; the key is lowercase.
    Reply { key: String },
    /// `cases+b-<key>@domain`: a bounce (VERP) return path.
    Bounce { key: String },
    /// `cases+<tag>@domain` with a tag of none of the forms above.
    UnknownTag { tag: String },
}

/// The letters of report ids: `VRF#YY-MM-` then five uppercase consonants (no vowels,
/// no Y) (SPEC §1).
const REPORT_LETTERS: &str = "BCDFGHJKLMNPQRSTVWXZ";
const REPORT_PREFIX: &str = "vrf";
const CASE_DIGITS: usize = 6;

/// Every case and report token in a subject, in order of appearance, without repeats.
pub fn subject_tokens(subject: &str, book: &AddressBook) -> Vec<SubjectToken> {
    let letters = book.prefix_letters();
    let chars: Vec<char> = subject.chars().collect();
    let mut found: Vec<SubjectToken> = Vec::new();
    for start in 0..chars.len() {
        if start > 0 && chars[start - 1].is_alphanumeric() {
            continue;
        }
        let token =
            case_token_at(&chars, start, &letters, book).or_else(|| report_token_at(&chars, start));
        if let Some(token) = token.filter(|t| !found.contains(t)) {
            found.push(token);
        }
    }
    found
}

/// Matches `word` case-insensitively at `at`; returns the index after it.
fn match_word(chars: &[char], at: usize, word: &str) -> Option<usize> {
    let mut i = at;
    for w in word.chars() {
        if !chars.get(i)?.eq_ignore_ascii_case(&w) {
            return None;
        }
        i += 1;
    }
    Some(i)
}

/// The separator between prefix letters and the number: `#` (with optional blanks
/// around it), `-`, or nothing.
fn skip_separator(chars: &[char], at: usize) -> usize {
    let blank = |i: usize| matches!(chars.get(i), Some(' ' | '\t'));
    let mut i = at;
    while blank(i) {
        i += 1;
    }
    if chars.get(i) == Some(&'#') {
        i += 1;
        while blank(i) {
            i += 1;
        }
        return i;
    }
    if chars.get(at) == Some(&'-') {
        return at + 1;
    }
    at
}

/// Whether a token that ends at `end` is a whole word.
fn ends_word(chars: &[char], end: usize) -> bool {
    chars.get(end).is_none_or(|c| !c.is_alphanumeric())
}

fn case_token_at(
    chars: &[char],
    start: usize,
    letters: &str,
    book: &AddressBook,
) -> Option<SubjectToken> {
    // Without prefix letters every six-digit number would be a token: match nothing.
    if letters.is_empty() {
        return None;
    }
    let after_letters = match_word(chars, start, letters)?;
    let digits_start = skip_separator(chars, after_letters);
    let digits: String = chars
        .get(digits_start..digits_start + CASE_DIGITS)?
        .iter()
        .collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) || !ends_word(chars, digits_start + CASE_DIGITS)
    {
        return None;
    }
    Some(SubjectToken::Case {
        public_id: book.case_public_id(&digits),
    })
}

fn report_token_at(chars: &[char], start: usize) -> Option<SubjectToken> {
    let after_prefix = match_word(chars, start, REPORT_PREFIX)?;
    let i = skip_separator(chars, after_prefix);
    // `YY-MM-` then five consonants: eleven characters.
    let body: Vec<char> = chars
        .get(i..i + 11)?
        .iter()
        .map(char::to_ascii_uppercase)
        .collect();
    let digit = |k: usize| body[k].is_ascii_digit();
    let shape = digit(0)
        && digit(1)
        && body[2] == '-'
        && digit(3)
        && digit(4)
        && body[5] == '-'
        && body[6..].iter().all(|&c| REPORT_LETTERS.contains(c));
    if !shape || !ends_word(chars, i + 11) {
        return None;
    }
    let body: String = body.into_iter().collect();
    Some(SubjectToken::Report {
        public_id: format!("VRF#{body}"),
    })
}

/// What an address means to the gateway; `None` for addresses that are not its own.
/// Addresses compare case-insensitively.
pub fn classify_address(addr: &str, book: &AddressBook) -> Option<GatewayAddress> {
    // `Name <addr>` and `<addr>` are read as `addr`.
    let addr = match addr.rsplit_once('<') {
        Some((_, inner)) => inner.split('>').next().unwrap_or_default(),
        None => addr,
    };
    let addr = addr.trim().to_lowercase();
    if book
        .intake
        .iter()
        .any(|i| i.trim().eq_ignore_ascii_case(&addr))
    {
        return Some(GatewayAddress::Intake);
    }
    let (local, domain) = addr.rsplit_once('@')?;
    if !domain.eq_ignore_ascii_case(book.domain.trim()) {
        return None;
    }
    let base = book.local_part.to_lowercase();
    if local == base {
        return Some(GatewayAddress::Bare);
    }
    let tag = local.strip_prefix(base.as_str())?.strip_prefix('+')?;
    Some(classify_tag(tag, book))
}

/// The tag of `cases+<tag>@domain` (SPEC §2).
fn classify_tag(tag: &str, book: &AddressBook) -> GatewayAddress {
    if let Some(key) = tag.strip_prefix("r-").filter(|k| !k.is_empty()) {
        return GatewayAddress::Reply {
            key: key.to_string(),
        };
    }
    if let Some(key) = tag.strip_prefix("b-").filter(|k| !k.is_empty()) {
        return GatewayAddress::Bounce {
            key: key.to_string(),
        };
    }
    let letters = book.prefix_letters();
    let case = tag
        .strip_prefix(letters.as_str())
        .filter(|_| !letters.is_empty())
        .and_then(|rest| {
            let digits = rest.get(..CASE_DIGITS)?;
            digits
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| (digits, &rest[CASE_DIGITS..]))
        });
    match case {
        Some((digits, "")) => GatewayAddress::Case {
            public_id: book.case_public_id(digits),
        },
        Some((digits, "-private")) => GatewayAddress::CasePrivate {
            public_id: book.case_public_id(digits),
        },
        Some((digits, "-info")) => GatewayAddress::CaseInfo {
            public_id: book.case_public_id(digits),
        },
        _ => GatewayAddress::UnknownTag {
            tag: tag.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn book() -> AddressBook {
        AddressBook {
            domain: "example.org".to_string(),
            local_part: "cases".to_string(),
            intake: vec![
                "security@example.org".to_string(),
                "psirt@partner.example".to_string(),
            ],
            case_prefix: "VU#".to_string(),
        }
    }

    fn case(id: &str) -> SubjectToken {
        SubjectToken::Case {
            public_id: id.to_string(),
        }
    }

    fn report(id: &str) -> SubjectToken {
        SubjectToken::Report {
            public_id: id.to_string(),
        }
    }

    #[test]
    fn case_tokens_in_every_spelling() {
        let b = book();
        for subject in [
            "VU#123456",
            "[VU#123456] Buffer overflow",
            "Re: [VU#123456] Buffer overflow",
            "RE[2]: VU# 123456 status",
            "AW: WG: SV: VS: Antw: Fw: Fwd: vu#123456",
            "Update on VU-123456.",
            "vu #123456",
            "VU123456 (address form)",
            "[PSIRT-2026-0042] Re: (VU#123456) fixed",
            "Status\tvu#\t123456",
        ] {
            assert_eq!(
                subject_tokens(subject, &b),
                [case("VU#123456")],
                "{subject}"
            );
        }
    }

    #[test]
    fn case_tokens_are_whole_words_of_exactly_six_digits() {
        let b = book();
        for subject in [
            "VU#12345",
            "VU#1234567",
            "VU#123456a",
            "XVU#123456",
            "éVU#123456",
            "VU 123456",
            "VU--123456",
            "VU#12345 6",
            "MENU#123456",
            "VU#１２３４５６",
            "",
        ] {
            assert!(subject_tokens(subject, &b).is_empty(), "{subject}");
        }
        assert_eq!(subject_tokens("VU#123456-private", &b), [case("VU#123456")]);
    }

    #[test]
    fn tokens_come_in_order_without_repeats() {
        let b = book();
        let subject =
            "Re: VU#222222 and [VU#111111] vrf#26-11-bcdfg, also vu-222222 and VRF# 26-11-BCDFG";
        assert_eq!(
            subject_tokens(subject, &b),
            [
                case("VU#222222"),
                case("VU#111111"),
                report("VRF#26-11-BCDFG")
            ]
        );
    }

    #[test]
    fn report_tokens() {
        let b = book();
        for subject in [
            "VRF#26-11-BCDFG",
            "[VRF#26-11-BCDFG] Report received",
            "Re: VRF# 26-11-bcdfg",
            "vrf-26-11-BcDfG",
        ] {
            assert_eq!(
                subject_tokens(subject, &b),
                [report("VRF#26-11-BCDFG")],
                "{subject}"
            );
        }
        for subject in [
            "VRF#26-11-BCDFA",
            "VRF#26-11-BCDFY",
            "VRF#26-11-BCDF",
            "VRF#26-11-BCDFGH",
            "VRF#2611-BCDFG",
            "VRF#26-1-BCDFGH",
            "XVRF#26-11-BCDFG",
            "VRF#26-11-BCDFé",
        ] {
            assert!(subject_tokens(subject, &b).is_empty(), "{subject}");
        }
        assert_eq!(
            subject_tokens("VRF#99-01-ZXWVT", &b),
            [report("VRF#99-01-ZXWVT")]
        );
    }

    #[test]
    fn configured_prefix_is_used() {
        let b = AddressBook {
            case_prefix: "CASE#".to_string(),
            ..book()
        };
        assert_eq!(subject_tokens("Re: CASE#123456", &b), [case("CASE#123456")]);
        assert_eq!(
            subject_tokens("case-654321 update", &b),
            [case("CASE#654321")]
        );
        assert!(subject_tokens("VU#123456", &b).is_empty());
        let none = AddressBook {
            case_prefix: "#".to_string(),
            ..book()
        };
        assert!(subject_tokens("#123456", &none).is_empty());
    }

    fn class(addr: &str) -> Option<GatewayAddress> {
        classify_address(addr, &book())
    }

    #[test]
    fn gateway_addresses() {
        use GatewayAddress::*;
        assert_eq!(class("security@example.org"), Some(Intake));
        assert_eq!(class("Security@Example.ORG"), Some(Intake));
        assert_eq!(class("psirt@partner.example"), Some(Intake));
        assert_eq!(class("cases@example.org"), Some(Bare));
        assert_eq!(class("<CASES@example.org>"), Some(Bare));
        assert_eq!(
            class("Coordination <cases+vu123456@example.org>"),
            Some(Case {
                public_id: "VU#123456".into()
            })
        );
        assert_eq!(
            class("cases+vu123456@example.org"),
            Some(Case {
                public_id: "VU#123456".into()
            })
        );
        assert_eq!(
            class("Cases+VU123456@EXAMPLE.org"),
            Some(Case {
                public_id: "VU#123456".into()
            })
        );
        assert_eq!(
            class("cases+vu123456-private@example.org"),
            Some(CasePrivate {
                public_id: "VU#123456".into()
            })
        );
        assert_eq!(
            class("cases+vu123456-info@example.org"),
            Some(CaseInfo {
                public_id: "VU#123456".into()
            })
        );
        assert_eq!(
            class("cases+r-K7Q2M3X4@example.org"),
            Some(Reply {
                key: "k7q2m3x4".into()
            })
        );
        assert_eq!(
            class("cases+b-abcdef234@example.org"),
            Some(Bounce {
                key: "abcdef234".into()
            })
        );
    }

    #[test]
    fn unknown_tags_and_foreign_addresses() {
        use GatewayAddress::*;
        for tag in [
            "vu12345",
            "vu1234567",
            "vu123456-other",
            "r-",
            "b-",
            "",
            "hello",
            "vu123456private",
        ] {
            let addr = format!("cases+{tag}@example.org");
            assert_eq!(
                class(&addr),
                Some(UnknownTag {
                    tag: tag.to_string()
                }),
                "{addr}"
            );
        }
        assert_eq!(class("cases+vu123456@other.example"), None);
        assert_eq!(class("security@other.example"), None);
        assert_eq!(class("alice@example.org"), None);
        assert_eq!(class("casesx@example.org"), None);
        assert_eq!(class("cases"), None);
        assert_eq!(class(""), None);
    }

    #[test]
    fn address_forms_round_trip_through_the_book() {
        let b = book();
        assert_eq!(
            classify_address(&b.case_address("VU#314159"), &b),
            Some(GatewayAddress::Case {
                public_id: "VU#314159".into()
            })
        );
        assert_eq!(
            classify_address(&b.private_address("VU#314159"), &b),
            Some(GatewayAddress::CasePrivate {
                public_id: "VU#314159".into()
            })
        );
        assert_eq!(
            classify_address(&b.gateway_address(), &b),
            Some(GatewayAddress::Bare)
        );
        let custom = AddressBook {
            local_part: "Tickets".into(),
            case_prefix: "CASE#".into(),
            ..book()
        };
        assert_eq!(
            classify_address("tickets+case000042@example.org", &custom),
            Some(GatewayAddress::Case {
                public_id: "CASE#000042".into()
            })
        );
    }

    proptest! {
        #[test]
        fn subject_tokens_never_panic(subject in "\\PC{0,80}") {
            let tokens = subject_tokens(&subject, &book());
            for token in &tokens {
                match token {
                    SubjectToken::Case { public_id } => prop_assert!(public_id.starts_with("VU#") && public_id.len() == 9),
                    SubjectToken::Report { public_id } => prop_assert_eq!(public_id.len(), 15),
                }
            }
        }

        #[test]
        fn tokens_are_found_amid_noise(
            digits in "[0-9]{6}",
            before in "[ \\[(:]{0,3}[a-zA-Z ]{0,10}[ \\[(:]",
            after in "[\\]) .,:;!?][ -~]{0,10}",
        ) {
            let subject = format!("{before}VU#{digits}{after}");
            let found = subject_tokens(&subject, &book());
            prop_assert!(found.contains(&SubjectToken::Case { public_id: format!("VU#{digits}") }), "{}", subject);
        }

        #[test]
        fn classify_address_never_panics(addr in "\\PC{0,60}") {
            let _ = classify_address(&addr, &book());
        }

        #[test]
        fn classify_tagged_addresses_never_panic(tag in "[a-zA-Z0-9+#é-]{0,20}") {
            let addr = format!("cases+{tag}@example.org");
            prop_assert!(classify_address(&addr, &book()).is_some());
        }
    }
}
