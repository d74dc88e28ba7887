//! The PostgreSQL backend: one customer view shared by several application servers.
//!
//! [`PostgresStore`] keeps everything in one schema of a PostgreSQL database (15 or
//! newer), through a pool of connections made with the sync [`postgres`] client. Every
//! [`Store::apply`] call is one transaction in which each commit's expectations are
//! checked before its changes are made, so several processes can write to one store at
//! once: when two decide from the same state, one commit lands and the other gets
//! [`StoreError::Conflict`], upon which the engine decides again.
//!
//! ```no_run
//! use oneview::store::postgres::PostgresStore;
//! use oneview::{Channel, Customers, Event, Identifier, IdentifierKind};
//!
//! let store = PostgresStore::builder()
//!     .schema("shop")
//!     .pool_size(8)
//!     .connect("postgres://app@db.internal/customers")?;
//! let customers = Customers::new(store);
//! customers.ingest(
//!     Event::builder("web", Channel::Web, "Signed Up")
//!         .identifier(IdentifierKind::Email, "ana@example.com")
//!         .build()?,
//! )?;
//! assert!(customers.profile(Identifier::email("ana@example.com")?)?.is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How writes stay correct
//! By default each `apply` runs at `SERIALIZABLE` isolation ([`Writes::Serializable`]):
//! PostgreSQL aborts one of two transactions that read what the other wrote, and the
//! store reports that as a conflict ([`CommitProblem::Concurrent`]). The alternative,
//! [`Writes::OneAtATime`], makes writers take turns on an advisory lock. `benches/postgres.rs`
//! measures both; `docs/scaling.md` has the figures and the reasons for the default.
//!
//! A long write (a rebuild after a late event) can lose the race again and again to a
//! stream of short ones from other processes. After a few losses the engine makes it an
//! [exclusive write](Store::exclusive): the store holds the schema's writers' lock on a
//! connection of its own, every other commit takes that lock (shared, under
//! `Serializable`) in the same round trip as its `BEGIN` and so waits, and the write
//! lands.
//!
//! Commits of the everyday kind (new profiles, attached identifiers, events, interactions,
//! traits, consent) are checked against state read for the whole run of them at once
//! and written with one multi-row statement per table, so a batch of thousands of events
//! costs a handful of round trips. Merges, rewrites and erasures go statement by statement.
//!
//! # The schema
//! Every table of a customer's rows is keyed first by the profile id they belong to,
//! ready to be the distribution column of a distributed PostgreSQL (Citus). The three
//! lookup indexes are keyed by what they are looked up by — `identifiers` by the
//! identifier, `event_ids` and `interaction_ids` by the record id — so finding who an
//! identifier or a record belongs to is one lookup by key; the store-wide tables
//! (overrides, suppressions, the audit trail) are small. `docs/scaling.md` gives the
//! distribution plan. Migrations are versioned (`oneview_schema`) and run on connect under
//! an advisory lock, so processes starting together migrate once; a schema written by a
//! newer release, or a schema holding tables of some other application, is refused
//! untouched.
//!
//! [`CommitProblem::Concurrent`]: crate::store::CommitProblem::Concurrent

mod membership;
mod privacy;
mod read;
mod schema;
mod write;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement};
use thiserror::Error;
use uuid::Uuid;

use super::{Commit, CommitOutcome, CommitProblem, Reads, Store, StoreError};
use crate::model::CustomerId;

pub use schema::SCHEMA_VERSION;

/// How many events a scan reads per query.
const SCAN_CHUNK: i64 = 1024;

