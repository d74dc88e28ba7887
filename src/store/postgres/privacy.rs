//! Consent, the suppression list, the privacy key and the audit trail: their reads, and
//! the erasure of one customer.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::read::{decoded, texts};
use super::write::{Fault, insert_override, require_live};
use super::{Conn, MEMBERS, PostgresStore, corrupt, customer, decode, encode, nanos};
use crate::model::{AuditRecord, ConsentRecord, CustomerId};
use crate::store::{
    Attributed, Erasure, PrivacyKey, PrivacyStore, Redacted, StoreError, Suppression, clamped_nanos,
};

impl PrivacyStore for PostgresStore {
    fn consent(&self, id: CustomerId) -> Result<Vec<Attributed<ConsentRecord>>, StoreError> {
        self.read(|conn| {
            let rows = conn.query(
                &format!(
                    "SELECT m.id, x.body FROM {MEMBERS} CROSS JOIN LATERAL (
                         SELECT body FROM consent WHERE profile_id = m.id OFFSET 0) x"
                ),
                &[id.as_uuid()],
            )?;
            rows.iter()
                .map(|row| {
                    Ok(Attributed {
                        customer: customer(row.get(0)),
                        record: decode("consent record", row.get::<_, &str>(1))?,
                    })
                })
                .collect()
        })
    }

    fn suppressed(&self, hashes: &[String]) -> Result<Vec<Option<Suppression>>, StoreError> {
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        self.read(|conn| {
            let rows = conn.query(
                "SELECT u.ord, s.record FROM unnest($1::text[]) WITH ORDINALITY AS u(hash, ord)
                 JOIN suppressions s ON s.hash = u.hash",
                &[&hashes],
            )?;
            let mut found = vec![None; hashes.len()];
            for row in rows {
                found[row.get::<_, i64>(0) as usize - 1] =
                    Some(decode("suppression", row.get::<_, &str>(1))?);
            }
            Ok(found)
        })
    }

    fn suppressions(&self) -> Result<Vec<Suppression>, StoreError> {
        self.read(|conn| {
            let rows = conn.query("SELECT record FROM suppressions ORDER BY at, hash", &[])?;
            decoded(&rows, "suppression")
        })
    }

    fn has_suppressions(&self) -> Result<bool, StoreError> {
        self.any_row("suppressions")
    }

    fn privacy_key(&self) -> Result<Option<PrivacyKey>, StoreError> {
        self.read(|conn| {
            let row = conn.query_opt("SELECT key FROM privacy_key WHERE one = 1", &[])?;
            row.map(|row| {
                <[u8; 32]>::try_from(row.get::<_, &[u8]>(0))
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
            let rows = conn.query(
                "SELECT record FROM audit WHERE at >= $1 AND at < $2 ORDER BY at, id",
                &[&from, &to],
            )?;
            decoded(&rows, "audit record")
        })
    }
}

/// Adds a suppression; one with the same hash is replaced.
pub(super) fn suppress(conn: &mut Conn, suppression: &Suppression) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO suppressions (hash, at, record) VALUES ($1, $2, $3)
         ON CONFLICT (hash) DO UPDATE SET at = excluded.at, record = excluded.record",
        &[
            &suppression.hash,
            &nanos(suppression.at)?,
            &encode(suppression)?,
        ],
    )?;
    Ok(())
}

/// Deletes everything [`Erasure`] names, then stores what it redacts and suppresses.
pub(super) fn erase(conn: &mut Conn, erasure: &Erasure) -> Result<(), Fault> {
    let live = *erasure.customer.as_uuid();
    require_live(conn, live)?;
    let members: Vec<Uuid> = conn
        .query("SELECT id FROM members WHERE live_id = $1", &[&live])?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let identifiers = texts(&erasure.identifiers);
    // Overrides naming an erased identifier go whole, with every index row they have.
    conn.execute(
        "WITH named AS (SELECT DISTINCT override_id FROM override_identifiers
                        WHERE identifier = ANY($1)),
              gone AS (DELETE FROM override_identifiers
                       WHERE override_id IN (SELECT override_id FROM named))
         DELETE FROM overrides WHERE id IN (SELECT override_id FROM named)",
        &[&identifiers],
    )?;
    conn.execute(
        "DELETE FROM refusals WHERE identifier = ANY($1) OR profile_id = ANY($2)",
        &[&identifiers, &members],
    )?;
    for sql in [
        "WITH held AS (DELETE FROM profile_identifiers WHERE profile_id = ANY($1)
                       RETURNING identifier)
         DELETE FROM identifiers WHERE identifier IN (SELECT identifier FROM held)",
        "DELETE FROM traits WHERE profile_id = ANY($1)",
        "DELETE FROM consent WHERE profile_id = ANY($1)",
        "DELETE FROM events WHERE profile_id = ANY($1)",
        "DELETE FROM event_ids WHERE profile_id = ANY($1)",
        "DELETE FROM interactions WHERE profile_id = ANY($1)",
        "DELETE FROM interaction_ids WHERE profile_id = ANY($1)",
        "DELETE FROM merges WHERE absorbed = ANY($1)",
        "DELETE FROM profiles WHERE id = ANY($1)",
    ] {
        conn.execute(sql, &[&members])?;
    }
    super::membership::erase(conn, &members)?;
    conn.execute("DELETE FROM members WHERE live_id = $1", &[&live])?;
    for suppression in &erasure.suppress {
        suppress(conn, suppression)?;
    }
    redact(conn, &erasure.redacted)
}

/// Replaces the content of stored records (and overrides, by id) with `redacted`.
pub(super) fn redact(conn: &mut Conn, redacted: &[Redacted]) -> Result<(), Fault> {
    for redacted in redacted {
        match redacted {
            Redacted::Event(event) => {
                conn.execute(
                    "UPDATE events e SET body = $2 FROM event_ids x
                     WHERE x.id = $1
                       AND (e.profile_id, e.occurred_at, e.id) = (x.profile_id, x.occurred_at, x.id)",
                    &[event.id.as_uuid(), &encode(event)?],
                )?;
            }
            Redacted::Interaction(interaction) => {
                let id = *interaction.id.as_uuid();
                let stored = conn.query_opt(
                    "SELECT profile_id FROM interaction_ids WHERE id = $1",
                    &[&id],
                )?;
                if let Some(row) = stored {
                    let mut rows = super::write::Rows::default();
                    rows.interaction(&Attributed {
                        customer: customer(row.get(0)),
                        record: interaction.clone(),
                    })?;
                    rows.flush(conn)?;
                }
            }
            Redacted::Override(record) => {
                let id = record.id.as_uuid();
                conn.execute(
                    "DELETE FROM override_identifiers WHERE override_id = $1",
                    &[id],
                )?;
                conn.execute("DELETE FROM overrides WHERE id = $1", &[id])?;
                insert_override(conn, record)?;
            }
        }
    }
    Ok(())
}
