//! The redaction engine (SPEC §6.3): finds every spelling of an identity in a text and
//! replaces it by an alias; removes the gateway's reply and bounce addresses from text
//! (SPEC §4: reply addresses are secrets); strips format characters from one-line strings.
//!
//! Pure string work. Who is hidden from whom, and which strings identify a participant,
//! is decided in [`crate::view`].
//!
//! Matching is on a *skeleton* of both sides: Unicode NFKC (UAX #15), lowercase, letters
//! and digits only. So `Ann Smith`, `Ann  Smith`, `Ann\u{a0}Smith`, `Ann\tSmith`,
//! `ann_smith`, `ann-smith`, `annsmith` and `ann.smith` all match the identity
//! `Ann Smith`, and so does `ＡＮＮ ＳＭＩＴＨ`. An identity whose skeleton is shorter than
//! four characters matches only whole words (an organization called "HP" leaves "php"
//! alone), except in scripts written without spaces between words.

use std::borrow::Cow;
use unicode_normalization::char::canonical_combining_class;
use unicode_normalization::UnicodeNormalization;

/// What replaces a reply or bounce address of the gateway in a post.
pub const ADDRESS_REMOVED: &str = "[reply address removed]";

/// Skeletons shorter than this match only whole words.
const SHORT: usize = 4;

/// How a match of an identity extends in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A name, an address, an organization: the match itself.
    Plain,
    /// A mail domain: the sub-domain labels before it (`mail.`) and an address's local part
    /// (`anyone@`) belong to the match.
    Domain,
}

/// One string that identifies a participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub text: String,
    pub kind: Kind,
}

impl Identity {
    pub fn plain(text: &str) -> Identity {
        Identity {
            text: text.to_string(),
            kind: Kind::Plain,
        }
    }
    pub fn domain(text: &str) -> Identity {
        Identity {
            text: text.to_string(),
            kind: Kind::Domain,
        }
    }
}

#[derive(Debug, Clone)]
struct Needle {
    skeleton: String,
    kind: Kind,
    whole_word: bool,
    alias: usize,
}

/// Replaces identities by aliases. Built per recipient from the participants hidden from
/// them; empty for a recipient who may see everyone.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    needles: Vec<Needle>,
    aliases: Vec<String>,
}

/// One position in a skeleton: where its character came from in the original text.
#[derive(Debug, Clone, Copy)]
struct Unit {
    /// Byte offset of the character in the skeleton.
    at: usize,
    /// Byte range in the original text of the character (with its combining marks)
    /// that produced it.
    start: usize,
    end: usize,
    /// Something other than a letter or digit precedes it (or it starts the text).
    word_start: bool,
}

#[derive(Debug, Default)]
struct Skeleton {
    text: String,
    units: Vec<Unit>,
}

/// A match: first and last unit, and the needle.
#[derive(Debug, Clone, Copy)]
struct Hit {
    first: usize,
    last: usize,
    needle: usize,
}

impl Redactor {
    /// Adds the identities of one participant, to be replaced by `alias`.
    pub fn add(&mut self, alias: &str, identities: impl IntoIterator<Item = Identity>) {
        let index = self.aliases.len();
        self.aliases.push(alias.to_string());
        for id in identities {
            let skeleton = skeleton_of(&id.text);
            if skeleton.is_empty() || self.needles.iter().any(|n| n.skeleton == skeleton) {
                continue;
            }
            let whole_word = skeleton.chars().count() < SHORT && !unspaced(&skeleton);
            self.needles.push(Needle {
                skeleton,
                kind: id.kind,
                whole_word,
                alias: index,
            });
        }
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// Whether any identity occurs in `text`.
    pub fn matches(&self, text: &str) -> bool {
        !self.is_empty() && !self.hits(&skeleton(text)).is_empty()
    }

    /// `text` with every occurrence of an identity replaced by its alias.
    pub fn apply<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.is_empty() {
            return Cow::Borrowed(text);
        }
        let sk = skeleton(text);
        let hits = self.hits(&sk);
        if hits.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for h in hits {
            let needle = &self.needles[h.needle];
            let mut start = sk.units[h.first].start.max(last);
            if needle.kind == Kind::Domain {
                start = extend_domain(text, start, last);
            }
            out.push_str(&text[last..start]);
            out.push_str(&self.aliases[needle.alias]);
            last = sk.units[h.last].end.max(start);
        }
        out.push_str(&text[last..]);
        Cow::Owned(out)
    }