/// Why a store could not be opened. Nothing was written.
///
/// No message shows the password of the URL it was given.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL cannot be read as a PostgreSQL connection string.
    #[error("not a PostgreSQL connection URL: {reason}")]
    Url {
        /// What is wrong with it.
        reason: String,
    },
    /// The schema name is not a plain lower-case SQL name.
    #[error(
        "schema name {name:?} must be 1 to 63 characters of a-z, 0-9 and _, not starting with a digit"
    )]
    SchemaName {
        /// The name given.
        name: String,
    },
    /// No connection could be made to the server.
    #[error("cannot connect to PostgreSQL at {server}: {reason}")]
    Unreachable {
        /// The host(s), port and database of the URL, without user or password.
        server: String,
        /// What the client reported.
        reason: String,
    },
    /// The schema holds tables, but not a `oneview` store's.
    #[error(
        "schema {schema} at {server} holds tables of another application; it was left untouched"
    )]
    ForeignSchema {
        /// The schema.
        schema: String,
        /// Where.
        server: String,
    },
    /// The schema was written by a newer release.
    #[error(
        "schema {schema} at {server} has version {found}, newer than the {supported} this release supports; upgrade oneview to open it (it was left untouched)"
    )]
    NewerSchema {
        /// The schema.
        schema: String,
        /// Where.
        server: String,
        /// Its version.
        found: i32,
        /// The newest this release knows.
        supported: i32,
    },
    /// The server refused a statement while the schema was checked or migrated.
    #[error("PostgreSQL at {server} failed while migrating schema {schema}: {reason}")]
    Migration {
        /// The schema.
        schema: String,
        /// Where.
        server: String,
        /// What the server reported.
        reason: String,
    },
}

/// How concurrent writers are kept from breaking each other's decisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Writes {
    /// Each `apply` is a `SERIALIZABLE` transaction: writers run side by side, and one of
    /// two that touch the same customers is refused and decides again. The default.
    #[default]
    Serializable,
    /// Writers take turns on a transaction-scoped advisory lock (one per schema), each
    /// transaction at `READ COMMITTED`: never a refusal for concurrency, but no two
    /// writes at once, across every process.
    OneAtATime,
}

/// Options for opening a [`PostgresStore`]; see [`PostgresStore::builder`].
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `connect` is called"]
pub struct PostgresBuilder {
    schema: String,
    pool_size: u32,
    connect_timeout: Duration,
    statement_timeout: Option<Duration>,
    application_name: String,
    writes: Writes,
    temporary: bool,
}

impl Default for PostgresBuilder {
    fn default() -> Self {
        Self {
            schema: "oneview".to_owned(),
            pool_size: 8,
            connect_timeout: Duration::from_secs(10),
            statement_timeout: None,
            application_name: "oneview".to_owned(),
            writes: Writes::Serializable,
            temporary: false,
        }
    }
}

impl PostgresBuilder {
    /// The schema that holds the store's tables, created if missing; defaults to
    /// `oneview`. Several stores can share one database, each in its own schema.
    pub fn schema(mut self, name: &str) -> Self {
        name.clone_into(&mut self.schema);
        self
    }

    /// The most connections the store keeps open; defaults to 8. Each thread reading or
    /// writing at one moment holds one.
    pub fn pool_size(mut self, connections: u32) -> Self {
        self.pool_size = connections.max(1);
        self
    }

