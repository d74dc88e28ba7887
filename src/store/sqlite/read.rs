//! Reads: the storage traits' queries, each on a read connection (or the snapshot
//! pinned to this thread).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use super::{
    Key, LIVE, SCAN_CHUNK, SqliteStore, backend, corrupt, customer, decode, interaction_row, key,
    profile_ids, sqlite, time,
};
use crate::model::{
    Channel, CustomerId, Event, EventId, Identifier, Interaction, InteractionId, MergeRecord,
    OverrideRecord, Refusal, TraitOperation,
};
use crate::store::{
    Attributed, ChannelSummary, EventScan, EventStore, IdentityStore, InteractionStore, Owner,
    Page, PageRequest, ProfileRecord, StoreError, TimelineCursor, TraitStore, chunked_scan,
    clamped_nanos, event_position,
};

impl IdentityStore for SqliteStore {
    fn owners(&self, identifiers: &[Identifier]) -> Result<Vec<Option<Owner>>, StoreError> {
        if identifiers.is_empty() {
            return Ok(Vec::new());
        }
        let texts: Vec<String> = identifiers.iter().map(ToString::to_string).collect();
        let list = serde_json::to_string(&texts).map_err(|err| backend(&err.to_string()))?;
        self.read(|conn| {
            let mut found = vec![None; identifiers.len()];
            let mut statement = conn
                .prepare_cached(
                    "SELECT j.key, p.live_id, l.created_at FROM json_each(?1) j
                     JOIN identifiers i ON i.identifier = j.value
                     JOIN profiles p ON p.id = i.profile_id
                     JOIN profiles l ON l.id = p.live_id",
                )
                .map_err(sqlite)?;
            let mut rows = statement.query([&list]).map_err(sqlite)?;
            while let Some(row) = rows.next().map_err(sqlite)? {
                let index = row.get::<_, i64>(0).map_err(sqlite)? as usize;
                found[index] = Some(Owner {
                    customer: customer(row.get(1).map_err(sqlite)?),
                    created_at: time(row.get(2).map_err(sqlite)?),
                });
            }
            Ok(found)
        })
    }

    fn profile(&self, id: CustomerId) -> Result<Option<ProfileRecord>, StoreError> {
        // One statement: each member with each identifier it holds (or none), so the
        // profile is read in one pass over its members.
        self.read(|conn| {
            let mut live = None;
            let mut created_at = None;
            let mut members: Vec<CustomerId> = Vec::new();
            let mut identifiers = Vec::new();
            let sql = format!(
                "SELECT p.id, p.created_at, p.live_id, i.identifier
                 FROM profiles p LEFT JOIN identifiers i ON i.profile_id = p.id
                 WHERE p.live_id = {LIVE} ORDER BY p.id"
            );
            let mut statement = conn.prepare_cached(&sql).map_err(sqlite)?;
            let mut rows = statement.query([key(id.as_uuid())]).map_err(sqlite)?;
            while let Some(row) = rows.next().map_err(sqlite)? {
                let member: Key = row.get(0).map_err(sqlite)?;
                let survivor: Key = row.get(2).map_err(sqlite)?;
                if member == survivor {
                    created_at = Some(time(row.get(1).map_err(sqlite)?));
                }
                live = Some(survivor);
                let member = customer(member);
                if members.last() != Some(&member) {
                    members.push(member);
                }
                if let Some(text) = row.get::<_, Option<String>>(3).map_err(sqlite)? {
                    identifiers.push(
                        Identifier::from_canonical(&text)
                            .map_err(|err| corrupt("identifier", err))?,
                    );
                }
            }
            let Some(live) = live else {
                return Ok(None);
            };
            identifiers.sort();
            Ok(Some(ProfileRecord {
                id: customer(live),
                created_at: created_at.ok_or_else(|| backend("a live profile has no row"))?,
                members,
                identifiers,
            }))
        })
    }

    fn merges(&self, id: CustomerId) -> Result<Vec<MergeRecord>, StoreError> {
        self.read(|conn| {
            let sql = format!(
                "SELECT m.record FROM profiles p JOIN merges m ON m.absorbed = p.id
                 WHERE p.live_id = {LIVE} ORDER BY m.at, m.id"
            );
            bodies(conn, &sql, key(id.as_uuid()), "merge")
        })
    }

    fn refusals(&self, id: CustomerId) -> Result<Vec<Refusal>, StoreError> {
        self.read(|conn| {
            let sql = format!(
                "SELECT r.record FROM profiles p JOIN refusals r ON r.profile_id = p.id
                 WHERE p.live_id = {LIVE}"
            );
            let mut refusals: Vec<Refusal> = bodies(conn, &sql, key(id.as_uuid()), "refusal")?;
            refusals.sort_by(Refusal::order);
            Ok(refusals)
        })
    }

