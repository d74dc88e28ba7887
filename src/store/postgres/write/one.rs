//! One commit, statement by statement: merges, rewrites, erasures and the rest.

use chrono::{DateTime, Utc};

use super::*;
use crate::model::{CustomerId, Identifier, InteractionId};
use crate::store::expect;

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

/// The facts expectations rest on, read statement by statement in the applying
/// transaction.
struct Reading<'a>(&'a mut Conn);

impl expect::Facts for Reading<'_> {
    type Error = Fault;

    fn owner(&mut self, identifier: &Identifier) -> Result<Option<CustomerId>, Fault> {
        Ok(owner_of(self.0, &identifier.to_string())?.map(customer))
    }

    fn live(&mut self, id: CustomerId) -> Result<Option<CustomerId>, Fault> {
        Ok(live_of(self.0, *id.as_uuid())?.map(customer))
    }

    fn evidence(&mut self, id: CustomerId) -> Result<u64, Fault> {
        let found: i64 = self
            .0
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
        Ok(found as u64)
    }

    fn identifiers(&mut self, id: CustomerId) -> Result<Vec<String>, Fault> {
        Ok(self
            .0
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
            .collect())
    }

    fn interaction_version(&mut self, id: InteractionId) -> Result<Option<DateTime<Utc>>, Fault> {
        Ok(self
            .0
            .query_opt(
                "SELECT updated_at FROM interaction_ids WHERE id = $1",
                &[id.as_uuid()],
            )?
            .map(|row| super::super::time(row.get(0))))
    }
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
fn first_missing(conn: &mut Conn, table: &str, ids: &[Uuid]) -> Result<Option<Uuid>, StoreError> {
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
    if let Some(problem) = expect::dead_target(&mut Reading(conn), rewrite)? {
        return Err(Fault::Invalid(problem));
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

pub(in super::super) fn apply(conn: &mut Conn, commit: &Commit) -> Result<CommitOutcome, Fault> {
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
        if let Some(problem) = expect::unmet(&mut Reading(conn), expectation)? {
            return Err(Fault::Conflict(problem));
        }
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
    for update in &commit.membership {
        require_profile(conn, *update.customer.as_uuid())?;
        super::super::membership::update(conn, update)?;
    }
    Ok(CommitOutcome::Applied)
}
