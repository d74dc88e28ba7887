//! Writes: one transaction per [`Store::apply`](crate::store::Store::apply) call.
//!
//! Runs of everyday commits go through [`bulk`]: what they are checked against is read
//! for the whole run at once, the checks are made in memory in commit order, and the rows
//! go in with one multi-row statement per table. Any other commit is applied statement by
//! statement ([`one`]), after the run before it is written.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::read::texts;
use super::{Conn, MEMBERS, Writes, customer, encode, nanos, schema};
use crate::model::{AuditRecord, ConsentRecord, MergeRecord, OverrideRecord, Refusal};
use crate::store::{
    Attributed, Commit, CommitOutcome, CommitProblem, Expectation, IdentityChange, Rewrite,
    StoreError,
};

/// A failure inside one commit, before it is tagged with the commit's position.
pub(super) enum Fault {
    Conflict(CommitProblem),
    Invalid(CommitProblem),
    Store(StoreError),
}

impl From<StoreError> for Fault {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

impl Fault {
    fn at(self, commit: usize) -> StoreError {
        match self {
            Self::Conflict(problem) | Self::Store(StoreError::Conflict { commit: _, problem }) => {
                StoreError::Conflict { commit, problem }
            }
            Self::Invalid(problem) => StoreError::InvalidCommit { commit, problem },
            Self::Store(err) => err,
        }
    }
}

/// Rolls the transaction back unless it was committed.
struct Transaction<'a> {
    conn: &'a mut Conn,
    open: bool,
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.conn.client.batch_execute("ROLLBACK");
        }
    }
}

/// Applies `commits` in one transaction: all of them, or none.
pub(super) fn apply(
    conn: &mut Conn,
    commits: &[Commit],
    writes: Writes,
    schema_name: &str,
) -> Result<Vec<CommitOutcome>, StoreError> {
    conn.batch(match writes {
        Writes::Serializable => "BEGIN ISOLATION LEVEL SERIALIZABLE",
        Writes::OneAtATime => "BEGIN",
    })?;
    let mut tx = Transaction { conn, open: true };
    if writes == Writes::OneAtATime {
        tx.conn.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&schema::writer_lock_key(schema_name)],
        )?;
    }
    let mut outcomes = Vec::with_capacity(commits.len());
    let mut at = 0;
    while at < commits.len() {
        let run = commits[at..].iter().take_while(|c| bulk::fits(c)).count();
        if run > 0 {
            bulk::apply(tx.conn, &commits[at..at + run], at, &mut outcomes)?;
            at += run;
        } else {
            let outcome = one::apply(tx.conn, &commits[at]).map_err(|fault| fault.at(at))?;
            outcomes.push(outcome);
            at += 1;
        }
    }
    tx.conn.batch("COMMIT")?;
    tx.open = false;
    Ok(outcomes)
}

/// Rows waiting to be written, one array per column, so each table takes one statement.
#[derive(Default)]
pub(super) struct Rows {
    profiles: (Vec<Uuid>, Vec<i64>),
    identifiers: (Vec<String>, Vec<Uuid>),
    refusals: RefusalColumns,
    events: EventColumns,
    /// Interactions by id, the latest version of each; each replaces a stored one.
    interactions: Vec<(Uuid, Uuid, i64, i64, String, String)>,
    interaction_at: HashMap<Uuid, usize>,
    traits: (Vec<Uuid>, Vec<Option<Uuid>>, Vec<String>),
    consent: (Vec<Uuid>, Vec<Option<Uuid>>, Vec<String>),
    audit: (Vec<Uuid>, Vec<i64>, Vec<String>),
}

/// Refusal rows, a column each.
#[derive(Default)]
struct RefusalColumns {
    profile: Vec<Uuid>,
    identifier: Vec<String>,
    evidence: Vec<Uuid>,
    at: Vec<i64>,
    record: Vec<String>,
}

/// Event rows, a column each.
#[derive(Default)]
struct EventColumns {
    profile: Vec<Uuid>,
    at: Vec<i64>,
    id: Vec<Uuid>,
    channel: Vec<String>,
    body: Vec<String>,
}

