//! The SQLite backend: the embedded default.
//!
//! One file holds everything. Writes go through a single writer connection, one
//! transaction per [`Store::apply`] call; reads use a pool of read-only connections, which
//! under WAL (the default) never wait for the writer. SQLite is compiled into the crate,
//! so nothing needs installing.
//!
//! ```
//! use oneview::store::sqlite::SqliteStore;
//! use oneview::{Channel, Customers, Event, Identifier, IdentifierKind};
//!
//! let dir = tempfile::tempdir()?;
//! let customers = Customers::new(SqliteStore::open(dir.path().join("customers.db"))?);
//! customers.ingest(
//!     Event::builder("web", Channel::Web, "Signed Up")
//!         .identifier(IdentifierKind::Email, "ana@example.com")
//!         .build()?,
//! )?;
//! assert!(customers.profile(Identifier::email("ana@example.com")?)?.is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod schema;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use thiserror::Error;
use uuid::Uuid;

use super::{
    Attributed, ChannelSummary, Commit, CommitOutcome, CommitProblem, EventScan, EventStore,
    Expectation, IdentityChange, IdentityStore, InteractionStore, Owner, Page, PageRequest,
    ProfileRecord, Reads, Rewrite, Store, StoreError, TimelineCursor, TraitStore,
};
use crate::model::{
    Channel, CustomerId, Event, EventId, Identifier, Interaction, InteractionId, MergeRecord,
    OverrideRecord, Refusal, TraitOperation,
};

pub use schema::{APPLICATION_ID, SCHEMA_VERSION};

/// How many events a scan reads per query.
const SCAN_CHUNK: usize = 1024;

/// Why a database could not be opened. The file is left as it was found.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The file exists but is not a SQLite database.
    #[error("{} is not a SQLite database; it was left untouched", path.display())]
    NotADatabase {
        /// The file.
        path: PathBuf,
    },
    /// A SQLite database that belongs to some other application.
    #[error(
        "{} is a SQLite database of another application (application_id {application_id:#x}); it was left untouched",
        path.display()
    )]
    ForeignDatabase {
        /// The file.
        path: PathBuf,
        /// The application id found in its header (0 when none is set).
        application_id: i32,
    },
    /// A database written by a newer release, with a schema this release does not know.
    #[error(
        "{} has schema version {found}, newer than the {supported} this release supports; upgrade oneview to open it (it was left untouched)",
        path.display()
    )]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        found: i32,
        /// The newest this release knows.
        supported: i32,
    },
    /// SQLite itself failed (the file cannot be created, the disk is full, …).
    #[error("SQLite failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// SQLite's journal mode (`PRAGMA journal_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum JournalMode {
    /// Write-ahead log: readers and the writer do not block each other. The default.
    #[default]
    Wal,
    /// A rollback journal deleted after each transaction.
    Delete,
    /// A rollback journal truncated after each transaction.
    Truncate,
    /// A rollback journal kept and zeroed after each transaction.
    Persist,
}

impl JournalMode {
    fn pragma(self) -> &'static str {
        match self {
            Self::Wal => "WAL",
            Self::Delete => "DELETE",
            Self::Truncate => "TRUNCATE",
            Self::Persist => "PERSIST",
        }
    }
}

/// How hard SQLite works to make commits durable (`PRAGMA synchronous`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Synchronous {
    /// No syncs: a power loss may lose or corrupt recent commits. For throwaway data only.
    Off,
    /// With WAL, a power loss may lose the latest commits but never corrupts the database;
    /// a crash of the process loses nothing. The default.
    #[default]
    Normal,
    /// Every commit is durable before it returns.
    Full,
    /// Like `Full`, and also syncs the directory after deleting a rollback journal.
    Extra,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Self::Off => "OFF",
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
            Self::Extra => "EXTRA",
        }
    }
}

/// Options for opening a [`SqliteStore`]; see [`SqliteStore::builder`].
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `open` is called"]
pub struct SqliteBuilder {
    journal_mode: JournalMode,
    synchronous: Synchronous,
    busy_timeout: Duration,
    cache_size_kib: u32,
    max_idle_readers: usize,
}

impl Default for SqliteBuilder {
    fn default() -> Self {
        Self {
            journal_mode: JournalMode::Wal,
            synchronous: Synchronous::Normal,
            busy_timeout: Duration::from_secs(5),
            cache_size_kib: 64 * 1024,
            max_idle_readers: 8,
        }
    }
}

impl SqliteBuilder {
    /// The journal mode; defaults to [`JournalMode::Wal`].
    pub fn journal_mode(mut self, mode: JournalMode) -> Self {
        self.journal_mode = mode;
        self
    }

