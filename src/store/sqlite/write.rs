//! Writes: one transaction per [`Store::apply`](crate::store::Store::apply) call, each
//! commit's expectations checked inside it before its changes are made.

use std::collections::{HashMap, HashSet};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{Key, LIVE, customer, encode, key, live_of, nanos, owner_of, sqlite, time};
use chrono::{DateTime, Utc};

use crate::model::{
    CustomerId, Event, Identifier, InteractionId, MergeRecord, OverrideRecord, Refusal,
};
use crate::store::{
    Attributed, Commit, CommitOutcome, CommitProblem, Expectation, IdentityChange, Rewrite,
    StoreError, expect,
};

pub(super) use crate::store::Fault;

impl From<rusqlite::Error> for Fault {
    fn from(err: rusqlite::Error) -> Self {
        Self::Store(sqlite(err))
    }
}

/// Profiles known to exist within one `apply`: rows in `profiles` are only deleted by an
/// erasure, which empties it, so a profile seen once need not be looked up again.
type Known = HashSet<Key>;

/// The facts expectations rest on, read in the applying transaction; the live profiles
/// they find are noted in `known`.
struct Reading<'a> {
    conn: &'a Connection,
    known: &'a mut Known,
}

impl expect::Facts for Reading<'_> {
    type Error = Fault;

    fn owner(&mut self, identifier: &Identifier) -> Result<Option<CustomerId>, Fault> {
        let found: Option<Key> = self
            .conn
            .prepare_cached(
                "SELECT p.live_id FROM identifiers i JOIN profiles p ON p.id = i.profile_id
                 WHERE i.identifier = ?1",
            )?
            .query_row([identifier.to_string()], |row| row.get(0))
            .optional()?;
        if let Some(live) = found {
            self.known.insert(live);
        }
        Ok(found.map(customer))
    }

    fn live(&mut self, id: CustomerId) -> Result<Option<CustomerId>, Fault> {
        let found = live_of(self.conn, &key(id.as_uuid()))?;
        if let Some(live) = found {
            self.known.insert(live);
        }
        Ok(found.map(customer))
    }

    fn evidence(&mut self, id: CustomerId) -> Result<u64, Fault> {
        let found: i64 = self
            .conn
            .prepare_cached(&format!(
                "SELECT (SELECT count(*) FROM profiles p JOIN events e ON e.profile_id = p.id
                         WHERE p.live_id = {LIVE})
                      + (SELECT count(*) FROM profiles p
                         JOIN interactions i ON i.profile_id = p.id
                         WHERE p.live_id = {LIVE})"
            ))?
            .query_row([key(id.as_uuid())], |row| row.get(0))?;
        Ok(found as u64)
    }

    fn identifiers(&mut self, id: CustomerId) -> Result<Vec<String>, Fault> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT i.identifier FROM profiles p JOIN identifiers i ON i.profile_id = p.id
                 WHERE p.live_id = {LIVE}"
            ))?
            .query_map([key(id.as_uuid())], |row| row.get(0))?
            .collect::<Result<_, _>>()?)
    }

    fn interaction_version(&mut self, id: InteractionId) -> Result<Option<DateTime<Utc>>, Fault> {
        let found: Option<i64> = self
            .conn
            .prepare_cached("SELECT updated_at FROM interactions WHERE id = ?1")?
            .query_row([key(id.as_uuid())], |row| row.get(0))
            .optional()?;
        Ok(found.map(time))
    }
}

fn require_profile(conn: &Connection, known: &mut Known, id: CustomerId) -> Result<(), Fault> {
    let id_key = key(id.as_uuid());
    if known.contains(&id_key) {
        return Ok(());
    }
    match live_of(conn, &id_key)? {
        Some(_) => {
            known.insert(id_key);
            Ok(())
        }
        None => Err(Fault::Invalid(CommitProblem::UnknownCustomer(id))),
    }
}

fn require_live(conn: &Connection, id: CustomerId) -> Result<(), Fault> {
    match live_of(conn, &key(id.as_uuid()))? {
        None => Err(Fault::Invalid(CommitProblem::UnknownCustomer(id))),
        Some(live) if live != key(id.as_uuid()) => Err(Fault::Invalid(CommitProblem::NotLive(id))),
        Some(_) => Ok(()),
    }
}

