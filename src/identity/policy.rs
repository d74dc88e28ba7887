//! The merge-protection policy: limits, priorities and blocked values.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::{Identifier, IdentifierKind};

/// Values that name nobody, whatever their kind: what forms, SDKs and tests send when
/// they have no real value. Compared case-insensitively.
const JUNK_VALUES: &[&str] = &[
    "",
    "\"\"",
    "''",
    "[object object]",
    "anon",
    "anonymous",
    "default",
    "distinct_id",
    "distinctid",
    "email",
    "false",
    "guest",
    "id",
    "n/a",
    "na",
    "nan",
    "nil",
    "none",
    "not_authenticated",
    "null",
    "\"null\"",
    "test",
    "true",
    "undefined",
    "unknown",
    "user",
    "user_id",
    "userid",
];

/// Email addresses typed by people who will not give theirs.
const JUNK_EMAILS: &[&str] = &[
    "a@a.com",
    "abc@abc.com",
    "asdf@asdf.com",
    "email@email.com",
    "example@example.com",
    "na@na.com",
    "no@email.com",
    "noemail@noemail.com",
    "none@none.com",
    "noreply@noreply.com",
    "null@null.com",
    "test@example.com",
    "test@test.com",
    "unknown@unknown.com",
    "user@example.com",
];

/// How resolution treats one kind of identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindRule {
    /// The most distinct values of the kind one profile may hold; `None` for no limit. A
    /// link that would exceed it is refused. `Some(1)` makes the kind unique.
    pub limit: Option<u32>,
    /// Lower ranks are stronger: an event goes to the profile of its strongest
    /// identifier, and weaker ones are linked only if the limits allow.
    pub rank: u8,
}

/// The merge-protection policy: per-kind limits and priorities, and the values that are
/// never identifiers.
///
/// The defaults are what most applications want:
///
/// | kind           | limit | rank |
/// |----------------|-------|------|
/// | `user_id`      | 1     | 0    |
/// | `email`        | 5     | 1    |
/// | `phone`        | 5     | 2    |
/// | custom kinds   | none  | 3    |
/// | `anonymous_id` | 50    | 4    |
///
/// and a built-in blocklist of junk values (`null`, `undefined`, `anonymous`, `guest`,
/// `0`, `-1`, the nil UUID, `test@test.com`, `0000000000`, `1234567890`, …).
///
/// Change a policy only for new data: profiles already resolved are not revisited until
/// new evidence or an operator touches them.
///
/// ```
/// use oneview::identity::Policy;
/// use oneview::{Identifier, IdentifierKind};
///
/// let policy = Policy::default()
///     .limit(IdentifierKind::Email, 2)
///     .block_value("email:shop@example.com")
///     .block_pattern("email:*@mailinator.com");
/// assert!(policy.is_blocked(&Identifier::user_id("null")?));
/// assert!(policy.is_blocked(&Identifier::email("Shop@Example.com")?));
/// assert!(policy.is_blocked(&Identifier::email("x@mailinator.com")?));
/// assert!(!policy.is_blocked(&Identifier::email("ana@example.com")?));
/// assert_eq!(policy.rule(&IdentifierKind::Email).limit, Some(2));
/// # Ok::<(), oneview::IdentifierError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    kinds: BTreeMap<IdentifierKind, KindRule>,
    custom: KindRule,
    builtin_blocklist: bool,
    blocked_values: BTreeSet<String>,
    blocked_patterns: Vec<String>,
    #[serde(default = "default_suspect_after")]
    suspect_after: u32,
    #[serde(default = "default_rebuild_limit")]
    rebuild_limit: usize,
}

fn default_suspect_after() -> u32 {
    3
}

fn default_rebuild_limit() -> usize {
    1_000
}

impl Default for Policy {
    fn default() -> Self {
        let rule = |limit, rank| KindRule { limit, rank };
        Self {
            kinds: BTreeMap::from([
                (IdentifierKind::UserId, rule(Some(1), 0)),
                (IdentifierKind::Email, rule(Some(5), 1)),
                (IdentifierKind::Phone, rule(Some(5), 2)),
                (IdentifierKind::AnonymousId, rule(Some(50), 4)),
            ]),
            custom: rule(None, 3),
            builtin_blocklist: true,
            blocked_values: BTreeSet::new(),
            blocked_patterns: Vec::new(),
            suspect_after: default_suspect_after(),
            rebuild_limit: default_rebuild_limit(),
        }
    }
}

impl Policy {
    /// How resolution treats `kind`.
    pub fn rule(&self, kind: &IdentifierKind) -> KindRule {
        self.kinds.get(kind).copied().unwrap_or(self.custom)
    }

    fn rule_mut(&mut self, kind: IdentifierKind) -> &mut KindRule {
        let custom = self.custom;
        self.kinds.entry(kind).or_insert(custom)
    }

    /// At most `limit` distinct values of `kind` per profile.
    pub fn limit(mut self, kind: IdentifierKind, limit: u32) -> Self {
        self.rule_mut(kind).limit = Some(limit);
        self
    }

