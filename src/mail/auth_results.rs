//! `Authentication-Results` (RFC 8601): parse one header value, and read the DMARC
//! verdict our trusted border MTA gave the mail's From domain (the `dmarc` and
//! `reply-key` sender assurance of SPEC §4).

use super::Inbound;

/// One parsed `Authentication-Results` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthResults {
    /// The host that wrote the header (RFC 8601 §2.5), as written.
    pub authserv_id: String,
    /// Empty for `authserv-id; none`.
    pub results: Vec<MethodResult>,
}

/// One `method=result` statement with its properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodResult {
    /// Lowercase, without a method version (`dkim/1` → `dkim`).
    pub method: String,
    /// Lowercase (`pass`, `fail`, `none`, `temperror` …).
    pub result: String,
    /// `(ptype.property, value)` pairs with the name lowercase, e.g. `("header.from",
    /// "example.com")`; a `reason` is kept as `("reason", text)`.
    pub props: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A token or a quoted string (RFC 2045 `value`), unquoted.
    Word(String),
    Semicolon,
    Equals,
}

/// Parses the value of one `Authentication-Results` header; `None` when it has no
/// authserv-id.
pub fn parse(value: &str) -> Option<AuthResults> {
    let tokens = tokenize(value);
    let mut statements = tokens.split(|t| *t == Token::Semicolon);
    let head = statements.next()?;
    // RFC 8601 §2.2: authserv-id [ CFWS authres-version ]; the version is ignored.
    let authserv_id = match head {
        [Token::Word(id)] => id.clone(),
        [Token::Word(id), Token::Word(version)] if version.bytes().all(|b| b.is_ascii_digit()) => {
            id.clone()
        }
        _ => return None,
    };
    if authserv_id.is_empty() {
        return None;
    }
    // RFC 8601 §2.2: no-result = ";" "none" carries no statements.
    let results = statements.filter_map(method_result).collect();
    Some(AuthResults {
        authserv_id,
        results,
    })
}

/// RFC 8601 §2.2 resinfo: `method [/version] = result [reason = value] [ptype.prop = value]…`.
fn method_result(tokens: &[Token]) -> Option<MethodResult> {
    let pairs = key_value_pairs(tokens);
    let mut pairs = pairs.into_iter();
    let (method, result) = pairs.next()?;
    let method = method
        .split('/')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if method.is_empty() || method.contains('.') {
        return None;
    }
    let props = pairs
        .filter(|(key, _)| key == "reason" || key.contains('.'))
        .collect();
    Some(MethodResult {
        method,
        result: result.to_ascii_lowercase(),
        props,
    })
}

/// Every `word = word` in order, keys lowercase; stray tokens are skipped.
fn key_value_pairs(tokens: &[Token]) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        match (&tokens[i], tokens.get(i + 1), tokens.get(i + 2)) {
            (Token::Word(key), Some(Token::Equals), Some(Token::Word(value))) => {
                pairs.push((key.to_ascii_lowercase(), value.clone()));
                i += 3;
            }
            _ => i += 1,
        }
    }
    pairs
}

/// Splits a header value into words, `;` and `=`, dropping CFWS: whitespace and
/// comments, which nest and may hold quoted pairs (RFC 5322 §3.2.2).
fn tokenize(value: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = value.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            // A stray `)` outside a comment carries nothing.
            c if c.is_whitespace() || c == ')' => {
                chars.next();
            }
            '(' => skip_comment(&mut chars),
            '"' => tokens.push(Token::Word(quoted_string(&mut chars))),
            ';' => {
                chars.next();
                tokens.push(Token::Semicolon);
            }
            '=' => {
                chars.next();
                tokens.push(Token::Equals);
            }
            _ => tokens.push(Token::Word(word(&mut chars))),
        }
    }
    tokens
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

fn skip_comment(chars: &mut Chars<'_>) {
    let mut depth = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '(' => depth += 1,
            ')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return;
                }
            }
            _ => {}
        }
    }
}

/// RFC 5322 §3.2.4 quoted-string, returned without quotes and with quoted pairs undone.
fn quoted_string(chars: &mut Chars<'_>) -> String {
    let mut out = String::new();
    chars.next();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            '"' => break,
            c => out.push(c),
        }
    }
    out
}