    /// How long to wait for a connection, from the server or from a full pool, before
    /// failing; defaults to 10 seconds.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The longest one statement may run before the server cancels it
    /// (`statement_timeout`), reported as [`StoreError::Timeout`]; defaults to none.
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = Some(timeout);
        self
    }

    /// The `application_name` the connections report in `pg_stat_activity`; defaults to
    /// `oneview`.
    pub fn application_name(mut self, name: &str) -> Self {
        name.clone_into(&mut self.application_name);
        self
    }

    /// How concurrent writers are kept apart; defaults to [`Writes::Serializable`].
    pub fn writes(mut self, writes: Writes) -> Self {
        self.writes = writes;
        self
    }

    /// Whether dropping the store drops its schema, with everything in it; defaults to
    /// `false`. For tests, each of which can work in a schema of its own and leave
    /// nothing behind.
    pub fn temporary(mut self, temporary: bool) -> Self {
        self.temporary = temporary;
        self
    }

    /// Connects to the database at `url` (`postgres://user@host:port/database` or the
    /// `key=value` form), creates or migrates the schema, and opens the pool.
    pub fn connect(self, url: &str) -> Result<PostgresStore, ConnectError> {
        if !valid_schema_name(&self.schema) {
            return Err(ConnectError::SchemaName {
                name: self.schema.clone(),
            });
        }
        let mut config: postgres::Config = url.parse().map_err(|err: postgres::Error| {
            ConnectError::Url {
                // The parser names what it could not read, never the password's value.
                reason: err.to_string(),
            }
        })?;
        let server = describe(&config);
        // No JIT: the store's statements are short probes by key, whose row estimates
        // (inflated by the fences that keep plans on the keys) pass the JIT thresholds;
        // compiling them took 120 ms a statement, against well under one to run.
        let mut options = format!("-c search_path={} -c jit=off", self.schema);
        if let Some(limit) = self.statement_timeout {
            options.push_str(&format!(
                " -c statement_timeout={}",
                limit.as_millis().max(1)
            ));
        }
        config
            .options(&options)
            .application_name(&self.application_name)
            .connect_timeout(self.connect_timeout);
        let unreachable = |reason: String| ConnectError::Unreachable {
            server: server.clone(),
            reason,
        };
        let mut first = config
            .connect(NoTls)
            .map_err(|err| unreachable(err.to_string()))?;
        schema::check_and_migrate(&mut first, &self.schema, &server)?;
        let writers_lock = schema::has_writers_lock(&mut first);
        let pool = r2d2::Pool::builder()
            .max_size(self.pool_size)
            .min_idle(Some(0))
            .connection_timeout(self.connect_timeout)
            // A checkout would cost a round trip; a broken connection is found when used.
            .test_on_check_out(false)
            .build(Manager {
                config: config.clone(),
            })
            .map_err(|err| unreachable(err.to_string()))?;
        Ok(PostgresStore {
            pool,
            options: self,
            server,
            config,
            writers_lock,
            turn: Mutex::new(None),
        })
    }
}

/// Whether `name` can be used unquoted as a schema name.
fn valid_schema_name(name: &str) -> bool {
    let mut chars = name.chars();
    (1..=63).contains(&name.len())
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Hosts, port and database of `config`: enough to tell the server, nothing secret.
fn describe(config: &postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|host| match host {
            postgres::config::Host::Tcp(name) => name.clone(),
            postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let database = config.get_dbname().unwrap_or("(default database)");
    format!("{}:{port}/{database}", hosts.join(","))
}

/// Makes pooled connections for r2d2.
#[derive(Debug)]
struct Manager {
    config: postgres::Config,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Conn, postgres::Error> {
        Ok(Conn {
            client: self.config.connect(NoTls)?,
            statements: HashMap::new(),
        })
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), postgres::Error> {
        conn.client.simple_query("").map(|_| ())
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.client.is_closed()
    }
}

/// One connection with the statements it has prepared, so each query is one round trip.
struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("prepared", &self.statements.len())
            .finish_non_exhaustive()
    }
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl Conn {
    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    fn query(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, StoreError> {
        let statement = self.statement(sql).map_err(pg)?;
        self.client.query(&statement, params).map_err(pg)
    }

    fn query_opt(&mut self, sql: &str, params: Params<'_>) -> Result<Option<Row>, StoreError> {
        let statement = self.statement(sql).map_err(pg)?;
        self.client.query_opt(&statement, params).map_err(pg)
    }

    fn query_one(&mut self, sql: &str, params: Params<'_>) -> Result<Row, StoreError> {
        let statement = self.statement(sql).map_err(pg)?;
        self.client.query_one(&statement, params).map_err(pg)
    }

    fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64, StoreError> {
        let statement = self.statement(sql).map_err(pg)?;
        self.client.execute(&statement, params).map_err(pg)
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.client.batch_execute(sql).map_err(pg)
    }
}

type Pooled = r2d2::PooledConnection<Manager>;

/// A [`Store`] in a PostgreSQL schema. See the [module docs](self).
pub struct PostgresStore {
    pool: r2d2::Pool<Manager>,
    options: PostgresBuilder,
    server: String,
    config: postgres::Config,
    /// Whether the server has the advisory locks an exclusive write holds others back
    /// with; without them, it holds nobody back.
    writers_lock: bool,
    /// The connection that holds the writers' lock through an [`Store::exclusive`] write:
    /// one of its own, so that the write's reads and commits still find the pool free.
    turn: Mutex<Option<Client>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("server", &self.server)
            .field("schema", &self.options.schema)
            .field("pool_size", &self.options.pool_size)
            .field("writes", &self.options.writes)
            .finish_non_exhaustive()
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        if !self.options.temporary {
            return;
        }
        // Idle connections would keep their statements on tables about to go.
        if let Ok(mut conn) = self.pool.get() {
            let _ = conn.client.batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                self.options.schema
            ));
        }
    }
}

