//! Consent, the suppression list, the privacy key and the audit trail: their reads, and
//! the erasure of one customer.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::read::decoded_rows;
use super::write::Fault;
use super::{
    Key, LIVE, SqliteStore, backend, corrupt, customer, decode, encode, key, nanos, sqlite,
};
use crate::model::{AuditRecord, ConsentRecord, CustomerId};
use crate::store::{
    Attributed, CommitProblem, Erasure, PrivacyKey, PrivacyStore, Redacted, StoreError,
    Suppression, clamped_nanos,
};

impl PrivacyStore for SqliteStore {
    fn consent(&self, id: CustomerId) -> Result<Vec<Attributed<ConsentRecord>>, StoreError> {
        self.read(|conn| {
            let mut statement = conn
                .prepare_cached(&format!(
                    "SELECT c.profile_id, c.body FROM profiles p
                     JOIN consent c ON c.profile_id = p.id WHERE p.live_id = {LIVE}"
                ))
                .map_err(sqlite)?;
            let rows = statement
                .query_map([key(id.as_uuid())], |row| {
                    Ok((row.get::<_, Key>(0)?, row.get::<_, String>(1)?))
                })
                .map_err(sqlite)?;
            rows.map(|row| {
                let (profile, body) = row.map_err(sqlite)?;
                Ok(Attributed {
                    customer: customer(profile),
                    record: decode("consent record", &body)?,
                })
            })
            .collect()
        })
    }

    fn suppressed(&self, hashes: &[String]) -> Result<Vec<Option<Suppression>>, StoreError> {
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        // One statement for the whole list: ingest asks for every identifier of a batch.
        let list = serde_json::to_string(hashes).map_err(|err| backend(&err.to_string()))?;
        self.read(|conn| {
            let mut found = vec![None; hashes.len()];
            let mut statement = conn
                .prepare_cached(
                    "SELECT j.key, s.record FROM json_each(?1) j
                     JOIN suppressions s ON s.hash = j.value",
                )
                .map_err(sqlite)?;
            let mut rows = statement.query([&list]).map_err(sqlite)?;
            while let Some(row) = rows.next().map_err(sqlite)? {
                let index = row.get::<_, i64>(0).map_err(sqlite)? as usize;
                let body: String = row.get(1).map_err(sqlite)?;
                found[index] = Some(decode("suppression", &body)?);
            }
            Ok(found)
        })
    }

    fn suppressions(&self) -> Result<Vec<Suppression>, StoreError> {
        self.read(|conn| {
            let sql = "SELECT record FROM suppressions ORDER BY at, hash";
            decoded_rows(conn, sql, [], "suppression")
        })
    }

    fn has_suppressions(&self) -> Result<bool, StoreError> {
        self.read(|conn| {
            conn.prepare_cached("SELECT 1 FROM suppressions LIMIT 1")
                .and_then(|mut s| s.exists([]))
                .map_err(sqlite)
        })
    }

    fn privacy_key(&self) -> Result<Option<PrivacyKey>, StoreError> {
        self.read(|conn| {
            let bytes: Option<Vec<u8>> = conn
                .prepare_cached("SELECT key FROM privacy_key WHERE one = 1")
                .and_then(|mut s| s.query_row([], |row| row.get(0)).optional())
                .map_err(sqlite)?;
            bytes
                .map(|bytes| {
                    <[u8; 32]>::try_from(bytes.as_slice())
                        .map(PrivacyKey)
                        .map_err(|err| corrupt("privacy key", err))
                })
                .transpose()
        })
    }

    fn audit(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let from = from.map_or(i64::MIN, clamped_nanos);
        let to = to.map_or(i64::MAX, clamped_nanos);
        self.read(|conn| {
            let sql = "SELECT record FROM audit WHERE at >= ?1 AND at < ?2 ORDER BY at, id";
            decoded_rows(conn, sql, [from, to], "audit record")
        })
    }
}

/// Appends an audit record.
pub(super) fn insert_audit(conn: &Connection, record: &AuditRecord) -> Result<(), Fault> {
    conn.prepare_cached("INSERT INTO audit (id, at, record) VALUES (?1, ?2, ?3)")?
        .execute(params![key(&record.id), nanos(record.at)?, encode(record)?])?;
    Ok(())
}

/// Appends a consent decision, recorded on profile `id`.
pub(super) fn insert_consent(
    conn: &Connection,
    id: CustomerId,
    record: &ConsentRecord,
) -> Result<(), Fault> {
    conn.prepare_cached("INSERT INTO consent (profile_id, event_id, body) VALUES (?1, ?2, ?3)")?
        .execute(params![
            key(id.as_uuid()),
            record.provenance.event_id.map(|e| key(e.as_uuid())),
            encode(record)?
        ])?;
    Ok(())
}

