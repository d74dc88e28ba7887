//! Feedback read from the events and interactions that carry it; see [`Feedback`].

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;

use super::channel::Channel;
use super::event::Event;
use super::ids::{EventId, InteractionId};
use super::interaction::{Interaction, InteractionKind};

/// What sort of feedback it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackKind {
    /// Something went wrong for the customer.
    Complaint,
    /// Something went right.
    Praise,
    /// An idea for doing better.
    Suggestion,
    /// A question about the company or its products.
    Question,
    /// A review of a product or of the company.
    Review,
    /// An answer to a survey (NPS, CSAT, …).
    SurveyAnswer,
}

impl FeedbackKind {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "complaint" => Self::Complaint,
            "praise" => Self::Praise,
            "suggestion" => Self::Suggestion,
            "question" => Self::Question,
            "review" => Self::Review,
            "survey_answer" => Self::SurveyAnswer,
            _ => return None,
        })
    }
}

/// The scale a score is given on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    /// Net Promoter Score answers: 0 to 10.
    Nps,
    /// Customer satisfaction: 1 to 5.
    Csat,
    /// Stars: 1 to the given most.
    Stars(u8),
}

impl Scale {
    /// The lowest and highest score on it.
    pub fn range(self) -> (f64, f64) {
        match self {
            Self::Nps => (0.0, 10.0),
            Self::Csat => (1.0, 5.0),
            Self::Stars(most) => (1.0, f64::from(most)),
        }
    }
}

impl fmt::Display for Scale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (low, high) = self.range();
        match self {
            Self::Nps => write!(f, "NPS ({low}-{high})"),
            Self::Csat => write!(f, "CSAT ({low}-{high})"),
            Self::Stars(_) => write!(f, "stars ({low}-{high})"),
        }
    }
}

/// A score on its scale.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// The score given.
    pub value: f64,
    /// The scale it was given on.
    pub scale: Scale,
}

/// Which stored record a piece of feedback was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum FeedbackRecord {
    /// An event.
    Event(EventId),
    /// An interaction.
    Interaction(InteractionId),
}

/// Feedback: what a customer told the company about itself, read from the events and
/// interactions that carry it.
///
/// Feedback is not a third kind of record. It rides on the records sources already send,
/// so it lands on the timeline, belongs to the resolved customer and follows merges like
/// everything else. [`Feedback::from_event`] and [`Feedback::from_interaction`] read it,
/// and validation refuses a record whose feedback is malformed (a score outside its scale,
/// an unknown kind), naming the field, before anything is stored.
///
/// # Which records carry feedback
/// - An [`Interaction`] of kind [`InteractionKind::Feedback`].
/// - An [`Event`] with one of these names (Segment `track` calls):
///
/// | event name | kind |
/// |---|---|
/// | `Survey Answered`, `Survey Submitted`, `Survey Completed` | survey answer |
/// | `NPS Survey Answered` | survey answer, scores on the NPS scale by default |
/// | `Product Reviewed` (Segment's e-commerce spec), `Review Submitted` | review |
/// | `Complaint Submitted`, `Complaint Filed` | complaint |
/// | `Feedback Submitted`, `Feedback Given` | as `feedback_kind` says, else unstated |
///
/// # Which properties it reads
/// All optional, from the record's `properties`:
/// - `feedback_kind`: `complaint`, `praise`, `suggestion`, `question`, `review` or
///   `survey_answer`; overrides the kind the name implies.
/// - The score, one of: `nps` (0–10), `csat` (1–5), `rating` (stars, 1 to `scale_max`,
///   default 5; Segment's `Product Reviewed` sends it), or `score` with `scale` (`nps`,
///   `csat` or `stars`). Numbers may come as JSON numbers or numeric strings, as some
///   clients send them. A `score` without a `scale` is refused unless the event's name
///   implies one.
/// - The verbatim text: `text`, `comment`, `review_body` or `verbatim` (an interaction's
///   `body` when none is given).
/// - Topic tags: `topics` or `tags`, an array of strings.
/// - `public`: whether others could see it. Without it, reviews and anything on the
///   social channel count as public, the rest as private.
///
/// ```
/// use oneview::{Channel, Event, Feedback, FeedbackKind, IdentifierKind, Scale};
/// use serde_json::json;
///
/// let answer = Event::builder("survey-tool", Channel::Email, "Survey Answered")
///     .identifier(IdentifierKind::Email, "ana@example.com")
///     .properties(json!({"nps": 9, "comment": "Fast delivery", "topics": ["delivery"]}))
///     .build()?;
/// let feedback = Feedback::from_event(&answer)?.expect("a survey answer is feedback");
/// assert_eq!(feedback.kind, Some(FeedbackKind::SurveyAnswer));
/// assert_eq!(feedback.score.unwrap().scale, Scale::Nps);
/// assert!(!feedback.public);
///
/// // A score outside its scale is refused, naming the field.
/// let wrong = Event::builder("survey-tool", Channel::Email, "Survey Answered")
///     .identifier(IdentifierKind::Email, "ana@example.com")
///     .properties(json!({"nps": 11}))
///     .build();
/// assert!(wrong.unwrap_err().to_string().contains("properties.nps"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    /// The record it was read from.
    pub record: FeedbackRecord,
    /// What sort it is; `None` when the source did not say.
    pub kind: Option<FeedbackKind>,
    /// The score given, if any.
    pub score: Option<Score>,
    /// Topic tags.
    pub topics: Vec<String>,
    /// The customer's own words.
    pub text: Option<String>,
    /// Where it was given.
    pub channel: Channel,
    /// Whether others could see it (a review, a social post).
    pub public: bool,
    /// When it was given.
    pub at: DateTime<Utc>,
    /// The agent or team that owns it, when the record names one.
    pub owner: Option<String>,
    /// The conversation it belongs to, when the record names one.
    pub thread: Option<String>,
}