impl PostgresStore {
    /// Connects with default options; see [`PostgresBuilder::connect`].
    pub fn connect(url: &str) -> Result<Self, ConnectError> {
        PostgresBuilder::default().connect(url)
    }

    /// Options for connecting.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use oneview::store::postgres::{PostgresStore, Writes};
    ///
    /// let store = PostgresStore::builder()
    ///     .schema("eu_customers")
    ///     .pool_size(16)
    ///     .statement_timeout(Duration::from_secs(30))
    ///     .writes(Writes::Serializable)
    ///     .connect("postgres://app@db.internal/customers")?;
    /// # Ok::<(), oneview::store::postgres::ConnectError>(())
    /// ```
    pub fn builder() -> PostgresBuilder {
        PostgresBuilder::default()
    }

    /// The schema the store lives in.
    pub fn schema(&self) -> &str {
        &self.options.schema
    }

    /// Where the store lives: hosts, port and database (no user, no password).
    pub fn server(&self) -> &str {
        &self.server
    }

    fn connection(&self) -> Result<Pooled, StoreError> {
        self.pool.get().map_err(|err| StoreError::Backend {
            backend: "postgres",
            source: format!("no connection to {} became free: {err}", self.server).into(),
        })
    }

    /// This store's key among the connections pinned to a thread.
    fn pin_key(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// Runs `read` on the connection a snapshot pinned to this thread, or on one from the
    /// pool (one statement, its own snapshot).
    fn read<T>(
        &self,
        read: impl FnOnce(&mut Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let key = self.pin_key();
        let mut read = Some(read);
        let pinned = PINNED.with_borrow_mut(|pinned| {
            pinned
                .iter_mut()
                .find(|(store, _)| *store == key)
                .map(|(_, conn)| (read.take().expect("not run yet"))(conn))
        });
        if let Some(answer) = pinned {
            return answer;
        }
        let mut conn = self.connection()?;
        (read.take().expect("not run yet"))(&mut conn)
    }
}

thread_local! {
    /// Connections pinned to this thread by [`PostgresStore::snapshot`], by store, each in
    /// a read-only `REPEATABLE READ` transaction.
    static PINNED: RefCell<Vec<(usize, Pooled)>> = const { RefCell::new(Vec::new()) };

    /// The stores whose writers' lock this thread holds, in [`PostgresStore::exclusive`].
    static TURNS: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Ends an exclusive write, even when it panics: takes the store off this thread's
/// [`TURNS`] and lets the writers' lock go, closing the connection that holds it if the
/// server cannot be told (a session's advisory locks go with it).
struct TurnEnds<'a> {
    key: usize,
    lock: i64,
    turn: std::sync::MutexGuard<'a, Option<Client>>,
}

impl Drop for TurnEnds<'_> {
    fn drop(&mut self) {
        TURNS.with_borrow_mut(|turns| turns.retain(|store| *store != self.key));
        let unlocked = self.turn.as_mut().is_some_and(|client| {
            client
                .query_one("SELECT pg_advisory_unlock($1)", &[&self.lock])
                .is_ok_and(|row| row.get::<_, bool>(0))
        });
        if !unlocked {
            *self.turn = None;
        }
    }
}

/// Ends a snapshot's transaction and gives its connection back, even when the reads
/// panic.
struct Unpin {
    key: usize,
}

impl Drop for Unpin {
    fn drop(&mut self) {
        let conn = PINNED.with_borrow_mut(|pinned| {
            let at = pinned.iter().position(|(store, _)| *store == self.key)?;
            Some(pinned.remove(at).1)
        });
        if let Some(mut conn) = conn
            && conn.client.batch_execute("COMMIT").is_err()
        {
            // A connection in an unknown state must not serve anyone else.
            let _ = conn.client.batch_execute("ROLLBACK");
        }
    }
}

impl Store for PostgresStore {
    /// Reads in one read-only `REPEATABLE READ` transaction, on a connection pinned to
    /// this thread until `reads` returns.
    fn snapshot(
        &self,
        reads: &mut dyn FnMut(&dyn Reads) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let key = self.pin_key();
        if PINNED.with_borrow(|pinned| pinned.iter().any(|(store, _)| *store == key)) {
            return reads(self);
        }
        let mut conn = self.connection()?;
        conn.batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
        PINNED.with_borrow_mut(|pinned| pinned.push((key, conn)));
        let unpin = Unpin { key };
        let answer = reads(self);
        drop(unpin);
        answer
    }