    /// The durability level; defaults to [`Synchronous::Normal`].
    pub fn synchronous(mut self, level: Synchronous) -> Self {
        self.synchronous = level;
        self
    }

    /// How long a connection waits for a lock held by another process before failing;
    /// defaults to 5 seconds.
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// The page cache of each connection, in KiB; defaults to 64 MiB.
    pub fn cache_size_kib(mut self, kib: u32) -> Self {
        self.cache_size_kib = kib;
        self
    }

    /// How many idle read connections to keep for reuse; defaults to 8.
    pub fn max_idle_readers(mut self, readers: usize) -> Self {
        self.max_idle_readers = readers;
        self
    }

    /// Opens (or creates) the database at `path`, migrating it to the current schema.
    ///
    /// Refuses, untouched, a file that is not a SQLite database, a SQLite database of
    /// another application, and a database from a newer release.
    pub fn open(self, path: impl AsRef<Path>) -> Result<SqliteStore, OpenError> {
        let path = path.as_ref().to_owned();
        let mut writer = Connection::open(&path)?;
        writer.busy_timeout(self.busy_timeout)?;
        schema::check_and_migrate(&mut writer, &path)?;
        self.configure(&writer, true)?;
        Ok(SqliteStore {
            writer: Mutex::new(writer),
            readers: Some(Readers {
                path,
                idle: Mutex::new(Vec::new()),
            }),
            options: self,
        })
    }

    /// Opens a private database in memory: nothing touches the disk and everything is lost
    /// when the store is dropped. Reads share the writer's connection.
    pub fn open_in_memory(self) -> Result<SqliteStore, OpenError> {
        let mut writer = Connection::open_in_memory()?;
        schema::check_and_migrate(&mut writer, Path::new(":memory:"))?;
        self.configure(&writer, true)?;
        Ok(SqliteStore {
            writer: Mutex::new(writer),
            readers: None,
            options: self,
        })
    }

    fn configure(&self, conn: &Connection, writer: bool) -> rusqlite::Result<()> {
        conn.busy_timeout(self.busy_timeout)?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "cache_size", -i64::from(self.cache_size_kib))?;
        // Erased data must leave no bytes behind in freed pages.
        conn.pragma_update(None, "secure_delete", true)?;
        conn.set_prepared_statement_cache_capacity(64);
        // Without the planner stability guarantee SQLite re-plans a cached join on every
        // new bound value, which costs more than the query itself. Our queries are planned
        // for their indexes, not for the values bound to them.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        if writer {
            // journal_mode answers with the mode now in force, so it is read as a query.
            let _: String = conn.query_row(
                &format!("PRAGMA journal_mode = {}", self.journal_mode.pragma()),
                [],
                |row| row.get(0),
            )?;
            conn.pragma_update(None, "synchronous", self.synchronous.pragma())?;
        } else {
            conn.pragma_update(None, "query_only", true)?;
        }
        Ok(())
    }
}

/// A [`Store`] in one SQLite file. See the [module docs](self).
#[derive(Debug)]
pub struct SqliteStore {
    writer: Mutex<Connection>,
    /// Read connections to the same file; `None` for an in-memory database.
    readers: Option<Readers>,
    options: SqliteBuilder,
}