    fn refusals_of(&self, identifiers: &[Identifier]) -> Result<Vec<Refusal>, StoreError> {
        let mut refusals: Vec<Refusal> = self.by_identifiers(
            identifiers,
            "SELECT r.record FROM json_each(?1) j JOIN refusals r ON r.identifier = j.value",
            "refusal",
        )?;
        refusals.sort_by(Refusal::order);
        Ok(refusals)
    }

    fn overrides(&self, identifiers: &[Identifier]) -> Result<Vec<OverrideRecord>, StoreError> {
        let mut found: Vec<OverrideRecord> = self.by_identifiers(
            identifiers,
            "SELECT o.record FROM overrides o WHERE o.id IN (
                 SELECT oi.override_id FROM json_each(?1) j
                 JOIN override_identifiers oi ON oi.identifier = j.value)",
            "override",
        )?;
        found.sort_by_key(|o| (o.at, o.id));
        Ok(found)
    }

    fn has_overrides(&self) -> Result<bool, StoreError> {
        self.any_row("overrides")
    }

    fn all_overrides(&self) -> Result<Vec<OverrideRecord>, StoreError> {
        let mut found: Vec<OverrideRecord> =
            self.read(|conn| decoded_rows(conn, "SELECT record FROM overrides", [], "override"))?;
        // Ids are random within one instant: order by the decoded id, like the others.
        found.sort_by_key(|o| (o.at, o.id));
        Ok(found)
    }

    fn standing_overrides(&self) -> Result<Vec<OverrideRecord>, StoreError> {
        let mut found: Vec<OverrideRecord> = self.read(|conn| {
            let sql = "SELECT record FROM overrides
                       WHERE json_extract(record, '$.override') IN ('suspect', 'block', 'allow')";
            decoded_rows(conn, sql, [], "override")
        })?;
        found.sort_by_key(|o| (o.at, o.id));
        Ok(found)
    }

    fn customers(
        &self,
        after: Option<CustomerId>,
        limit: usize,
    ) -> Result<Vec<CustomerId>, StoreError> {
        self.read(|conn| {
            let after = after.map(|a| key(a.as_uuid()).to_vec()).unwrap_or_default();
            profile_ids(
                conn,
                "SELECT id FROM profiles WHERE id > ?1 AND live_id = id ORDER BY id LIMIT ?2",
                params![after, limit as i64],
            )
        })
    }
}

impl SqliteStore {
    /// Whether `table` holds any row.
    fn any_row(&self, table: &str) -> Result<bool, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(&format!("SELECT EXISTS (SELECT 1 FROM {table})"))
                .map_err(sqlite)?
                .query_row([], |row| row.get(0))
                .map_err(sqlite)
        })
    }

    /// Reads one JSON column from every row of `sql`, which takes the canonical forms of
    /// `identifiers` as a JSON array in `?1`.
    fn by_identifiers<T: serde::de::DeserializeOwned>(
        &self,
        identifiers: &[Identifier],
        sql: &str,
        what: &str,
    ) -> Result<Vec<T>, StoreError> {
        if identifiers.is_empty() {
            return Ok(Vec::new());
        }
        let texts: Vec<String> = identifiers.iter().map(ToString::to_string).collect();
        let list = serde_json::to_string(&texts).map_err(|err| backend(&err.to_string()))?;
        self.read(|conn| {
            let mut statement = conn.prepare_cached(sql).map_err(sqlite)?;
            let rows = statement
                .query_map([&list], |row| row.get::<_, String>(0))
                .map_err(sqlite)?;
            rows.map(|body| decode(what, &body.map_err(sqlite)?))
                .collect()
        })
    }
}

/// Reads one JSON column from every row of `sql`, which takes the customer as `?1`.
/// Decodes the JSON in the first column of every row `sql` gives for `params`.
pub(super) fn decoded_rows<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    what: &str,
) -> Result<Vec<T>, StoreError> {
    let mut statement = conn.prepare_cached(sql).map_err(sqlite)?;
    let rows = statement
        .query_map(params, |row| row.get::<_, String>(0))
        .map_err(sqlite)?;
    rows.map(|body| decode(what, &body.map_err(sqlite)?))
        .collect()
}

