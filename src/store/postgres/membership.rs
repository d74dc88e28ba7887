//! Segment membership: each profile's state in one row, an index of each segment's
//! members, and the changes, by profile and time for the timeline.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::write::Fault;
use super::{Conn, PostgresStore, customer, decode, encode, nanos, time};
use crate::model::{CustomerId, MembershipChange, MembershipState};
use crate::store::expect;
use crate::store::{
    MAX_PAGE_SIZE, MembershipStore, MembershipUpdate, Page, PageRequest, StoreError,
    TimelineCursor, clamped_nanos,
};

impl MembershipStore for PostgresStore {
    fn membership(&self, id: CustomerId) -> Result<MembershipState, StoreError> {
        self.read(|conn| state_of(conn, *id.as_uuid()))
    }

    fn segment_members(
        &self,
        segment: &str,
        after: Option<CustomerId>,
        limit: usize,
    ) -> Result<Vec<CustomerId>, StoreError> {
        let after = after.map(|a| *a.as_uuid());
        let limit = limit.clamp(1, MAX_PAGE_SIZE) as i64;
        self.read(|conn| {
            let rows = conn.query(
                "SELECT profile_id FROM segment_members
                 WHERE segment = $1 AND ($2::uuid IS NULL OR profile_id > $2)
                 ORDER BY profile_id LIMIT $3",
                &[&segment, &after, &limit],
            )?;
            Ok(rows.iter().map(|row| customer(row.get(0))).collect())
        })
    }

    fn membership_changes(
        &self,
        id: CustomerId,
        request: PageRequest,
    ) -> Result<Page<MembershipChange>, StoreError> {
        let (at, change_id) = request
            .cursor()
            .map_or((i64::MAX, Uuid::max()), |c| (clamped_nanos(c.at), c.id));
        let limit = request.limit() as i64 + 1;
        self.read(|conn| {
            let rows = conn.query(
                "SELECT body FROM membership_changes
                 WHERE profile_id = $1 AND (at, id) < ($2, $3)
                 ORDER BY at DESC, id DESC LIMIT $4",
                &[id.as_uuid(), &at, &change_id, &limit],
            )?;
            let items: Vec<MembershipChange> = rows
                .iter()
                .map(|row| decode("membership change", row.get::<_, &str>(0)))
                .collect::<Result<_, _>>()?;
            Ok(Page::from_one_more(items, request.limit(), |c| {
                TimelineCursor { at: c.at, id: c.id }
            }))
        })
    }

    fn due_for_recheck(
        &self,
        as_of: DateTime<Utc>,
        after: Option<CustomerId>,
        limit: usize,
    ) -> Result<Vec<CustomerId>, StoreError> {
        let after = after.map(|a| *a.as_uuid());
        let limit = limit.clamp(1, MAX_PAGE_SIZE) as i64;
        self.read(|conn| {
            let rows = conn.query(
                "SELECT profile_id FROM membership
                 WHERE recheck_at <= $1 AND ($2::uuid IS NULL OR profile_id > $2)
                 ORDER BY profile_id LIMIT $3",
                &[&clamped_nanos(as_of), &after, &limit],
            )?;
            Ok(rows.iter().map(|row| customer(row.get(0))).collect())
        })
    }
}

fn state_of(conn: &mut Conn, id: Uuid) -> Result<MembershipState, StoreError> {
    let Some(row) = conn.query_opt(
        "SELECT version, recheck_at, segments, digest FROM membership WHERE profile_id = $1",
        &[&id],
    )?
    else {
        return Ok(MembershipState::default());
    };
    Ok(MembershipState {
        version: row.get::<_, i64>(0) as u64,
        recheck_at: row.get::<_, Option<i64>>(1).map(time),
        memberships: decode("membership", row.get::<_, &str>(2))?,
        digest: row
            .get::<_, Option<&str>>(3)
            .map(|d| decode("event digest", d))
            .transpose()?,
    })
}

/// Applies one [`MembershipUpdate`]; the profile must exist (the caller checks).
pub(super) fn update(conn: &mut Conn, update: &MembershipUpdate) -> Result<(), Fault> {
    let id = update.customer;
    let profile = *id.as_uuid();
    if update.changes.is_empty() && update.version > 0 {
        // Most updates change no membership: the row's version is checked and moved on
        // in the statement that stores the digest, one round trip instead of two.
        let stored = conn.execute(
            "UPDATE membership SET version = $3, recheck_at = $4, digest = $5
             WHERE profile_id = $1 AND version = $2",
            &[
                &profile,
                &(update.version as i64),
                &((update.version + 1) as i64),
                &update.recheck_at.map(nanos).transpose()?,
                &update.digest.as_ref().map(encode).transpose()?,
            ],
        )?;
        if stored == 1 {
            return Ok(());
        }
        // Stale, or no row at all: the full path below says which.
    }
    let stored = conn.query_opt(
        "SELECT version, segments FROM membership WHERE profile_id = $1",
        &[&profile],
    )?;
    let (version, memberships) = match stored {
        Some(row) => (
            row.get::<_, i64>(0) as u64,
            decode("membership", row.get::<_, &str>(1))?,
        ),
        None => (0, Vec::new()),
    };
    let memberships = expect::membership_after(update, version, memberships)?;
    for change in &update.changes {
        let sql = if change.entered {
            "INSERT INTO segment_members (segment, profile_id) VALUES ($1, $2)"
        } else {
            "DELETE FROM segment_members WHERE segment = $1 AND profile_id = $2"
        };
        conn.execute(sql, &[&change.segment, &profile])?;
        conn.execute(
            "INSERT INTO membership_changes (profile_id, at, id, body) VALUES ($1, $2, $3, $4)",
            &[&profile, &nanos(change.at)?, &change.id, &encode(change)?],
        )?;
    }
    let recheck_at = update.recheck_at.map(nanos).transpose()?;
    conn.execute(
        "INSERT INTO membership (profile_id, version, recheck_at, segments, digest)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (profile_id) DO UPDATE
         SET version = excluded.version, recheck_at = excluded.recheck_at,
             segments = excluded.segments, digest = excluded.digest",
        &[
            &profile,
            &((version + 1) as i64),
            &recheck_at,
            &encode(&memberships)?,
            &update.digest.as_ref().map(encode).transpose()?,
        ],
    )?;
    Ok(())
}

/// Removes the membership of the erased profiles `members`.
pub(super) fn erase(conn: &mut Conn, members: &[Uuid]) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM segment_members WHERE profile_id = ANY($1)",
        "DELETE FROM membership WHERE profile_id = ANY($1)",
        "DELETE FROM membership_changes WHERE profile_id = ANY($1)",
    ] {
        conn.execute(sql, &[&members])?;
    }
    Ok(())
}
