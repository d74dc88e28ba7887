//! The schema and its forward-only migrations, applied on connect under an advisory lock.

use postgres::Client;

use super::ConnectError;

/// Each migration takes the schema from version `index` to `index + 1`. Append only: a
/// shipped migration never changes.
///
/// No table references another: a distributed PostgreSQL cannot enforce a foreign key
/// between tables spread by different keys, and the store checks what it writes itself.
/// Times are nanoseconds since the Unix epoch (`bigint`), as events carry them.
const MIGRATIONS: &[&str] = &[
    // Version 1.
    "
    CREATE TABLE oneview_schema (
        one     integer PRIMARY KEY CHECK (one = 1),
        version integer NOT NULL
    );
    INSERT INTO oneview_schema (one, version) VALUES (1, 0);

    -- Each profile id, live or merged, and the live profile it resolves to (kept flat).
    CREATE TABLE profiles (
        id         uuid PRIMARY KEY,
        created_at bigint NOT NULL,
        live_id    uuid NOT NULL
    );
    -- The same relation by live profile: its members, found with one key.
    CREATE TABLE members (
        live_id uuid NOT NULL,
        id      uuid NOT NULL,
        PRIMARY KEY (live_id, id)
    );

    -- The identifier index: canonical kind:value to the profile holding it.
    CREATE TABLE identifiers (
        identifier text PRIMARY KEY,
        profile_id uuid NOT NULL
    );
    -- The same pairs by profile, so a profile's identifiers are read beside its other
    -- rows rather than from wherever the index keeps each identifier.
    CREATE TABLE profile_identifiers (
        profile_id uuid NOT NULL,
        identifier text NOT NULL,
        PRIMARY KEY (profile_id, identifier)
    );

    CREATE TABLE merges (
        absorbed uuid NOT NULL,
        id       uuid NOT NULL,
        at       bigint NOT NULL,
        record   text NOT NULL,
        PRIMARY KEY (absorbed, id)
    );

    CREATE TABLE refusals (
        profile_id uuid NOT NULL,
        identifier text NOT NULL,
        evidence   uuid NOT NULL,
        at         bigint NOT NULL,
        record     text NOT NULL
    );
    CREATE INDEX refusals_by_profile ON refusals (profile_id);
    CREATE INDEX refusals_by_identifier ON refusals (identifier);

    CREATE TABLE overrides (
        id     uuid PRIMARY KEY,
        at     bigint NOT NULL,
        kind   text NOT NULL,
        record text NOT NULL
    );
    CREATE TABLE override_identifiers (
        identifier  text NOT NULL,
        override_id uuid NOT NULL,
        PRIMARY KEY (identifier, override_id)
    );
    CREATE INDEX override_identifiers_by_override ON override_identifiers (override_id);

    -- A profile's events in timeline order; the event index finds one by id.
    CREATE TABLE events (
        profile_id  uuid NOT NULL,
        occurred_at bigint NOT NULL,
        id          uuid NOT NULL,
        channel     text NOT NULL,
        body        text NOT NULL,
        PRIMARY KEY (profile_id, occurred_at, id)
    );
    CREATE INDEX events_by_time ON events (occurred_at, id);
    CREATE TABLE event_ids (
        id          uuid PRIMARY KEY,
        profile_id  uuid NOT NULL,
        occurred_at bigint NOT NULL
    );

    CREATE TABLE interactions (
        profile_id  uuid NOT NULL,
        occurred_at bigint NOT NULL,
        id          uuid NOT NULL,
        updated_at  bigint NOT NULL,
        channel     text NOT NULL,
        body        text NOT NULL,
        PRIMARY KEY (profile_id, occurred_at, id)
    );
    CREATE INDEX interactions_by_time ON interactions (occurred_at, id);
    CREATE TABLE interaction_ids (
        id          uuid PRIMARY KEY,
        profile_id  uuid NOT NULL,
        occurred_at bigint NOT NULL,
        updated_at  bigint NOT NULL
    );

    CREATE TABLE traits (
        profile_id uuid NOT NULL,
        event_id   uuid,
        body       text NOT NULL
    );
    CREATE INDEX traits_by_profile ON traits (profile_id);
    CREATE INDEX traits_by_event ON traits (event_id);

    CREATE TABLE consent (
        profile_id uuid NOT NULL,
        event_id   uuid,
        body       text NOT NULL
    );
    CREATE INDEX consent_by_profile ON consent (profile_id);
    CREATE INDEX consent_by_event ON consent (event_id);

    CREATE TABLE suppressions (
        hash   text COLLATE \"C\" PRIMARY KEY,
        at     bigint NOT NULL,
        record text NOT NULL
    );
    CREATE TABLE privacy_key (
        one integer PRIMARY KEY CHECK (one = 1),
        key bytea NOT NULL
    );
    CREATE TABLE audit (
        id     uuid PRIMARY KEY,
        at     bigint NOT NULL,
        record text NOT NULL
    );
    CREATE INDEX audit_by_time ON audit (at, id);
    ",
    // Version 2: segment membership kept live. Each profile's segments in one row with
    // the version writers check, the time it must be evaluated again and the digest of
    // its events the segments read; each segment's
    // members, for paging through them; and the changes, by profile and time like its
    // timeline.
    "
    CREATE TABLE membership (
        profile_id uuid PRIMARY KEY,
        version    bigint NOT NULL,
        recheck_at bigint,
        segments   text NOT NULL,
        digest     text
    );
    CREATE INDEX membership_by_recheck ON membership (recheck_at)
        WHERE recheck_at IS NOT NULL;
    CREATE TABLE segment_members (
        segment    text COLLATE \"C\" NOT NULL,
        profile_id uuid NOT NULL,
        PRIMARY KEY (segment, profile_id)
    );
    CREATE INDEX segment_members_by_profile ON segment_members (profile_id);
    CREATE TABLE membership_changes (
        profile_id uuid NOT NULL,
        at         bigint NOT NULL,
        id         uuid NOT NULL,
        body       text NOT NULL,
        PRIMARY KEY (profile_id, at, id)
    );
    ",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// The advisory lock key of `schema`'s migrations: FNV-1a of its name, so every process
/// migrating the same schema waits on the same lock, and other schemas do not.
fn lock_key(schema: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in b"oneview:migrate:".iter().chain(schema.as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

/// The advisory lock key writers take turns on under [`Writes::OneAtATime`].
///
/// [`Writes::OneAtATime`]: super::Writes::OneAtATime
pub(super) fn writer_lock_key(schema: &str) -> i64 {
    lock_key(schema) ^ 0x5752_4954_4552_5321
}

/// Whether the server has the advisory locks an exclusive write needs: a shared one for
/// every commit, a session-level one to hold. Some PostgreSQL-compatible engines have
/// only the transaction-level exclusive lock, or none; an answer that cannot be had is
/// a no.
pub(super) fn has_writers_lock(client: &mut Client) -> bool {
    client
        .query_one(
            "SELECT to_regprocedure('pg_advisory_xact_lock_shared(bigint)') IS NOT NULL
                AND to_regprocedure('pg_advisory_lock(bigint)') IS NOT NULL
                AND to_regprocedure('pg_advisory_unlock(bigint)') IS NOT NULL",
            &[],
        )
        .is_ok_and(|row| row.get(0))
}

/// Creates the schema or takes it to [`SCHEMA_VERSION`], in one transaction under the
/// schema's advisory lock. A schema that is not ours, or is newer, is refused before
/// anything is written.
pub(super) fn check_and_migrate(
    client: &mut Client,
    schema: &str,
    server: &str,
) -> Result<(), ConnectError> {
    let failed = |err: postgres::Error| ConnectError::Migration {
        schema: schema.to_owned(),
        server: server.to_owned(),
        reason: err.to_string(),
    };
    let mut tx = client.transaction().map_err(failed)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key(schema)])
        .map_err(failed)?;
    let tables: i64 = tx
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = $1",
            &[&schema],
        )
        .map_err(failed)?
        .get(0);
    let ours: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_tables
                            WHERE schemaname = $1 AND tablename = 'oneview_schema')",
            &[&schema],
        )
        .map_err(failed)?
        .get(0);
    let from = if ours {
        tx.query_one("SELECT version FROM oneview_schema", &[])
            .map_err(failed)?
            .get::<_, i32>(0)
    } else if tables > 0 {
        return Err(ConnectError::ForeignSchema {
            schema: schema.to_owned(),
            server: server.to_owned(),
        });
    } else {
        0
    };
    if from > SCHEMA_VERSION {
        return Err(ConnectError::NewerSchema {
            schema: schema.to_owned(),
            server: server.to_owned(),
            found: from,
            supported: SCHEMA_VERSION,
        });
    }
    if from == SCHEMA_VERSION {
        return tx.commit().map_err(failed);
    }
    // The name was checked to be a plain SQL name, so it can stand unquoted.
    tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .map_err(failed)?;
    for sql in &MIGRATIONS[from as usize..] {
        tx.batch_execute(sql).map_err(failed)?;
    }
    tx.execute("UPDATE oneview_schema SET version = $1", &[&SCHEMA_VERSION])
        .map_err(failed)?;
    tx.commit().map_err(failed)
}