fn bodies<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    customer: Key,
    what: &str,
) -> Result<Vec<T>, StoreError> {
    let mut statement = conn.prepare_cached(sql).map_err(sqlite)?;
    let rows = statement
        .query_map([customer], |row| row.get::<_, String>(0))
        .map_err(sqlite)?;
    rows.map(|body| decode(what, &body.map_err(sqlite)?))
        .collect()
}

/// The newest entry of the live profile `id` in `table`, read from its
/// `(profile_id, occurred_at, id)` index alone.
fn latest(
    conn: &Connection,
    table: &str,
    id: CustomerId,
) -> Result<Option<TimelineCursor>, StoreError> {
    let (rows, member) = timeline_rows(conn, table, id)?;
    let sql =
        format!("SELECT t.occurred_at, t.id {rows} ORDER BY t.occurred_at DESC, t.id DESC LIMIT 1");
    position(conn, &sql, [member])
}

/// The rows `t` of `table` that belong to the live profile `id`, as a `FROM … WHERE …`
/// clause that further conditions can follow with `AND`, and the key to bind as its `?1`.
///
/// Most customers are one profile, whose rows a table keyed or indexed by `(profile_id,
/// occurred_at, id)` holds in time order: read from that profile alone, they need no
/// sort and reading stops at the limit. Several members' rows must be merged, which
/// SQLite does by sorting all of them; the key is then one whose live profile is `id`'s,
/// for [`LIVE`].
fn timeline_rows(
    conn: &Connection,
    table: &str,
    id: CustomerId,
) -> Result<(String, Key), StoreError> {
    let mut statement = conn
        .prepare_cached(&format!(
            "SELECT id FROM profiles WHERE live_id = {LIVE} LIMIT 2"
        ))
        .map_err(sqlite)?;
    let members: Vec<Key> = statement
        .query_map([key(id.as_uuid())], |row| row.get(0))
        .map_err(sqlite)?
        .collect::<Result<_, _>>()
        .map_err(sqlite)?;
    Ok(match members.as_slice() {
        [only] => (format!("FROM {table} t WHERE t.profile_id = ?1"), *only),
        _ => (
            format!(
                "FROM profiles p JOIN {table} t ON t.profile_id = p.id WHERE p.live_id = {LIVE}"
            ),
            key(id.as_uuid()),
        ),
    })
}

/// The timeline position (`occurred_at`, `id`) of the one row `sql` selects, if any.
fn position(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Option<TimelineCursor>, StoreError> {
    conn.prepare_cached(sql)
        .map_err(sqlite)?
        .query_row(params, |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, Key>(1)?))
        })
        .optional()
        .map_err(sqlite)
        .map(|found| {
            found.map(|(at, id)| TimelineCursor {
                at: time(at),
                id: Uuid::from_bytes(id),
            })
        })
}

/// A newest-first page from `table`, which must have `profile_id`, `occurred_at`, `id` and
/// `body` columns, of the rows that occurred at `since` (nanoseconds) or later.
fn page<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    table: &str,
    id: CustomerId,
    request: PageRequest,
    since: i64,
    position: impl Fn(&T) -> TimelineCursor,
) -> Result<Page<T>, StoreError> {
    let (before_at, before_id) = before(request);
    let (rows, member) = timeline_rows(conn, table, id)?;
    let sql = format!(
        "SELECT t.body {rows} AND (t.occurred_at, t.id) < (?2, ?3) AND t.occurred_at >= ?5
         ORDER BY t.occurred_at DESC, t.id DESC LIMIT ?4"
    );
    let mut statement = conn.prepare_cached(&sql).map_err(sqlite)?;
    let rows = statement
        .query_map(
            params![
                member,
                before_at,
                before_id,
                request.limit() as i64 + 1,
                since
            ],
            |row| row.get::<_, String>(0),
        )
        .map_err(sqlite)?;
    let items: Vec<T> = rows
        .map(|body| decode(table, &body.map_err(sqlite)?))
        .collect::<Result<_, _>>()?;
    Ok(into_page(items, request, position))
}

/// Where a newest-first page starts: before the request's cursor, or at the very end.
fn before(request: PageRequest) -> (i64, Key) {
    match request.cursor() {
        Some(cursor) => (clamped_nanos(cursor.at), key(&cursor.id)),
        None => (i64::MAX, [0xFF; 16]),
    }
}

/// A page of `items`, read with one more than the request's limit so that the extra one
/// tells whether more follow.
fn into_page<T>(
    mut items: Vec<T>,
    request: PageRequest,
    position: impl Fn(&T) -> TimelineCursor,
) -> Page<T> {
    let more = items.len() > request.limit();
    items.truncate(request.limit());
    let next = if more {
        items.last().map(position)
    } else {
        None
    };
    Page { items, next }
}

