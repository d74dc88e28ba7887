//! Writes: one transaction per [`Store::apply`](crate::store::Store::apply) call.
//!
//! Runs of everyday commits go through [`bulk`]: what they are checked against is read
//! for the whole run at once, the checks are made in memory in commit order, and the rows
//! go in with one multi-row statement per table. Any other commit is applied statement by
//! statement ([`one`]), after the run before it is written.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::{Conn, MEMBERS, Writes, customer, encode, nanos, schema};
use crate::model::{AuditRecord, ConsentRecord, MergeRecord, OverrideRecord, Refusal};
use crate::store::{
    Attributed, Commit, CommitOutcome, CommitProblem, Expectation, IdentityChange, Rewrite,
    StoreError,
};

pub(super) use crate::store::Fault;

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

/// How a transaction takes the schema's writers' lock as it begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WritersLock {
    /// Alongside other writers; only an exclusive write holds it back.
    Shared,
    /// Alone ([`Writes::OneAtATime`]).
    Exclusive,
    /// Not at all: this thread holds it already, in an exclusive write, or the server
    /// has no shared advisory lock.
    Skipped,
}

/// Applies `commits` in one transaction: all of them, or none.
pub(super) fn apply(
    conn: &mut Conn,
    commits: &[Commit],
    writes: Writes,
    lock: WritersLock,
    schema_name: &str,
) -> Result<Vec<CommitOutcome>, StoreError> {
    let begin = match writes {
        Writes::Serializable => "BEGIN ISOLATION LEVEL SERIALIZABLE",
        Writes::OneAtATime => "BEGIN",
    };
    let key = schema::writer_lock_key(schema_name);
    // Rolls back from here on: the lock can fail (a timeout) after BEGIN succeeded.
    let mut tx = Transaction { conn, open: true };
    // The lock goes with BEGIN, in the same round trip; the key is a number of ours.
    tx.conn.batch(&match lock {
        WritersLock::Shared => format!("{begin}; SELECT pg_advisory_xact_lock_shared({key})"),
        WritersLock::Exclusive => format!("{begin}; SELECT pg_advisory_xact_lock({key})"),
        WritersLock::Skipped => begin.to_owned(),
    })?;
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

mod bulk;
mod one;

pub(super) use one::{insert_override, require_live};