#[derive(Debug)]
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl SqliteStore {
    /// Opens (or creates) the database at `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        SqliteBuilder::default().open(path)
    }

    /// Opens a private in-memory database with default options.
    pub fn open_in_memory() -> Result<Self, OpenError> {
        SqliteBuilder::default().open_in_memory()
    }

    /// Options for opening a store.
    ///
    /// ```
    /// use std::time::Duration;
    /// use oneview::store::sqlite::{JournalMode, SqliteStore, Synchronous};
    ///
    /// let store = SqliteStore::builder()
    ///     .journal_mode(JournalMode::Wal)
    ///     .synchronous(Synchronous::Full)
    ///     .busy_timeout(Duration::from_secs(30))
    ///     .open_in_memory()?;
    /// # Ok::<(), oneview::store::sqlite::OpenError>(())
    /// ```
    pub fn builder() -> SqliteBuilder {
        SqliteBuilder::default()
    }

    fn writer(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.writer.lock().map_err(|_| backend("a writer panicked"))
    }

    /// This store's key among the connections pinned to a thread.
    fn pin_key(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// An idle read connection, or a new one.
    fn take_reader(&self, readers: &Readers) -> Result<Connection, StoreError> {
        let idle = readers
            .idle
            .lock()
            .map_err(|_| backend("a reader panicked"))?
            .pop();
        match idle {
            Some(conn) => Ok(conn),
            None => {
                let conn = Connection::open_with_flags(
                    &readers.path,
                    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(sqlite)?;
                self.options.configure(&conn, false).map_err(sqlite)?;
                Ok(conn)
            }
        }
    }

    fn give_back(&self, readers: &Readers, conn: Connection) {
        if let Ok(mut idle) = readers.idle.lock()
            && idle.len() < self.options.max_idle_readers
        {
            idle.push(conn);
        }
    }

    /// Runs `read` on a read connection: the one pinned to this thread by a snapshot if
    /// there is one, else an idle reader (the writer's, for an in-memory database).
    fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let key = self.pin_key();
        let mut read = Some(read);
        let pinned = PINNED.with_borrow(|pinned| {
            pinned
                .iter()
                .find(|(store, _)| *store == key)
                .map(|(_, conn)| (read.take().expect("not run yet"))(conn))
        });
        if let Some(answer) = pinned {
            return answer;
        }
        let read = read.take().expect("not run yet");
        let Some(readers) = &self.readers else {
            return read(&*self.writer()?);
        };
        let conn = self.take_reader(readers)?;
        let result = read(&conn);
        self.give_back(readers, conn);
        result
    }

    /// Like [`read`](Self::read), for reads of several statements: outside a snapshot they
    /// run in a read transaction of their own, so they see one committed state.
    fn read_together<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.read(|conn| {
            if !conn.is_autocommit() {
                return read(conn);
            }
            conn.execute_batch("BEGIN").map_err(sqlite)?;
            let answer = read(conn);
            conn.execute_batch("COMMIT").map_err(sqlite)?;
            answer
        })
    }
}

thread_local! {
    /// Connections pinned to this thread by [`SqliteStore::snapshot`], by store.
    static PINNED: RefCell<Vec<(usize, Connection)>> = const { RefCell::new(Vec::new()) };
}

/// Unpins a snapshot's connection when the snapshot ends, even by a panic: the writer's
/// connection goes back to the writer; a reader ends its transaction and goes back idle.
struct Pin<'a> {
    store: &'a SqliteStore,
    writer: Option<MutexGuard<'a, Connection>>,
}

impl Drop for Pin<'_> {
    fn drop(&mut self) {
        let key = self.store.pin_key();
        let conn = PINNED.with_borrow_mut(|pinned| {
            let at = pinned.iter().position(|(store, _)| *store == key)?;
            Some(pinned.remove(at).1)
        });
        let Some(conn) = conn else { return };
        match (&mut self.writer, &self.store.readers) {
            (Some(writer), _) => **writer = conn,
            (None, Some(readers)) => {
                if conn.execute_batch("COMMIT").is_ok() || conn.is_autocommit() {
                    self.store.give_back(readers, conn);
                }
            }
            (None, None) => {}
        }
    }
}

fn sqlite(err: rusqlite::Error) -> StoreError {
    StoreError::Backend {
        backend: "sqlite",
        source: Box::new(err),
    }
}

fn backend(message: &str) -> StoreError {
    StoreError::Backend {
        backend: "sqlite",
        source: message.into(),
    }
}

fn corrupt(what: &str, err: impl std::fmt::Display) -> StoreError {
    backend(&format!("a stored {what} cannot be read: {err}"))
}

type Key = [u8; 16];

fn key(uuid: &Uuid) -> Key {
    *uuid.as_bytes()
}

fn customer(bytes: Key) -> CustomerId {
    CustomerId::from_uuid(Uuid::from_bytes(bytes))
}

/// Nanoseconds since the epoch. Validated records always fit; a hand-built commit with a
/// time outside the years 1678 to 2261 is refused rather than stored wrongly.
fn nanos(at: DateTime<Utc>) -> Result<i64, Fault> {
    at.timestamp_nanos_opt()
        .ok_or_else(|| Fault::Store(backend(&format!("time {at} is outside 1678-2261"))))
}

