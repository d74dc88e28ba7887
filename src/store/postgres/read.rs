//! Reads: the storage traits' queries, each on a pooled connection or on the snapshot
//! pinned to this thread.

use chrono::{DateTime, Utc};
use postgres::Row;
use uuid::Uuid;

use super::{Conn, MEMBERS, PostgresStore, SCAN_CHUNK, backend, corrupt, customer, decode, time};
use crate::model::{
    Channel, CustomerId, Event, EventId, Identifier, Interaction, InteractionId, MergeRecord,
    OverrideRecord, Refusal, TraitOperation,
};
use crate::store::{
    Attributed, ChannelSummary, EventScan, EventStore, IdentityStore, InteractionStore, Owner,
    Page, PageRequest, ProfileRecord, StoreError, TimelineCursor, TraitStore, chunked_scan,
    clamped_nanos, event_position,
};

/// The tables that hold a profile's timeline: events and interactions.
#[derive(Clone, Copy)]
pub(super) enum Timeline {
    Events,
    Interactions,
}

impl Timeline {
    pub(super) fn table(self) -> &'static str {
        match self {
            Self::Events => "events",
            Self::Interactions => "interactions",
        }
    }
}

/// Texts of identifiers, as the tables key them.
pub(super) fn texts(identifiers: &[Identifier]) -> Vec<String> {
    identifiers.iter().map(ToString::to_string).collect()
}

/// Decodes the text in column 0 of each row.
pub(super) fn decoded<T: serde::de::DeserializeOwned>(
    rows: &[Row],
    what: &str,
) -> Result<Vec<T>, StoreError> {
    rows.iter()
        .map(|row| decode(what, row.get::<_, &str>(0)))
        .collect()
}

impl IdentityStore for PostgresStore {
    fn owners(&self, identifiers: &[Identifier]) -> Result<Vec<Option<Owner>>, StoreError> {
        if identifiers.is_empty() {
            return Ok(Vec::new());
        }
        let texts = texts(identifiers);
        self.read(|conn| {
            let rows = conn.query(
                "SELECT u.ord, p.live_id, l.created_at
                 FROM unnest($1::text[]) WITH ORDINALITY AS u(identifier, ord)
                 JOIN identifiers i ON i.identifier = u.identifier
                 JOIN profiles p ON p.id = i.profile_id
                 JOIN profiles l ON l.id = p.live_id",
                &[&texts],
            )?;
            let mut found = vec![None; identifiers.len()];
            for row in rows {
                let index = row.get::<_, i64>(0) as usize - 1;
                found[index] = Some(Owner {
                    customer: customer(row.get(1)),
                    created_at: time(row.get(2)),
                });
            }
            Ok(found)
        })
    }

    fn profile(&self, id: CustomerId) -> Result<Option<ProfileRecord>, StoreError> {
        Ok(self.profiles(&[id])?.pop().flatten())
    }

