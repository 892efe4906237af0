//! RFC 5322 §3.4 address lists: mailboxes, groups, display names, quoted local parts and
//! domain literals, read from a raw (folded, undecoded) header value.
//!
//! Quoted local parts are valid (`"alice@acme.example"@evil.example`, `"john smith"@x`);
//! the domain is what follows the last `@` outside quotes, so such an address is judged on
//! its real domain. A quoted local part that needs no quotes (`"alice"@acme.example`) is
//! written without them, so that it compares equal to the plain form.

use super::Mailbox;

/// The lexical pieces of an address header (RFC 5322 §3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// An atom (or an obsolete run of atext and dots).
    Atom(String),
    /// A quoted string, unquoted, quoted pairs undone.
    Quoted(String),
    /// A domain literal, with its brackets.
    Literal(String),
    /// A comment's text, outermost parentheses removed.
    Comment(String),
    Special(char),
}

/// Every mailbox of an address-list value, group members included (RFC 5322 §3.4).
/// `decode` turns a display-name phrase into text (RFC 2047 encoded words).
pub fn address_list(value: &[u8], decode: &dyn Fn(&str) -> String) -> Vec<Mailbox> {
    address_list_upto(value, decode, usize::MAX).0
}

/// The first `max` mailboxes of an address-list value, and how many it holds in all.
/// The value is read one address at a time, so that a list of 100,000 addresses costs
/// no more than the addresses kept.
pub fn address_list_upto(
    value: &[u8],
    decode: &dyn Fn(&str) -> String,
    max: usize,
) -> (Vec<Mailbox>, usize) {
    let text = String::from_utf8_lossy(value);
    let (mut out, mut count) = (Vec::new(), 0usize);
    for piece in top_level_pieces(&text) {
        if out.len() >= max {
            count += usize::from(piece.contains('@'));
            continue;
        }
        let toks = tokenize(piece);
        for chunk in split_top_level(&toks) {
            if let Some(m) = mailbox(chunk, decode) {
                count += 1;
                out.push(m);
            }
        }
    }
    (out, count)
}

/// The text between top-level `,` `;` and group `:` separators (outside quoted strings,
/// comments, domain literals and angle brackets).
fn top_level_pieces(text: &str) -> Vec<&str> {
    let (mut out, mut start) = (Vec::new(), 0);
    let (mut quoted, mut comment, mut literal, mut angle, mut escaped) =
        (false, 0usize, false, false, false);
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted || comment > 0 || literal => escaped = true,
            '"' if comment == 0 && !literal => quoted = !quoted,
            _ if quoted => {}
            '(' if !literal => comment += 1,
            ')' if comment > 0 => comment -= 1,
            _ if comment > 0 => {}
            '[' => literal = true,
            ']' => literal = false,
            _ if literal => {}
            '<' => angle = true,
            '>' => angle = false,
            ',' | ';' | ':' if !angle => {
                out.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

/// RFC 5322 §3.2.2–§3.2.4: atoms, quoted strings, comments (nested, with quoted pairs),
/// domain literals and specials; folding whitespace separates tokens.
fn tokenize(text: &str) -> Vec<Tok> {
    let mut toks = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '"' => toks.push(Tok::Quoted(delimited(&mut chars, '"'))),
            '(' => toks.push(Tok::Comment(comment(&mut chars))),
            '[' => toks.push(Tok::Literal(format!("[{}]", delimited(&mut chars, ']')))),
            '<' | '>' | '@' | ',' | ':' | ';' | ')' | ']' => {
                chars.next();
                toks.push(Tok::Special(c));
            }
            _ => toks.push(Tok::Atom(atom(&mut chars))),
        }
    }
    toks
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

/// Text up to the unescaped `close`, after the opening character; backslash quotes the
/// next character (RFC 5322 §3.2.1 quoted-pair).
fn delimited(chars: &mut Chars<'_>, close: char) -> String {
    let mut out = String::new();
    chars.next();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c if c == close => break,
            '\r' | '\n' => {}
            c => out.push(c),
        }
    }
    out
}

fn comment(chars: &mut Chars<'_>) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            '(' => {
                if depth > 0 {
                    out.push(c);
                }
                depth += 1;
            }
            ')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    break;
                }
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