fn word(chars: &mut Chars<'_>) -> String {
    let mut out = String::new();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() || matches!(c, '(' | ')' | '"' | ';' | '=') {
            break;
        }
        out.push(c);
        chars.next();
    }
    out
}

/// The DMARC verdict for the From domain (RFC 7489), as our border MTA reported it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dmarc {
    /// `dmarc=pass`: the From domain is authenticated.
    Pass,
    /// `dmarc=fail`: the From address is forged (or broken by a forwarder).
    Fail,
    /// `dmarc=none`: the From domain publishes no DMARC policy.
    None,
    /// No verdict: no trusted header, no DMARC result in it, a temporary or permanent
    /// error, or a result about another domain.
    #[default]
    Absent,
}

impl Dmarc {
    pub fn as_str(self) -> &'static str {
        match self {
            Dmarc::Pass => "pass",
            Dmarc::Fail => "fail",
            Dmarc::None => "none",
            Dmarc::Absent => "absent",
        }
    }
}

/// The DMARC verdict of our border MTA for the mail's From domain (SPEC §4).
///
/// RFC 8601 §5: headers bearing an authserv-id we do not trust may be written by anyone
/// and are ignored. Headers bearing a trusted one are read top-down, and the first that
/// carries a DMARC result (or says `none`: nothing was checked) decides; every trusted
/// header below it is evidence only. Our MTA adds its headers above everything the sender
/// wrote, so a header forged with our authserv-id is always below the real verdict. Mail
/// systems that write one header per method (a DKIM, an SPF and a DMARC milter) are read
/// correctly: headers without a DMARC result are passed over.
pub fn dmarc_result(inbound: &Inbound, trusted_authserv_ids: &[String]) -> Dmarc {
    let Some(from_domain) = inbound.from.as_ref().map(|f| f.domain()) else {
        return Dmarc::Absent;
    };
    let deciding = inbound
        .header_values("Authentication-Results")
        .filter_map(parse)
        .filter(|r| is_trusted(&r.authserv_id, trusted_authserv_ids))
        .find(|r| r.results.is_empty() || r.results.iter().any(|m| m.method == "dmarc"));
    match deciding {
        Some(results) if !from_domain.is_empty() => verdict(&results, &from_domain),
        _ => Dmarc::Absent,
    }
}

/// The verdict of one header about `from_domain`: any fail wins, then pass, then none.
fn verdict(results: &AuthResults, from_domain: &str) -> Dmarc {
    let about_from: Vec<&str> = results
        .results
        .iter()
        .filter(|r| r.method == "dmarc" && header_from_matches(r, from_domain))
        .map(|r| r.result.as_str())
        .collect();
    // RFC 7489 §11.2: the result values are pass, fail, none, temperror and permerror.
    if about_from.contains(&"fail") {
        Dmarc::Fail
    } else if about_from.contains(&"pass") {
        Dmarc::Pass
    } else if about_from.contains(&"none") {
        Dmarc::None
    } else {
        Dmarc::Absent
    }
}

fn is_trusted(authserv_id: &str, trusted: &[String]) -> bool {
    trusted
        .iter()
        .any(|t| t.trim().eq_ignore_ascii_case(authserv_id))
}