    fn profiles(&self, ids: &[CustomerId]) -> Result<Vec<Option<ProfileRecord>>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<Uuid> = ids.iter().map(|id| *id.as_uuid()).collect();
        // Each member with each identifier it holds (or none), so every profile is read
        // in one pass over its members.
        let rows = self.read(|conn| {
            conn.query(
                "SELECT u.ord, q.live_id, m.id, p.created_at, i.identifier
                 FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, ord)
                 CROSS JOIN LATERAL (SELECT live_id FROM profiles WHERE id = u.id OFFSET 0) q
                 CROSS JOIN LATERAL (SELECT id FROM members WHERE live_id = q.live_id OFFSET 0) m
                 CROSS JOIN LATERAL (SELECT created_at FROM profiles WHERE id = m.id OFFSET 0) p
                 LEFT JOIN LATERAL (SELECT identifier FROM profile_identifiers
                                    WHERE profile_id = m.id OFFSET 0) i ON true
                 ORDER BY u.ord, m.id",
                &[&keys],
            )
        })?;
        let mut found: Vec<Option<ProfileRecord>> = vec![None; ids.len()];
        let mut created = vec![None; ids.len()];
        for row in rows {
            let at = row.get::<_, i64>(0) as usize - 1;
            let (live, member): (Uuid, Uuid) = (row.get(1), row.get(2));
            let profile = found[at].get_or_insert_with(|| ProfileRecord {
                id: customer(live),
                created_at: time(0),
                members: Vec::new(),
                identifiers: Vec::new(),
            });
            if member == live {
                created[at] = Some(time(row.get(3)));
            }
            let member = customer(member);
            if profile.members.last() != Some(&member) {
                profile.members.push(member);
            }
            if let Some(text) = row.get::<_, Option<&str>>(4) {
                profile.identifiers.push(
                    Identifier::from_canonical(text).map_err(|err| corrupt("identifier", err))?,
                );
            }
        }
        for (profile, created) in found.iter_mut().zip(created) {
            if let Some(profile) = profile {
                profile.created_at = created.ok_or_else(|| backend("a live profile has no row"))?;
                profile.identifiers.sort();
            }
        }
        Ok(found)
    }

    fn merges(&self, id: CustomerId) -> Result<Vec<MergeRecord>, StoreError> {
        self.read(|conn| {
            let rows = conn.query(
                &format!(
                    "SELECT g.record FROM {MEMBERS} CROSS JOIN LATERAL (
                         SELECT record, at, id FROM merges WHERE absorbed = m.id OFFSET 0) g
                     ORDER BY g.at, g.id"
                ),
                &[id.as_uuid()],
            )?;
            decoded(&rows, "merge")
        })
    }

    fn refusals(&self, id: CustomerId) -> Result<Vec<Refusal>, StoreError> {
        let mut refusals: Vec<Refusal> = self.read(|conn| {
            let rows = conn.query(
                &format!(
                    "SELECT r.record FROM {MEMBERS} CROSS JOIN LATERAL (
                         SELECT record FROM refusals WHERE profile_id = m.id OFFSET 0) r"
                ),
                &[id.as_uuid()],
            )?;
            decoded(&rows, "refusal")
        })?;
        refusals.sort_by(Refusal::order);
        Ok(refusals)
    }

    fn refusals_for(&self, ids: &[CustomerId]) -> Result<Vec<Vec<Refusal>>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<Uuid> = ids.iter().map(|id| *id.as_uuid()).collect();
        let mut found: Vec<Vec<Refusal>> = vec![Vec::new(); ids.len()];
        self.read(|conn| {
            // One pass for the batch: each id's live profile, its members, their
            // refusals, as `refusals` reads them for one id.
            let rows = conn.query(
                "SELECT u.ord, r.record
                 FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, ord)
                 CROSS JOIN LATERAL (SELECT live_id FROM profiles WHERE id = u.id OFFSET 0) q
                 CROSS JOIN LATERAL (SELECT id FROM members WHERE live_id = q.live_id OFFSET 0) m
                 CROSS JOIN LATERAL (SELECT record FROM refusals
                                     WHERE profile_id = m.id OFFSET 0) r",
                &[&keys],
            )?;
            for row in rows {
                let at = usize::try_from(row.get::<_, i64>(0) - 1)
                    .map_err(|_| backend("an ordinality below 1"))?;
                let record: String = row.get(1);
                found[at].push(decode("refusal", &record)?);
            }
            Ok(())
        })?;
        for refusals in &mut found {
            refusals.sort_by(Refusal::order);
        }
        Ok(found)
    }

    fn refusals_of(&self, identifiers: &[Identifier]) -> Result<Vec<Refusal>, StoreError> {
        if identifiers.is_empty() {
            return Ok(Vec::new());
        }
        let texts = texts(identifiers);
        let mut refusals: Vec<Refusal> = self.read(|conn| {
            let rows = conn.query(
                "SELECT record FROM refusals WHERE identifier = ANY($1)",
                &[&texts],
            )?;
            decoded(&rows, "refusal")
        })?;
        refusals.sort_by(Refusal::order);
        Ok(refusals)
    }

    fn overrides(&self, identifiers: &[Identifier]) -> Result<Vec<OverrideRecord>, StoreError> {
        if identifiers.is_empty() {
            return Ok(Vec::new());
        }
        let texts = texts(identifiers);
        self.sorted_overrides(
            "SELECT o.record FROM overrides o WHERE o.id IN (
                 SELECT override_id FROM override_identifiers WHERE identifier = ANY($1))",
            &[&texts],
        )
    }

    fn all_overrides(&self) -> Result<Vec<OverrideRecord>, StoreError> {
        self.sorted_overrides("SELECT record FROM overrides", &[])
    }

    fn standing_overrides(&self) -> Result<Vec<OverrideRecord>, StoreError> {
        self.sorted_overrides(
            "SELECT record FROM overrides WHERE kind IN ('suspect', 'block', 'allow')",
            &[],
        )
    }

    fn has_overrides(&self) -> Result<bool, StoreError> {
        self.any_row("overrides")
    }

    fn customers(
        &self,
        after: Option<CustomerId>,
        limit: usize,
    ) -> Result<Vec<CustomerId>, StoreError> {
        let after = after.map(|a| *a.as_uuid());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|conn| {
            let rows = conn.query(
                "SELECT id FROM profiles WHERE ($1::uuid IS NULL OR id > $1) AND live_id = id
                 ORDER BY id LIMIT $2",
                &[&after, &limit],
            )?;
            Ok(rows.iter().map(|row| customer(row.get(0))).collect())
        })
    }
}