fn time(nanos: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(nanos)
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, body: &str) -> Result<T, StoreError> {
    serde_json::from_str(body).map_err(|err| corrupt(what, err))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, Fault> {
    serde_json::to_string(value).map_err(|err| Fault::Store(backend(&err.to_string())))
}

/// The live profile `customer` resolves to: a scalar subquery shared by the reads.
const LIVE: &str = "(SELECT live_id FROM profiles WHERE id = ?1)";

fn live_of(conn: &Connection, customer: &Key) -> rusqlite::Result<Option<Key>> {
    conn.prepare_cached("SELECT live_id FROM profiles WHERE id = ?1")?
        .query_row([customer], |row| row.get(0))
        .optional()
}

fn owner_of(conn: &Connection, identifier: &str) -> rusqlite::Result<Option<(Key, i64)>> {
    conn.prepare_cached(
        "SELECT p.live_id, l.created_at FROM identifiers i
         JOIN profiles p ON p.id = i.profile_id
         JOIN profiles l ON l.id = p.live_id
         WHERE i.identifier = ?1",
    )?
    .query_row([identifier], |row| Ok((row.get(0)?, row.get(1)?)))
    .optional()
}

/// A failure inside one commit, before it is tagged with the commit's position.
enum Fault {
    Conflict(CommitProblem),
    Invalid(CommitProblem),
    Store(StoreError),
}

impl From<rusqlite::Error> for Fault {
    fn from(err: rusqlite::Error) -> Self {
        Self::Store(sqlite(err))
    }
}

/// Profiles known to exist within one `apply`: rows in `profiles` are never deleted, so a
/// profile seen once need not be looked up again for the rest of the transaction.
type Known = HashSet<Key>;

fn check(conn: &Connection, known: &mut Known, expectation: &Expectation) -> Result<(), Fault> {
    match expectation {
        Expectation::Owner { identifier, owner } => {
            let found = owner_of(conn, &identifier.to_string())?.map(|(live, _)| live);
            if let Some(live) = found {
                known.insert(live);
            }
            let found = found.map(customer);
            if found != *owner {
                return Err(Fault::Conflict(CommitProblem::UnexpectedOwner {
                    identifier: identifier.clone(),
                    expected: *owner,
                    found,
                }));
            }
        }
        Expectation::Live { customer: id } => match live_of(conn, &key(id.as_uuid()))? {
            None => return Err(Fault::Conflict(CommitProblem::UnknownCustomer(*id))),
            Some(live) if live != key(id.as_uuid()) => {
                return Err(Fault::Conflict(CommitProblem::NotLive(*id)));
            }
            Some(live) => {
                known.insert(live);
            }
        },
        Expectation::Evidence {
            customer: id,
            count,
        } => {
            let found: i64 = conn
                .prepare_cached(&format!(
                    "SELECT (SELECT count(*) FROM profiles p JOIN events e ON e.profile_id = p.id
                             WHERE p.live_id = {LIVE})
                          + (SELECT count(*) FROM profiles p
                             JOIN interactions i ON i.profile_id = p.id
                             WHERE p.live_id = {LIVE})"
                ))?
                .query_row([key(id.as_uuid())], |row| row.get(0))?;
            if found as u64 != *count {
                return Err(Fault::Conflict(CommitProblem::EvidenceCount {
                    customer: *id,
                    expected: *count,
                    found: found as u64,
                }));
            }
        }
        Expectation::Identifiers {
            customer: id,
            identifiers,
        } => {
            let mut found: Vec<String> = conn
                .prepare_cached(&format!(
                    "SELECT i.identifier FROM profiles p JOIN identifiers i ON i.profile_id = p.id
                     WHERE p.live_id = {LIVE}"
                ))?
                .query_map([key(id.as_uuid())], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            found.sort_unstable();
            let mut expected: Vec<String> = identifiers.iter().map(ToString::to_string).collect();
            expected.sort_unstable();
            if found != expected {
                return Err(Fault::Conflict(CommitProblem::IdentifiersChanged {
                    customer: *id,
                    expected: expected.len(),
                    found: found.len(),
                }));
            }
        }
        Expectation::InteractionVersion { id, updated_at } => {
            let found: Option<i64> = conn
                .prepare_cached("SELECT updated_at FROM interactions WHERE id = ?1")?
                .query_row([key(id.as_uuid())], |row| row.get(0))
                .optional()?;
            let found = found.map(time);
            if found != *updated_at {
                return Err(Fault::Conflict(CommitProblem::InteractionVersion {
                    id: *id,
                    expected: *updated_at,
                    found,
                }));
            }
        }
    }
    Ok(())
}

fn require_profile(conn: &Connection, known: &mut Known, id: CustomerId) -> Result<(), Fault> {
    let id_key = key(id.as_uuid());
    if known.contains(&id_key) {
        return Ok(());
    }
    match live_of(conn, &id_key)? {
        Some(_) => {
            known.insert(id_key);
            Ok(())
        }
        None => Err(Fault::Invalid(CommitProblem::UnknownCustomer(id))),
    }
}

fn require_live(conn: &Connection, id: CustomerId) -> Result<(), Fault> {
    match live_of(conn, &key(id.as_uuid()))? {
        None => Err(Fault::Invalid(CommitProblem::UnknownCustomer(id))),
        Some(live) if live != key(id.as_uuid()) => Err(Fault::Invalid(CommitProblem::NotLive(id))),
        Some(_) => Ok(()),
    }
}

fn change(conn: &Connection, known: &mut Known, change: &IdentityChange) -> Result<(), Fault> {
    match change {
        // Inserts that the primary key refuses tell what a lookup first would: one
        // statement instead of two. A failure rolls the whole batch back.
        IdentityChange::CreateProfile { id, created_at } => {
            let inserted = conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO profiles (id, created_at, live_id) VALUES (?1, ?2, ?1)",
                )?
                .execute(params![key(id.as_uuid()), nanos(*created_at)?])?;
            if inserted == 0 {
                return Err(Fault::Invalid(CommitProblem::CustomerExists(*id)));
            }
            known.insert(key(id.as_uuid()));
        }
        IdentityChange::Attach {
            identifier,
            customer: id,
        } => {
            require_profile(conn, known, *id)?;
            let text = identifier.to_string();
            let inserted = conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO identifiers (identifier, profile_id) VALUES (?1, ?2)",
                )?
                .execute(params![text, key(id.as_uuid())])?;
            if inserted == 0 {
                let owner = owner_of(conn, &text)?.map_or(*id, |(owner, _)| customer(owner));
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
            require_live(conn, record.survivor)?;
            require_live(conn, record.absorbed)?;
            conn.prepare_cached("UPDATE profiles SET live_id = ?1 WHERE live_id = ?2")?
                .execute([
                    key(record.survivor.as_uuid()),
                    key(record.absorbed.as_uuid()),
                ])?;
            insert_merge(conn, record)?;
        }
        IdentityChange::Refuse(refusal) => insert_refusal(conn, known, refusal)?,
        IdentityChange::Override(record) => {
            conn.prepare_cached("INSERT INTO overrides (id, at, record) VALUES (?1, ?2, ?3)")?
                .execute(params![
                    key(record.id.as_uuid()),
                    nanos(record.at)?,
                    encode(record)?
                ])?;
            for identifier in record.identifiers() {
                conn.prepare_cached(
                    "INSERT INTO override_identifiers (identifier, override_id) VALUES (?1, ?2)",
                )?
                .execute(params![identifier.to_string(), key(record.id.as_uuid())])?;
            }
        }
        IdentityChange::Rewrite(rewrite) => apply_rewrite(conn, known, rewrite)?,
    }
    Ok(())
}