    fn apply(&self, commits: &[Commit]) -> Result<Vec<CommitOutcome>, StoreError> {
        if commits.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.pin_key();
        let lock = if TURNS.with_borrow(|turns| turns.contains(&key)) {
            write::WritersLock::Skipped
        } else {
            match self.options.writes {
                Writes::Serializable if self.writers_lock => write::WritersLock::Shared,
                Writes::Serializable => write::WritersLock::Skipped,
                Writes::OneAtATime => write::WritersLock::Exclusive,
            }
        };
        let mut conn = self.connection()?;
        write::apply(
            &mut conn,
            commits,
            self.options.writes,
            lock,
            &self.options.schema,
        )
    }

    /// Holds the schema's writers' lock, on a connection of its own, while `write` runs.
    /// Every other commit takes that lock (shared under [`Writes::Serializable`]) as its
    /// transaction begins, so it waits for the write to end; the commits `write` makes on
    /// this thread go ahead. If the connection drops meanwhile, the server lets the lock
    /// go and the write's commits are checked as usual. On a server without shared and
    /// session-level advisory locks (found on connect), or when the lock cannot be had
    /// within the statement timeout, `write` runs as it is.
    fn exclusive(
        &self,
        write: &mut dyn FnMut() -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let key = self.pin_key();
        if !self.writers_lock || TURNS.with_borrow(|turns| turns.contains(&key)) {
            return write();
        }
        let mut turn = self.turn.lock().unwrap_or_else(PoisonError::into_inner);
        if turn.as_ref().is_none_or(Client::is_closed) {
            *turn = None;
            *turn = Some(self.config.connect(NoTls).map_err(pg)?);
        }
        let lock = schema::writer_lock_key(&self.options.schema);
        let locked = turn
            .as_mut()
            .expect("connected above")
            .execute("SELECT pg_advisory_lock($1)", &[&lock]);
        if locked.is_err() {
            // Waiting out every write under way took longer than the statement timeout,
            // or the connection failed. The write is checked as any other: it runs
            // without holding anyone back, and the engine tries it again if it loses.
            *turn = None;
            drop(turn);
            return write();
        }
        TURNS.with_borrow_mut(|turns| turns.push(key));
        let _ends = TurnEnds { key, lock, turn };
        write()
    }