impl PostgresStore {
    /// Whether `table` holds any row.
    pub(super) fn any_row(&self, table: &str) -> Result<bool, StoreError> {
        self.read(|conn| {
            let row = conn.query_one(&format!("SELECT EXISTS (SELECT 1 FROM {table})"), &[])?;
            Ok(row.get(0))
        })
    }

    fn sorted_overrides(
        &self,
        sql: &str,
        params: super::Params<'_>,
    ) -> Result<Vec<OverrideRecord>, StoreError> {
        let mut found: Vec<OverrideRecord> = self.read(|conn| {
            let rows = conn.query(sql, params)?;
            decoded(&rows, "override")
        })?;
        found.sort_by_key(|o| (o.at, o.id));
        Ok(found)
    }
}

/// Where a newest-first page starts: before the request's cursor, or at the very end.
fn before(request: PageRequest) -> (i64, Uuid) {
    match request.cursor() {
        Some(cursor) => (clamped_nanos(cursor.at), cursor.id),
        None => (i64::MAX, Uuid::max()),
    }
}

/// A newest-first page of the profile `id` from `timeline`, of the entries that occurred
/// at `since` (nanoseconds) or later.
fn page<T: serde::de::DeserializeOwned>(
    conn: &mut Conn,
    timeline: Timeline,
    id: CustomerId,
    request: PageRequest,
    since: i64,
    position: impl Fn(&T) -> TimelineCursor,
) -> Result<Page<T>, StoreError> {
    let (before_at, before_id) = before(request);
    let limit = request.limit() as i64 + 1;
    let rows = conn.query(
        &format!(
            "SELECT x.body FROM {MEMBERS} CROSS JOIN LATERAL (
                 SELECT t.occurred_at, t.id, t.body FROM {table} t
                 WHERE t.profile_id = m.id AND (t.occurred_at, t.id) < ($2, $3)
                   AND t.occurred_at >= $5
                 ORDER BY t.occurred_at DESC, t.id DESC LIMIT $4) x
             ORDER BY x.occurred_at DESC, x.id DESC LIMIT $4",
            table = timeline.table()
        ),
        &[id.as_uuid(), &before_at, &before_id, &limit, &since],
    )?;
    let mut items: Vec<T> = decoded(&rows, timeline.table())?;
    let more = items.len() > request.limit();
    items.truncate(request.limit());
    let next = if more {
        items.last().map(position)
    } else {
        None
    };
    Ok(Page { items, next })
}

fn position_of(row: Option<Row>) -> Option<TimelineCursor> {
    row.map(|row| TimelineCursor {
        at: time(row.get(0)),
        id: row.get(1),
    })
}

