//! Runs of everyday commits, checked in memory against state read once per run.

use chrono::{DateTime, Utc};

use super::*;
use crate::model::{CustomerId, Identifier, InteractionId};
use crate::store::expect;

/// Whether `commit` can be checked in memory: it creates profiles, attaches
/// identifiers, records refusals and stores records, and expects nothing a count
/// would have to tell.
pub(super) fn fits(commit: &Commit) -> bool {
    commit.expect.iter().all(|e| {
        matches!(
            e,
            Expectation::Owner { .. }
                | Expectation::Live { .. }
                | Expectation::Identifiers { .. }
                | Expectation::InteractionVersion { .. }
        )
    }) && commit.identity.iter().all(|c| {
        matches!(
            c,
            IdentityChange::CreateProfile { .. }
                | IdentityChange::Attach { .. }
                | IdentityChange::Refuse(_)
        )
    }) && commit.membership.is_empty()
}

/// What a run of commits is checked against: the stored state of everything they
/// name, then what the commits before each one changed.
#[derive(Default)]
struct State {
    /// Identifier text to the live profile holding it.
    owners: HashMap<String, Option<Uuid>>,
    /// Profile id to the live profile it resolves to.
    lives: HashMap<Uuid, Uuid>,
    /// Live profile to the identifiers it holds, for those an expectation names.
    held: HashMap<Uuid, HashSet<String>>,
    /// Stored event ids.
    events: HashSet<Uuid>,
    /// Stored `updated_at` of each interaction named.
    versions: HashMap<Uuid, i64>,
}

impl State {
    fn load(conn: &mut Conn, commits: &[Commit]) -> Result<Self, StoreError> {
        let mut identifiers = HashSet::new();
        let mut profiles = HashSet::new();
        let mut held = HashSet::new();
        let mut interactions = HashSet::new();
        let mut events = Vec::new();
        for commit in commits {
            for expectation in &commit.expect {
                match expectation {
                    Expectation::Owner { identifier, .. } => {
                        identifiers.insert(identifier.to_string());
                    }
                    Expectation::Live { customer } => {
                        profiles.insert(*customer.as_uuid());
                    }
                    Expectation::Identifiers { customer, .. } => {
                        profiles.insert(*customer.as_uuid());
                        held.insert(*customer.as_uuid());
                    }
                    Expectation::InteractionVersion { id, .. } => {
                        interactions.insert(*id.as_uuid());
                    }
                    Expectation::Evidence { .. } => unreachable!("not in a bulk run"),
                }
            }
            for change in &commit.identity {
                match change {
                    IdentityChange::CreateProfile { id, .. } => {
                        profiles.insert(*id.as_uuid());
                    }
                    IdentityChange::Attach {
                        identifier,
                        customer,
                    } => {
                        identifiers.insert(identifier.to_string());
                        profiles.insert(*customer.as_uuid());
                    }
                    IdentityChange::Refuse(refusal) => {
                        profiles.insert(*refusal.customer.as_uuid());
                    }
                    _ => unreachable!("not in a bulk run"),
                }
            }
            profiles.extend(record_owners(commit));
            if let Some(event) = &commit.event {
                events.push(*event.record.id.as_uuid());
            }
            if let Some(interaction) = &commit.interaction {
                interactions.insert(*interaction.record.id.as_uuid());
            }
        }
        let mut state = State::default();
        if !identifiers.is_empty() {
            let identifiers: Vec<String> = identifiers.into_iter().collect();
            for row in conn.query(
                "SELECT i.identifier, p.live_id FROM identifiers i
                 JOIN profiles p ON p.id = i.profile_id WHERE i.identifier = ANY($1)",
                &[&identifiers],
            )? {
                state.owners.insert(row.get(0), Some(row.get(1)));
            }
            for identifier in identifiers {
                state.owners.entry(identifier).or_insert(None);
            }
        }
        let profiles: Vec<Uuid> = profiles.into_iter().collect();
        for row in conn.query(
            "SELECT id, live_id FROM profiles WHERE id = ANY($1)",
            &[&profiles],
        )? {
            state.lives.insert(row.get(0), row.get(1));
        }
        let held: Vec<Uuid> = held.into_iter().collect();
        if !held.is_empty() {
            for &id in &held {
                if let Some(&live) = state.lives.get(&id) {
                    state.held.entry(live).or_default();
                }
            }
            for row in conn.query(
                "SELECT DISTINCT q.live_id, i.identifier
                 FROM unnest($1::uuid[]) AS u(id)
                 CROSS JOIN LATERAL (SELECT live_id FROM profiles WHERE id = u.id OFFSET 0) q
                 CROSS JOIN LATERAL (SELECT id FROM members
                                     WHERE live_id = q.live_id OFFSET 0) m
                 CROSS JOIN LATERAL (SELECT identifier FROM profile_identifiers
                                     WHERE profile_id = m.id OFFSET 0) i",
                &[&held],
            )? {
                state.held.entry(row.get(0)).or_default().insert(row.get(1));
            }
        }
        if !events.is_empty() {
            for row in conn.query("SELECT id FROM event_ids WHERE id = ANY($1)", &[&events])? {
                state.events.insert(row.get(0));
            }
        }
        if !interactions.is_empty() {
            let interactions: Vec<Uuid> = interactions.into_iter().collect();
            for row in conn.query(
                "SELECT id, updated_at FROM interaction_ids WHERE id = ANY($1)",
                &[&interactions],
            )? {
                state.versions.insert(row.get(0), row.get(1));
            }
        }
        Ok(state)
    }