    /// Removed rows stay in the table files until `VACUUM` reclaims them: runs it on
    /// every table that an erasure deletes from. Old row versions in the server's
    /// write-ahead log and backups are the database operator's to expire.
    fn purge(&self) -> Result<(), StoreError> {
        let mut conn = self.connection()?;
        conn.batch(
            "VACUUM profiles, members, identifiers, profile_identifiers, merges, refusals, overrides,
                    override_identifiers, events, event_ids, interactions, interaction_ids,
                    traits, consent",
        )
    }
}

fn pg(err: postgres::Error) -> StoreError {
    match err.code() {
        Some(code)
            if *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::UNIQUE_VIOLATION =>
        {
            // A unique key taken, or a read changed, by a writer that committed first.
            StoreError::Conflict {
                commit: 0,
                problem: CommitProblem::Concurrent,
            }
        }
        Some(code) if *code == SqlState::QUERY_CANCELED => StoreError::Timeout {
            backend: "postgres",
            source: Box::new(err),
        },
        _ => StoreError::Backend {
            backend: "postgres",
            source: Box::new(err),
        },
    }
}

fn backend(message: &str) -> StoreError {
    StoreError::Backend {
        backend: "postgres",
        source: message.into(),
    }
}

fn corrupt(what: &str, err: impl std::fmt::Display) -> StoreError {
    backend(&format!("a stored {what} cannot be read: {err}"))
}

fn customer(id: Uuid) -> CustomerId {
    CustomerId::from_uuid(id)
}

/// Nanoseconds since the epoch, as the SQLite backend keeps them: PostgreSQL's own
/// timestamps stop at microseconds. A time outside the years 1678 to 2261 is refused.
fn nanos(at: DateTime<Utc>) -> Result<i64, StoreError> {
    at.timestamp_nanos_opt()
        .ok_or_else(|| backend(&format!("time {at} is outside 1678-2261")))
}

fn time(nanos: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(nanos)
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, body: &str) -> Result<T, StoreError> {
    serde_json::from_str(body).map_err(|err| corrupt(what, err))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|err| backend(&err.to_string()))
}

/// The members of the live profile `$1` resolves to, as rows `m(id)`.
///
/// Reads of a profile's rows join this to each table through a `LATERAL` subquery with
/// `OFFSET 0`, which the planner cannot flatten into a join: each member's rows are then
/// found by key, one probe per member, however few statistics the tables have. A plain
/// join is planned from row estimates, and on tables that grew faster than `ANALYZE`
/// ran (a first import) those estimates chose hash joins over whole tables, 500 times
/// slower than the probes.
const MEMBERS: &str = "unnest(ARRAY(SELECT id FROM members WHERE live_id =
                           (SELECT live_id FROM profiles WHERE id = $1))) AS m(id)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_plain() {
        for good in ["oneview", "_x", "shop_eu_2"] {
            assert!(valid_schema_name(good), "{good}");
        }
        for bad in ["", "1abc", "Shop", "a-b", "a;drop", &"x".repeat(64)] {
            assert!(!valid_schema_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_bad_url_or_schema_is_refused_before_connecting() {
        let err = PostgresStore::builder()
            .schema("Not Valid")
            .connect("postgres://u@localhost/db")
            .unwrap_err();
        assert!(matches!(err, ConnectError::SchemaName { .. }), "{err}");
        let err = PostgresStore::connect("postgres://u:secret@host:notaport/db").unwrap_err();
        assert!(matches!(err, ConnectError::Url { .. }), "{err}");
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn the_server_is_described_without_credentials() {
        let config: postgres::Config = "postgres://app:hunter2@db.internal:6543/customers"
            .parse()
            .unwrap();
        assert_eq!(describe(&config), "db.internal:6543/customers");
    }
}