impl Rows {
    fn profile(&mut self, id: Uuid, created_at: i64) {
        self.profiles.0.push(id);
        self.profiles.1.push(created_at);
    }

    fn refusal(&mut self, refusal: &Refusal) -> Result<(), StoreError> {
        self.refusals.profile.push(*refusal.customer.as_uuid());
        self.refusals
            .identifier
            .push(refusal.identifier.to_string());
        self.refusals.evidence.push(refusal.evidence);
        self.refusals.at.push(nanos(refusal.at)?);
        self.refusals.record.push(encode(refusal)?);
        Ok(())
    }

    fn event(&mut self, event: &Attributed<crate::model::Event>) -> Result<(), StoreError> {
        let record = &event.record;
        self.events.profile.push(*event.customer.as_uuid());
        self.events.at.push(nanos(record.occurred_at)?);
        self.events.id.push(*record.id.as_uuid());
        self.events.channel.push(record.channel.name().to_owned());
        self.events.body.push(encode(record)?);
        Ok(())
    }

    pub(super) fn interaction(
        &mut self,
        stored: &Attributed<crate::model::Interaction>,
    ) -> Result<(), StoreError> {
        let record = &stored.record;
        let row = (
            *record.id.as_uuid(),
            *stored.customer.as_uuid(),
            nanos(record.occurred_at)?,
            nanos(record.updated_at)?,
            record.channel.name().to_owned(),
            encode(record)?,
        );
        match self.interaction_at.get(&row.0) {
            Some(&at) => self.interactions[at] = row,
            None => {
                self.interaction_at.insert(row.0, self.interactions.len());
                self.interactions.push(row);
            }
        }
        Ok(())
    }

    fn trait_operation(
        &mut self,
        id: Uuid,
        record: &crate::model::TraitOperation,
    ) -> Result<(), StoreError> {
        self.traits.0.push(id);
        self.traits
            .1
            .push(record.provenance.event_id.map(|e| *e.as_uuid()));
        self.traits.2.push(encode(record)?);
        Ok(())
    }

    fn consent(&mut self, id: Uuid, record: &ConsentRecord) -> Result<(), StoreError> {
        self.consent.0.push(id);
        self.consent
            .1
            .push(record.provenance.event_id.map(|e| *e.as_uuid()));
        self.consent.2.push(encode(record)?);
        Ok(())
    }

    fn audit(&mut self, record: &AuditRecord) -> Result<(), StoreError> {
        self.audit.0.push(record.id);
        self.audit.1.push(nanos(record.at)?);
        self.audit.2.push(encode(record)?);
        Ok(())
    }