fn change(conn: &Connection, known: &mut Known, change: &IdentityChange) -> Result<(), Fault> {
    match change {
        // Inserts that the primary key refuses tell what a lookup first would: one
        // statement instead of two. A failure rolls the whole batch back.
        IdentityChange::CreateProfile { id, created_at } => {
            let inserted = conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO profiles (id, created_at, live_id) VALUES (?1, ?2, ?1)",
                )?
                .execute(params![key(id.as_uuid()), nanos(*created_at)?])?;
            if inserted == 0 {
                return Err(Fault::Invalid(CommitProblem::CustomerExists(*id)));
            }
            known.insert(key(id.as_uuid()));
        }
        IdentityChange::Attach {
            identifier,
            customer: id,
        } => {
            require_profile(conn, known, *id)?;
            let text = identifier.to_string();
            let inserted = conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO identifiers (identifier, profile_id) VALUES (?1, ?2)",
                )?
                .execute(params![text, key(id.as_uuid())])?;
            if inserted == 0 {
                let owner = owner_of(conn, &text)?.map_or(*id, |(owner, _)| customer(owner));
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
            require_live(conn, record.survivor)?;
            require_live(conn, record.absorbed)?;
            conn.prepare_cached("UPDATE profiles SET live_id = ?1 WHERE live_id = ?2")?
                .execute([
                    key(record.survivor.as_uuid()),
                    key(record.absorbed.as_uuid()),
                ])?;
            insert_merge(conn, record)?;
        }
        IdentityChange::Refuse(refusal) => insert_refusal(conn, known, refusal)?,
        IdentityChange::Override(record) => insert_override(conn, record)?,
        IdentityChange::Rewrite(rewrite) => apply_rewrite(conn, known, rewrite)?,
        IdentityChange::Erase(erasure) => {
            super::privacy::erase(conn, erasure)?;
            // Profiles are deleted: what was known to exist may not any more.
            known.clear();
        }
        IdentityChange::Redact(redacted) => super::privacy::redact(conn, redacted)?,
        IdentityChange::Suppress(suppression) => super::privacy::suppress(conn, suppression)?,
        IdentityChange::Lift { hash } => super::privacy::lift(conn, hash)?,
        IdentityChange::SetPrivacyKey(privacy) => super::privacy::set_privacy_key(conn, privacy)?,
    }
    Ok(())
}

/// Stores an override, indexed by every identifier it names.
pub(super) fn insert_override(conn: &Connection, record: &OverrideRecord) -> Result<(), Fault> {
    conn.prepare_cached("INSERT INTO overrides (id, at, record) VALUES (?1, ?2, ?3)")?
        .execute(params![
            key(record.id.as_uuid()),
            nanos(record.at)?,
            encode(record)?
        ])?;
    for identifier in record.identifiers() {
        conn.prepare_cached(
            "INSERT INTO override_identifiers (identifier, override_id) VALUES (?1, ?2)",
        )?
        .execute(params![identifier.to_string(), key(record.id.as_uuid())])?;
    }
    Ok(())
}

fn insert_merge(conn: &Connection, record: &MergeRecord) -> Result<(), Fault> {
    conn.prepare_cached("INSERT INTO merges (id, absorbed, at, record) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![
            key(record.id.as_uuid()),
            key(record.absorbed.as_uuid()),
            nanos(record.at)?,
            encode(record)?
        ])?;
    Ok(())
}

fn insert_refusal(conn: &Connection, known: &mut Known, refusal: &Refusal) -> Result<(), Fault> {
    require_profile(conn, known, refusal.customer)?;
    conn.prepare_cached(
        "INSERT INTO refusals (profile_id, identifier, evidence, at, record)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        key(refusal.customer.as_uuid()),
        refusal.identifier.to_string(),
        key(&refusal.evidence),
        nanos(refusal.at)?,
        encode(refusal)?
    ])?;
    Ok(())
}