    /// No limit on `kind`.
    pub fn unlimited(mut self, kind: IdentifierKind) -> Self {
        self.rule_mut(kind).limit = None;
        self
    }

    /// One value of `kind` per profile, ever: two profiles holding different values are
    /// never merged except by force. The same as a limit of 1.
    pub fn unique(self, kind: IdentifierKind) -> Self {
        self.limit(kind, 1)
    }

    /// The priority of `kind`: lower ranks are stronger.
    pub fn rank(mut self, kind: IdentifierKind, rank: u8) -> Self {
        self.rule_mut(kind).rank = rank;
        self
    }

    /// Never treats `value` as an identifier. `value` is either the canonical
    /// `kind:value` form (blocking one value of one kind, compared after normalisation) or
    /// a bare value (blocking it for every kind, compared case-insensitively).
    pub fn block_value(mut self, value: &str) -> Self {
        let key = match value.parse::<Identifier>() {
            Ok(identifier) if value.contains(':') => identifier.to_string(),
            _ => value.trim().to_lowercase(),
        };
        self.blocked_values.insert(key);
        self
    }

    /// Never treats an identifier whose canonical `kind:value` form matches `pattern` as
    /// an identifier. In the pattern, `*` matches any run of characters and `?` any one;
    /// matching is case-insensitive.
    pub fn block_pattern(mut self, pattern: &str) -> Self {
        self.blocked_patterns.push(pattern.to_lowercase());
        self
    }

    /// An identifier becomes *suspect* — it stops linking, and the evidence that carried it
    /// records the refusal — once the evidence shows it beside `people` different values of
    /// one unique kind (a kind whose limit is 1: `user_id` by default). The default is 3: a
    /// placeholder email or a switchboard number typed by three people who signed in links
    /// none of them, while a couple sharing one email, or a person with several emails and
    /// phones, still links. Anonymous ids and unique kinds are never suspect. `0` (or `1`)
    /// turns detection off. See [`Customers::suspects`](crate::Customers::suspects).
    ///
    /// ```
    /// use oneview::identity::Policy;
    /// assert_eq!(Policy::default().suspect_threshold(), Some(3));
    /// assert_eq!(Policy::default().suspect_after(0).suspect_threshold(), None);
    /// ```
    pub fn suspect_after(mut self, people: u32) -> Self {
        self.suspect_after = people;
        self
    }

    /// The most profiles a late record may rebuild (default 1,000). Profiles tied together
    /// by shared values, refused links included, form one component, and a late record
    /// rebuilds its whole component; past this size, it is resolved against the profiles
    /// as they stand instead, and its receipt says so
    /// ([`Action::ResolvedWithoutRebuild`](crate::identity::Action::ResolvedWithoutRebuild)).
    pub fn rebuild_limit(mut self, profiles: usize) -> Self {
        self.rebuild_limit = profiles.max(1);
        self
    }

    /// The most profiles a late record may rebuild; see [`rebuild_limit`](Self::rebuild_limit).
    pub fn max_rebuild(&self) -> usize {
        self.rebuild_limit
    }

    /// How many different values of one unique kind an identifier may be seen with before
    /// it is suspect; `None` when detection is off.
    pub fn suspect_threshold(&self) -> Option<u32> {
        (self.suspect_after >= 2).then_some(self.suspect_after)
    }

    /// Drops the built-in blocklist, keeping only values and patterns blocked explicitly.
    pub fn without_builtin_blocklist(mut self) -> Self {
        self.builtin_blocklist = false;
        self
    }

    /// Whether `identifier` is a blocked value, which is never an identifier and never
    /// links anything.
    pub fn is_blocked(&self, identifier: &Identifier) -> bool {
        let value = identifier.value();
        // Every value of every record is checked, and most are lower-case ASCII already.
        let lowered: std::borrow::Cow<'_, str> = if value
            .bytes()
            .all(|b| b.is_ascii() && !b.is_ascii_uppercase())
        {
            value.into()
        } else {
            value.to_lowercase().into()
        };
        if self.builtin_blocklist && is_junk(identifier.kind(), &lowered) {
            return true;
        }
        if self.blocked_values.is_empty() && self.blocked_patterns.is_empty() {
            return false;
        }
        let canonical = identifier.to_string();
        let canonical_lowered = canonical.to_lowercase();
        self.blocked_values.contains(&canonical)
            || self.blocked_values.contains(lowered.as_ref())
            || self
                .blocked_patterns
                .iter()
                .any(|pattern| glob_matches(pattern.as_bytes(), canonical_lowered.as_bytes()))
    }

    /// `identifiers` without blocked values or repeats, strongest first (by rank, then by
    /// identifier), which is the order resolution considers them in.
    pub fn usable(&self, identifiers: &[Identifier]) -> Vec<Identifier> {
        let mut usable: Vec<Identifier> = identifiers
            .iter()
            .filter(|identifier| !self.is_blocked(identifier))
            .cloned()
            .collect();
        usable.sort_by(|a, b| (self.rule(a.kind()).rank, a).cmp(&(self.rule(b.kind()).rank, b)));
        usable.dedup();
        usable
    }
}

