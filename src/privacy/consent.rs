//! Consent in force, worked out from the stored decisions and the merges of a profile.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{
    Channel, ConsentRecord, ConsentStatus, CustomerId, MergeId, MergeRecord, Purpose,
};
use crate::store::Attributed;

/// What holds for a purpose the customer never decided on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Regime {
    /// Not allowed until the customer grants it (the GDPR's rule for marketing).
    OptIn,
    /// Allowed until the customer denies it.
    OptOut,
}

/// The regime of each purpose when the customer has not decided: opt-in for every
/// purpose unless told otherwise.
///
/// ```
/// use oneview::privacy::{ConsentDefaults, Regime};
/// use oneview::Purpose;
///
/// let defaults = ConsentDefaults::opt_in().with(Purpose::Service, Regime::OptOut);
/// assert_eq!(defaults.regime(&Purpose::Service), Regime::OptOut);
/// assert_eq!(defaults.regime(&Purpose::Marketing), Regime::OptIn);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentDefaults {
    otherwise: Regime,
    purposes: BTreeMap<Purpose, Regime>,
}

impl Default for ConsentDefaults {
    fn default() -> Self {
        Self::opt_in()
    }
}

impl ConsentDefaults {
    /// Every purpose needs a grant.
    pub fn opt_in() -> Self {
        Self {
            otherwise: Regime::OptIn,
            purposes: BTreeMap::new(),
        }
    }

    /// Every purpose is allowed until denied.
    pub fn opt_out() -> Self {
        Self {
            otherwise: Regime::OptOut,
            purposes: BTreeMap::new(),
        }
    }

    /// Sets the regime of one purpose.
    pub fn with(mut self, purpose: Purpose, regime: Regime) -> Self {
        self.purposes.insert(purpose, regime);
        self
    }

    /// The regime of `purpose`.
    pub fn regime(&self, purpose: &Purpose) -> Regime {
        self.purposes
            .get(purpose)
            .copied()
            .unwrap_or(self.otherwise)
    }
}

/// The decision in force for one purpose on one channel (or on every channel).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectiveConsent {
    /// The purpose.
    pub purpose: Purpose,
    /// The channel; `None` for every channel.
    pub channel: Option<Channel>,
    /// What holds.
    pub status: ConsentStatus,
    /// Since when: the decision's time, or the merge's when a merge held a denial.
    pub since: DateTime<Utc>,
    /// The customer's decision it rests on.
    pub decision: ConsentRecord,
    /// The merge that kept a denial of one side in force over the other side's grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_by_merge: Option<MergeId>,
}

impl EffectiveConsent {
    /// Which of two applies later: the later `since`; at the same time a denial, so a tie
    /// never allows; then the decisions' own order.
    fn order(&self, other: &Self) -> Ordering {
        self.since
            .cmp(&other.since)
            .then_with(|| (!self.status.allows()).cmp(&!other.status.allows()))
            .then_with(|| self.decision.order_key().cmp(&other.decision.order_key()))
    }

    fn later<'a>(a: &'a Self, b: &'a Self) -> &'a Self {
        if a.order(b) == Ordering::Less { b } else { a }
    }
}

/// What the customer allowed or refused, as of one time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentState {
    entries: Vec<EffectiveConsent>,
}

/// Entries keyed by purpose and channel.
type Entries = BTreeMap<(Purpose, Option<Channel>), EffectiveConsent>;

impl ConsentState {
    /// Every purpose and channel with a decision in force, by purpose then channel
    /// (every-channel entries first).
    pub fn effective(&self) -> &[EffectiveConsent] {
        &self.entries
    }

    /// The decision in force for `purpose` on `channel`: the one for that channel if
    /// there is one — [`resolve_consent`] has already made it the later of that
    /// channel's and the every-channel decision — else the one for every channel.
    pub fn lookup(&self, purpose: &Purpose, channel: &Channel) -> Option<&EffectiveConsent> {
        let find = |wanted: Option<&Channel>| {
            self.entries
                .iter()
                .find(|e| &e.purpose == purpose && e.channel.as_ref() == wanted)
        };
        find(Some(channel)).or_else(|| find(None))
    }

    /// Whether `purpose` may be pursued on `channel`, and what that rests on.
    pub fn decide(
        &self,
        purpose: &Purpose,
        channel: &Channel,
        defaults: &ConsentDefaults,
    ) -> ContactDecision {
        let (allowed, basis) = match self.lookup(purpose, channel) {
            Some(effective) => (
                effective.status.allows(),
                ConsentBasis::Decision(Box::new(effective.clone())),
            ),
            None => {
                let regime = defaults.regime(purpose);
                (regime == Regime::OptOut, ConsentBasis::Default(regime))
            }
        };
        ContactDecision {
            allowed,
            purpose: purpose.clone(),
            channel: channel.clone(),
            basis,
        }
    }
}