    /// Writes every row, one statement per table, and empties the buffers.
    pub(super) fn flush(&mut self, conn: &mut Conn) -> Result<(), StoreError> {
        let rows = std::mem::take(self);
        if !rows.profiles.0.is_empty() {
            conn.execute(
                "WITH created AS (
                     INSERT INTO profiles (id, created_at, live_id)
                     SELECT id, at, id FROM unnest($1::uuid[], $2::bigint[]) AS u(id, at)
                     RETURNING id)
                 INSERT INTO members (live_id, id) SELECT id, id FROM created",
                &[&rows.profiles.0, &rows.profiles.1],
            )?;
        }
        if !rows.identifiers.0.is_empty() {
            conn.execute(
                "WITH indexed AS (
                     INSERT INTO identifiers (identifier, profile_id)
                     SELECT * FROM unnest($1::text[], $2::uuid[])
                     RETURNING profile_id, identifier)
                 INSERT INTO profile_identifiers (profile_id, identifier)
                 SELECT * FROM indexed",
                &[&rows.identifiers.0, &rows.identifiers.1],
            )?;
        }
        if !rows.refusals.profile.is_empty() {
            let r = &rows.refusals;
            conn.execute(
                "INSERT INTO refusals (profile_id, identifier, evidence, at, record)
                 SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::bigint[], $5::text[])",
                &[&r.profile, &r.identifier, &r.evidence, &r.at, &r.record],
            )?;
        }
        if !rows.events.profile.is_empty() {
            let e = &rows.events;
            conn.execute(
                "WITH stored AS (
                     INSERT INTO events (profile_id, occurred_at, id, channel, body)
                     SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::uuid[], $4::text[], $5::text[])
                     RETURNING id, profile_id, occurred_at)
                 INSERT INTO event_ids (id, profile_id, occurred_at) SELECT * FROM stored",
                &[&e.profile, &e.at, &e.id, &e.channel, &e.body],
            )?;
        }
        if !rows.interactions.is_empty() {
            let mut columns = (
                Vec::<Uuid>::new(),
                Vec::<Uuid>::new(),
                Vec::<i64>::new(),
                Vec::<i64>::new(),
                Vec::<String>::new(),
                Vec::<String>::new(),
            );
            for (id, profile, at, updated, channel, body) in rows.interactions {
                columns.0.push(id);
                columns.1.push(profile);
                columns.2.push(at);
                columns.3.push(updated);
                columns.4.push(channel);
                columns.5.push(body);
            }
            // A new version replaces the stored one: its time, a key column, may differ.
            conn.execute(
                "WITH gone AS (DELETE FROM interaction_ids WHERE id = ANY($1)
                               RETURNING id, profile_id, occurred_at)
                 DELETE FROM interactions t USING gone g
                 WHERE (t.profile_id, t.occurred_at, t.id) = (g.profile_id, g.occurred_at, g.id)",
                &[&columns.0],
            )?;
            conn.execute(
                "WITH stored AS (
                     INSERT INTO interactions (id, profile_id, occurred_at, updated_at, channel, body)
                     SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::bigint[],
                                          $5::text[], $6::text[])
                     RETURNING id, profile_id, occurred_at, updated_at)
                 INSERT INTO interaction_ids (id, profile_id, occurred_at, updated_at)
                 SELECT * FROM stored",
                &[
                    &columns.0, &columns.1, &columns.2, &columns.3, &columns.4, &columns.5,
                ],
            )?;
        }
        for (table, (profiles, events, bodies)) in
            [("traits", &rows.traits), ("consent", &rows.consent)]
        {
            if !profiles.is_empty() {
                conn.execute(
                    &format!(
                        "INSERT INTO {table} (profile_id, event_id, body)
                         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[])"
                    ),
                    &[profiles, events, bodies],
                )?;
            }
        }
        if !rows.audit.0.is_empty() {
            let a = &rows.audit;
            conn.execute(
                "INSERT INTO audit (id, at, record)
                 SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[])",
                &[&a.0, &a.1, &a.2],
            )?;
        }
        Ok(())
    }
}

/// Appends the commit's records (event, interaction, traits, consent, audit) to `rows`.
fn records(rows: &mut Rows, commit: &Commit) -> Result<(), StoreError> {
    if let Some(event) = &commit.event {
        rows.event(event)?;
    }
    if let Some(interaction) = &commit.interaction {
        rows.interaction(interaction)?;
    }
    for operation in &commit.traits {
        rows.trait_operation(*operation.customer.as_uuid(), &operation.record)?;
    }
    for consent in &commit.consent {
        rows.consent(*consent.customer.as_uuid(), &consent.record)?;
    }
    for record in &commit.audit {
        rows.audit(record)?;
    }
    Ok(())
}

/// The profiles a commit's records are attributed to, which must exist.
fn record_owners(commit: &Commit) -> impl Iterator<Item = Uuid> + '_ {
    let event = commit.event.iter().map(|e| *e.customer.as_uuid());
    let interaction = commit.interaction.iter().map(|i| *i.customer.as_uuid());
    let traits = commit.traits.iter().map(|t| *t.customer.as_uuid());
    let consent = commit.consent.iter().map(|c| *c.customer.as_uuid());
    event.chain(interaction).chain(traits).chain(consent)
}

mod bulk {
    //! Runs of everyday commits, checked in memory against state read once per run.