fn apply_rewrite(conn: &Connection, known: &mut Known, rewrite: &Rewrite) -> Result<(), Fault> {
    let named: HashMap<Key, Key> = rewrite
        .profiles
        .iter()
        .map(|p| (key(p.id.as_uuid()), key(p.live.as_uuid())))
        .collect();
    if let Some(problem) = expect::dead_target(&mut Reading { conn, known }, rewrite)? {
        return Err(Fault::Invalid(problem));
    }
    // Members of a rewritten profile that the rewrite does not name follow the profile
    // they were merged into.
    let mut orphans = Vec::new();
    for state in &rewrite.profiles {
        let id = key(state.id.as_uuid());
        if live_of(conn, &id)? == Some(id) {
            let mut statement =
                conn.prepare_cached("SELECT id FROM profiles WHERE live_id = ?1")?;
            let members = statement.query_map([id], |row| row.get::<_, Key>(0))?;
            for member in members {
                let member = member?;
                if !named.contains_key(&member) {
                    orphans.push((member, id));
                }
            }
        }
    }
    for state in &rewrite.profiles {
        conn.prepare_cached(
            "INSERT INTO profiles (id, created_at, live_id) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET created_at = excluded.created_at,
                                            live_id = excluded.live_id
             WHERE created_at <> excluded.created_at OR live_id <> excluded.live_id",
        )?
        .execute(params![
            key(state.id.as_uuid()),
            nanos(state.created_at)?,
            key(state.live.as_uuid())
        ])?;
        known.insert(key(state.id.as_uuid()));
    }
    for (orphan, was) in orphans {
        conn.prepare_cached(
            "UPDATE profiles SET live_id = (SELECT live_id FROM profiles WHERE id = ?2)
             WHERE id = ?1",
        )?
        .execute([orphan, was])?;
    }
    for (identifier, owner) in &rewrite.identifiers {
        let text = identifier.to_string();
        match owner {
            None => {
                conn.prepare_cached("DELETE FROM identifiers WHERE identifier = ?1")?
                    .execute([text])?;
            }
            Some(id) => {
                require_profile(conn, known, *id)?;
                conn.prepare_cached(
                    "INSERT INTO identifiers (identifier, profile_id) VALUES (?1, ?2)
                     ON CONFLICT (identifier) DO UPDATE SET profile_id = excluded.profile_id
                     WHERE profile_id <> excluded.profile_id",
                )?
                .execute(params![text, key(id.as_uuid())])?;
            }
        }
    }
    for (id, owner) in &rewrite.events {
        require_profile(conn, known, *owner)?;
        let (event, owner) = (key(id.as_uuid()), key(owner.as_uuid()));
        // Most events of a rebuilt profile stay where they are: one read, and no writes
        // to the row, its indexes, or its trait and consent rows.
        let stored: Option<Key> = conn
            .prepare_cached("SELECT profile_id FROM events WHERE id = ?1")?
            .query_row([event], |row| row.get(0))
            .optional()?;
        match stored {
            None => return Err(Fault::Invalid(CommitProblem::UnknownRecord(*id.as_uuid()))),
            Some(stored) if stored == owner => continue,
            Some(_) => {}
        }
        for sql in [
            "UPDATE events SET profile_id = ?2 WHERE id = ?1",
            "UPDATE traits SET profile_id = ?2 WHERE event_id = ?1",
            "UPDATE consent SET profile_id = ?2 WHERE event_id = ?1",
        ] {
            conn.prepare_cached(sql)?.execute([event, owner])?;
        }
    }
    for (id, owner) in &rewrite.interactions {
        require_profile(conn, known, *owner)?;
        let changed = conn
            .prepare_cached("UPDATE interactions SET profile_id = ?2 WHERE id = ?1")?
            .execute([key(id.as_uuid()), key(owner.as_uuid())])?;
        if changed == 0 {
            return Err(Fault::Invalid(CommitProblem::UnknownRecord(*id.as_uuid())));
        }
    }
    for id in named.keys() {
        conn.prepare_cached("DELETE FROM merges WHERE absorbed = ?1")?
            .execute([id])?;
        conn.prepare_cached("DELETE FROM refusals WHERE profile_id = ?1")?
            .execute([id])?;
    }
    for record in &rewrite.merges {
        insert_merge(conn, record)?;
    }
    for refusal in &rewrite.refusals {
        insert_refusal(conn, known, refusal)?;
    }
    Ok(())
}

/// Whether a commit's expectations are checked before it is applied.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Expectations {
    /// Checked: the commit was planned on reads that another writer may have followed.
    Check,
    /// Taken as holding: the commit was planned in the transaction that applies it.
    Hold,
}

