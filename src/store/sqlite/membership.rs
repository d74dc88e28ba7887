//! Segment membership: each profile's state in one row, an index of each segment's
//! members, and the changes, clustered by profile and time for the timeline.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::write::Fault;
use super::{SqliteStore, decode, encode, key, nanos, profile_ids, sqlite, time};
use crate::model::{CustomerId, Membership, MembershipChange, MembershipState};
use crate::store::expect;
use crate::store::{
    MAX_PAGE_SIZE, MembershipStore, MembershipUpdate, Page, PageRequest, StoreError,
    TimelineCursor, clamped_nanos,
};

impl MembershipStore for SqliteStore {
    fn membership(&self, id: CustomerId) -> Result<MembershipState, StoreError> {
        self.read(|conn| state_of(conn, id).map_err(|fault| fault.at(0)))
    }

    fn segment_members(
        &self,
        segment: &str,
        after: Option<CustomerId>,
        limit: usize,
    ) -> Result<Vec<CustomerId>, StoreError> {
        let after = after.map_or([0; 16], |a| key(a.as_uuid()));
        let limit = limit.clamp(1, MAX_PAGE_SIZE) as i64;
        self.read(|conn| {
            profile_ids(
                conn,
                "SELECT profile_id FROM segment_members
                 WHERE segment = ?1 AND profile_id > ?2 ORDER BY profile_id LIMIT ?3",
                params![segment, after, limit],
            )
        })
    }

    fn membership_changes(
        &self,
        id: CustomerId,
        request: PageRequest,
    ) -> Result<Page<MembershipChange>, StoreError> {
        let (at, change_id) = request.cursor().map_or((i64::MAX, [0xff; 16]), |c| {
            (clamped_nanos(c.at), key(&c.id))
        });
        self.read(|conn| {
            let mut statement = conn
                .prepare_cached(
                    "SELECT body FROM membership_changes
                     WHERE profile_id = ?1 AND (at < ?2 OR (at = ?2 AND id < ?3))
                     ORDER BY at DESC, id DESC LIMIT ?4",
                )
                .map_err(sqlite)?;
            let rows = statement
                .query_map(
                    params![key(id.as_uuid()), at, change_id, request.limit() as i64 + 1],
                    |row| row.get::<_, String>(0),
                )
                .map_err(sqlite)?;
            let items: Vec<MembershipChange> = rows
                .map(|body| decode("membership change", &body.map_err(sqlite)?))
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
        let after = after.map_or([0; 16], |a| key(a.as_uuid()));
        let limit = limit.clamp(1, MAX_PAGE_SIZE) as i64;
        self.read(|conn| {
            profile_ids(
                conn,
                "SELECT profile_id FROM membership
                 WHERE recheck_at <= ?1 AND profile_id > ?2 ORDER BY profile_id LIMIT ?3",
                params![clamped_nanos(as_of), after, limit],
            )
        })
    }
}

fn state_of(conn: &Connection, id: CustomerId) -> Result<MembershipState, Fault> {
    type Row = (i64, Option<i64>, String, Option<String>);
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT version, recheck_at, segments, digest FROM membership WHERE profile_id = ?1",
        )?
        .query_row([key(id.as_uuid())], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .optional()?;
    let Some((version, recheck_at, segments, digest)) = row else {
        return Ok(MembershipState::default());
    };
    Ok(MembershipState {
        version: version as u64,
        memberships: decode::<Vec<Membership>>("membership", &segments)?,
        recheck_at: recheck_at.map(time),
        digest: digest.map(|d| decode("event digest", &d)).transpose()?,
    })
}

/// The version and memberships of profile `id`, if any are stored: what an update is
/// checked against, read without its digest.
fn segments_of(conn: &Connection, id: CustomerId) -> Result<Option<(u64, Vec<Membership>)>, Fault> {
    let row: Option<(i64, String)> = conn
        .prepare_cached("SELECT version, segments FROM membership WHERE profile_id = ?1")?
        .query_row([key(id.as_uuid())], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    row.map(|(version, segments)| {
        Ok((
            version as u64,
            decode::<Vec<Membership>>("membership", &segments)?,
        ))
    })
    .transpose()
}

/// Applies one [`MembershipUpdate`]; the profile must exist (the caller checks).
pub(super) fn update(conn: &Connection, update: &MembershipUpdate) -> Result<(), Fault> {
    let id = update.customer;
    let profile = key(id.as_uuid());
    if update.changes.is_empty() && update.version > 0 {
        // Most updates change no membership: the row's version is checked and moved on
        // in the statement that stores the digest, and its memberships stay unread.
        let stored = conn
            .prepare_cached(
                "UPDATE membership SET version = ?3, recheck_at = ?4, digest = ?5
                 WHERE profile_id = ?1 AND version = ?2",
            )?
            .execute(params![
                profile,
                update.version as i64,
                (update.version + 1) as i64,
                update.recheck_at.map(nanos).transpose()?,
                update.digest.as_ref().map(encode).transpose()?
            ])?;
        if stored == 1 {
            return Ok(());
        }
        // Stale, or no row at all: the full path below says which.
    }
    let (version, memberships) = segments_of(conn, id)?.unwrap_or_default();
    let memberships = expect::membership_after(update, version, memberships)?;
    for change in &update.changes {
        let sql = if change.entered {
            "INSERT INTO segment_members (segment, profile_id) VALUES (?1, ?2)"
        } else {
            "DELETE FROM segment_members WHERE segment = ?1 AND profile_id = ?2"
        };
        conn.prepare_cached(sql)?
            .execute(params![change.segment, profile])?;
        conn.prepare_cached(
            "INSERT INTO membership_changes (profile_id, at, id, body) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            profile,
            nanos(change.at)?,
            key(&change.id),
            encode(change)?
        ])?;
    }
    let recheck_at = update.recheck_at.map(nanos).transpose()?;
    conn.prepare_cached(
        "INSERT INTO membership (profile_id, version, recheck_at, segments, digest)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (profile_id) DO UPDATE
         SET version = excluded.version, recheck_at = excluded.recheck_at,
             segments = excluded.segments, digest = excluded.digest",
    )?
    .execute(params![
        profile,
        (version + 1) as i64,
        recheck_at,
        encode(&memberships)?,
        update.digest.as_ref().map(encode).transpose()?
    ])?;
    Ok(())
}

/// Removes the membership of an erased profile.
pub(super) fn erase(conn: &Connection, profile: &super::Key) -> Result<(), Fault> {
    let state: Option<String> = conn
        .prepare_cached("SELECT segments FROM membership WHERE profile_id = ?1")?
        .query_row([profile], |row| row.get(0))
        .optional()?;
    if let Some(segments) = state {
        for membership in decode::<Vec<Membership>>("membership", &segments)? {
            conn.prepare_cached(
                "DELETE FROM segment_members WHERE segment = ?1 AND profile_id = ?2",
            )?
            .execute(params![membership.segment, profile])?;
        }
    }
    for sql in [
        "DELETE FROM membership WHERE profile_id = ?1",
        "DELETE FROM membership_changes WHERE profile_id = ?1",
    ] {
        conn.prepare_cached(sql)?.execute([profile])?;
    }
    Ok(())
}