    use super::*;

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
        })
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

        fn check(&self, expectation: &Expectation) -> Result<(), Fault> {
            match expectation {
                Expectation::Owner { identifier, owner } => {
                    let found = self.owners[&identifier.to_string()].map(customer);
                    if found != *owner {
                        return Err(Fault::Conflict(CommitProblem::UnexpectedOwner {
                            identifier: identifier.clone(),
                            expected: *owner,
                            found,
                        }));
                    }
                }
                Expectation::Live { customer: id } => match self.lives.get(id.as_uuid()) {
                    None => return Err(Fault::Conflict(CommitProblem::UnknownCustomer(*id))),
                    Some(live) if live != id.as_uuid() => {
                        return Err(Fault::Conflict(CommitProblem::NotLive(*id)));
                    }
                    Some(_) => {}
                },
                Expectation::Identifiers {
                    customer: id,
                    identifiers,
                } => {
                    let empty = HashSet::new();
                    let found = self
                        .lives
                        .get(id.as_uuid())
                        .and_then(|live| self.held.get(live))
                        .unwrap_or(&empty);
                    let expected: HashSet<String> =
                        identifiers.iter().map(ToString::to_string).collect();
                    if *found != expected {
                        return Err(Fault::Conflict(CommitProblem::IdentifiersChanged {
                            customer: *id,
                            expected: expected.len(),
                            found: found.len(),
                        }));
                    }
                }
                Expectation::InteractionVersion { id, updated_at } => {
                    let found = self
                        .versions
                        .get(id.as_uuid())
                        .map(|at| super::super::time(*at));
                    if found != *updated_at {
                        return Err(Fault::Conflict(CommitProblem::InteractionVersion {
                            id: *id,
                            expected: *updated_at,
                            found,
                        }));
                    }
                }
                Expectation::Evidence { .. } => unreachable!("not in a bulk run"),
            }
            Ok(())
        }

        /// Checks and applies one commit to the state, adding its rows to `rows`.
        fn apply(&mut self, commit: &Commit, rows: &mut Rows) -> Result<CommitOutcome, Fault> {
            if let Some(event) = &commit.event
                && self.events.contains(event.record.id.as_uuid())
            {
                return Ok(CommitOutcome::Duplicate);
            }
            for expectation in &commit.expect {
                self.check(expectation)?;
            }
            for change in &commit.identity {
                match change {
                    IdentityChange::CreateProfile { id, created_at } => {
                        let id = *id.as_uuid();
                        if self.lives.contains_key(&id) {
                            return Err(Fault::Invalid(CommitProblem::CustomerExists(customer(
                                id,
                            ))));
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
}

mod one {
    //! One commit, statement by statement: merges, rewrites, erasures and the rest.

    use super::*;

    fn live_of(conn: &mut Conn, id: Uuid) -> Result<Option<Uuid>, StoreError> {
        Ok(conn
            .query_opt("SELECT live_id FROM profiles WHERE id = $1", &[&id])?
            .map(|row| row.get(0)))
    }

    fn owner_of(conn: &mut Conn, identifier: &str) -> Result<Option<Uuid>, StoreError> {
        Ok(conn
            .query_opt(
                "SELECT p.live_id FROM identifiers i JOIN profiles p ON p.id = i.profile_id
                 WHERE i.identifier = $1",
                &[&identifier],
            )?
            .map(|row| row.get(0)))
    }

    fn require_profile(conn: &mut Conn, id: Uuid) -> Result<(), Fault> {
        match live_of(conn, id)? {
            Some(_) => Ok(()),
            None => Err(Fault::Invalid(CommitProblem::UnknownCustomer(customer(id)))),
        }
    }

    pub(in super::super) fn require_live(conn: &mut Conn, id: Uuid) -> Result<(), Fault> {
        match live_of(conn, id)? {
            None => Err(Fault::Invalid(CommitProblem::UnknownCustomer(customer(id)))),
            Some(live) if live != id => Err(Fault::Invalid(CommitProblem::NotLive(customer(id)))),
            Some(_) => Ok(()),
        }
    }

    fn check(conn: &mut Conn, expectation: &Expectation) -> Result<(), Fault> {
        match expectation {
            Expectation::Owner { identifier, owner } => {
                let found = owner_of(conn, &identifier.to_string())?.map(customer);
                if found != *owner {
                    return Err(Fault::Conflict(CommitProblem::UnexpectedOwner {
                        identifier: identifier.clone(),
                        expected: *owner,
                        found,
                    }));
                }
            }
            Expectation::Live { customer: id } => match live_of(conn, *id.as_uuid())? {
                None => return Err(Fault::Conflict(CommitProblem::UnknownCustomer(*id))),
                Some(live) if live != *id.as_uuid() => {
                    return Err(Fault::Conflict(CommitProblem::NotLive(*id)));
                }
                Some(_) => {}
            },
            Expectation::Evidence {
                customer: id,
                count,
            } => {
                let found: i64 = conn
                    .query_one(
                        &format!(
                            "SELECT coalesce(sum(x.count), 0)::bigint FROM {MEMBERS}
                             CROSS JOIN LATERAL (
                                 SELECT (SELECT count(*) FROM events WHERE profile_id = m.id)
                                      + (SELECT count(*) FROM interactions WHERE profile_id = m.id)
                                 AS count) x"
                        ),
                        &[id.as_uuid()],
                    )?
                    .get(0);
                if found as u64 != *count {
                    return Err(Fault::Conflict(CommitProblem::EvidenceCount {
                        customer: *id,
                        expected: *count,
                        found: found as u64,
                    }));
                }
            }
            Expectation::Identifiers {
                customer: id,
                identifiers,
            } => {
                let mut found: Vec<String> = conn
                    .query(
                        &format!(
                            "SELECT x.identifier FROM {MEMBERS} CROSS JOIN LATERAL (
                                 SELECT identifier FROM profile_identifiers
                                 WHERE profile_id = m.id OFFSET 0) x"
                        ),
                        &[id.as_uuid()],
                    )?
                    .iter()
                    .map(|row| row.get(0))
                    .collect();
                found.sort_unstable();
                let mut expected = texts(identifiers);
                expected.sort_unstable();
                if found != expected {
                    return Err(Fault::Conflict(CommitProblem::IdentifiersChanged {
                        customer: *id,
                        expected: expected.len(),
                        found: found.len(),
                    }));
                }
            }
            Expectation::InteractionVersion { id, updated_at } => {
                let found = conn
                    .query_opt(
                        "SELECT updated_at FROM interaction_ids WHERE id = $1",
                        &[id.as_uuid()],
                    )?
                    .map(|row| super::super::time(row.get(0)));
                if found != *updated_at {
                    return Err(Fault::Conflict(CommitProblem::InteractionVersion {
                        id: *id,
                        expected: *updated_at,
                        found,
                    }));
                }
            }
        }
        Ok(())
    }

    fn change(conn: &mut Conn, change: &IdentityChange) -> Result<(), Fault> {
        match change {
            IdentityChange::CreateProfile { id, created_at } => {
                let inserted = conn.execute(
                    "INSERT INTO profiles (id, created_at, live_id) VALUES ($1, $2, $1)
                     ON CONFLICT (id) DO NOTHING",
                    &[id.as_uuid(), &nanos(*created_at)?],
                )?;
                if inserted == 0 {
                    return Err(Fault::Invalid(CommitProblem::CustomerExists(*id)));
                }
                conn.execute(
                    "INSERT INTO members (live_id, id) VALUES ($1, $1)",
                    &[id.as_uuid()],
                )?;
            }
            IdentityChange::Attach {
                identifier,
                customer: id,
            } => {
                require_profile(conn, *id.as_uuid())?;
                let text = identifier.to_string();
                let inserted = conn.execute(
                    "WITH indexed AS (
                         INSERT INTO identifiers (identifier, profile_id) VALUES ($1, $2)
                         ON CONFLICT (identifier) DO NOTHING
                         RETURNING profile_id, identifier)
                     INSERT INTO profile_identifiers (profile_id, identifier)
                     SELECT * FROM indexed",
                    &[&text, id.as_uuid()],
                )?;
                if inserted == 0 {
                    let owner = owner_of(conn, &text)?.map_or(*id, customer);
                    return Err(Fault::Conflict(CommitProblem::AlreadyOwned {
                        identifier: identifier.clone(),
                        owner,
                    }));
                }
            }
            IdentityChange::Merge(record) => {
                if record.survivor == record.absorbed {
                    return Err(Fault::Invalid(CommitProblem::SelfMerge(record.survivor)));
                }
                require_live(conn, *record.survivor.as_uuid())?;
                require_live(conn, *record.absorbed.as_uuid())?;
                let (survivor, absorbed) = (record.survivor.as_uuid(), record.absorbed.as_uuid());
                conn.execute(
                    "UPDATE profiles SET live_id = $1
                     WHERE id IN (SELECT id FROM members WHERE live_id = $2)",
                    &[survivor, absorbed],
                )?;
                // Rows move by delete and insert: the live id keys them.
                conn.execute(
                    "WITH moved AS (DELETE FROM members WHERE live_id = $2 RETURNING id)
                     INSERT INTO members (live_id, id) SELECT $1, id FROM moved",
                    &[survivor, absorbed],
                )?;
                insert_merge(conn, record)?;
            }
            IdentityChange::Refuse(refusal) => {
                require_profile(conn, *refusal.customer.as_uuid())?;
                let mut rows = Rows::default();
                rows.refusal(refusal)?;
                rows.flush(conn)?;
            }
            IdentityChange::Override(record) => insert_override(conn, record)?,
            IdentityChange::Rewrite(rewrite) => apply_rewrite(conn, rewrite)?,
            IdentityChange::Erase(erasure) => super::super::privacy::erase(conn, erasure)?,
            IdentityChange::Redact(redacted) => super::super::privacy::redact(conn, redacted)?,
            IdentityChange::Suppress(suppression) => {
                super::super::privacy::suppress(conn, suppression)?;
            }
            IdentityChange::Lift { hash } => {
                conn.execute("DELETE FROM suppressions WHERE hash = $1", &[hash])?;
            }
            IdentityChange::SetPrivacyKey(privacy) => {
                let inserted = conn.execute(
                    "INSERT INTO privacy_key (one, key) VALUES (1, $1) ON CONFLICT DO NOTHING",
                    &[&privacy.0.as_slice()],
                )?;
                if inserted == 0 {
                    return Err(Fault::Conflict(CommitProblem::KeyExists));
                }
            }
        }
        Ok(())
    }

    fn insert_merge(conn: &mut Conn, record: &MergeRecord) -> Result<(), StoreError> {
        conn.execute(
            "INSERT INTO merges (absorbed, id, at, record) VALUES ($1, $2, $3, $4)",
            &[
                record.absorbed.as_uuid(),
                record.id.as_uuid(),
                &nanos(record.at)?,
                &encode(record)?,
            ],
        )?;
        Ok(())
    }

    /// Which kind of override a record is, as its JSON tag names it.
    fn override_kind(record: &OverrideRecord) -> Result<String, StoreError> {
        let value =
            serde_json::to_value(record).map_err(|err| super::super::backend(&err.to_string()))?;
        Ok(value
            .get("override")
            .and_then(|kind| kind.as_str())
            .unwrap_or_default()
            .to_owned())
    }

    /// Stores an override, indexed by every identifier it names.
    pub(in super::super) fn insert_override(
        conn: &mut Conn,
        record: &OverrideRecord,
    ) -> Result<(), StoreError> {
        conn.execute(
            "INSERT INTO overrides (id, at, kind, record) VALUES ($1, $2, $3, $4)",
            &[
                record.id.as_uuid(),
                &nanos(record.at)?,
                &override_kind(record)?,
                &encode(record)?,
            ],
        )?;
        let named: Vec<String> = record
            .identifiers()
            .iter()
            .map(ToString::to_string)
            .collect();
        conn.execute(
            "INSERT INTO override_identifiers (identifier, override_id)
             SELECT DISTINCT identifier, $2::uuid FROM unnest($1::text[]) AS u(identifier)",
            &[&named, record.id.as_uuid()],
        )?;
        Ok(())
    }

    /// The first of `ids` with no row in `table` (keyed by `id`), if any.
    fn first_missing(
        conn: &mut Conn,
        table: &str,
        ids: &[Uuid],
    ) -> Result<Option<Uuid>, StoreError> {
        Ok(conn
            .query_opt(
                &format!(
                    "SELECT u.id FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, ord)
                     WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.id = u.id)
                     ORDER BY u.ord LIMIT 1"
                ),
                &[&ids],
            )?
            .map(|row| row.get(0)))
    }

    fn apply_rewrite(conn: &mut Conn, rewrite: &Rewrite) -> Result<(), Fault> {
        let named: HashMap<Uuid, Uuid> = rewrite
            .profiles
            .iter()
            .map(|p| (*p.id.as_uuid(), *p.live.as_uuid()))
            .collect();
        for state in &rewrite.profiles {
            let target = *state.live.as_uuid();
            let target_live = match named.get(&target) {
                Some(&live) => live == target,
                None => live_of(conn, target)? == Some(target),
            };
            if !target_live {
                return Err(Fault::Invalid(CommitProblem::NotLiveTarget {
                    id: state.id,
                    live: state.live,
                }));
            }
        }
        // Members of a rewritten profile that the rewrite does not name follow the
        // profile they were merged into.
        let mut orphans = Vec::new();
        for state in &rewrite.profiles {
            let id = *state.id.as_uuid();
            if live_of(conn, id)? == Some(id) {
                for row in conn.query("SELECT id FROM members WHERE live_id = $1", &[&id])? {
                    let member: Uuid = row.get(0);
                    if !named.contains_key(&member) {
                        orphans.push((member, id));
                    }
                }
            }
        }
        let affected: Vec<Uuid> = named
            .keys()
            .copied()
            .chain(orphans.iter().map(|(orphan, _)| *orphan))
            .collect();
        conn.execute(
            "DELETE FROM members m USING profiles p
             WHERE p.id = ANY($1) AND (m.live_id, m.id) = (p.live_id, p.id)",
            &[&affected],
        )?;
        for state in &rewrite.profiles {
            conn.execute(
                "INSERT INTO profiles (id, created_at, live_id) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET created_at = excluded.created_at,
                                                live_id = excluded.live_id",
                &[
                    state.id.as_uuid(),
                    &nanos(state.created_at)?,
                    state.live.as_uuid(),
                ],
            )?;
        }
        for (orphan, was) in &orphans {
            conn.execute(
                "UPDATE profiles SET live_id = (SELECT live_id FROM profiles WHERE id = $2)
                 WHERE id = $1",
                &[orphan, was],
            )?;
        }
        conn.execute(
            "INSERT INTO members (live_id, id) SELECT live_id, id FROM profiles WHERE id = ANY($1)",
            &[&affected],
        )?;
        for (identifier, owner) in &rewrite.identifiers {
            let text = identifier.to_string();
            conn.execute(
                "WITH gone AS (DELETE FROM identifiers WHERE identifier = $1 RETURNING profile_id)
                 DELETE FROM profile_identifiers
                 WHERE profile_id IN (SELECT profile_id FROM gone) AND identifier = $1",
                &[&text],
            )?;
            if let Some(id) = owner {
                require_profile(conn, *id.as_uuid())?;
                let mut rows = Rows::default();
                rows.identifiers.0.push(text);
                rows.identifiers.1.push(*id.as_uuid());
                rows.flush(conn)?;
            }
        }
        let owners: Vec<Uuid> = rewrite
            .events
            .iter()
            .map(|(_, owner)| *owner.as_uuid())
            .chain(
                rewrite
                    .interactions
                    .iter()
                    .map(|(_, owner)| *owner.as_uuid()),
            )
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if let Some(missing) = first_missing(conn, "profiles", &owners)? {
            return Err(Fault::Invalid(CommitProblem::UnknownCustomer(customer(
                missing,
            ))));
        }
        move_records(
            conn,
            "events",
            "event_ids",
            &rewrite
                .events
                .iter()
                .map(|(id, owner)| (*id.as_uuid(), *owner.as_uuid()))
                .collect::<Vec<_>>(),
        )?;
        move_records(
            conn,
            "interactions",
            "interaction_ids",
            &rewrite
                .interactions
                .iter()
                .map(|(id, owner)| (*id.as_uuid(), *owner.as_uuid()))
                .collect::<Vec<_>>(),
        )?;
        let named: Vec<Uuid> = named.keys().copied().collect();
        conn.execute("DELETE FROM merges WHERE absorbed = ANY($1)", &[&named])?;
        conn.execute("DELETE FROM refusals WHERE profile_id = ANY($1)", &[&named])?;
        for record in &rewrite.merges {
            insert_merge(conn, record)?;
        }
        let mut rows = Rows::default();
        for refusal in &rewrite.refusals {
            require_profile(conn, *refusal.customer.as_uuid())?;
            rows.refusal(refusal)?;
        }
        rows.flush(conn)?;
        Ok(())
    }

    /// Gives each record of `moves` (id, new profile) to its new profile, in `table`, its
    /// index `ids`, and (for events) the trait operations and consent it carried.
    fn move_records(
        conn: &mut Conn,
        table: &str,
        ids: &str,
        moves: &[(Uuid, Uuid)],
    ) -> Result<(), Fault> {
        if moves.is_empty() {
            return Ok(());
        }
        let (records, owners): (Vec<Uuid>, Vec<Uuid>) = moves.iter().copied().unzip();
        if let Some(missing) = first_missing(conn, ids, &records)? {
            return Err(Fault::Invalid(CommitProblem::UnknownRecord(missing)));
        }
        conn.execute(
            &format!(
                "UPDATE {table} t SET profile_id = u.owner
                 FROM unnest($1::uuid[], $2::uuid[]) AS u(id, owner), {ids} x
                 WHERE x.id = u.id
                   AND (t.profile_id, t.occurred_at, t.id) = (x.profile_id, x.occurred_at, x.id)"
            ),
            &[&records, &owners],
        )?;
        conn.execute(
            &format!(
                "UPDATE {ids} x SET profile_id = u.owner
                 FROM unnest($1::uuid[], $2::uuid[]) AS u(id, owner) WHERE x.id = u.id"
            ),
            &[&records, &owners],
        )?;
        if table == "events" {
            for carried in ["traits", "consent"] {
                conn.execute(
                    &format!(
                        "UPDATE {carried} t SET profile_id = u.owner
                         FROM unnest($1::uuid[], $2::uuid[]) AS u(id, owner)
                         WHERE t.event_id = u.id"
                    ),
                    &[&records, &owners],
                )?;
            }
        }
        Ok(())
    }

    pub(in super::super) fn apply(
        conn: &mut Conn,
        commit: &Commit,
    ) -> Result<CommitOutcome, Fault> {
        if let Some(event) = &commit.event {
            let stored = conn
                .query_opt(
                    "SELECT 1 FROM event_ids WHERE id = $1",
                    &[event.record.id.as_uuid()],
                )?
                .is_some();
            if stored {
                return Ok(CommitOutcome::Duplicate);
            }
        }
        for expectation in &commit.expect {
            check(conn, expectation)?;
        }
        for identity in &commit.identity {
            change(conn, identity)?;
        }
        for owner in record_owners(commit) {
            require_profile(conn, owner)?;
        }
        let mut rows = Rows::default();
        records(&mut rows, commit)?;
        rows.flush(conn)?;
        Ok(CommitOutcome::Applied)
    }
}

pub(super) use one::{insert_override, require_live};