/// Why a record's feedback could not be read.
#[derive(Clone, Debug, PartialEq, Error)]
#[non_exhaustive]
pub enum FeedbackError {
    /// A score outside the range of its scale.
    #[error("{field} is {value}, outside the {scale} scale")]
    OutOfScale {
        /// The field holding it.
        field: &'static str,
        /// The score given.
        value: f64,
        /// Its scale.
        scale: Scale,
    },
    /// A field that must hold a number holds something else.
    #[error("{field} must be a number")]
    NotANumber {
        /// The field.
        field: &'static str,
    },
    /// A field holds a value it cannot take.
    #[error("{field} is {value:?}, expected one of {expected}")]
    Unknown {
        /// The field.
        field: &'static str,
        /// The value found.
        value: String,
        /// What it may be.
        expected: &'static str,
    },
    /// A field has the wrong JSON type.
    #[error("{field} must be {expected}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// The type it must have.
        expected: &'static str,
    },
    /// A `score` given without a `scale` where nothing implies one.
    #[error("properties.score is given without properties.scale")]
    NoScale,
}

/// The kind an event's name implies, and the scale it implies for a bare `score`; `None`
/// when the event does not carry feedback.
fn by_event_name(name: &str) -> Option<(Option<FeedbackKind>, Option<Scale>)> {
    Some(match name {
        "Survey Answered" | "Survey Submitted" | "Survey Completed" => {
            (Some(FeedbackKind::SurveyAnswer), None)
        }
        "NPS Survey Answered" => (Some(FeedbackKind::SurveyAnswer), Some(Scale::Nps)),
        "Product Reviewed" | "Review Submitted" => (Some(FeedbackKind::Review), None),
        "Complaint Submitted" | "Complaint Filed" => (Some(FeedbackKind::Complaint), None),
        "Feedback Submitted" | "Feedback Given" => (None, None),
        _ => return None,
    })
}

impl Feedback {
    /// The feedback `event` carries, if it is a feedback event (see the module docs).
    pub fn from_event(event: &Event) -> Result<Option<Self>, FeedbackError> {
        let Some((kind, implied_scale)) = by_event_name(&event.name) else {
            return Ok(None);
        };
        let properties = Some(&event.properties);
        let read = read(properties, kind, implied_scale, &event.channel, None)?;
        Ok(Some(Self {
            record: FeedbackRecord::Event(event.id),
            kind: read.kind,
            score: read.score,
            topics: read.topics,
            text: read.text,
            channel: event.channel.clone(),
            public: read.public,
            at: event.occurred_at,
            owner: None,
            thread: None,
        }))
    }

    /// The feedback `interaction` carries, if it is of kind
    /// [`InteractionKind::Feedback`].
    pub fn from_interaction(interaction: &Interaction) -> Result<Option<Self>, FeedbackError> {
        if interaction.kind != InteractionKind::Feedback {
            return Ok(None);
        }
        let read = read(
            Some(&interaction.properties),
            None,
            None,
            &interaction.channel,
            interaction.body.as_deref(),
        )?;
        Ok(Some(Self {
            record: FeedbackRecord::Interaction(interaction.id),
            kind: read.kind,
            score: read.score,
            topics: read.topics,
            text: read.text,
            channel: interaction.channel.clone(),
            public: read.public,
            at: interaction.occurred_at,
            owner: interaction.owner.clone(),
            thread: interaction.thread.clone(),
        }))
    }

