//! Typed, normalised customer identifiers.
//!
//! An [`Identifier`] can only be built through normalisation, so two identifiers are equal
//! exactly when they name the same thing: `Ana@Example.com ` and `ana@example.com` are one
//! email, `+1 (415) 555-2671` and `+1.415.555.2671` are one phone number.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// The longest identifier value accepted, in bytes after normalisation.
pub const MAX_IDENTIFIER_BYTES: usize = 256;

/// The longest custom kind name accepted, in bytes.
pub const MAX_KIND_NAME_BYTES: usize = 64;

/// What an identifier identifies, which decides how its value is normalised.
///
/// Kinds print and parse as `email`, `phone`, `user_id`, `anonymous_id`, or the custom
/// kind's own name.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum IdentifierKind {
    /// An email address: trimmed and lower-cased, exactly one `@`.
    Email,
    /// A phone number in E.164 form: `+` and 8 to 15 digits.
    Phone,
    /// The application's own id for a signed-up user: trimmed, case kept.
    UserId,
    /// An anonymous or device id (a cookie, an app install): trimmed; UUIDs are lower-cased.
    AnonymousId,
    /// Any other identifier the application uses (a CRM id, a loyalty card): trimmed, case kept.
    Custom(CustomKind),
}

impl IdentifierKind {
    /// A custom kind with the given name; see [`CustomKind::new`] for the rules.
    pub fn custom(name: &str) -> Result<Self, IdentifierError> {
        CustomKind::new(name).map(Self::Custom)
    }

    /// The kind's name as it appears in the canonical `kind:value` form.
    pub fn name(&self) -> &str {
        match self {
            Self::Email => "email",
            Self::Phone => "phone",
            Self::UserId => "user_id",
            Self::AnonymousId => "anonymous_id",
            Self::Custom(custom) => custom.as_str(),
        }
    }

    fn builtin(name: &str) -> Option<Self> {
        Some(match name {
            "email" => Self::Email,
            "phone" => Self::Phone,
            "user_id" => Self::UserId,
            "anonymous_id" => Self::AnonymousId,
            _ => return None,
        })
    }
}

impl fmt::Display for IdentifierKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Debug for IdentifierKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for IdentifierKind {
    type Err = IdentifierError;

    /// Parses a built-in kind name, or else a custom kind name.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::builtin(name).map_or_else(|| Self::custom(name), Ok)
    }
}

impl Serialize for IdentifierKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for IdentifierKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = Cow::<str>::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// The name of an application-defined identifier kind, such as `crm_id` or `loyalty_card`.
///
/// A name is 1 to 64 bytes of lower-case ASCII letters, digits, `_`, `-` and `.`, starting
/// with a letter; upper-case input is lower-cased. The built-in names (`email`, `phone`,
/// `user_id`, `anonymous_id`) are refused so that the text form stays unambiguous.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct CustomKind(String);

impl CustomKind {
    /// Validates and lower-cases a custom kind name.
    ///
    /// ```
    /// use oneview::CustomKind;
    /// assert_eq!(CustomKind::new("Loyalty_Card").unwrap().as_str(), "loyalty_card");
    /// assert!(CustomKind::new("email").is_err());
    /// assert!(CustomKind::new("has space").is_err());
    /// ```
    pub fn new(name: &str) -> Result<Self, IdentifierError> {
        let lowered = name.trim().to_ascii_lowercase();
        let problem = if lowered.is_empty() {
            Some(IdentifierProblem::Empty)
        } else if lowered.len() > MAX_KIND_NAME_BYTES {
            Some(IdentifierProblem::TooLong {
                len: lowered.len(),
                max: MAX_KIND_NAME_BYTES,
            })
        } else if !lowered.starts_with(|c: char| c.is_ascii_lowercase())
            || !lowered
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.".contains(c))
        {
            Some(IdentifierProblem::InvalidKindName)
        } else if IdentifierKind::builtin(&lowered).is_some() {
            Some(IdentifierProblem::ReservedKindName)
        } else {
            None
        };
        match problem {
            Some(problem) => Err(IdentifierError::new("kind", name, problem)),
            None => Ok(Self(lowered)),
        }
    }