fn is_junk(kind: &IdentifierKind, lowered: &str) -> bool {
    if JUNK_VALUES.contains(&lowered) || lowered.bytes().all(|b| b == b'0' || b == b'-') {
        return true;
    }
    match kind {
        IdentifierKind::Email => {
            JUNK_EMAILS.contains(&lowered)
                || lowered
                    .split_once('@')
                    .is_some_and(|(local, _)| JUNK_VALUES.contains(&local) && local != "email")
        }
        IdentifierKind::Phone => {
            // The number after a calling code of one to three digits is one repeated digit
            // or an ascending run: `+1 000 000 0000`, `+44 1234567890`.
            let digits = lowered.trim_start_matches('+').as_bytes();
            (1..=3).any(|code| {
                let national = &digits[code.min(digits.len())..];
                let repeated = national.windows(2).all(|pair| pair[0] == pair[1]);
                let ascending = national
                    .windows(2)
                    .all(|pair| pair[1] == pair[0] + 1 || (pair[0] == b'9' && pair[1] == b'0'));
                national.len() >= 7 && (repeated || ascending)
            })
        }
        _ => lowered == "-1",
    }
}

/// Matches `text` against a glob of `*` (any run) and `?` (any one byte).
fn glob_matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and how much of the text it has swallowed so far.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_runs_and_single_characters() {
        let matches = |p: &str, t: &str| glob_matches(p.as_bytes(), t.as_bytes());
        assert!(matches("email:*@example.com", "email:ana@example.com"));
        assert!(!matches("email:*@example.com", "email:ana@example.org"));
        assert!(matches("phone:+1555???????", "phone:+15551234567"));
        assert!(!matches("phone:+1555???????", "phone:+1555123456"));
        assert!(matches("*a*b*", "xxaxxbxx"));
        assert!(!matches("*a*b", "xxaxxbxx"));
        assert!(matches("", ""));
        assert!(matches("*", "anything"));
    }

    #[test]
    fn junk_values_are_blocked_for_every_kind() {
        let policy = Policy::default();
        for junk in [
            "null",
            "NULL",
            "undefined",
            "0",
            "-1",
            "guest",
            "Anonymous",
            "NaN",
        ] {
            assert!(
                policy.is_blocked(&Identifier::user_id(junk).unwrap()),
                "{junk}"
            );
            assert!(
                policy.is_blocked(&Identifier::anonymous_id(junk).unwrap()),
                "{junk}"
            );
        }
        let nil = Identifier::anonymous_id("00000000-0000-0000-0000-000000000000").unwrap();
        assert!(policy.is_blocked(&nil));
        for junk in ["test@test.com", "NULL@example.com", "none@none.com"] {
            assert!(
                policy.is_blocked(&Identifier::email(junk).unwrap()),
                "{junk}"
            );
        }
        for junk in [
            "+10000000000",
            "+441111111111",
            "+11234567890",
            "+4567890123",
        ] {
            assert!(
                policy.is_blocked(&Identifier::phone(junk).unwrap()),
                "{junk}"
            );
        }
        for real in ["u-17", "ana@example.com"] {
            assert!(
                !policy.is_blocked(&Identifier::user_id(real).unwrap()),
                "{real}"
            );
        }
        assert!(!policy.is_blocked(&Identifier::email("email@ana.dev").unwrap()));
        assert!(!policy.is_blocked(&Identifier::phone("+14155552671").unwrap()));
        let off = Policy::default().without_builtin_blocklist();
        assert!(!off.is_blocked(&Identifier::user_id("null").unwrap()));
    }

    #[test]
    fn user_values_block_one_kind_or_all_kinds() {
        let policy = Policy::default()
            .block_value("user_id:Admin")
            .block_value("demo");
        assert!(policy.is_blocked(&Identifier::user_id("Admin").unwrap()));
        assert!(!policy.is_blocked(&Identifier::user_id("admin").unwrap()));
        assert!(!policy.is_blocked(&Identifier::anonymous_id("Admin").unwrap()));
        assert!(policy.is_blocked(&Identifier::anonymous_id("DEMO").unwrap()));
        assert!(policy.is_blocked(&Identifier::user_id("demo").unwrap()));
    }

    #[test]
    fn usable_identifiers_come_strongest_first_without_repeats() {
        let policy = Policy::default();
        let ids = [
            Identifier::anonymous_id("d1").unwrap(),
            Identifier::email("b@x.io").unwrap(),
            Identifier::user_id("null").unwrap(),
            Identifier::email("a@x.io").unwrap(),
            Identifier::user_id("u1").unwrap(),
            Identifier::email("a@x.io").unwrap(),
        ];
        let names: Vec<String> = policy.usable(&ids).iter().map(|i| i.to_string()).collect();
        assert_eq!(
            names,
            [
                "user_id:u1",
                "email:a@x.io",
                "email:b@x.io",
                "anonymous_id:d1"
            ]
        );
    }
}