    /// Whether it scores as a promoter (9–10 on the NPS scale).
    pub fn is_promoter(&self) -> bool {
        matches!(self.score, Some(Score { value, scale: Scale::Nps }) if value >= 9.0)
    }

    /// Whether it scores as a detractor (0–6 on the NPS scale).
    pub fn is_detractor(&self) -> bool {
        matches!(self.score, Some(Score { value, scale: Scale::Nps }) if value <= 6.0)
    }
}

/// What a record's properties say about its feedback.
struct Read {
    kind: Option<FeedbackKind>,
    score: Option<Score>,
    topics: Vec<String>,
    text: Option<String>,
    public: bool,
}

/// Reads what a feedback record's properties say; the rest the record itself tells.
fn read(
    properties: Option<&Map<String, Value>>,
    kind: Option<FeedbackKind>,
    implied_scale: Option<Scale>,
    channel: &Channel,
    body: Option<&str>,
) -> Result<Read, FeedbackError> {
    let empty = Map::new();
    let properties = properties.unwrap_or(&empty);
    let kind = match properties.get("feedback_kind") {
        None | Some(Value::Null) => kind,
        Some(Value::String(text)) => {
            Some(
                FeedbackKind::parse(text).ok_or_else(|| FeedbackError::Unknown {
                    field: "properties.feedback_kind",
                    value: text.clone(),
                    expected: "complaint, praise, suggestion, question, review, survey_answer",
                })?,
            )
        }
        Some(_) => {
            return Err(FeedbackError::WrongType {
                field: "properties.feedback_kind",
                expected: "a string",
            });
        }
    };
    let score = score(properties, implied_scale)?;
    let text = ["text", "comment", "review_body", "verbatim"]
        .iter()
        .find_map(|field| properties.get(*field).and_then(Value::as_str))
        .or(body)
        .map(str::to_owned);
    let topics = match properties.get("topics").or_else(|| properties.get("tags")) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or(FeedbackError::WrongType {
                        field: "properties.topics",
                        expected: "an array of strings",
                    })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(FeedbackError::WrongType {
                field: "properties.topics",
                expected: "an array of strings",
            });
        }
    };
    let public = match properties.get("public") {
        None | Some(Value::Null) => {
            kind == Some(FeedbackKind::Review) || *channel == Channel::Social
        }
        Some(Value::Bool(public)) => *public,
        Some(_) => {
            return Err(FeedbackError::WrongType {
                field: "properties.public",
                expected: "true or false",
            });
        }
    };
    Ok(Read {
        kind,
        score,
        topics,
        text,
        public,
    })
}

/// The score a record's properties give, checked against its scale.
fn score(
    properties: &Map<String, Value>,
    implied_scale: Option<Scale>,
) -> Result<Option<Score>, FeedbackError> {
    let stars = match properties.get("scale_max") {
        None | Some(Value::Null) => 5,
        Some(value) => {
            let most = number("properties.scale_max", value)?;
            if !(1.0..=100.0).contains(&most) || most.fract() != 0.0 {
                return Err(FeedbackError::Unknown {
                    field: "properties.scale_max",
                    value: most.to_string(),
                    expected: "a whole number from 1 to 100",
                });
            }
            most as u8
        }
    };
    let given = [
        ("nps", "properties.nps", Some(Scale::Nps)),
        ("csat", "properties.csat", Some(Scale::Csat)),
        ("rating", "properties.rating", Some(Scale::Stars(stars))),
        ("score", "properties.score", None),
    ]
    .into_iter()
    .find(|(key, _, _)| properties.get(*key).is_some_and(|v| !v.is_null()));
    let Some((key, field, scale)) = given else {
        return Ok(None);
    };
    let value = number(field, &properties[key])?;
    let scale = match scale {
        Some(scale) => scale,
        None => match properties.get("scale") {
            None | Some(Value::Null) => implied_scale.ok_or(FeedbackError::NoScale)?,
            Some(Value::String(text)) => match text.as_str() {
                "nps" => Scale::Nps,
                "csat" => Scale::Csat,
                "stars" => Scale::Stars(stars),
                _ => {
                    return Err(FeedbackError::Unknown {
                        field: "properties.scale",
                        value: text.clone(),
                        expected: "nps, csat, stars",
                    });
                }
            },
            Some(_) => {
                return Err(FeedbackError::WrongType {
                    field: "properties.scale",
                    expected: "a string",
                });
            }
        },
    };
    let (low, high) = scale.range();
    if !(low..=high).contains(&value) {
        return Err(FeedbackError::OutOfScale {
            field,
            value,
            scale,
        });
    }
    Ok(Some(Score { value, scale }))
}