/// The newest entry of the live profile `id` in `timeline`.
fn latest(
    conn: &mut Conn,
    timeline: Timeline,
    id: CustomerId,
) -> Result<Option<TimelineCursor>, StoreError> {
    let row = conn.query_opt(
        &format!(
            "SELECT x.occurred_at, x.id FROM {MEMBERS} CROSS JOIN LATERAL (
                 SELECT t.occurred_at, t.id FROM {table} t WHERE t.profile_id = m.id
                 ORDER BY t.occurred_at DESC, t.id DESC LIMIT 1) x
             ORDER BY x.occurred_at DESC, x.id DESC LIMIT 1",
            table = timeline.table()
        ),
        &[id.as_uuid()],
    )?;
    Ok(position_of(row))
}

/// Where the newest row of `timeline` sits, read from its time index.
fn newest(conn: &mut Conn, timeline: Timeline) -> Result<Option<TimelineCursor>, StoreError> {
    let row = conn.query_opt(
        &format!(
            "SELECT occurred_at, id FROM {} ORDER BY occurred_at DESC, id DESC LIMIT 1",
            timeline.table()
        ),
        &[],
    )?;
    Ok(position_of(row))
}

fn summary(
    conn: &mut Conn,
    timeline: Timeline,
    id: CustomerId,
) -> Result<Vec<ChannelSummary>, StoreError> {
    let rows = conn.query(
        &format!(
            "SELECT x.channel, count(*), min(x.occurred_at), max(x.occurred_at)
             FROM {MEMBERS} CROSS JOIN LATERAL (
                 SELECT channel, occurred_at FROM {table} WHERE profile_id = m.id OFFSET 0) x
             GROUP BY x.channel",
            table = timeline.table()
        ),
        &[id.as_uuid()],
    )?;
    rows.iter()
        .map(|row| {
            Ok(ChannelSummary {
                channel: row
                    .get::<_, &str>(0)
                    .parse::<Channel>()
                    .map_err(|err| corrupt("channel", err))?,
                count: row.get::<_, i64>(1) as u64,
                first: time(row.get(2)),
                last: time(row.get(3)),
            })
        })
        .collect()
}

/// One stored record by id through its index table, with the live profile it belongs to.
fn stored<T: serde::de::DeserializeOwned>(
    conn: &mut Conn,
    timeline: Timeline,
    id: &Uuid,
) -> Result<Option<Attributed<T>>, StoreError> {
    let table = timeline.table();
    let row = conn.query_opt(
        &format!(
            "SELECT t.body, p.live_id FROM {table} t
             JOIN profiles p ON p.id = t.profile_id
             WHERE (t.profile_id, t.occurred_at, t.id) =
                   (SELECT profile_id, occurred_at, id FROM {table_ids} WHERE id = $1)",
            table_ids = match timeline {
                Timeline::Events => "event_ids",
                Timeline::Interactions => "interaction_ids",
            }
        ),
        &[id],
    )?;
    row.map(|row| {
        Ok(Attributed {
            customer: customer(row.get(1)),
            record: decode(table, row.get::<_, &str>(0))?,
        })
    })
    .transpose()
}

impl EventStore for PostgresStore {
    fn event(&self, id: EventId) -> Result<Option<Attributed<Event>>, StoreError> {
        self.read(|conn| stored(conn, Timeline::Events, id.as_uuid()))
    }