/// The answer to "may we?": allowed or not, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactDecision {
    /// Whether the purpose may be pursued on the channel.
    pub allowed: bool,
    /// The purpose asked about.
    pub purpose: Purpose,
    /// The channel asked about.
    pub channel: Channel,
    /// What the answer rests on.
    pub basis: ConsentBasis,
}

/// Customers who may be contacted for one purpose on one channel, from
/// [`Customers::to_contact`](crate::Customers::to_contact): the only way to get one is to
/// say the purpose.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactList {
    /// The purpose.
    pub purpose: Purpose,
    /// The channel.
    pub channel: Channel,
    /// As of when consent was read.
    pub as_of: DateTime<Utc>,
    /// Who may be contacted, in the order given (each once).
    pub allowed: Vec<CustomerId>,
    /// Who may not, each with the decision that leaves them out.
    pub left_out: Vec<(CustomerId, ContactDecision)>,
    /// How many candidates are not known customers.
    pub unknown: usize,
}

/// What a [`ContactDecision`] rests on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "basis", content = "detail", rename_all = "snake_case")]
pub enum ConsentBasis {
    /// A decision of the customer's (held over a merge, maybe).
    Decision(Box<EffectiveConsent>),
    /// The customer never decided: the purpose's default regime.
    Default(Regime),
}