    /// The validated name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How raw identifier values are normalised where the raw value alone is not enough.
///
/// ```
/// use oneview::{Identifier, IdentifierKind, NormalizeOptions};
/// let us = NormalizeOptions::default().with_default_calling_code(1);
/// let phone = Identifier::with_options(IdentifierKind::Phone, "(415) 555-2671", &us).unwrap();
/// assert_eq!(phone.value(), "+14155552671");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NormalizeOptions {
    /// The country calling code (for example `1` or `44`) given to phone numbers written
    /// without one. Without it, such numbers are refused rather than guessed.
    pub default_calling_code: Option<u16>,
}

impl NormalizeOptions {
    /// These options with national phone numbers read in the country with calling `code`.
    pub fn with_default_calling_code(mut self, code: u16) -> Self {
        self.default_calling_code = Some(code);
        self
    }
}

/// A typed, normalised identifier of a customer.
///
/// Build one with [`Identifier::new`] (or the per-kind shorthands), or parse the canonical
/// text form `kind:value`; both normalise, so equal identifiers name the same thing.
///
/// ```
/// use oneview::Identifier;
/// let email = Identifier::email("  Ana@Example.COM ").unwrap();
/// assert_eq!(email.to_string(), "email:ana@example.com");
/// assert_eq!("email:ana@example.com".parse::<Identifier>().unwrap(), email);
///
/// let phone = Identifier::phone("+44 (20) 7946-0958").unwrap();
/// assert_eq!(phone.value(), "+442079460958");
///
/// let err = Identifier::email("ana.example.com").unwrap_err();
/// assert_eq!(err.to_string(), r#"invalid email "ana.example.com": expected exactly one '@', found 0"#);
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identifier {
    kind: IdentifierKind,
    value: String,
}

impl Identifier {
    /// Normalises `raw` as an identifier of `kind`, with default [`NormalizeOptions`].
    pub fn new(kind: IdentifierKind, raw: &str) -> Result<Self, IdentifierError> {
        Self::with_options(kind, raw, &NormalizeOptions::default())
    }

    /// Normalises `raw` as an identifier of `kind` with the given options.
    pub fn with_options(
        kind: IdentifierKind,
        raw: &str,
        options: &NormalizeOptions,
    ) -> Result<Self, IdentifierError> {
        let normalized = match kind {
            IdentifierKind::Email => normalize_email(raw),
            IdentifierKind::Phone => normalize_phone(raw, options.default_calling_code),
            IdentifierKind::AnonymousId => normalize_opaque(raw).map(lowercase_if_uuid),
            IdentifierKind::UserId | IdentifierKind::Custom(_) => normalize_opaque(raw),
        };
        let value =
            normalized.map_err(|problem| IdentifierError::new(kind.name(), raw, problem))?;
        if value.len() > MAX_IDENTIFIER_BYTES {
            let problem = IdentifierProblem::TooLong {
                len: value.len(),
                max: MAX_IDENTIFIER_BYTES,
            };
            return Err(IdentifierError::new(kind.name(), raw, problem));
        }
        Ok(Self { kind, value })
    }

    /// An identifier a store holds, in the canonical `kind:value` text it was written in:
    /// the value was normalised before it was stored, so it is taken as it is rather
    /// than normalised on every read.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn from_canonical(text: &str) -> Result<Self, IdentifierError> {
        let (kind, value) = text.split_once(':').ok_or_else(|| {
            IdentifierError::new("identifier", text, IdentifierProblem::MissingKind)
        })?;
        if value.is_empty() {
            return Err(IdentifierError::new(kind, value, IdentifierProblem::Empty));
        }
        Ok(Self {
            kind: kind.parse()?,
            value: value.to_owned(),
        })
    }

    /// An email address.
    pub fn email(raw: &str) -> Result<Self, IdentifierError> {
        Self::new(IdentifierKind::Email, raw)
    }

    /// A phone number that already carries its country calling code (`+…` or `00…`).
    pub fn phone(raw: &str) -> Result<Self, IdentifierError> {
        Self::new(IdentifierKind::Phone, raw)
    }

    /// The application's user id.
    pub fn user_id(raw: &str) -> Result<Self, IdentifierError> {
        Self::new(IdentifierKind::UserId, raw)
    }

    /// An anonymous or device id.
    pub fn anonymous_id(raw: &str) -> Result<Self, IdentifierError> {
        Self::new(IdentifierKind::AnonymousId, raw)
    }

    /// An identifier of the custom kind `kind`.
    pub fn custom(kind: &str, raw: &str) -> Result<Self, IdentifierError> {
        Self::new(IdentifierKind::custom(kind)?, raw)
    }

    /// What this identifies.
    pub fn kind(&self) -> &IdentifierKind {
        &self.kind
    }

    /// The normalised value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for Identifier {
    /// The canonical form, `kind:value`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

