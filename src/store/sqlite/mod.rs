//! The SQLite backend: the embedded default.
//!
//! One file holds everything. Writes go through a single writer connection, one
//! transaction per [`Store::apply`] or [`Store::plan_and_apply`] call; reads use a pool of
//! read-only connections, which under WAL (the default) never wait for the writer. SQLite
//! is compiled into the crate, so nothing needs installing.
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

mod interaction_row;
mod membership;
mod privacy;
mod read;
mod schema;
mod write;

use write::Fault;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use thiserror::Error;
use uuid::Uuid;

use super::{Commit, CommitOutcome, PlanCommits, Reads, Store, StoreError};
use crate::model::CustomerId;

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
    mmap_size_mib: u32,
    checkpoint_pages: u32,
    max_idle_readers: usize,
}

impl Default for SqliteBuilder {
    fn default() -> Self {
        Self {
            journal_mode: JournalMode::Wal,
            synchronous: Synchronous::Normal,
            busy_timeout: Duration::from_secs(5),
            cache_size_kib: 64 * 1024,
            mmap_size_mib: 1024,
            checkpoint_pages: 10_000,
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

    /// How much of the file each connection reads through a memory map, in MiB; defaults
    /// to 1 GiB, and 0 reads every page with a system call instead.
    ///
    /// A map lets a read take a page the operating system already caches without copying
    /// it, which shortens profile reads once the file outgrows the page cache. It costs
    /// address space, not memory: mapped pages are the operating system's file cache,
    /// shared by every connection. Turn it off where the file lives on storage that can
    /// fail under a running process (a network file system, a removable disk): there an
    /// I/O error on a mapped page stops the process with a signal instead of returning an
    /// error.
    pub fn mmap_size_mib(mut self, mib: u32) -> Self {
        self.mmap_size_mib = mib;
        self
    }

    /// How many pages the write-ahead log may hold before a commit copies them into the
    /// database file (`PRAGMA wal_autocheckpoint`); defaults to 10,000 (about 40 MiB).
    ///
    /// Each copy ends with a sync, and a page changed by many commits between two copies
    /// is copied once, so a longer log writes less as the file grows: resolving the
    /// identity bench's 155,000 messages takes about 30% less time than with SQLite's own
    /// default of 1,000. A shorter log keeps the file on disk more current and the log
    /// file smaller; 0 turns automatic copying off (then call
    /// [`SqliteStore::checkpoint`] yourself, or the log grows without end).
    pub fn checkpoint_pages(mut self, pages: u32) -> Self {
        self.checkpoint_pages = pages;
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
        let mut migrating = Connection::open(&path)?;
        migrating.busy_timeout(self.busy_timeout)?;
        schema::check_and_migrate(&mut migrating, &path)?;
        // A connection that renamed a table cannot checkpoint the log afterwards (SQLite
        // reports the table locked), so the writer is a fresh connection.
        drop(migrating);
        let writer = Connection::open(&path)?;
        writer.busy_timeout(self.busy_timeout)?;
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
        // mmap_size answers with the size now in force (nothing for a database in
        // memory), so it is run as a query whose rows are not needed.
        conn.prepare(&format!(
            "PRAGMA mmap_size = {}",
            u64::from(self.mmap_size_mib) << 20
        ))?
        .query([])?
        .next()?;
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
            conn.pragma_update(None, "wal_autocheckpoint", self.checkpoint_pages)?;
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

    /// Copies every page of the write-ahead log into the database file, syncs it, and
    /// empties the log (`PRAGMA wal_checkpoint(TRUNCATE)`), returning how many pages
    /// it could not copy yet (0 when the log is empty). Writes wait meanwhile. A read
    /// transaction still open elsewhere can hold pages back: they stay in the log, and
    /// a later call copies them.
    ///
    /// Automatic checkpoints ([`SqliteBuilder::checkpoint_pages`]) make this
    /// unnecessary in the usual run; call it to hand over a file whose content is all in
    /// the main file (a backup, a copy), or after turning them off.
    ///
    /// ```
    /// use oneview::store::sqlite::SqliteStore;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = SqliteStore::builder()
    ///     .checkpoint_pages(0)
    ///     .open(dir.path().join("customers.db"))?;
    /// assert_eq!(store.checkpoint()?, 0, "nothing left in the log");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn checkpoint(&self) -> Result<u64, StoreError> {
        let writer = self.writer()?;
        // The answer: whether it was blocked, pages in the log, pages copied; the log
        // counts are -1 when the database is not in WAL mode, where nothing is left.
        let (_blocked, in_log, copied): (i64, i64, i64) = writer
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .map_err(sqlite)?;
        Ok(u64::try_from(in_log - copied).unwrap_or(0))
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
            (Some(writer), _) => {
                // A snapshot to write ran in a read transaction on the writer: end it, so
                // the writer is free for the write that follows. Rolled back, not
                // committed: a write planned in it that failed has left it open.
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                **writer = conn;
            }
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

/// The profiles named by the first column of what `sql` selects, in its order.
fn profile_ids(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<CustomerId>, StoreError> {
    conn.prepare_cached(sql)
        .map_err(sqlite)?
        .query_map(params, |row| row.get::<_, Key>(0))
        .map_err(sqlite)?
        .map(|id| id.map(customer).map_err(sqlite))
        .collect()
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

impl Store for SqliteStore {
    fn snapshot(
        &self,
        reads: &mut dyn FnMut(&dyn Reads) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.pinned_snapshot(reads, false)
    }

    /// Reads on the writer's connection: its page cache holds what recent commits
    /// touched, while each commit empties the caches of the readers. Other threads'
    /// writes wait meanwhile; other processes' writes and every reader do not.
    fn snapshot_for_write(
        &self,
        reads: &mut dyn FnMut(&dyn Reads) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.pinned_snapshot(reads, true)
    }

    /// Plans and applies in one write transaction on the writer, taken before the first
    /// read (`BEGIN IMMEDIATE`): no writer of this process or another can change what
    /// the plan read before its commits land, so their expectations are not checked
    /// again. Other processes' writers wait for it as they wait for any commit, for as
    /// long as `plan` runs. Inside a [`snapshot`](Store::snapshot) of this store it plans
    /// on that snapshot and applies afterwards, checking them.
    fn plan_and_apply(
        &self,
        commits: &mut Vec<Commit>,
        plan: &mut PlanCommits<'_>,
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        let key = self.pin_key();
        if PINNED.with_borrow(|pinned| pinned.iter().any(|(store, _)| *store == key)) {
            return crate::store::plan_then_apply(self, commits, plan);
        }
        commits.clear();
        let (conn, pin) = self.pin_writer()?;
        PINNED.with_borrow_mut(|pinned| pinned.push((key, conn)));
        let outcome = self
            .read(|conn| {
                conn.execute_batch("BEGIN IMMEDIATE").map_err(sqlite)?;
                write::begin_applying(conn)
            })
            .and_then(|()| plan(self, commits))
            .and_then(|()| {
                self.read(|conn| {
                    let outcomes = write::apply_in(conn, commits, write::Expectations::Hold)?;
                    conn.execute_batch("COMMIT").map_err(sqlite)?;
                    Ok(outcomes)
                })
            });
        // A failed write is left open: the pin rolls it back.
        drop(pin);
        outcome
    }

    fn apply(&self, commits: &[Commit]) -> Result<Vec<CommitOutcome>, StoreError> {
        write::apply(&mut *self.writer()?, commits)
    }

    /// Empties the write-ahead log into the database file and truncates it
    /// (`wal_checkpoint(TRUNCATE)`), so that no older version of a page survives there.
    /// In the file itself `secure_delete` (always on) has already zeroed every deleted
    /// row and freed page; SQLite's index b-trees keep each key once, interior pages
    /// included, so no copy of a deleted key is left behind either.
    ///
    /// With [`JournalMode::Persist`] the rollback journal keeps the pages an erasure
    /// changed, as they were before it: the journal is deleted (by switching to `DELETE`
    /// and back). The other rollback modes delete or truncate it after every commit.
    fn purge(&self) -> Result<(), StoreError> {
        let writer = self.writer()?;
        let mode: String = writer
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .map_err(sqlite)?;
        if mode.eq_ignore_ascii_case("persist") {
            writer
                .query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))
                .and_then(|()| writer.query_row("PRAGMA journal_mode = PERSIST", [], |_| Ok(())))
                .map_err(sqlite)?;
            return Ok(());
        }
        // Readers in the middle of a transaction keep the log from being emptied; they
        // finish soon, so wait for them a while.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (blocked, in_log, copied): (i64, i64, i64) = writer
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
                .map_err(sqlite)?;
            if blocked == 0 && in_log == copied {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(backend(
                    "readers kept the write-ahead log from being emptied; purge again",
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl SqliteStore {
    /// Runs `reads` in one read transaction pinned to this thread: on a reader, or with
    /// `on_writer` on the writer's connection.
    fn pinned_snapshot(
        &self,
        reads: &mut dyn FnMut(&dyn Reads) -> Result<(), StoreError>,
        on_writer: bool,
    ) -> Result<(), StoreError> {
        let key = self.pin_key();
        if PINNED.with_borrow(|pinned| pinned.iter().any(|(store, _)| *store == key)) {
            return reads(self);
        }
        let (conn, pin) = match &self.readers {
            Some(_) if on_writer => {
                let (conn, pin) = self.pin_writer()?;
                // Deferred, as on a reader: it takes no lock other processes would wait on.
                conn.execute_batch("BEGIN").map_err(sqlite)?;
                (conn, pin)
            }
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
            // One connection serves everything in memory: hold it for the snapshot.
            None => self.pin_writer()?,
        };
        PINNED.with_borrow_mut(|pinned| pinned.push((key, conn)));
        let answer = reads(self);
        drop(pin);
        answer
    }

    /// Takes the writer's connection out from behind its lock, leaving an empty stand-in
    /// there while it is pinned to this thread; the lock stays held until the pin drops.
    fn pin_writer(&self) -> Result<(Connection, Pin<'_>), StoreError> {
        let mut writer = self.writer()?;
        let stand_in = Connection::open_in_memory().map_err(sqlite)?;
        let conn = std::mem::replace(&mut *writer, stand_in);
        Ok((
            conn,
            Pin {
                store: self,
                writer: Some(writer),
            },
        ))
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