fn summary(
    conn: &Connection,
    table: &str,
    id: CustomerId,
) -> Result<Vec<ChannelSummary>, StoreError> {
    let sql = format!(
        "SELECT t.channel, count(*), min(t.occurred_at), max(t.occurred_at)
         FROM profiles p JOIN {table} t ON t.profile_id = p.id
         WHERE p.live_id = {LIVE} GROUP BY t.channel"
    );
    let mut statement = conn.prepare_cached(&sql).map_err(sqlite)?;
    let rows = statement
        .query_map([key(id.as_uuid())], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })
        .map_err(sqlite)?;
    rows.map(|row| {
        let (channel, count, first, last) = row.map_err(sqlite)?;
        Ok(ChannelSummary {
            channel: channel
                .parse::<Channel>()
                .map_err(|err| corrupt("channel", err))?,
            count: count as u64,
            first: time(first),
            last: time(last),
        })
    })
    .collect()
}

impl EventStore for SqliteStore {
    fn event(&self, id: EventId) -> Result<Option<Attributed<Event>>, StoreError> {
        self.read(|conn| stored(conn, "events", &key(id.as_uuid()), "event"))
    }

    fn event_owners(&self, ids: &[EventId]) -> Result<Vec<Option<CustomerId>>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // JSON has no bytes, so the 16-byte keys travel as hex and are unhexed in the join.
        let hex: Vec<String> = ids
            .iter()
            .map(|id| id.as_uuid().simple().to_string())
            .collect();
        let list = serde_json::to_string(&hex).map_err(|err| backend(&err.to_string()))?;
        self.read(|conn| {
            let mut found = vec![None; ids.len()];
            let mut statement = conn
                .prepare_cached(
                    "SELECT j.key, p.live_id FROM json_each(?1) j
                     JOIN events e ON e.id = unhex(j.value)
                     JOIN profiles p ON p.id = e.profile_id",
                )
                .map_err(sqlite)?;
            let mut rows = statement.query([&list]).map_err(sqlite)?;
            while let Some(row) = rows.next().map_err(sqlite)? {
                let index = row.get::<_, i64>(0).map_err(sqlite)? as usize;
                found[index] = Some(customer(row.get(1).map_err(sqlite)?));
            }
            Ok(found)
        })
    }

    fn events(&self, id: CustomerId, request: PageRequest) -> Result<Page<Event>, StoreError> {
        self.read(|conn| page(conn, "events", id, request, i64::MIN, event_position))
    }

    fn events_since(
        &self,
        id: CustomerId,
        since: DateTime<Utc>,
        request: PageRequest,
    ) -> Result<Page<Event>, StoreError> {
        let since = clamped_nanos(since);
        self.read(|conn| page(conn, "events", id, request, since, event_position))
    }

    fn event_summary(&self, id: CustomerId) -> Result<Vec<ChannelSummary>, StoreError> {
        self.read(|conn| summary(conn, "events", id))
    }

    fn latest_event(&self, id: CustomerId) -> Result<Option<TimelineCursor>, StoreError> {
        self.read(|conn| latest(conn, "events", id))
    }

    fn events_bound(&self) -> Result<Option<TimelineCursor>, StoreError> {
        self.read(|conn| newest(conn, "events"))
    }

    fn scan_events(&self) -> EventScan<'_> {
        let mut scan = Scan {
            store: self,
            after: (i64::MIN, [0; 16]),
        };
        chunked_scan(move || scan.fetch())
    }
}

/// Where the newest row of `table` sits, read from its time index.
fn newest(conn: &Connection, table: &str) -> Result<Option<TimelineCursor>, StoreError> {
    let sql =
        format!("SELECT occurred_at, id FROM {table} ORDER BY occurred_at DESC, id DESC LIMIT 1");
    position(conn, &sql, [])
}

/// One stored record by id, with the live profile it belongs to.
fn stored<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    table: &str,
    id: &Key,
    what: &str,
) -> Result<Option<Attributed<T>>, StoreError> {
    let sql = format!(
        "SELECT t.body, p.live_id FROM {table} t JOIN profiles p ON p.id = t.profile_id
         WHERE t.id = ?1"
    );
    let row = conn
        .prepare_cached(&sql)
        .map_err(sqlite)?
        .query_row([id], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, Key>(1)?))
        })
        .optional()
        .map_err(sqlite)?;
    row.map(|(body, live)| {
        Ok(Attributed {
            customer: customer(live),
            record: decode(what, &body)?,
        })
    })
    .transpose()
}