fn apply_commit(
    conn: &Connection,
    known: &mut Known,
    commit: &Commit,
    expectations: Expectations,
) -> Result<CommitOutcome, Fault> {
    // The event row goes in first: the insert that refuses a stored id is also the
    // duplicate check, one statement instead of two. Foreign keys are deferred for the
    // transaction, so the row may name a profile this commit creates; `require_profile`
    // below still refuses one that never appears. An expectation that counts a profile's
    // records must see them without this one, so such a commit checks first.
    let counts_records = expectations == Expectations::Check
        && commit
            .expect
            .iter()
            .any(|e| matches!(e, Expectation::Evidence { .. }));
    let mut event_stored = false;
    if let Some(event) = &commit.event
        && !counts_records
    {
        if !insert_event(conn, event)? {
            return Ok(CommitOutcome::Duplicate);
        }
        event_stored = true;
    }
    if let Some(event) = &commit.event
        && counts_records
    {
        let exists = conn
            .prepare_cached("SELECT 1 FROM events WHERE id = ?1")?
            .exists([key(event.record.id.as_uuid())])?;
        if exists {
            return Ok(CommitOutcome::Duplicate);
        }
    }
    if expectations == Expectations::Check {
        let mut reading = Reading { conn, known };
        for expectation in &commit.expect {
            if let Some(problem) = expect::unmet(&mut reading, expectation)? {
                return Err(Fault::Conflict(problem));
            }
        }
    }
    for identity in &commit.identity {
        change(conn, known, identity)?;
    }
    if let Some(event) = &commit.event {
        require_profile(conn, known, event.customer)?;
        if !event_stored {
            insert_event(conn, event)?;
        }
    }
    if let Some(Attributed {
        customer: id,
        record,
    }) = &commit.interaction
    {
        require_profile(conn, known, *id)?;
        // A new version replaces the old row: its time, a key column, may have changed.
        conn.prepare_cached("DELETE FROM interactions WHERE id = ?1")?
            .execute([key(record.id.as_uuid())])?;
        super::interaction_row::insert(conn, "interactions", &key(id.as_uuid()), record)?;
    }
    for Attributed {
        customer: id,
        record,
    } in &commit.traits
    {
        require_profile(conn, known, *id)?;
        conn.prepare_cached("INSERT INTO traits (profile_id, body, event_id) VALUES (?1, ?2, ?3)")?
            .execute(params![
                key(id.as_uuid()),
                encode(record)?,
                record.provenance.event_id.map(|e| key(e.as_uuid()))
            ])?;
    }
    for Attributed {
        customer: id,
        record,
    } in &commit.consent
    {
        require_profile(conn, known, *id)?;
        super::privacy::insert_consent(conn, *id, record)?;
    }
    for record in &commit.audit {
        super::privacy::insert_audit(conn, record)?;
    }
    for update in &commit.membership {
        require_profile(conn, known, update.customer)?;
        super::membership::update(conn, update)?;
    }
    Ok(CommitOutcome::Applied)
}

/// Stores an event row, or returns `false` when its id is stored already.
fn insert_event(conn: &Connection, event: &Attributed<Event>) -> Result<bool, Fault> {
    let Attributed {
        customer: id,
        record,
    } = event;
    let inserted = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO events (id, profile_id, occurred_at, channel, body)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            key(record.id.as_uuid()),
            key(id.as_uuid()),
            nanos(record.occurred_at)?,
            record.channel.name(),
            encode(record)?
        ])?;
    Ok(inserted == 1)
}

/// Applies `commits` in one write transaction: all of them, or none.
pub(super) fn apply(
    conn: &mut Connection,
    commits: &[Commit],
) -> Result<Vec<CommitOutcome>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite)?;
    begin_applying(&tx)?;
    // Returning early drops the transaction, which rolls everything back.
    let outcomes = apply_in(&tx, commits, Expectations::Check)?;
    tx.commit().map_err(sqlite)?;
    Ok(outcomes)
}

/// Prepares the write transaction open on `conn` for [`apply_in`].
pub(super) fn begin_applying(conn: &Connection) -> Result<(), StoreError> {
    // Until COMMIT, so an event row can go in before the profile it names (see
    // `apply_commit`); SQLite turns this off again when the transaction ends.
    conn.pragma_update(None, "defer_foreign_keys", true)
        .map_err(sqlite)
}

/// Applies `commits` in the write transaction open on `conn`; the caller commits it, or
/// rolls it back on an error.
pub(super) fn apply_in(
    conn: &Connection,
    commits: &[Commit],
    expectations: Expectations,
) -> Result<Vec<CommitOutcome>, StoreError> {
    let mut outcomes = Vec::with_capacity(commits.len());
    let mut known = Known::new();
    for (index, commit) in commits.iter().enumerate() {
        outcomes.push(
            apply_commit(conn, &mut known, commit, expectations)
                .map_err(|fault| fault.at(index))?,
        );
    }
    Ok(outcomes)
}
