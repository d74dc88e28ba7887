//! The database schema and its forward-only migrations.
//!
//! A database written by this crate carries [`APPLICATION_ID`] in its header and its schema
//! version in `PRAGMA user_version`. Opening checks both before writing anything, so a
//! file that is not ours, or is from a newer release, is refused untouched.

use std::path::Path;

use rusqlite::{Connection, ErrorCode, TransactionBehavior};

use super::OpenError;

/// Marks a SQLite file as a `oneview` database (`PRAGMA application_id`): ASCII "1vw1".
pub const APPLICATION_ID: i32 = 0x3176_7731;

/// Each migration takes the schema from version `index` to `index + 1`: its SQL, then, for
/// a change SQL cannot make exactly, a step in Rust ([`STEPS`]). Append only: a shipped
/// migration never changes, and each gets a fixture database under `tests/fixtures/` that
/// the migration test opens.
const MIGRATIONS: &[&str] = &[
    // Version 1.
    "
    CREATE TABLE profiles (
        id         BLOB PRIMARY KEY,
        created_at INTEGER NOT NULL,
        -- The live profile this one resolves to: itself while live. Kept flat.
        live_id    BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX profiles_by_live ON profiles (live_id);

    CREATE TABLE identifiers (
        identifier TEXT PRIMARY KEY,  -- canonical kind:value
        profile_id BLOB NOT NULL REFERENCES profiles (id)
    ) WITHOUT ROWID;
    CREATE INDEX identifiers_by_profile ON identifiers (profile_id);

    CREATE TABLE merges (
        id       BLOB PRIMARY KEY,
        absorbed BLOB NOT NULL REFERENCES profiles (id),
        at       INTEGER NOT NULL,
        record   TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX merges_by_absorbed ON merges (absorbed);

    CREATE TABLE events (
        id          BLOB NOT NULL UNIQUE,
        profile_id  BLOB NOT NULL REFERENCES profiles (id),
        occurred_at INTEGER NOT NULL,  -- nanoseconds since the Unix epoch
        channel     TEXT NOT NULL,
        body        TEXT NOT NULL
    );
    CREATE INDEX events_by_profile ON events (profile_id, occurred_at, id);
    CREATE INDEX events_by_time ON events (occurred_at, id);

    CREATE TABLE interactions (
        id          BLOB PRIMARY KEY,
        profile_id  BLOB NOT NULL REFERENCES profiles (id),
        occurred_at INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        channel     TEXT NOT NULL,
        body        TEXT NOT NULL
    );
    CREATE INDEX interactions_by_profile ON interactions (profile_id, occurred_at, id);

    CREATE TABLE traits (
        profile_id BLOB NOT NULL REFERENCES profiles (id),
        body       TEXT NOT NULL
    );
    CREATE INDEX traits_by_profile ON traits (profile_id);
    ",
    // Version 2: refused links, operator overrides, and trait operations findable by the
    // event that carried them, so rebuilt profiles can take them along.
    "
    CREATE TABLE refusals (
        profile_id BLOB NOT NULL REFERENCES profiles (id),
        identifier TEXT NOT NULL,
        evidence   BLOB NOT NULL,
        at         INTEGER NOT NULL,
        record     TEXT NOT NULL
    );
    CREATE INDEX refusals_by_profile ON refusals (profile_id);
    CREATE INDEX refusals_by_identifier ON refusals (identifier);

    CREATE TABLE overrides (
        id     BLOB PRIMARY KEY,
        at     INTEGER NOT NULL,
        record TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE override_identifiers (
        identifier  TEXT NOT NULL,
        override_id BLOB NOT NULL REFERENCES overrides (id),
        PRIMARY KEY (identifier, override_id)
    ) WITHOUT ROWID;

    ALTER TABLE traits ADD COLUMN event_id BLOB;
    UPDATE traits
       SET event_id = unhex(replace(json_extract(body, '$.provenance.event_id'), '-', ''));
    CREATE INDEX traits_by_event ON traits (event_id);
    ",
    // Version 3: interactions by time, so the newest one is found without a scan; and a
    // profile's members with their creation times in one index, so reading a profile
    // does not visit the table row of each member.
    "
    CREATE INDEX interactions_by_time ON interactions (occurred_at, id);
    DROP INDEX profiles_by_live;
    CREATE INDEX profiles_by_live ON profiles (live_id, id, created_at);
    ",
    // Version 4: interactions kept in columns rather than as JSON, clustered by the profile
    // they belong to and then by time, so a customer's history is one sweep of adjacent
    // pages and reading it parses no JSON but their properties. The rows are copied by
    // `copy_interactions_to_v4`, which keeps times to the nanosecond.
    "
    CREATE TABLE interactions_v4 (
        profile_id  BLOB NOT NULL REFERENCES profiles (id),
        occurred_at INTEGER NOT NULL,
        id          BLOB NOT NULL,
        updated_at  INTEGER NOT NULL,
        channel     TEXT NOT NULL,
        source      TEXT NOT NULL,
        key         TEXT NOT NULL,
        kind        TEXT NOT NULL,   -- a built-in kind's name, or {\"other\": name}
        direction   TEXT NOT NULL,
        status      TEXT NOT NULL,
        thread      TEXT,
        in_reply_to BLOB,
        owner       TEXT,
        subject     TEXT,
        text        TEXT,
        outcome     TEXT,
        closed_at   INTEGER,
        answered_at INTEGER,
        identifiers TEXT NOT NULL,   -- a JSON array of canonical kind:value forms
        properties  TEXT NOT NULL,   -- a JSON object
        PRIMARY KEY (profile_id, occurred_at, id)
    ) WITHOUT ROWID;
    ",
    // Version 5: privacy. Consent decisions, kept like trait operations (by the profile
    // they are recorded on, and findable by the event that carried them); the suppression
    // list of erased identifiers' keyed hashes; the key they are made with; and the audit
    // trail of operator actions.
    "
    CREATE TABLE consent (
        profile_id BLOB NOT NULL REFERENCES profiles (id),
        event_id   BLOB,
        body       TEXT NOT NULL
    );
    CREATE INDEX consent_by_profile ON consent (profile_id);
    CREATE INDEX consent_by_event ON consent (event_id);

    CREATE TABLE suppressions (
        hash   TEXT PRIMARY KEY,
        at     INTEGER NOT NULL,
        record TEXT NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE privacy_key (
        one INTEGER PRIMARY KEY CHECK (one = 1),
        key BLOB NOT NULL
    );

    CREATE TABLE audit (
        id     BLOB PRIMARY KEY,
        at     INTEGER NOT NULL,
        record TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX audit_by_time ON audit (at, id);
    ",
    // Version 6: segment membership kept live. Each profile's segments in one row with
    // the version writers check, the time it must be evaluated again and the digest of
    // its events the segments read (a table with row ids: its rows run to kilobytes,
    // which a table without them would spill to overflow pages); each segment's
    // members, for paging through them; and the changes, clustered by profile and time
    // like its timeline.
    "
    CREATE TABLE membership (
        profile_id BLOB PRIMARY KEY REFERENCES profiles (id),
        version    INTEGER NOT NULL,
        recheck_at INTEGER,
        segments   TEXT NOT NULL,  -- a JSON array of memberships
        digest     TEXT            -- the event digest as JSON
    );
    CREATE INDEX membership_by_recheck ON membership (recheck_at)
        WHERE recheck_at IS NOT NULL;

    CREATE TABLE segment_members (
        segment    TEXT NOT NULL,
        profile_id BLOB NOT NULL REFERENCES profiles (id),
        PRIMARY KEY (segment, profile_id)
    ) WITHOUT ROWID;
    -- The foreign key's index: without it, every change to a profile's row scans the
    -- whole table for rows naming it.
    CREATE INDEX segment_members_by_profile ON segment_members (profile_id);

    CREATE TABLE membership_changes (
        profile_id BLOB NOT NULL REFERENCES profiles (id),
        at         INTEGER NOT NULL,
        id         BLOB NOT NULL,
        body       TEXT NOT NULL,  -- the change as JSON
        PRIMARY KEY (profile_id, at, id)
    ) WITHOUT ROWID;
    ",
];

/// A migration step SQL cannot express, run after the SQL of the same version.
type Step = fn(&Connection) -> rusqlite::Result<()>;

/// The Rust steps of migrations, by the version they lead to.
const STEPS: &[(i32, Step)] = &[(4, copy_interactions_to_v4)];

/// Moves each interaction from its JSON row into the columns of `interactions_v4`, then
/// puts the new table in the old one's place.
fn copy_interactions_to_v4(conn: &Connection) -> rusqlite::Result<()> {
    {
        let mut read = conn.prepare("SELECT profile_id, body FROM interactions")?;
        let mut rows = read.query([])?;
        while let Some(row) = rows.next()? {
            let profile: super::Key = row.get(0)?;
            let body: String = row.get(1)?;
            let interaction: crate::model::Interaction = serde_json::from_str(&body)
                .map_err(|err| rusqlite::Error::ToSqlConversionFailure(Box::new(err)))?;
            super::interaction_row::insert(conn, "interactions_v4", &profile, &interaction)?;
        }
    }
    conn.execute_batch(
        "
        DROP TABLE interactions;
        ALTER TABLE interactions_v4 RENAME TO interactions;
        CREATE UNIQUE INDEX interactions_by_id ON interactions (id);
        CREATE INDEX interactions_by_time ON interactions (occurred_at, id);
        ",
    )
}

/// The schema version this build writes.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// What a file holds, read without writing to it.
enum Found {
    /// No tables at all: a new or empty database.
    Empty,
    /// A `oneview` database at this schema version.
    Ours(i32),
    /// Something else.
    Foreign { application_id: i32 },
}

fn inspect(conn: &Connection, path: &Path) -> Result<Found, OpenError> {
    let read = |conn: &Connection| -> rusqlite::Result<(i32, i32, i64)> {
        let application_id = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
        let version = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let tables = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
        Ok((application_id, version, tables))
    };
    let (application_id, version, tables) =
        read(conn).map_err(|err| match err.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) => OpenError::NotADatabase {
                path: path.to_owned(),
            },
            _ => OpenError::Sqlite(err),
        })?;
    Ok(match application_id {
        APPLICATION_ID => Found::Ours(version),
        0 if tables == 0 => Found::Empty,
        other => Found::Foreign {
            application_id: other,
        },
    })
}

/// Takes the schema of `conn` from version `from` to `to`.
fn migrate(conn: &Connection, from: i32, to: i32) -> rusqlite::Result<()> {
    for (version, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .take(to as usize)
        .skip(from as usize)
    {
        let version = version as i32 + 1;
        conn.execute_batch(sql)?;
        for (_, step) in STEPS.iter().filter(|(to, _)| *to == version) {
            step(conn)?;
        }
        conn.pragma_update(None, "user_version", version)?;
    }
    Ok(())
}

/// Refuses files that are not ours or are too new; migrates ours to [`SCHEMA_VERSION`].
/// Nothing is written until the file is known to be ours (or empty).
pub(crate) fn check_and_migrate(conn: &mut Connection, path: &Path) -> Result<(), OpenError> {
    let refuse = |found: Found| match found {
        Found::Foreign { application_id } => Err(OpenError::ForeignDatabase {
            path: path.to_owned(),
            application_id,
        }),
        Found::Ours(version) if version > SCHEMA_VERSION => Err(OpenError::NewerSchema {
            path: path.to_owned(),
            found: version,
            supported: SCHEMA_VERSION,
        }),
        _ => Ok(()),
    };
    refuse(inspect(conn, path)?)?;
    // Another process may be migrating too: decide again inside the write lock.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = inspect(&tx, path)?;
    let from = match found {
        Found::Empty => 0,
        Found::Ours(version) => version,
        Found::Foreign { .. } => return refuse(found),
    };
    refuse(Found::Ours(from))?;
    migrate(&tx, from, SCHEMA_VERSION)?;
    if from < SCHEMA_VERSION {
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Channel, Direction, IdentifierKind, Interaction, InteractionStatus};
    use chrono::{TimeZone, Utc};

    /// Version 4 moved interactions from JSON into columns; what version 3 stored must read
    /// back the same, times to the nanosecond.
    #[test]
    fn version_4_keeps_every_interaction_of_version_3() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn, 0, 3).unwrap();
        let at = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
            + chrono::Duration::nanoseconds(987_654_321);
        let stored = Interaction::builder("desk", Channel::Chat, Direction::Inbound)
            .key("chat-1")
            .thread("case-1")
            .identifier(IdentifierKind::Email, "ana@example.com")
            .status(InteractionStatus::Closed)
            .occurred_at(at)
            .closed_at(at + chrono::Duration::nanoseconds(1))
            .build()
            .unwrap();
        let profile = [1u8; 16];
        conn.execute(
            "INSERT INTO profiles (id, created_at, live_id) VALUES (?1, 0, ?1)",
            [profile],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO interactions (id, profile_id, occurred_at, updated_at, channel, body)
             VALUES (?1, ?2, ?3, ?3, 'chat', ?4)",
            rusqlite::params![
                stored.id.as_uuid().as_bytes(),
                profile,
                at.timestamp_nanos_opt().unwrap(),
                serde_json::to_string(&stored).unwrap()
            ],
        )
        .unwrap();

        migrate(&conn, 3, 4).unwrap();
        let read = conn
            .query_row(
                &format!(
                    "SELECT {} FROM interactions t WHERE t.profile_id = ?1",
                    super::super::interaction_row::COLUMNS
                ),
                [profile],
                |row| Ok(super::super::interaction_row::read(row, 0)),
            )
            .unwrap()
            .unwrap();
        assert_eq!(read, stored);
        let indexes: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'index'
                 AND name IN ('interactions_by_id', 'interactions_by_time')",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 2);
    }
}