/// Sets the privacy key; a conflict if one is set.
pub(super) fn set_privacy_key(conn: &Connection, privacy: &PrivacyKey) -> Result<(), Fault> {
    let inserted = conn
        .prepare_cached("INSERT OR IGNORE INTO privacy_key (one, key) VALUES (1, ?1)")?
        .execute([privacy.0.as_slice()])?;
    if inserted == 0 {
        return Err(Fault::Conflict(CommitProblem::KeyExists));
    }
    Ok(())
}

/// Removes a suppression, if there is one.
pub(super) fn lift(conn: &Connection, hash: &str) -> Result<(), Fault> {
    conn.prepare_cached("DELETE FROM suppressions WHERE hash = ?1")?
        .execute([hash])?;
    Ok(())
}

/// Deletes everything [`Erasure`] names. The rows go, and `secure_delete` zeroes their
/// bytes in the pages that held them; `purge` then empties the write-ahead log, the one
/// place older copies of those pages remain.
pub(super) fn erase(conn: &Connection, erasure: &Erasure) -> Result<(), Fault> {
    let live = key(erasure.customer.as_uuid());
    match super::live_of(conn, &live)? {
        None => {
            return Err(Fault::Invalid(CommitProblem::UnknownCustomer(
                erasure.customer,
            )));
        }
        Some(found) if found != live => {
            return Err(Fault::Invalid(CommitProblem::NotLive(erasure.customer)));
        }
        Some(_) => {}
    }
    let members: Vec<Key> = conn
        .prepare_cached("SELECT id FROM profiles WHERE live_id = ?1")?
        .query_map([live], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    // Overrides naming an erased identifier go whole, with every index row they have.
    let mut overrides: HashSet<Key> = HashSet::new();
    for identifier in &erasure.identifiers {
        let text = identifier.to_string();
        let ids = conn
            .prepare_cached("SELECT override_id FROM override_identifiers WHERE identifier = ?1")?
            .query_map([&text], |row| row.get::<_, Key>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        overrides.extend(ids);
        conn.prepare_cached("DELETE FROM refusals WHERE identifier = ?1")?
            .execute([&text])?;
    }
    for id in &overrides {
        conn.prepare_cached("DELETE FROM override_identifiers WHERE override_id = ?1")?
            .execute([id])?;
        conn.prepare_cached("DELETE FROM overrides WHERE id = ?1")?
            .execute([id])?;
    }
    for member in &members {
        for sql in [
            "DELETE FROM identifiers WHERE profile_id = ?1",
            "DELETE FROM traits WHERE profile_id = ?1",
            "DELETE FROM consent WHERE profile_id = ?1",
            "DELETE FROM events WHERE profile_id = ?1",
            "DELETE FROM interactions WHERE profile_id = ?1",
            "DELETE FROM merges WHERE absorbed = ?1",
            "DELETE FROM refusals WHERE profile_id = ?1",
        ] {
            conn.prepare_cached(sql)?.execute([member])?;
        }
        super::membership::erase(conn, member)?;
    }
    for member in &members {
        conn.prepare_cached("DELETE FROM profiles WHERE id = ?1")?
            .execute([member])?;
    }
    for suppression in &erasure.suppress {
        suppress(conn, suppression)?;
    }
    redact(conn, &erasure.redacted)
}

/// Replaces the content of stored records (and overrides, by id) with `redacted`.
pub(super) fn redact(conn: &Connection, redacted: &[Redacted]) -> Result<(), Fault> {
    for redacted in redacted {
        match redacted {
            Redacted::Event(event) => {
                conn.prepare_cached("UPDATE events SET body = ?2 WHERE id = ?1")?
                    .execute(params![key(event.id.as_uuid()), encode(event)?])?;
            }
            Redacted::Interaction(interaction) => {
                let id = key(interaction.id.as_uuid());
                let profile: Option<Key> = conn
                    .prepare_cached("SELECT profile_id FROM interactions WHERE id = ?1")?
                    .query_row([id], |row| row.get(0))
                    .optional()?;
                if let Some(profile) = profile {
                    conn.prepare_cached("DELETE FROM interactions WHERE id = ?1")?
                        .execute([id])?;
                    super::interaction_row::insert(conn, "interactions", &profile, interaction)?;
                }
            }
            Redacted::Override(record) => {
                let id = key(record.id.as_uuid());
                conn.prepare_cached("DELETE FROM override_identifiers WHERE override_id = ?1")?
                    .execute([id])?;
                conn.prepare_cached("DELETE FROM overrides WHERE id = ?1")?
                    .execute([id])?;
                super::write::insert_override(conn, record)?;
            }
        }
    }
    Ok(())
}

/// Adds a suppression; one with the same hash is replaced.
pub(super) fn suppress(conn: &Connection, suppression: &Suppression) -> Result<(), Fault> {
    conn.prepare_cached(
        "INSERT INTO suppressions (hash, at, record) VALUES (?1, ?2, ?3)
         ON CONFLICT (hash) DO UPDATE SET at = excluded.at, record = excluded.record",
    )?
    .execute(params![
        suppression.hash,
        nanos(suppression.at)?,
        encode(suppression)?
    ])?;
    Ok(())
}