fn insert_merge(conn: &Connection, record: &MergeRecord) -> Result<(), Fault> {
    conn.prepare_cached("INSERT INTO merges (id, absorbed, at, record) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![
            key(record.id.as_uuid()),
            key(record.absorbed.as_uuid()),
            nanos(record.at)?,
            encode(record)?
        ])?;
    Ok(())
}

fn insert_refusal(conn: &Connection, known: &mut Known, refusal: &Refusal) -> Result<(), Fault> {
    require_profile(conn, known, refusal.customer)?;
    conn.prepare_cached(
        "INSERT INTO refusals (profile_id, identifier, evidence, at, record)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        key(refusal.customer.as_uuid()),
        refusal.identifier.to_string(),
        key(&refusal.evidence),
        nanos(refusal.at)?,
        encode(refusal)?
    ])?;
    Ok(())
}

fn apply_rewrite(conn: &Connection, known: &mut Known, rewrite: &Rewrite) -> Result<(), Fault> {
    let named: HashMap<Key, Key> = rewrite
        .profiles
        .iter()
        .map(|p| (key(p.id.as_uuid()), key(p.live.as_uuid())))
        .collect();
    for state in &rewrite.profiles {
        let target = key(state.live.as_uuid());
        let target_live = match named.get(&target) {
            Some(&live) => live == target,
            None => live_of(conn, &target)? == Some(target),
        };
        if !target_live {
            return Err(Fault::Invalid(CommitProblem::NotLiveTarget {
                id: state.id,
                live: state.live,
            }));
        }
    }
    // Members of a rewritten profile that the rewrite does not name follow the profile
    // they were merged into.
    let mut orphans = Vec::new();
    for state in &rewrite.profiles {
        let id = key(state.id.as_uuid());
        if live_of(conn, &id)? == Some(id) {
            let mut statement =
                conn.prepare_cached("SELECT id FROM profiles WHERE live_id = ?1")?;
            let members = statement.query_map([id], |row| row.get::<_, Key>(0))?;
            for member in members {
                let member = member?;
                if !named.contains_key(&member) {
                    orphans.push((member, id));
                }
            }
        }
    }
    for state in &rewrite.profiles {
        conn.prepare_cached(
            "INSERT INTO profiles (id, created_at, live_id) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET created_at = excluded.created_at,
                                            live_id = excluded.live_id",
        )?
        .execute(params![
            key(state.id.as_uuid()),
            nanos(state.created_at)?,
            key(state.live.as_uuid())
        ])?;
        known.insert(key(state.id.as_uuid()));
    }
    for (orphan, was) in orphans {
        conn.prepare_cached(
            "UPDATE profiles SET live_id = (SELECT live_id FROM profiles WHERE id = ?2)
             WHERE id = ?1",
        )?
        .execute([orphan, was])?;
    }
    for (identifier, owner) in &rewrite.identifiers {
        let text = identifier.to_string();
        match owner {
            None => {
                conn.prepare_cached("DELETE FROM identifiers WHERE identifier = ?1")?
                    .execute([text])?;
            }
            Some(id) => {
                require_profile(conn, known, *id)?;
                conn.prepare_cached(
                    "INSERT INTO identifiers (identifier, profile_id) VALUES (?1, ?2)
                     ON CONFLICT (identifier) DO UPDATE SET profile_id = excluded.profile_id",
                )?
                .execute(params![text, key(id.as_uuid())])?;
            }
        }
    }
    for (id, owner) in &rewrite.events {
        require_profile(conn, known, *owner)?;
        let changed = conn
            .prepare_cached("UPDATE events SET profile_id = ?2 WHERE id = ?1")?
            .execute([key(id.as_uuid()), key(owner.as_uuid())])?;
        if changed == 0 {
            return Err(Fault::Invalid(CommitProblem::UnknownRecord(*id.as_uuid())));
        }
        conn.prepare_cached("UPDATE traits SET profile_id = ?2 WHERE event_id = ?1")?
            .execute([key(id.as_uuid()), key(owner.as_uuid())])?;
    }
    for (id, owner) in &rewrite.interactions {
        require_profile(conn, known, *owner)?;
        let changed = conn
            .prepare_cached("UPDATE interactions SET profile_id = ?2 WHERE id = ?1")?
            .execute([key(id.as_uuid()), key(owner.as_uuid())])?;
        if changed == 0 {
            return Err(Fault::Invalid(CommitProblem::UnknownRecord(*id.as_uuid())));
        }
    }
    for id in named.keys() {
        conn.prepare_cached("DELETE FROM merges WHERE absorbed = ?1")?
            .execute([id])?;
        conn.prepare_cached("DELETE FROM refusals WHERE profile_id = ?1")?
            .execute([id])?;
    }
    for record in &rewrite.merges {
        insert_merge(conn, record)?;
    }
    for refusal in &rewrite.refusals {
        insert_refusal(conn, known, refusal)?;
    }
    Ok(())
}