    /// Non-overlapping matches, leftmost first, the longest at each position.
    fn hits(&self, sk: &Skeleton) -> Vec<Hit> {
        let mut all = Vec::new();
        for (i, n) in self.needles.iter().enumerate() {
            let mut from = 0;
            while let Some(pos) = sk.text[from..].find(&n.skeleton) {
                let at = from + pos;
                let first = sk.unit_at(at);
                let last = sk.unit_at(at + n.skeleton.len()) - 1;
                if !n.whole_word || sk.whole_words(first, last) {
                    all.push(Hit {
                        first,
                        last,
                        needle: i,
                    });
                }
                from = at + sk.text[at..].chars().next().map_or(1, char::len_utf8);
            }
        }
        all.sort_by_key(|h| (h.first, std::cmp::Reverse(h.last)));
        let mut out: Vec<Hit> = Vec::new();
        for h in all {
            if out.last().is_none_or(|p| h.first > p.last) {
                out.push(h);
            }
        }
        out
    }
}

impl Skeleton {
    /// The unit whose character starts at byte `at` of the skeleton (`units.len()` at the
    /// end).
    fn unit_at(&self, at: usize) -> usize {
        self.units.partition_point(|u| u.at < at)
    }

    fn whole_words(&self, first: usize, last: usize) -> bool {
        let ends = self.units.get(last + 1).is_none_or(|u| u.word_start);
        self.units[first].word_start && ends
    }
}

/// The skeleton of `s`: NFKC, lowercase, letters and digits only.
pub fn skeleton_of(s: &str) -> String {
    skeleton(s).text
}

fn skeleton(s: &str) -> Skeleton {
    let mut sk = Skeleton {
        text: String::with_capacity(s.len()),
        units: Vec::with_capacity(s.len()),
    };
    let mut gap = true;
    let mut chars = s.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        let mut end = start + c.len_utf8();
        // A base character and its combining marks normalize together (UAX #15).
        while let Some(&(i, m)) = chars.peek() {
            if canonical_combining_class(m) == 0 {
                break;
            }
            end = i + m.len_utf8();
            chars.next();
        }
        let before = sk.units.len();
        if c.is_ascii() && end == start + 1 {
            sk.push(c.to_ascii_lowercase(), start, end, &mut gap);
        } else {
            for n in s[start..end].nfkc() {
                for l in n.to_lowercase() {
                    sk.push(l, start, end, &mut gap);
                }
            }
        }
        if sk.units.len() == before {
            gap = true;
        }
    }
    sk
}

impl Skeleton {
    fn push(&mut self, c: char, start: usize, end: usize, gap: &mut bool) {
        if !c.is_alphanumeric() {
            return;
        }
        self.units.push(Unit {
            at: self.text.len(),
            start,
            end,
            word_start: *gap,
        });
        self.text.push(c);
        *gap = false;
    }
}

/// Scripts written without spaces between words: a short name there is matched anywhere.
fn unspaced(skeleton: &str) -> bool {
    skeleton.chars().any(|c| {
        matches!(c as u32,
            0x0E00..=0x0EFF         // Thai, Lao
            | 0x1780..=0x17FF       // Khmer
            | 0x3040..=0x30FF       // Hiragana, Katakana
            | 0x3400..=0x4DBF       // CJK extension A
            | 0x4E00..=0x9FFF       // CJK unified ideographs
            | 0xF900..=0xFAFF       // CJK compatibility ideographs
            | 0x20000..=0x3134F) // CJK extensions B–G
    })
}