/// Works out the consent in force at `as_of` for one live profile, from its members, the
/// merges that built it and the decisions recorded on each member (as
/// [`PrivacyStore::consent`](crate::store::PrivacyStore::consent) gives them).
///
/// # The rules
/// - Decisions apply in event time (then event id), never in arrival order: the latest
///   decision for a purpose wins.
/// - A decision on one channel and one on every channel for the same purpose: the later
///   one wins on that channel (a withdrawal from email marketing, then "yes to
///   everything" later, allows email marketing again).
/// - **A merge never lets one person's consent speak for another.** When two profiles
///   merge, any purpose and channel that either side had denied or withdrawn stays so, as
///   of the merge, until a decision made after the merge grants it again — whatever the
///   other side had granted, and however recently.
/// - When the customer never decided, the [`ConsentDefaults`] answer: opt-in (not
///   allowed) unless a purpose is set opt-out.
///
/// Members that no merge at or before `as_of` joins (asked about a time before the
/// merge) are combined as a merge would combine them, so a denial on either side counts.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use oneview::privacy::resolve_consent;
/// use oneview::store::Attributed;
/// use oneview::{ConsentChoice, ConsentRecord, ConsentStatus, CustomerId, Provenance, Purpose};
///
/// let ana = CustomerId::new();
/// let decided = |day: u32, status| Attributed {
///     customer: ana,
///     record: ConsentRecord {
///         choice: ConsentChoice::new(Purpose::Marketing, status),
///         provenance: Provenance {
///             source: "web".into(),
///             event_id: None,
///             observed_at: Utc.with_ymd_and_hms(2026, 1, day, 0, 0, 0).unwrap(),
///         },
///     },
/// };
/// // Arrival order does not matter: the later decision wins.
/// let records = [decided(9, ConsentStatus::Withdrawn), decided(2, ConsentStatus::Granted)];
/// let state = resolve_consent(&[ana], &[], &records, Utc::now());
/// assert_eq!(state.effective()[0].status, ConsentStatus::Withdrawn);
/// ```
pub fn resolve_consent(
    members: &[CustomerId],
    merges: &[MergeRecord],
    records: &[Attributed<ConsentRecord>],
    as_of: DateTime<Utc>,
) -> ConsentState {
    enum Step<'a> {
        Merge(&'a MergeRecord),
        Decide(&'a Attributed<ConsentRecord>),
    }
    let mut steps: Vec<(DateTime<Utc>, u8, Step)> = Vec::new();
    for merge in merges.iter().filter(|m| m.at <= as_of) {
        steps.push((merge.at, 0, Step::Merge(merge)));
    }
    for record in records
        .iter()
        .filter(|r| r.record.provenance.observed_at <= as_of)
    {
        steps.push((
            record.record.provenance.observed_at,
            1,
            Step::Decide(record),
        ));
    }
    // At one instant, merges first: a decision made by the evidence that merged is the
    // merged customer's.
    steps.sort_by(|(at_a, kind_a, a), (at_b, kind_b, b)| {
        (at_a, kind_a)
            .cmp(&(at_b, kind_b))
            .then_with(|| match (a, b) {
                (Step::Merge(x), Step::Merge(y)) => (x.at, x.id).cmp(&(y.at, y.id)),
                (Step::Decide(x), Step::Decide(y)) => {
                    x.record.order_key().cmp(&y.record.order_key())
                }
                _ => Ordering::Equal,
            })
    });

    let mut parent: HashMap<CustomerId, CustomerId> = HashMap::new();
    let mut sides: HashMap<CustomerId, Entries> = HashMap::new();
    for (_, _, step) in steps {
        match step {
            Step::Decide(Attributed { customer, record }) => {
                let side = sides.entry(root(&parent, *customer)).or_default();
                let key = (record.choice.purpose.clone(), record.choice.channel.clone());
                let new = EffectiveConsent {
                    purpose: key.0.clone(),
                    channel: key.1.clone(),
                    status: record.choice.status,
                    since: record.provenance.observed_at,
                    decision: record.clone(),
                    held_by_merge: None,
                };
                let replace = side
                    .get(&key)
                    .is_none_or(|old| old.order(&new) != Ordering::Greater);
                if replace {
                    side.insert(key, new);
                }
            }
            Step::Merge(merge) => {
                let survivor = root(&parent, merge.survivor);
                let absorbed = root(&parent, merge.absorbed);
                if survivor == absorbed {
                    continue;
                }
                parent.insert(absorbed, survivor);
                let a = sides.remove(&survivor).unwrap_or_default();
                let b = sides.remove(&absorbed).unwrap_or_default();
                sides.insert(survivor, combine(&a, &b, merge.at, Some(merge.id)));
            }
        }
    }
    // Sides no merge has joined yet, as of `as_of`: combined as a merge would be.
    let wanted: BTreeSet<CustomerId> = members.iter().map(|m| root(&parent, *m)).collect();
    let mut combined: Option<Entries> = None;
    for side in wanted {
        let entries = sides.remove(&side).unwrap_or_default();
        combined = Some(match combined {
            None => entries,
            Some(so_far) => combine(&so_far, &entries, DateTime::<Utc>::MIN_UTC, None),
        });
    }
    // Each channel's entry as the channel sees it (its own or the every-channel one,
    // whichever is later), so the state reads the same whether or not a merge combined it.
    let entries = combined.unwrap_or_default();
    ConsentState {
        entries: entries
            .keys()
            .filter_map(|key| {
                let mut entry = side_view(&entries, key)?.clone();
                entry.channel = key.1.clone();
                Some(entry)
            })
            .collect(),
    }
}

fn root(parent: &HashMap<CustomerId, CustomerId>, mut id: CustomerId) -> CustomerId {
    while let Some(&up) = parent.get(&id) {
        id = up;
    }
    id
}

/// What one side says about `key`: its own entry, or for a channel the later of that
/// channel's entry and the every-channel one.
fn side_view<'a>(
    side: &'a Entries,
    key: &(Purpose, Option<Channel>),
) -> Option<&'a EffectiveConsent> {
    let own = side.get(key);
    let general = match key.1 {
        Some(_) => side.get(&(key.0.clone(), None)),
        None => None,
    };
    match (own, general) {
        (Some(a), Some(b)) => Some(EffectiveConsent::later(a, b)),
        (one, other) => one.or(other),
    }
}

/// Two sides of a merge as one: where either side refuses, the refusal holds from the
/// merge on; where both allow, the later grant stands.
fn combine(a: &Entries, b: &Entries, at: DateTime<Utc>, merge: Option<MergeId>) -> Entries {
    let keys: BTreeSet<&(Purpose, Option<Channel>)> = a.keys().chain(b.keys()).collect();
    let hold = |refusal: &EffectiveConsent| EffectiveConsent {
        since: refusal.since.max(at),
        held_by_merge: merge.or(refusal.held_by_merge),
        ..refusal.clone()
    };
    let mut out = Entries::new();
    for key in keys {
        let (x, y) = (side_view(a, key), side_view(b, key));
        let mut entry = match (x, y) {
            (None, None) => continue,
            // One side only: nothing of the other's to hold it against.
            (Some(only), None) | (None, Some(only)) => only.clone(),
            (Some(x), Some(y)) => match (x.status.allows(), y.status.allows()) {
                (false, false) => hold(EffectiveConsent::later(x, y)),
                (false, true) => hold(x),
                (true, false) => hold(y),
                (true, true) => EffectiveConsent::later(x, y).clone(),
            },
        };
        // The entry now speaks for `key`, though it may have come from the every-channel one.
        entry.purpose = key.0.clone();
        entry.channel = key.1.clone();
        out.insert(key.clone(), entry);
    }
    out
}