fn apply_commit(
    conn: &Connection,
    known: &mut Known,
    commit: &Commit,
) -> Result<CommitOutcome, Fault> {
    if let Some(event) = &commit.event {
        let exists = conn
            .prepare_cached("SELECT 1 FROM events WHERE id = ?1")?
            .exists([key(event.record.id.as_uuid())])?;
        if exists {
            return Ok(CommitOutcome::Duplicate);
        }
    }
    for expectation in &commit.expect {
        check(conn, known, expectation)?;
    }
    for identity in &commit.identity {
        change(conn, known, identity)?;
    }
    if let Some(Attributed {
        customer: id,
        record,
    }) = &commit.event
    {
        require_profile(conn, known, *id)?;
        conn.prepare_cached(
            "INSERT INTO events (id, profile_id, occurred_at, channel, body)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            key(record.id.as_uuid()),
            key(id.as_uuid()),
            nanos(record.occurred_at)?,
            record.channel.name(),
            encode(record)?
        ])?;
    }
    if let Some(Attributed {
        customer: id,
        record,
    }) = &commit.interaction
    {
        require_profile(conn, known, *id)?;
        conn.prepare_cached(
            "INSERT INTO interactions (id, profile_id, occurred_at, updated_at, channel, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (id) DO UPDATE SET
                profile_id = excluded.profile_id, occurred_at = excluded.occurred_at,
                updated_at = excluded.updated_at, channel = excluded.channel,
                body = excluded.body",
        )?
        .execute(params![
            key(record.id.as_uuid()),
            key(id.as_uuid()),
            nanos(record.occurred_at)?,
            nanos(record.updated_at)?,
            record.channel.name(),
            encode(record)?
        ])?;
    }
    for Attributed {
        customer: id,
        record,
    } in &commit.traits
    {
        require_profile(conn, known, *id)?;
        conn.prepare_cached("INSERT INTO traits (profile_id, body, event_id) VALUES (?1, ?2, ?3)")?
            .execute(params![
                key(id.as_uuid()),
                encode(record)?,
                record.provenance.event_id.map(|e| key(e.as_uuid()))
            ])?;
    }
    Ok(CommitOutcome::Applied)
}