/// Moves the start of a domain match left over sub-domain labels (`mail.`) and the local
/// part of an address (`anyone@`), not before `floor`.
fn extend_domain(text: &str, start: usize, floor: usize) -> usize {
    let b = text.as_bytes();
    let label = |c: u8| c.is_ascii_alphanumeric() || c == b'-';
    let local = |c: u8| c.is_ascii_alphanumeric() || b"._%+-".contains(&c);
    let run = |from: usize, ok: &dyn Fn(u8) -> bool| {
        let mut k = from;
        while k > floor && ok(b[k - 1]) {
            k -= 1;
        }
        k
    };
    let mut s = start;
    while s > floor + 1 && b[s - 1] == b'.' {
        let k = run(s - 1, &label);
        if k == s - 1 {
            break;
        }
        s = k;
    }
    if s > floor + 1 && b[s - 1] == b'@' {
        let k = run(s - 1, &local);
        if k < s - 1 {
            s = k;
        }
    }
    s
}

// ---------------------------------------------------------------------------------------
// Which strings identify someone
// ---------------------------------------------------------------------------------------

/// Words that say what a mailbox or a team is for, not who it is: never redaction strings
/// on their own ("Content-Security-Policy" must survive a vendor's security@ address).
const GENERIC: &[&str] = &[
    "abuse",
    "account",
    "accounts",
    "admin",
    "administrator",
    "advisories",
    "advisory",
    "alert",
    "alerts",
    "all",
    "and",
    "billing",
    "bounty",
    "bug",
    "bugbounty",
    "bugs",
    "cert",
    "contact",
    "contacts",
    "csirt",
    "customer",
    "customers",
    "cve",
    "daemon",
    "dev",
    "developers",
    "disclosure",
    "disclosures",
    "do",
    "email",
    "enquiries",
    "feedback",
    "general",
    "hello",
    "help",
    "helpdesk",
    "hostmaster",
    "hr",
    "incident",
    "incidents",
    "info",
    "information",
    "inquiries",
    "it",
    "legal",
    "list",
    "lists",
    "mail",
    "mailer",
    "marketing",
    "media",
    "no",
    "noc",
    "noreply",
    "not",
    "notification",
    "notifications",
    "notify",
    "office",
    "ops",
    "partner",
    "partners",
    "postmaster",
    "press",
    "privacy",
    "product",
    "products",
    "psirt",
    "reply",
    "report",
    "reports",
    "research",
    "response",
    "root",
    "sales",
    "secalert",
    "secure",
    "security",
    "service",
    "services",
    "sirt",
    "soc",
    "staff",
    "support",
    "team",
    "the",
    "vuln",
    "vulnerabilities",
    "vulnerability",
    "vulns",
    "web",
    "webmaster",
    "www",
];

/// Legal forms that are left out when people write an organization's name
/// ("Globex Corp." is "Globex").
const LEGAL_SUFFIXES: &[&str] = &[
    "ab",
    "ag",
    "aps",
    "as",
    "asa",
    "bv",
    "co",
    "company",
    "corp",
    "corporation",
    "ev",
    "gmbh",
    "inc",
    "incorporated",
    "kft",
    "kg",
    "kk",
    "limited",
    "llc",
    "llp",
    "lp",
    "ltd",
    "mbh",
    "nv",
    "oy",
    "oyj",
    "plc",
    "pte",
    "pty",
    "sa",
    "sarl",
    "sas",
    "se",
    "sl",
    "spa",
    "srl",
    "sro",
    "ug",
    "zrt",
];

/// The words of `s` as skeletons.
fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .map(skeleton_of)
        .filter(|w| !w.is_empty())
        .collect()
}

/// Whether every word of `s` is generic (or a number): such a string names no one.
pub fn is_generic(s: &str) -> bool {
    words(s)
        .iter()
        .all(|w| GENERIC.contains(&w.as_str()) || w.chars().all(|c| c.is_ascii_digit()))
}

/// A person's or team's name, unless it is generic ("Security Team").
pub fn name_identities(name: &str) -> Vec<Identity> {
    let name = name.trim();
    if name.is_empty() || is_generic(name) {
        return vec![];
    }
    vec![Identity::plain(name)]
}