impl fmt::Debug for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

impl FromStr for Identifier {
    type Err = IdentifierError;

    /// Parses `kind:value`, normalising the value; the value may itself contain `:`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (kind, value) = text.split_once(':').ok_or_else(|| {
            IdentifierError::new("identifier", text, IdentifierProblem::MissingKind)
        })?;
        Self::new(kind.parse()?, value)
    }
}

impl Serialize for Identifier {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Identifier {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A raw value that cannot be an identifier of the kind it was given as.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("invalid {kind} {value:?}: {problem}")]
pub struct IdentifierError {
    /// The kind the value was given as (`email`, `phone`, …), or `kind` when the kind name
    /// itself is wrong.
    pub kind: String,
    /// The value as it was given, before normalisation.
    pub value: String,
    /// What is wrong with it.
    pub problem: IdentifierProblem,
}

impl IdentifierError {
    fn new(kind: &str, value: &str, problem: IdentifierProblem) -> Self {
        Self {
            kind: kind.to_owned(),
            value: value.to_owned(),
            problem,
        }
    }
}

/// Why a value was refused as an identifier.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum IdentifierProblem {
    /// Nothing but white space.
    #[error("it is empty")]
    Empty,
    /// Longer than allowed after normalisation.
    #[error("it is {len} bytes long, more than the {max} allowed")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The most allowed.
        max: usize,
    },
    /// A character that has no place in a value of this kind.
    #[error("unexpected character {0:?}")]
    InvalidCharacter(char),
    /// An email address whose `@` count is not one.
    #[error("expected exactly one '@', found {0}")]
    AtSignCount(usize),
    /// An email address with nothing before the `@`.
    #[error("nothing before the '@'")]
    EmptyLocalPart,
    /// An email address with nothing after the `@`.
    #[error("nothing after the '@'")]
    EmptyDomain,
    /// White space inside the value.
    #[error("white space inside the value")]
    InnerWhitespace,
    /// A national phone number with no default calling code to complete it.
    #[error("no country calling code: write it as +<code>… or set a default calling code")]
    MissingCallingCode,
    /// A default calling code outside 1 to 999.
    #[error("{0} is not a country calling code")]
    InvalidCallingCode(u16),
    /// A phone number whose digit count is outside E.164's 8 to 15.
    #[error("{0} digits, but an E.164 number has 8 to 15")]
    DigitCount(usize),
    /// A phone number whose country calling code starts with 0.
    #[error("a country calling code cannot start with 0")]
    CallingCodeStartsWithZero,
    /// Text with no `kind:` before the value.
    #[error("expected kind:value")]
    MissingKind,
    /// A custom kind name that breaks the naming rules.
    #[error(
        "a kind name is lower-case ASCII letters, digits, '_', '-' and '.', starting with a letter"
    )]
    InvalidKindName,
    /// A custom kind name that is one of the built-in kinds.
    #[error("this name belongs to a built-in kind")]
    ReservedKindName,
}

fn normalize_email(raw: &str) -> Result<String, IdentifierProblem> {
    let trimmed = raw.trim();
    let trimmed = strip_prefix_ignore_case(trimmed, "mailto:")
        .unwrap_or(trimmed)
        .trim();
    if trimmed.is_empty() {
        return Err(IdentifierProblem::Empty);
    }
    if trimmed.chars().any(char::is_whitespace) {
        return Err(IdentifierProblem::InnerWhitespace);
    }
    let at_signs = trimmed.matches('@').count();
    if at_signs != 1 {
        return Err(IdentifierProblem::AtSignCount(at_signs));
    }
    let (local, domain) = trimmed.split_once('@').expect("one '@' was counted");
    if local.is_empty() {
        return Err(IdentifierProblem::EmptyLocalPart);
    }
    if domain.is_empty() {
        return Err(IdentifierProblem::EmptyDomain);
    }
    if let Some(c) = trimmed.chars().find(|c| c.is_control()) {
        return Err(IdentifierProblem::InvalidCharacter(c));
    }
    // The same answer for ASCII, without Unicode case tables: most addresses are ASCII.
    Ok(if trimmed.is_ascii() {
        trimmed.to_ascii_lowercase()
    } else {
        trimmed.to_lowercase()
    })
}

/// Separators people put inside phone numbers; they carry no meaning and are dropped.
fn is_phone_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '.' | '-' | '(' | ')' | '/')
}