impl Store for SqliteStore {
    fn snapshot(
        &self,
        reads: &mut dyn FnMut(&dyn Reads) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let key = self.pin_key();
        if PINNED.with_borrow(|pinned| pinned.iter().any(|(store, _)| *store == key)) {
            return reads(self);
        }
        let (conn, pin) = match &self.readers {
            Some(readers) => {
                let conn = self.take_reader(readers)?;
                // Deferred: the snapshot is taken by the first read and held until COMMIT.
                conn.execute_batch("BEGIN").map_err(sqlite)?;
                (
                    conn,
                    Pin {
                        store: self,
                        writer: None,
                    },
                )
            }
            None => {
                // One connection serves everything in memory: hold it for the snapshot,
                // leaving an empty stand-in behind the lock while it is pinned here.
                let mut writer = self.writer()?;
                let stand_in = Connection::open_in_memory().map_err(sqlite)?;
                let conn = std::mem::replace(&mut *writer, stand_in);
                (
                    conn,
                    Pin {
                        store: self,
                        writer: Some(writer),
                    },
                )
            }
        };
        PINNED.with_borrow_mut(|pinned| pinned.push((key, conn)));
        let answer = reads(self);
        drop(pin);
        answer
    }

    fn apply(&self, commits: &[Commit]) -> Result<Vec<CommitOutcome>, StoreError> {
        let mut conn = self.writer()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite)?;
        let mut outcomes = Vec::with_capacity(commits.len());
        let mut known = Known::new();
        for (index, commit) in commits.iter().enumerate() {
            // Returning drops the transaction, which rolls everything back.
            match apply_commit(&tx, &mut known, commit) {
                Ok(outcome) => outcomes.push(outcome),
                Err(Fault::Conflict(problem)) => {
                    return Err(StoreError::Conflict {
                        commit: index,
                        problem,
                    });
                }
                Err(Fault::Invalid(problem)) => {
                    return Err(StoreError::InvalidCommit {
                        commit: index,
                        problem,
                    });
                }
                Err(Fault::Store(err)) => return Err(err),
            }
        }
        tx.commit().map_err(sqlite)?;
        Ok(outcomes)
    }
}

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
        self.read_together(|conn| {
            let mut live = None;
            let mut created_at = None;
            let mut members = Vec::new();
            let sql = format!(
                "SELECT id, created_at, live_id FROM profiles WHERE live_id = {LIVE} ORDER BY id"
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
                members.push(customer(member));
            }
            let Some(live) = live else {
                return Ok(None);
            };
            let mut identifiers = conn
                .prepare_cached(
                    "SELECT i.identifier FROM profiles p
                     JOIN identifiers i ON i.profile_id = p.id WHERE p.live_id = ?1",
                )
                .map_err(sqlite)?
                .query_map([live], |row| row.get::<_, String>(0))
                .map_err(sqlite)?
                .map(|text| {
                    let text = text.map_err(sqlite)?;
                    text.parse::<Identifier>()
                        .map_err(|err| corrupt("identifier", err))
                })
                .collect::<Result<Vec<_>, _>>()?;
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

    fn standing_overrides(&self) -> Result<Vec<OverrideRecord>, StoreError> {
        self.read(|conn| {
            let mut statement = conn
                .prepare_cached(
                    "SELECT record FROM overrides
                     WHERE json_extract(record, '$.override') IN ('suspect', 'block', 'allow')",
                )
                .map_err(sqlite)?;
            let rows = statement
                .query_map([], |row| row.get::<_, String>(0))
                .map_err(sqlite)?;
            let mut found: Vec<OverrideRecord> = rows
                .map(|body| decode("override", &body.map_err(sqlite)?))
                .collect::<Result<_, _>>()?;
            found.sort_by_key(|o| (o.at, o.id));
            Ok(found)
        })
    }

    fn customers(
        &self,
        after: Option<CustomerId>,
        limit: usize,
    ) -> Result<Vec<CustomerId>, StoreError> {
        self.read(|conn| {
            let after = after.map(|a| key(a.as_uuid()).to_vec()).unwrap_or_default();
            conn.prepare_cached(
                "SELECT id FROM profiles WHERE id > ?1 AND live_id = id ORDER BY id LIMIT ?2",
            )
            .map_err(sqlite)?
            .query_map(params![after, limit as i64], |row| row.get::<_, Key>(0))
            .map_err(sqlite)?
            .map(|id| id.map(customer).map_err(sqlite))
            .collect()
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

/// A newest-first page from `table`, which must have `profile_id`, `occurred_at`, `id` and
/// `body` columns.
/// The newest entry of the live profile `id` in `table`, read from its
/// `(profile_id, occurred_at, id)` index alone.
fn latest(
    conn: &Connection,
    table: &str,
    id: CustomerId,
) -> Result<Option<TimelineCursor>, StoreError> {
    let sql = format!(
        "SELECT t.occurred_at, t.id FROM profiles p JOIN {table} t ON t.profile_id = p.id
         WHERE p.live_id = {LIVE} ORDER BY t.occurred_at DESC, t.id DESC LIMIT 1"
    );
    conn.prepare_cached(&sql)
        .map_err(sqlite)?
        .query_row([key(id.as_uuid())], |row| {
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

fn page<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    table: &str,
    id: CustomerId,
    request: PageRequest,
    position: impl Fn(&T) -> TimelineCursor,
) -> Result<Page<T>, StoreError> {
    let (before_at, before_id) = match request.cursor() {
        Some(cursor) => (nanos_cursor(cursor.at), key(&cursor.id)),
        None => (i64::MAX, [0xFF; 16]),
    };
    let sql = format!(
        "SELECT t.body FROM profiles p JOIN {table} t ON t.profile_id = p.id
         WHERE p.live_id = {LIVE} AND (t.occurred_at, t.id) < (?2, ?3)
         ORDER BY t.occurred_at DESC, t.id DESC LIMIT ?4"
    );
    let mut statement = conn.prepare_cached(&sql).map_err(sqlite)?;
    let rows = statement
        .query_map(
            params![
                key(id.as_uuid()),
                before_at,
                before_id,
                request.limit() as i64 + 1
            ],
            |row| row.get::<_, String>(0),
        )
        .map_err(sqlite)?;
    let mut items: Vec<T> = rows
        .map(|body| decode(table, &body.map_err(sqlite)?))
        .collect::<Result<_, _>>()?;
    let more = items.len() > request.limit();
    items.truncate(request.limit());
    let next = if more {
        items.last().map(position)
    } else {
        None
    };
    Ok(Page { items, next })
}

/// A cursor's time in nanoseconds; cursors outside the storable range clamp to its ends.
fn nanos_cursor(at: DateTime<Utc>) -> i64 {
    at.timestamp_nanos_opt().unwrap_or(if at.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
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
        self.read(|conn| {
            page(conn, "events", id, request, |event: &Event| {
                TimelineCursor {
                    at: event.occurred_at,
                    id: *event.id.as_uuid(),
                }
            })
        })
    }

    fn event_summary(&self, id: CustomerId) -> Result<Vec<ChannelSummary>, StoreError> {
        self.read(|conn| summary(conn, "events", id))
    }

    fn latest_event(&self, id: CustomerId) -> Result<Option<TimelineCursor>, StoreError> {
        self.read(|conn| latest(conn, "events", id))
    }

    fn scan_events(&self) -> EventScan<'_> {
        Box::new(Scan {
            store: self,
            after: (i64::MIN, [0; 16]),
            buffer: Vec::new().into_iter(),
            done: false,
        })
    }
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
    buffer: std::vec::IntoIter<Attributed<Event>>,
    done: bool,
}

impl Scan<'_> {
    fn fetch(&mut self) -> Result<Vec<Attributed<Event>>, StoreError> {
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
        self.done = rows.len() < SCAN_CHUNK;
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
            .collect()
    }
}

impl Iterator for Scan<'_> {
    type Item = Result<Attributed<Event>, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(item) = self.buffer.next() {
            return Some(Ok(item));
        }
        if self.done {
            return None;
        }
        match self.fetch() {
            Ok(chunk) => {
                self.buffer = chunk.into_iter();
                self.buffer.next().map(Ok)
            }
            Err(err) => {
                self.done = true;
                Some(Err(err))
            }
        }
    }
}

impl InteractionStore for SqliteStore {
    fn interaction(
        &self,
        id: InteractionId,
    ) -> Result<Option<Attributed<Interaction>>, StoreError> {
        self.read(|conn| stored(conn, "interactions", &key(id.as_uuid()), "interaction"))
    }

    fn interactions(
        &self,
        id: CustomerId,
        request: PageRequest,
    ) -> Result<Page<Interaction>, StoreError> {
        self.read(|conn| {
            page(conn, "interactions", id, request, |i: &Interaction| {
                TimelineCursor {
                    at: i.occurred_at,
                    id: *i.id.as_uuid(),
                }
            })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance;

    #[test]
    fn in_memory_database_keeps_the_contract() {
        conformance::run_all(|| SqliteStore::open_in_memory().expect("open"));
    }

    #[test]
    fn file_database_keeps_the_contract() {
        let dir = tempfile::tempdir().expect("temp dir");
        let counter = std::sync::atomic::AtomicUsize::new(0);
        conformance::run_all(|| {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            SqliteStore::open(dir.path().join(format!("store-{n}.db"))).expect("open")
        });
    }
}