/// An address: the whole address, its local part unless generic, and its domain with
/// every sub-domain.
pub fn address_identities(email: &str) -> Vec<Identity> {
    let email = email.trim();
    let mut out = vec![Identity::plain(email)];
    if let Some((local, domain)) = email.rsplit_once('@') {
        out.extend(name_identities(local));
        out.push(Identity::domain(domain));
    }
    out
}

/// An organization's name as written and without its legal form ("Globex Corp." and
/// "Globex"), the short form only when it is not generic.
pub fn org_identities(name: &str) -> Vec<Identity> {
    let name = name.trim();
    if name.is_empty() {
        return vec![];
    }
    let mut out = vec![Identity::plain(name)];
    let short = without_legal_form(name);
    if short != name && !short.is_empty() && !is_generic(&short) {
        out.push(Identity::plain(&short));
    }
    out
}

/// `name` without trailing legal forms, "&"/"and" before them, and a leading "The".
fn without_legal_form(name: &str) -> String {
    let mut tokens: Vec<&str> = name.split_whitespace().collect();
    let plain = |t: &str| skeleton_of(t);
    while let Some(last) = tokens.last() {
        let w = plain(last);
        let suffix = LEGAL_SUFFIXES.contains(&w.as_str());
        let joiner = w.is_empty() || w == "and";
        if tokens.len() > 1 && (suffix || joiner) {
            tokens.pop();
        } else {
            break;
        }
    }
    if tokens.len() > 1 && plain(tokens[0]) == "the" {
        tokens.remove(0);
    }
    tokens
        .join(" ")
        .trim_end_matches([',', ';', '-'])
        .trim()
        .to_string()
}

// ---------------------------------------------------------------------------------------
// Reply and bounce addresses (SPEC §2, §4)
// ---------------------------------------------------------------------------------------

/// `text` with every reply (`<local>+r-<key>@<domain>`) and bounce (`+b-`) address of the
/// gateway replaced by [`ADDRESS_REMOVED`]: any case, and with `+` and `@` written as URL
/// escapes or HTML character references as they appear in `mailto:` links.
pub fn remove_gateway_addresses<'t>(text: &'t str, local: &str, domain: &str) -> Cow<'t, str> {
    match remove_in_bytes(text.as_bytes(), local, domain) {
        // Only ASCII ranges are replaced by ASCII, so the result is UTF-8.
        Some(b) => Cow::Owned(String::from_utf8_lossy(&b).into_owned()),
        None => Cow::Borrowed(text),
    }
}

/// The same on bytes in any ASCII-compatible charset (an HTML part).
pub fn remove_gateway_addresses_bytes<'b>(b: &'b [u8], local: &str, domain: &str) -> Cow<'b, [u8]> {
    match remove_in_bytes(b, local, domain) {
        Some(v) => Cow::Owned(v),
        None => Cow::Borrowed(b),
    }
}