fn atom(chars: &mut Chars<'_>) -> String {
    let mut out = String::new();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() || "\"(<>@,:;[])".contains(c) {
            break;
        }
        out.push(c);
        chars.next();
    }
    out
}

/// Splits at top-level commas; a group (`name: a, b;`) contributes its members, each a
/// chunk of its own (RFC 5322 §3.4 group).
fn split_top_level(toks: &[Tok]) -> Vec<&[Tok]> {
    let mut out = Vec::new();
    let (mut start, mut angle) = (0, false);
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Special('<') => angle = true,
            Tok::Special('>') => angle = false,
            // The display name of a group ends here; its members follow.
            Tok::Special(':') if !angle => start = i + 1,
            Tok::Special(',' | ';') if !angle => {
                out.push(&toks[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&toks[start..]);
    out.retain(|c| !c.is_empty());
    out
}

/// One mailbox: `[display-name] <addr-spec>` or a bare addr-spec (a comment after it is
/// kept as the name, as mail clients show it).
fn mailbox(chunk: &[Tok], decode: &dyn Fn(&str) -> String) -> Option<Mailbox> {
    let open = chunk.iter().position(|t| *t == Tok::Special('<'));
    let (phrase, spec) = match open {
        Some(i) => {
            let rest = &chunk[i + 1..];
            let close = rest
                .iter()
                .position(|t| *t == Tok::Special('>'))
                .unwrap_or(rest.len());
            (&chunk[..i], route_stripped(&rest[..close]))
        }
        None => (&[][..], chunk),
    };
    let address = addr_spec(spec)?;
    let name = display_name(phrase, decode).or_else(|| {
        let comment = chunk.iter().rev().find_map(|t| match t {
            Tok::Comment(c) if open.is_none() => Some(c.clone()),
            _ => None,
        })?;
        Some(shown_name(&comment)).filter(|c| !c.is_empty())
    });
    Some(Mailbox { name, address })
}

/// RFC 5322 §4.4 obs-route: `<@relay1,@relay2:user@domain>` names `user@domain`.
fn route_stripped(spec: &[Tok]) -> &[Tok] {
    match spec.iter().rposition(|t| *t == Tok::Special(':')) {
        Some(i) if spec.first() == Some(&Tok::Special('@')) => &spec[i + 1..],
        _ => spec,
    }
}

/// RFC 5322 §3.4.1 addr-spec = local-part "@" domain. The domain follows the last `@`;
/// the local part is every token before it. Comments are ignored.
fn addr_spec(spec: &[Tok]) -> Option<String> {
    let spec: Vec<&Tok> = spec
        .iter()
        .filter(|t| !matches!(t, Tok::Comment(_)))
        .collect();
    let at = spec.iter().rposition(|t| **t == Tok::Special('@'))?;
    let (local, domain) = (&spec[..at], &spec[at + 1..]);
    let local = local_part(local)?;
    let domain = match domain {
        [Tok::Atom(d)] if is_dot_atom(d) => d.clone(),
        [Tok::Literal(l)] if !l.chars().any(char::is_whitespace) => l.clone(),
        _ => return None,
    };
    Some(format!("{local}@{domain}"))
}

/// A dot-atom as written, or a quoted string: unquoted when its content is a dot-atom,
/// else re-quoted with the quoted pairs it needs.
fn local_part(toks: &[&Tok]) -> Option<String> {
    match toks {
        [Tok::Atom(a)] if is_dot_atom(a) => Some(a.clone()),
        [Tok::Quoted(q)] if is_dot_atom(q) => Some(q.clone()),
        [Tok::Quoted(q)] if !q.is_empty() && !q.chars().any(char::is_control) => {
            let escaped: String = q
                .chars()
                .flat_map(|c| match c {
                    '"' | '\\' => vec!['\\', c],
                    c => vec![c],
                })
                .collect();
            Some(format!("\"{escaped}\""))
        }
        _ => None,
    }
}

/// RFC 5322 §3.2.3 dot-atom: atext runs separated by single dots. UTF-8 is allowed
/// (RFC 6532 §3.2).
fn is_dot_atom(s: &str) -> bool {
    const SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~";
    let atext = |c: char| c.is_ascii_alphanumeric() || SPECIALS.contains(c) || !c.is_ascii();
    !s.is_empty()
        && s.split('.')
            .all(|a| !a.is_empty() && a.chars().all(|c| atext(c) && !c.is_control()))
}

/// The display name: words and quoted strings joined by single spaces, encoded words
/// decoded.
fn display_name(phrase: &[Tok], decode: &dyn Fn(&str) -> String) -> Option<String> {
    let words: Vec<&str> = phrase
        .iter()
        .filter_map(|t| match t {
            Tok::Atom(w) | Tok::Quoted(w) => Some(w.as_str()),
            _ => None,
        })
        .collect();
    let name = shown_name(&decode(&words.join(" ")));
    Some(name).filter(|n| !n.is_empty())
}

/// A display name as the gateway may show it again in headers it writes: control
/// characters (CR, LF, NUL …) and bidirectional overrides (which reorder what a reader
/// sees) become spaces, and the quoting characters `"` and `\` become `'` and `/`, so that
/// no name can end a quoted string or smuggle an address into a header (docs/fuzzing.md).
pub fn shown_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            c if c.is_control() || is_bidi_control(c) => ' ',
            c => c,
        })
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Unicode bidirectional formatting characters (UAX #9): embeddings, overrides, isolates
/// and marks.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(value: &str) -> Vec<(Option<String>, String)> {
        let decode = |s: &str| super::super::parse::collapse_whitespace(s);
        address_list(value.as_bytes(), &decode)
            .into_iter()
            .map(|m| (m.name, m.address))
            .collect()
    }

    fn addr(a: &str) -> (Option<String>, String) {
        (None, a.to_string())
    }

    #[test]
    fn quoted_local_parts_are_addresses_on_their_real_domain() {
        assert_eq!(
            list("\"alice@acme.example\"@evil.example"),
            [addr("\"alice@acme.example\"@evil.example")]
        );
        let m = list("Alice <\"alice@acme.example\"@evil.example>");
        assert_eq!(
            m,
            [(
                Some("Alice".into()),
                "\"alice@acme.example\"@evil.example".into()
            )]
        );
        assert_eq!(
            list("\"john smith\"@example.com"),
            [addr("\"john smith\"@example.com")]
        );
        assert_eq!(
            list("<\"a\\\"b\"@example.com>"),
            [addr("\"a\\\"b\"@example.com")]
        );
        // Quotes that are not needed are dropped: the same mailbox as the plain form.
        assert_eq!(
            list("\"Alice\" <\"alice\"@acme.example>"),
            [(Some("Alice".into()), "alice@acme.example".into())]
        );
    }

    #[test]
    fn display_names_cannot_carry_quotes_controls_or_bidi_overrides() {
        let m = list("=?utf-8?q?x=22_=3Cevil=40x=2Eexample=3E=0D=0ABcc=3A_y?= <a@b.example>");
        let decode = |s: &str| {
            crate::mail::parse::parse(format!("Subject: {s}\r\n\r\n").as_bytes())
                .unwrap()
                .subject
        };
        let decoded = address_list(
            b"=?utf-8?q?x=22_=3Cevil=40x=2Eexample=3E=0D=0ABcc=3A_y?= <a@b.example>",
            &decode,
        );
        assert_eq!(m[0].1, "a@b.example");
        assert_eq!(
            decoded[0].name.as_deref(),
            Some("x' <evil@x.example> Bcc: y")
        );
        assert_eq!(
            shown_name("Ann\u{202e}gpj.exe\u{202c} \"\\ Smith\0"),
            "Ann gpj.exe '/ Smith"
        );
    }

    #[test]
    fn ordinary_forms() {
        assert_eq!(
            list("a@b.example, \"Last, First\" <f@c.example>,\r\n\t(x) d@e.example (Dee)"),
            [
                addr("a@b.example"),
                (Some("Last, First".into()), "f@c.example".into()),
                (Some("Dee".into()), "d@e.example".into())
            ]
        );
        assert_eq!(
            list("Team: x@v.example, \"Y\" <y@v.example>;, z@o.example").len(),
            3
        );
        assert!(list("undisclosed-recipients:;").is_empty());
        assert_eq!(list("<@relay.example:u@d.example>"), [addr("u@d.example")]);
        assert_eq!(list("u@[192.0.2.1]"), [addr("u@[192.0.2.1]")]);
        assert!(list("just some words").is_empty());
        assert!(list("@no-local.example, a@, a@b@").is_empty());
        assert!(list("a b@c.example").is_empty());
    }
}