/// Reads the event log in chunks, one query per chunk, on whichever reader is free.
struct Scan<'a> {
    store: &'a SqliteStore,
    after: (i64, Key),
}

impl Scan<'_> {
    /// The next chunk, and whether more may follow it.
    fn fetch(&mut self) -> Result<(Vec<Attributed<Event>>, bool), StoreError> {
        let (after_at, after_id) = self.after;
        let rows: Vec<(i64, Key, String, Key)> = self.store.read(|conn| {
            let mut statement = conn
                .prepare_cached(
                    "SELECT e.occurred_at, e.id, e.body, p.live_id
                     FROM events e JOIN profiles p ON p.id = e.profile_id
                     WHERE (e.occurred_at, e.id) > (?1, ?2)
                     ORDER BY e.occurred_at, e.id LIMIT ?3",
                )
                .map_err(sqlite)?;
            let rows = statement
                .query_map(params![after_at, after_id, SCAN_CHUNK as i64], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                })
                .map_err(sqlite)?;
            rows.map(|row| row.map_err(sqlite)).collect()
        })?;
        let more = rows.len() == SCAN_CHUNK;
        if let Some((at, id, _, _)) = rows.last() {
            self.after = (*at, *id);
        }
        rows.into_iter()
            .map(|(_, _, body, live)| {
                Ok(Attributed {
                    customer: customer(live),
                    record: decode("event", &body)?,
                })
            })
            .collect::<Result<_, _>>()
            .map(|chunk| (chunk, more))
    }
}

impl InteractionStore for SqliteStore {
    fn interaction(
        &self,
        id: InteractionId,
    ) -> Result<Option<Attributed<Interaction>>, StoreError> {
        self.read(|conn| {
            let sql = format!(
                "SELECT p.live_id, {} FROM interactions t
                 JOIN profiles p ON p.id = t.profile_id WHERE t.id = ?1",
                interaction_row::COLUMNS
            );
            let mut statement = conn.prepare_cached(&sql).map_err(sqlite)?;
            let mut rows = statement.query([key(id.as_uuid())]).map_err(sqlite)?;
            let Some(row) = rows.next().map_err(sqlite)? else {
                return Ok(None);
            };
            Ok(Some(Attributed {
                customer: customer(row.get(0).map_err(sqlite)?),
                record: interaction_row::read(row, 1)?,
            }))
        })
    }

    fn interactions(
        &self,
        id: CustomerId,
        request: PageRequest,
    ) -> Result<Page<Interaction>, StoreError> {
        let (before_at, before_id) = before(request);
        self.read(|conn| {
            let (rows, member) = timeline_rows(conn, "interactions", id)?;
            let sql = format!(
                "SELECT {} {rows} AND (t.occurred_at, t.id) < (?2, ?3)
                 ORDER BY t.occurred_at DESC, t.id DESC LIMIT ?4",
                interaction_row::COLUMNS
            );
            let mut statement = conn.prepare_cached(&sql).map_err(sqlite)?;
            let mut rows = statement
                .query(params![
                    member,
                    before_at,
                    before_id,
                    request.limit() as i64 + 1
                ])
                .map_err(sqlite)?;
            let mut items = Vec::new();
            while let Some(row) = rows.next().map_err(sqlite)? {
                items.push(interaction_row::read(row, 0)?);
            }
            Ok(into_page(items, request, |i: &Interaction| {
                TimelineCursor {
                    at: i.occurred_at,
                    id: *i.id.as_uuid(),
                }
            }))
        })
    }

    fn interaction_summary(&self, id: CustomerId) -> Result<Vec<ChannelSummary>, StoreError> {
        self.read(|conn| summary(conn, "interactions", id))
    }

    fn latest_interaction(&self, id: CustomerId) -> Result<Option<TimelineCursor>, StoreError> {
        self.read(|conn| latest(conn, "interactions", id))
    }

    fn has_interactions(&self) -> Result<bool, StoreError> {
        self.any_row("interactions")
    }

    fn interactions_bound(&self) -> Result<Option<TimelineCursor>, StoreError> {
        self.read(|conn| newest(conn, "interactions"))
    }
}

impl TraitStore for SqliteStore {
    fn trait_operations(&self, id: CustomerId) -> Result<Vec<TraitOperation>, StoreError> {
        self.read(|conn| {
            let sql = format!(
                "SELECT t.body FROM profiles p JOIN traits t ON t.profile_id = p.id
                 WHERE p.live_id = {LIVE}"
            );
            bodies(conn, &sql, key(id.as_uuid()), "trait operation")
        })
    }
}