fn remove_in_bytes(b: &[u8], local: &str, domain: &str) -> Option<Vec<u8>> {
    let local = local.trim().to_ascii_lowercase().into_bytes();
    let domain = domain.trim().to_ascii_lowercase().into_bytes();
    if local.is_empty() || domain.is_empty() {
        return None;
    }
    let lower = b.to_ascii_lowercase();
    let mut out: Option<Vec<u8>> = None;
    let (mut last, mut i) = (0, 0);
    while let Some(pos) = find(&lower[i..], &local) {
        let s = i + pos;
        match tagged_end(&lower, s + local.len(), &domain) {
            Some(e) => {
                let o = out.get_or_insert_with(|| Vec::with_capacity(b.len()));
                o.extend_from_slice(&b[last..s]);
                o.extend_from_slice(ADDRESS_REMOVED.as_bytes());
                last = e;
                i = e;
            }
            None => i = s + 1,
        }
    }
    let mut o = out?;
    o.extend_from_slice(&b[last..]);
    Some(o)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// After the local part at `k`: `+r-<key>@<domain>` or `+b-<key>@<domain>` → its end.
fn tagged_end(l: &[u8], k: usize, domain: &[u8]) -> Option<usize> {
    let k = skip_any(l, k, &[b"+", b"%2b", b"&#43;", b"&#x2b;", b"&plus;"])?;
    let tag = l.get(k..k + 2)?;
    if tag != b"r-" && tag != b"b-" {
        return None;
    }
    let key = k + 2;
    let mut e = key;
    while e < l.len() && l[e].is_ascii_alphanumeric() {
        e += 1;
    }
    if e == key {
        return None;
    }
    let d = skip_any(l, e, &[b"@", b"%40", b"&#64;", b"&#x40;", b"&commat;"])?;
    (l.get(d..d + domain.len())? == domain).then_some(d + domain.len())
}

fn skip_any(l: &[u8], k: usize, forms: &[&[u8]]) -> Option<usize> {
    forms
        .iter()
        .find(|f| l.get(k..k + f.len()) == Some(f))
        .map(|f| k + f.len())
}

// ---------------------------------------------------------------------------------------
// One-line strings
// ---------------------------------------------------------------------------------------

/// Unicode format characters (general category Cf): bidi embeddings, overrides and
/// isolates (U+202A–U+202E, U+2066–U+2069), marks (U+200E, U+200F, U+061C), zero-width
/// characters, soft hyphen, tags. They can make a name or a file name read differently
/// from what it is (`invoice\u{202e}txt.exe`).
pub fn is_format_char(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x0890..=0x0891 | 0x08E2
        | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F
        | 0xFEFF | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x1343F
        | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F)
}