fn normalize_phone(raw: &str, default_code: Option<u16>) -> Result<String, IdentifierProblem> {
    let trimmed = raw.trim();
    let trimmed = strip_prefix_ignore_case(trimmed, "tel:").unwrap_or(trimmed);
    let number = strip_extension(trimmed).trim();
    if number.is_empty() {
        return Err(IdentifierProblem::Empty);
    }
    let (international, rest) = match number.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, number),
    };
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else if !is_phone_separator(c) {
            return Err(IdentifierProblem::InvalidCharacter(c));
        }
    }
    let full = if international {
        digits
    } else if let Some(after_prefix) = digits.strip_prefix("00") {
        // 00 is the international call prefix almost everywhere: it stands for '+'.
        after_prefix.to_owned()
    } else {
        let code = default_code.ok_or(IdentifierProblem::MissingCallingCode)?;
        if !(1..=999).contains(&code) {
            return Err(IdentifierProblem::InvalidCallingCode(code));
        }
        // A national number's leading 0 is a trunk prefix, not part of the E.164 number.
        let national = digits.strip_prefix('0').unwrap_or(&digits);
        format!("{code}{national}")
    };
    if full.starts_with('0') {
        return Err(IdentifierProblem::CallingCodeStartsWithZero);
    }
    if !(8..=15).contains(&full.len()) {
        return Err(IdentifierProblem::DigitCount(full.len()));
    }
    Ok(format!("+{full}"))
}

/// Drops an extension (`;ext=12`, ` ext. 12`, ` x12`, `#12`): it reaches a desk, not a person.
fn strip_extension(number: &str) -> &str {
    let lower = number.to_ascii_lowercase();
    for marker in [";ext=", "ext.", "ext", "x", "#"] {
        if let Some(at) = lower.find(marker) {
            let tail = &lower[at + marker.len()..];
            if !tail.trim().is_empty() && tail.trim().chars().all(|c| c.is_ascii_digit()) {
                return &number[..at];
            }
        }
    }
    number
}

fn normalize_opaque(raw: &str) -> Result<String, IdentifierProblem> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(IdentifierProblem::Empty);
    }
    if let Some(c) = trimmed.chars().find(|c| c.is_control()) {
        return Err(IdentifierProblem::InvalidCharacter(c));
    }
    Ok(trimmed.to_owned())
}