/// A number given as a JSON number or a numeric string.
fn number(field: &'static str, value: &Value) -> Result<f64, FeedbackError> {
    let parsed = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(text) => text.trim().parse::<f64>().ok(),
        _ => None,
    };
    parsed
        .filter(|n| n.is_finite())
        .ok_or(FeedbackError::NotANumber { field })
}

/// Net Promoter Score of a set of NPS answers.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Nps {
    /// Answers of 9 or 10.
    pub promoters: u64,
    /// Answers of 7 or 8.
    pub passives: u64,
    /// Answers of 0 to 6.
    pub detractors: u64,
    /// The share of promoters minus the share of detractors, in percentage points
    /// (-100 to 100); `None` without answers.
    pub score: Option<f64>,
}

/// Customer satisfaction of a set of CSAT answers.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Csat {
    /// Answers of 4 or 5.
    pub satisfied: u64,
    /// All answers.
    pub responses: u64,
    /// The share of satisfied answers, in percent; `None` without answers.
    pub score: Option<f64>,
}

/// The Net Promoter Score of the NPS answers among `feedback` (others are ignored).
///
/// ```
/// use oneview::{nps, Channel, Event, Feedback, IdentifierKind};
/// use serde_json::json;
///
/// let answers: Vec<Feedback> = [10, 9, 7, 3]
///     .iter()
///     .map(|score| {
///         let event = Event::builder("survey", Channel::Email, "NPS Survey Answered")
///             .identifier(IdentifierKind::Email, "ana@example.com")
///             .properties(json!({"score": score}))
///             .build()
///             .unwrap();
///         Feedback::from_event(&event).unwrap().unwrap()
///     })
///     .collect();
/// let result = nps(&answers);
/// assert_eq!((result.promoters, result.passives, result.detractors), (2, 1, 1));
/// assert_eq!(result.score, Some(25.0)); // 50% promoters - 25% detractors
/// ```
pub fn nps<'a>(feedback: impl IntoIterator<Item = &'a Feedback>) -> Nps {
    let (mut promoters, mut passives, mut detractors) = (0, 0, 0);
    for item in feedback {
        if item.is_promoter() {
            promoters += 1;
        } else if item.is_detractor() {
            detractors += 1;
        } else if item.score.is_some_and(|s| s.scale == Scale::Nps) {
            passives += 1;
        }
    }
    Nps::of_counts(promoters, passives, detractors)
}

impl Nps {
    /// The score of these counts of answers.
    fn of_counts(promoters: u64, passives: u64, detractors: u64) -> Self {
        let total = promoters + passives + detractors;
        Self {
            promoters,
            passives,
            detractors,
            score: (total > 0)
                .then(|| (promoters as f64 - detractors as f64) * 100.0 / total as f64),
        }
    }

    /// The answers of `self` and `other` together.
    pub(crate) fn and(self, other: Self) -> Self {
        Self::of_counts(
            self.promoters + other.promoters,
            self.passives + other.passives,
            self.detractors + other.detractors,
        )
    }
}

impl Default for Nps {
    /// No answers.
    fn default() -> Self {
        Self::of_counts(0, 0, 0)
    }
}

/// Customer satisfaction of the CSAT answers among `feedback` (others are ignored): the
/// share of 4s and 5s.
pub fn csat<'a>(feedback: impl IntoIterator<Item = &'a Feedback>) -> Csat {
    let (mut satisfied, mut responses) = (0, 0);
    for item in feedback {
        if let Some(Score {
            value,
            scale: Scale::Csat,
        }) = item.score
        {
            responses += 1;
            if value >= 4.0 {
                satisfied += 1;
            }
        }
    }
    Csat::of_counts(satisfied, responses)
}

impl Csat {
    /// The score of these counts of answers.
    fn of_counts(satisfied: u64, responses: u64) -> Self {
        Self {
            satisfied,
            responses,
            score: (responses > 0).then(|| satisfied as f64 * 100.0 / responses as f64),
        }
    }

    /// The answers of `self` and `other` together.
    pub(crate) fn and(self, other: Self) -> Self {
        Self::of_counts(
            self.satisfied + other.satisfied,
            self.responses + other.responses,
        )
    }
}

impl Default for Csat {
    /// No answers.
    fn default() -> Self {
        Self::of_counts(0, 0)
    }
}