/// RFC 7489 §11.2: `header.from` names the RFC5322.From domain DMARC evaluated; when it
/// is present it must be the From domain of this mail.
fn header_from_matches(result: &MethodResult, from_domain: &str) -> bool {
    let normalize = |d: &str| d.trim().trim_end_matches('.').to_ascii_lowercase();
    result
        .props
        .iter()
        .filter(|(key, _)| key == "header.from")
        .all(|(_, value)| {
            let domain = value.rsplit_once('@').map_or(value.as_str(), |(_, d)| d);
            normalize(domain) == normalize(from_domain)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::Mailbox;
    use proptest::prelude::*;

    fn result(method: &str, result: &str, props: &[(&str, &str)]) -> MethodResult {
        MethodResult {
            method: method.to_string(),
            result: result.to_string(),
            props: props
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn parses_a_postfix_opendmarc_header() {
        let value = "mx.example.org; dkim=pass (2048-bit key; unprotected) header.d=vendor.example \
                     header.i=@vendor.example header.b=\"AbC+/12x\"; \
                     spf=pass (mx.example.org: domain of alice@vendor.example designates 192.0.2.10 as permitted sender) smtp.mailfrom=alice@vendor.example; \
                     dmarc=pass (p=reject dis=none) header.from=vendor.example";
        let parsed = parse(value).expect("parses");
        assert_eq!(parsed.authserv_id, "mx.example.org");
        assert_eq!(
            parsed.results,
            [
                result(
                    "dkim",
                    "pass",
                    &[
                        ("header.d", "vendor.example"),
                        ("header.i", "@vendor.example"),
                        ("header.b", "AbC+/12x")
                    ]
                ),
                result("spf", "pass", &[("smtp.mailfrom", "alice@vendor.example")]),
                result("dmarc", "pass", &[("header.from", "vendor.example")]),
            ]
        );
    }

    #[test]
    fn rfc_8601_appendix_b_forms() {
        // B.2: nothing was done.
        let none = parse("example.org 1; none").expect("parses");
        assert_eq!(none.authserv_id, "example.org");
        assert!(none.results.is_empty());
        // B.3: with a version, a reason and comments.
        let b3 = parse(
            "example.com 1; spf=pass (comment (nested) \\) here) smtp.mailfrom=example.net reason=\"SPF is fine\"",
        )
        .expect("parses");
        assert_eq!(b3.authserv_id, "example.com");
        assert_eq!(
            b3.results,
            [result(
                "spf",
                "pass",
                &[("smtp.mailfrom", "example.net"), ("reason", "SPF is fine")]
            )]
        );
        // B.4: several methods, mixed case, method versions.
        let b4 = parse(
            "(leading comment) Example.COM;\r\n auth=pass (cram-md5) smtp.auth=sender@example.net;\r\n SPF = Fail smtp.mailfrom = example.net; DKIM/1=neutral header.d=x",
        )
        .expect("parses");
        assert_eq!(b4.authserv_id, "Example.COM");
        let methods: Vec<(&str, &str)> = b4
            .results
            .iter()
            .map(|r| (r.method.as_str(), r.result.as_str()))
            .collect();
        assert_eq!(
            methods,
            [("auth", "pass"), ("spf", "fail"), ("dkim", "neutral")]
        );
        assert_eq!(
            b4.results[1].props,
            [("smtp.mailfrom".to_string(), "example.net".to_string())]
        );
    }

    #[test]
    fn quoted_authserv_id_and_garbage() {
        assert_eq!(
            parse("\"mx 1.example\"; dmarc=pass").map(|r| r.authserv_id),
            Some("mx 1.example".to_string())
        );
        assert_eq!(parse(""), None);
        assert_eq!(parse("   (only a comment)  "), None);
        assert_eq!(parse("dmarc=pass header.from=evil.example"), None);
        let stray =
            parse("mx.example.org); dmarc=pass) header.from=vendor.example").expect("parses");
        assert_eq!(
            stray.results,
            [result(
                "dmarc",
                "pass",
                &[("header.from", "vendor.example")]
            )]
        );
        assert_eq!(parse("mx.example.org extra words; dmarc=pass"), None);
        let odd = parse("mx.example.org; ; = ; spf; dmarc=pass header.from").expect("parses");
        assert_eq!(odd.results, [result("dmarc", "pass", &[])]);
    }

    fn inbound(from: &str, results: &[&str]) -> Inbound {
        Inbound {
            from: Some(Mailbox {
                name: None,
                address: from.to_string(),
            }),
            headers: results
                .iter()
                .map(|v| ("Authentication-Results".to_string(), v.to_string()))
                .collect(),
            ..Inbound::default()
        }
    }

    fn trusted() -> Vec<String> {
        vec!["mx.example.org".to_string(), "mx2.example.org".to_string()]
    }

    fn dmarc(m: &Inbound) -> Dmarc {
        dmarc_result(m, &trusted())
    }

    #[test]
    fn dmarc_pass_from_a_trusted_border_mta() {
        let m = inbound(
            "alice@Vendor.Example",
            &["MX.example.org; dmarc=pass (p=reject) header.from=vendor.example"],
        );
        assert_eq!(dmarc(&m), Dmarc::Pass);
        let without_header_from = inbound("alice@vendor.example", &["mx.example.org; dmarc=pass"]);
        assert_eq!(dmarc(&without_header_from), Dmarc::Pass);
    }

    #[test]
    fn untrusted_headers_are_ignored() {
        let forged = inbound(
            "alice@vendor.example",
            &["mx.attacker.example; dmarc=pass header.from=vendor.example"],
        );
        assert_eq!(dmarc(&forged), Dmarc::Absent);
        let mixed = inbound(
            "alice@vendor.example",
            &[
                "mx.attacker.example; dmarc=fail header.from=vendor.example",
                "mx.example.org; dmarc=pass header.from=vendor.example",
            ],
        );
        assert_eq!(dmarc(&mixed), Dmarc::Pass);
        assert_eq!(dmarc_result(&mixed, &[]), Dmarc::Absent);
    }

    #[test]
    fn a_forged_header_below_the_trusted_verdict_is_evidence_only() {
        let forged = "mx.example.org; dmarc=pass header.from=vendor.example";
        for (real, want) in [
            ("mx.example.org; none", Dmarc::Absent),
            ("mx.example.org 1; none", Dmarc::Absent),
            (
                "mx2.example.org; dmarc=none header.from=vendor.example",
                Dmarc::None,
            ),
            (
                "mx.example.org; dmarc=fail header.from=vendor.example",
                Dmarc::Fail,
            ),
            (
                "mx.example.org; dmarc=temperror header.from=vendor.example",
                Dmarc::Absent,
            ),
            (
                "mx.example.org; dmarc=pass header.from=other.example",
                Dmarc::Absent,
            ),
        ] {
            let m = inbound("alice@vendor.example", &[real, forged]);
            assert_eq!(dmarc(&m), want, "{real}");
        }
    }

    #[test]
    fn one_header_per_method_is_read_down_to_the_dmarc_verdict() {
        let m = inbound(
            "alice@vendor.example",
            &[
                "mx.example.org; dkim=pass header.d=vendor.example",
                "mx.example.org; spf=pass smtp.mailfrom=vendor.example",
                "mx.example.org; dmarc=fail header.from=vendor.example",
                "mx.example.org; dmarc=pass header.from=vendor.example",
            ],
        );
        assert_eq!(dmarc(&m), Dmarc::Fail);
    }

    #[test]
    fn within_the_deciding_header_fail_wins() {
        let m = inbound(
            "alice@vendor.example",
            &["mx.example.org; dmarc=pass header.from=vendor.example; dmarc=fail header.from=vendor.example"],
        );
        assert_eq!(dmarc(&m), Dmarc::Fail);
    }

    #[test]
    fn header_from_must_be_the_from_domain() {
        let other = inbound(
            "alice@vendor.example",
            &["mx.example.org; dmarc=pass header.from=attacker.example"],
        );
        assert_eq!(dmarc(&other), Dmarc::Absent);
        let dotted = inbound(
            "alice@vendor.example",
            &["mx.example.org; dmarc=pass header.from=VENDOR.example."],
        );
        assert_eq!(dmarc(&dotted), Dmarc::Pass);
        let no_from = Inbound {
            from: None,
            ..other.clone()
        };
        assert_eq!(dmarc(&no_from), Dmarc::Absent);
        let only_other_methods = inbound(
            "alice@vendor.example",
            &["mx.example.org; dkim=pass header.d=vendor.example"],
        );
        assert_eq!(dmarc(&only_other_methods), Dmarc::Absent);
    }

    #[test]
    fn works_on_a_parsed_mail() {
        let raw =
            "Authentication-Results: mx.example.org;\r\n\tdkim=pass header.d=vendor.example;\r\n\
                   \tdmarc=pass (p=reject dis=none) header.from=vendor.example\r\n\
                   From: Alice <alice@vendor.example>\r\nSubject: s\r\n\r\nbody\r\n";
        let m = crate::mail::parse::parse(raw.as_bytes()).expect("parses");
        assert_eq!(dmarc(&m), Dmarc::Pass);
    }

    proptest! {
        #[test]
        fn parse_never_panics(value in "\\PC{0,120}") {
            let _ = parse(&value);
        }

        #[test]
        fn parse_never_panics_on_structured_noise(value in "[a-z.()\"\\\\;= /@-]{0,80}") {
            if let Some(r) = parse(&value) {
                prop_assert!(!r.authserv_id.is_empty());
                prop_assert!(r.results.iter().all(|m| !m.method.is_empty()));
            }
        }
    }
}