    fn event_owners(&self, ids: &[EventId]) -> Result<Vec<Option<CustomerId>>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<Uuid> = ids.iter().map(|id| *id.as_uuid()).collect();
        self.read(|conn| {
            let rows = conn.query(
                "SELECT u.ord, p.live_id
                 FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, ord)
                 JOIN event_ids x ON x.id = u.id
                 JOIN profiles p ON p.id = x.profile_id",
                &[&keys],
            )?;
            let mut found = vec![None; ids.len()];
            for row in rows {
                found[row.get::<_, i64>(0) as usize - 1] = Some(customer(row.get(1)));
            }
            Ok(found)
        })
    }

    fn events(&self, id: CustomerId, request: PageRequest) -> Result<Page<Event>, StoreError> {
        self.read(|conn| {
            page(
                conn,
                Timeline::Events,
                id,
                request,
                i64::MIN,
                event_position,
            )
        })
    }

    fn events_since(
        &self,
        id: CustomerId,
        since: DateTime<Utc>,
        request: PageRequest,
    ) -> Result<Page<Event>, StoreError> {
        let since = clamped_nanos(since);
        self.read(|conn| page(conn, Timeline::Events, id, request, since, event_position))
    }

    fn event_summary(&self, id: CustomerId) -> Result<Vec<ChannelSummary>, StoreError> {
        self.read(|conn| summary(conn, Timeline::Events, id))
    }

    fn latest_event(&self, id: CustomerId) -> Result<Option<TimelineCursor>, StoreError> {
        self.read(|conn| latest(conn, Timeline::Events, id))
    }

    fn events_bound(&self) -> Result<Option<TimelineCursor>, StoreError> {
        self.read(|conn| newest(conn, Timeline::Events))
    }

    fn scan_events(&self) -> EventScan<'_> {
        let mut scan = Scan {
            store: self,
            after: (i64::MIN, Uuid::nil()),
        };
        chunked_scan(move || scan.fetch())
    }
}

/// Reads the event log in chunks, one query per chunk.
struct Scan<'a> {
    store: &'a PostgresStore,
    after: (i64, Uuid),
}

impl Scan<'_> {
    /// The next chunk, and whether more may follow it.
    fn fetch(&mut self) -> Result<(Vec<Attributed<Event>>, bool), StoreError> {
        let (after_at, after_id) = self.after;
        let rows = self.store.read(|conn| {
            conn.query(
                "SELECT e.occurred_at, e.id, e.body, p.live_id
                 FROM events e JOIN profiles p ON p.id = e.profile_id
                 WHERE (e.occurred_at, e.id) > ($1, $2)
                 ORDER BY e.occurred_at, e.id LIMIT $3",
                &[&after_at, &after_id, &SCAN_CHUNK],
            )
        })?;
        let more = rows.len() as i64 == SCAN_CHUNK;
        if let Some(row) = rows.last() {
            self.after = (row.get(0), row.get(1));
        }
        rows.iter()
            .map(|row| {
                Ok(Attributed {
                    customer: customer(row.get(3)),
                    record: decode("event", row.get::<_, &str>(2))?,
                })
            })
            .collect::<Result<_, _>>()
            .map(|chunk| (chunk, more))
    }
}

impl InteractionStore for PostgresStore {
    fn interaction(
        &self,
        id: InteractionId,
    ) -> Result<Option<Attributed<Interaction>>, StoreError> {
        self.read(|conn| stored(conn, Timeline::Interactions, id.as_uuid()))
    }

    fn interactions(
        &self,
        id: CustomerId,
        request: PageRequest,
    ) -> Result<Page<Interaction>, StoreError> {
        self.read(|conn| {
            page(
                conn,
                Timeline::Interactions,
                id,
                request,
                i64::MIN,
                |i: &Interaction| TimelineCursor {
                    at: i.occurred_at,
                    id: *i.id.as_uuid(),
                },
            )
        })
    }

    fn interaction_summary(&self, id: CustomerId) -> Result<Vec<ChannelSummary>, StoreError> {
        self.read(|conn| summary(conn, Timeline::Interactions, id))
    }

    fn latest_interaction(&self, id: CustomerId) -> Result<Option<TimelineCursor>, StoreError> {
        self.read(|conn| latest(conn, Timeline::Interactions, id))
    }

    fn has_interactions(&self) -> Result<bool, StoreError> {
        self.any_row("interactions")
    }

    fn interactions_bound(&self) -> Result<Option<TimelineCursor>, StoreError> {
        self.read(|conn| newest(conn, Timeline::Interactions))
    }
}

impl TraitStore for PostgresStore {
    fn trait_operations(&self, id: CustomerId) -> Result<Vec<TraitOperation>, StoreError> {
        self.read(|conn| {
            let rows = conn.query(
                &format!(
                    "SELECT x.body FROM {MEMBERS} CROSS JOIN LATERAL (
                         SELECT body FROM traits WHERE profile_id = m.id OFFSET 0) x"
                ),
                &[id.as_uuid()],
            )?;
            decoded(&rows, "trait operation")
        })
    }
}