/// Device ids are often UUIDs written in either case; one UUID is one device.
fn lowercase_if_uuid(value: String) -> String {
    match uuid::Uuid::try_parse(&value) {
        Ok(uuid) if value.len() == 36 => uuid.hyphenated().to_string(),
        _ => value,
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone_with(raw: &str, code: u16) -> Result<Identifier, IdentifierError> {
        let options = NormalizeOptions::default().with_default_calling_code(code);
        Identifier::with_options(IdentifierKind::Phone, raw, &options)
    }

    #[test]
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    fn canonical_text_reads_back_as_written() {
        let written = [
            Identifier::email("Ana@Example.com").unwrap(),
            Identifier::phone("+1 415 555 2671").unwrap(),
            Identifier::user_id("u:42").unwrap(),
            Identifier::anonymous_id("D1").unwrap(),
            Identifier::new(IdentifierKind::custom("Crm_Id").unwrap(), "A:B").unwrap(),
        ];
        for identifier in written {
            let text = identifier.to_string();
            assert_eq!(Identifier::from_canonical(&text).unwrap(), identifier);
        }
        for broken in ["no kind", "email:", "Not A Kind:x"] {
            assert!(Identifier::from_canonical(broken).is_err(), "{broken}");
        }
    }

    #[test]
    fn email_is_trimmed_and_lower_cased() {
        let a = Identifier::email("Ana@X.com ").unwrap();
        let b = Identifier::email(" ana@x.COM").unwrap();
        let c = Identifier::email("mailto:ANA@x.com").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.to_string(), "email:ana@x.com");
    }

    #[test]
    fn email_errors_name_the_problem() {
        let cases = [
            ("", IdentifierProblem::Empty),
            ("   ", IdentifierProblem::Empty),
            ("ana", IdentifierProblem::AtSignCount(0)),
            ("a@b@c", IdentifierProblem::AtSignCount(2)),
            ("@x.com", IdentifierProblem::EmptyLocalPart),
            ("ana@", IdentifierProblem::EmptyDomain),
            ("an a@x.com", IdentifierProblem::InnerWhitespace),
        ];
        for (raw, problem) in cases {
            let err = Identifier::email(raw).unwrap_err();
            assert_eq!(err.problem, problem, "for {raw:?}");
            assert_eq!(err.kind, "email");
            assert_eq!(err.value, raw);
        }
    }

    #[test]
    fn phone_formats_agree() {
        let expected = "+14155552671";
        for raw in [
            "+1 (415) 555-2671",
            "+1-415-555-2671",
            "+1.415.555.2671",
            "001 415 555 2671",
            "tel:+14155552671",
            "+1 415 555 2671 ext. 12",
        ] {
            assert_eq!(
                Identifier::phone(raw).unwrap().value(),
                expected,
                "for {raw:?}"
            );
        }
        assert_eq!(phone_with("(415) 555-2671", 1).unwrap().value(), expected);
        assert_eq!(
            phone_with("020 7946 0958", 44).unwrap().value(),
            "+442079460958"
        );
    }

    #[test]
    fn national_phone_without_default_code_is_refused() {
        let err = Identifier::phone("415 555 2671").unwrap_err();
        assert_eq!(err.problem, IdentifierProblem::MissingCallingCode);
        assert_eq!(err.value, "415 555 2671");
    }

    #[test]
    fn phone_errors_name_the_problem() {
        assert_eq!(
            Identifier::phone("+1 555 12").unwrap_err().problem,
            IdentifierProblem::DigitCount(6)
        );
        assert_eq!(
            Identifier::phone("+1234567890123456").unwrap_err().problem,
            IdentifierProblem::DigitCount(16)
        );
        assert_eq!(
            Identifier::phone("+1 415 CALL NOW").unwrap_err().problem,
            IdentifierProblem::InvalidCharacter('C')
        );
        assert_eq!(
            Identifier::phone("+0 415 555 2671").unwrap_err().problem,
            IdentifierProblem::CallingCodeStartsWithZero
        );
        assert_eq!(
            phone_with("415 555 2671", 1000).unwrap_err().problem,
            IdentifierProblem::InvalidCallingCode(1000)
        );
    }

    #[test]
    fn opaque_ids_are_trimmed_and_keep_case() {
        assert_eq!(Identifier::user_id("  U-42 ").unwrap().value(), "U-42");
        assert_eq!(
            Identifier::user_id(" ").unwrap_err().problem,
            IdentifierProblem::Empty
        );
        let long = "x".repeat(MAX_IDENTIFIER_BYTES + 1);
        assert_eq!(
            Identifier::user_id(&long).unwrap_err().problem,
            IdentifierProblem::TooLong {
                len: MAX_IDENTIFIER_BYTES + 1,
                max: MAX_IDENTIFIER_BYTES
            }
        );
        assert!(Identifier::user_id(&"x".repeat(MAX_IDENTIFIER_BYTES)).is_ok());
        assert_eq!(
            Identifier::user_id("a\nb").unwrap_err().problem,
            IdentifierProblem::InvalidCharacter('\n')
        );
    }

    #[test]
    fn anonymous_uuid_ids_ignore_case() {
        let upper = Identifier::anonymous_id("6F9619FF-8B86-D011-B42D-00C04FC964FF").unwrap();
        let lower = Identifier::anonymous_id("6f9619ff-8b86-d011-b42d-00c04fc964ff").unwrap();
        assert_eq!(upper, lower);
        assert_eq!(
            Identifier::anonymous_id("Cookie-A").unwrap().value(),
            "Cookie-A"
        );
    }

    #[test]
    fn text_form_parses_every_kind() {
        for text in [
            "email:a@b.c",
            "phone:+14155552671",
            "user_id:u:1",
            "anonymous_id:dev",
            "crm_id:C-9",
        ] {
            let id: Identifier = text.parse().unwrap();
            assert_eq!(id.to_string(), text);
        }
        assert_eq!(
            "no-colon".parse::<Identifier>().unwrap_err().problem,
            IdentifierProblem::MissingKind
        );
        assert_eq!(
            "Bad Kind:x".parse::<Identifier>().unwrap_err().problem,
            IdentifierProblem::InvalidKindName
        );
    }

    #[test]
    fn serde_uses_the_text_form() {
        let id = Identifier::custom("crm_id", "C-9").unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"crm_id:C-9\"");
        assert_eq!(serde_json::from_str::<Identifier>(&json).unwrap(), id);
        assert!(serde_json::from_str::<Identifier>("\"email:nope\"").is_err());
    }
}