/// A display name, subject or file name as one clean line: format characters removed,
/// control characters as spaces, runs of whitespace as one space.
pub fn clean_line(s: &str) -> String {
    let plain = |c: char| c == ' ' || !(c.is_whitespace() || c.is_control() || is_format_char(c));
    if s.chars().all(plain) && !s.starts_with(' ') && !s.ends_with(' ') && !s.contains("  ") {
        return s.to_string();
    }
    let spaced: String = s
        .chars()
        .filter(|c| !is_format_char(*c))
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor(alias: &str, ids: Vec<Identity>) -> Redactor {
        let mut r = Redactor::default();
        r.add(alias, ids);
        r
    }

    #[test]
    fn names_match_across_spacing_punctuation_case_and_width() {
        let r = redactor("Vendor A", name_identities("Ann Smith"));
        for variant in [
            "Ann Smith",
            "Ann  Smith",
            "Ann\u{a0}Smith",
            "Ann\tSmith",
            "Ann\r\nSmith",
            "ann_smith",
            "ann-smith",
            "annsmith",
            "ANN.SMITH",
            "Ann\u{200b}Smith",
            "ＡＮＮ ＳＭＩＴＨ",
        ] {
            assert_eq!(
                r.apply(&format!("[{variant}]")),
                "[Vendor A]",
                "{variant:?}"
            );
        }
        assert_eq!(r.apply("Anne Smithers"), "Anne Smithers");
    }

    #[test]
    fn combining_marks_and_compatibility_forms_normalize() {
        let r = redactor("X", name_identities("Jürgen Ünal"));
        assert_eq!(r.apply("Ju\u{308}rgen U\u{308}nal wrote"), "X wrote");
        let r = redactor("X", name_identities("ﬁnn"));
        assert_eq!(r.apply("Finn here"), "X here");
    }

    #[test]
    fn short_identities_match_whole_words_only() {
        let r = redactor("Vendor B", org_identities("HP Inc."));
        assert_eq!(
            r.apply("php and HP, hp-ux, H.P."),
            "php and Vendor B, Vendor B-ux, Vendor B."
        );
        let r = redactor("X", name_identities("李明"));
        assert_eq!(r.apply("感谢李明的报告"), "感谢X的报告");
    }

    #[test]
    fn overlapping_identities_take_the_longest_leftmost() {
        let mut r = Redactor::default();
        r.add("A", name_identities("Ann Smith"));
        r.add("B", name_identities("Ann Smithers"));
        assert_eq!(r.apply("Ann Smithers and Ann Smith"), "B and A");
        let mut r = Redactor::default();
        r.add("X", name_identities("ab"));
        r.add("X", name_identities("bcdef"));
        assert_eq!(r.apply("abcdef"), "aX");
    }

    #[test]
    fn domains_take_their_sub_domains_and_addresses() {
        let r = redactor("Vendor B", address_identities("bob@globex.example"));
        assert_eq!(
            r.apply(
                "ci.build.globex.example, jane.doe@mail.globex.example, https://globex.example/x"
            ),
            "Vendor B, Vendor B, https://Vendor B/x"
        );
        assert_eq!(r.apply("Bob@Globex.Example"), "Vendor B");
    }

    #[test]
    fn generic_local_parts_and_names_are_not_identities() {
        let ids = address_identities("security@globex.example");
        assert!(!ids.iter().any(|i| i.text == "security"), "{ids:?}");
        let r = redactor("Vendor B", ids);
        assert_eq!(
            r.apply("Content-Security-Policy; mail security@globex.example"),
            "Content-Security-Policy; mail Vendor B"
        );
        assert!(name_identities("Security Team").is_empty());
        assert!(name_identities("product-security").is_empty());
        assert_eq!(name_identities("Globex PSIRT").len(), 1);
        let ids = address_identities("bob.smith@globex.example");
        assert!(ids.iter().any(|i| i.text == "bob.smith"));
    }

    #[test]
    fn organization_names_lose_their_legal_form() {
        let names = |s: &str| {
            org_identities(s)
                .into_iter()
                .map(|i| i.text)
                .collect::<Vec<_>>()
        };
        assert_eq!(names("Globex Corp."), vec!["Globex Corp.", "Globex"]);
        assert_eq!(
            names("Acme Routers, Inc."),
            vec!["Acme Routers, Inc.", "Acme Routers"]
        );
        assert_eq!(
            names("Initech GmbH & Co. KG"),
            vec!["Initech GmbH & Co. KG", "Initech"]
        );
        assert_eq!(
            names("The Widget Company Ltd"),
            vec!["The Widget Company Ltd", "Widget"]
        );
        assert_eq!(
            names("S.A. Example S.A."),
            vec!["S.A. Example S.A.", "S.A. Example"]
        );
        assert_eq!(names("Security Inc."), vec!["Security Inc."]);
        assert_eq!(names("Globex"), vec!["Globex"]);
    }

    #[test]
    fn nothing_to_replace_borrows() {
        let r = redactor("X", name_identities("Ann Smith"));
        assert!(matches!(r.apply("nothing here"), Cow::Borrowed(_)));
        assert!(matches!(
            Redactor::default().apply("Ann Smith"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn reply_and_bounce_addresses_are_removed_in_every_spelling() {
        let text = "> mail cases+r-abc234@cert.example\n<CASES+B-XYZ@CERT.EXAMPLE> \
                    mailto:cases%2Br-k3y%40cert.example cases&#43;r-k&#64;cert.example \
                    cases+vu123456@cert.example cases+r-@cert.example other+r-x@cert.example";
        let out = remove_gateway_addresses(text, "cases", "cert.example");
        assert_eq!(
            out,
            "> mail [reply address removed]\n<[reply address removed]> \
             mailto:[reply address removed] [reply address removed] \
             cases+vu123456@cert.example cases+r-@cert.example other+r-x@cert.example"
        );
        assert!(matches!(
            remove_gateway_addresses("nothing", "cases", "cert.example"),
            Cow::Borrowed(_)
        ));
        let html = b"<a href=\"mailto:cases+r-q@cert.example\">\xe9</a>";
        let out = remove_gateway_addresses_bytes(html, "cases", "cert.example");
        assert_eq!(
            &out[..],
            b"<a href=\"mailto:[reply address removed]\">\xe9</a>"
        );
    }

    #[test]
    fn clean_lines_lose_format_and_control_characters() {
        assert_eq!(clean_line("invoice\u{202e}txt.exe"), "invoicetxt.exe");
        assert_eq!(
            clean_line("Eve\u{2066} \u{200f}x\r\nBcc: y"),
            "Eve x Bcc: y"
        );
        assert_eq!(clean_line("  Jürgen   Ünal "), "Jürgen Ünal");
    }
}