    fn require(&self, id: Uuid) -> Result<Uuid, Fault> {
        self.lives
            .get(&id)
            .copied()
            .ok_or(Fault::Invalid(CommitProblem::UnknownCustomer(customer(id))))
    }

    /// Checks and applies one commit to the state, adding its rows to `rows`.
    fn apply(&mut self, commit: &Commit, rows: &mut Rows) -> Result<CommitOutcome, Fault> {
        if let Some(event) = &commit.event
            && self.events.contains(event.record.id.as_uuid())
        {
            return Ok(CommitOutcome::Duplicate);
        }
        for expectation in &commit.expect {
            if let Some(problem) = expect::unmet(&mut &*self, expectation)? {
                return Err(Fault::Conflict(problem));
            }
        }
        for change in &commit.identity {
            match change {
                IdentityChange::CreateProfile { id, created_at } => {
                    let id = *id.as_uuid();
                    if self.lives.contains_key(&id) {
                        return Err(Fault::Invalid(CommitProblem::CustomerExists(customer(id))));
                    }
                    self.lives.insert(id, id);
                    self.held.insert(id, HashSet::new());
                    rows.profile(id, nanos(*created_at)?);
                }
                IdentityChange::Attach {
                    identifier,
                    customer: id,
                } => {
                    let live = self.require(*id.as_uuid())?;
                    let text = identifier.to_string();
                    if let Some(owner) = self.owners[&text] {
                        return Err(Fault::Conflict(CommitProblem::AlreadyOwned {
                            identifier: identifier.clone(),
                            owner: customer(owner),
                        }));
                    }
                    self.owners.insert(text.clone(), Some(live));
                    if let Some(held) = self.held.get_mut(&live) {
                        held.insert(text.clone());
                    }
                    rows.identifiers.0.push(text);
                    rows.identifiers.1.push(*id.as_uuid());
                }
                IdentityChange::Refuse(refusal) => {
                    self.require(*refusal.customer.as_uuid())?;
                    rows.refusal(refusal)?;
                }
                _ => unreachable!("not in a bulk run"),
            }
        }
        for owner in record_owners(commit) {
            self.require(owner)?;
        }
        if let Some(event) = &commit.event {
            self.events.insert(*event.record.id.as_uuid());
        }
        if let Some(interaction) = &commit.interaction {
            self.versions.insert(
                *interaction.record.id.as_uuid(),
                nanos(interaction.record.updated_at)?,
            );
        }
        records(rows, commit)?;
        Ok(CommitOutcome::Applied)
    }
}

/// Checks and writes a run of commits that [`fits`]; `first` is the position of the
/// run's first commit in the whole call.
pub(super) fn apply(
    conn: &mut Conn,
    commits: &[Commit],
    first: usize,
    outcomes: &mut Vec<CommitOutcome>,
) -> Result<(), StoreError> {
    let mut state = State::load(conn, commits).map_err(|err| Fault::Store(err).at(first))?;
    let mut rows = Rows::default();
    for (offset, commit) in commits.iter().enumerate() {
        let outcome = state
            .apply(commit, &mut rows)
            .map_err(|fault| fault.at(first + offset))?;
        outcomes.push(outcome);
    }
    rows.flush(conn).map_err(|err| Fault::Store(err).at(first))
}

impl expect::Facts for &State {
    type Error = Fault;

    fn owner(&mut self, identifier: &Identifier) -> Result<Option<CustomerId>, Fault> {
        Ok(self.owners[&identifier.to_string()].map(customer))
    }

    fn live(&mut self, id: CustomerId) -> Result<Option<CustomerId>, Fault> {
        Ok(self.lives.get(id.as_uuid()).map(|live| customer(*live)))
    }

    fn evidence(&mut self, _: CustomerId) -> Result<u64, Fault> {
        unreachable!("a commit that counts evidence is not in a bulk run")
    }

    fn identifiers(&mut self, id: CustomerId) -> Result<Vec<String>, Fault> {
        Ok(self
            .lives
            .get(id.as_uuid())
            .and_then(|live| self.held.get(live))
            .map(|held| held.iter().cloned().collect())
            .unwrap_or_default())
    }

    fn interaction_version(&mut self, id: InteractionId) -> Result<Option<DateTime<Utc>>, Fault> {
        Ok(self
            .versions
            .get(id.as_uuid())
            .map(|at| super::super::time(*at)))
    }
}
