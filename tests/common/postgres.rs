//! The PostgreSQL server the tests use, and a schema of its own for each store.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use oneview::store::postgres::PostgresStore;

/// The variable that names the test server.
pub(crate) const VARIABLE: &str = "ONEVIEW_TEST_POSTGRES";

/// The test server's URL, or `None` (having said how to set it) when the variable is
/// unset. A set variable naming a server that cannot be reached fails the test later,
/// at connect: a run that asked for the server never passes without it.
pub(crate) fn server_url() -> Option<String> {
    match std::env::var(VARIABLE) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!(
                "PostgreSQL tests skipped: set {VARIABLE}=postgres://postgres@127.0.0.1/test to run them"
            );
            None
        }
    }
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A fresh schema name, unique across test processes running at once.
pub(crate) fn fresh_name(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "ovt_{tag}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A store in a schema of its own, dropped with the store.
pub(crate) fn temporary_store(url: &str, tag: &str) -> PostgresStore {
    PostgresStore::builder()
        .schema(&fresh_name(tag))
        .pool_size(4)
        .temporary(true)
        .connect(url)
        .unwrap_or_else(|err| panic!("{VARIABLE} is set, but: {err}"))
}

/// Schemas a test names itself, all dropped when it ends (also by a panic).
pub(crate) struct Schemas {
    url: String,
    tag: String,
    names: Mutex<Vec<String>>,
}

impl Schemas {
    pub(crate) fn new(url: &str, tag: &str) -> Self {
        Self {
            url: url.to_owned(),
            tag: tag.to_owned(),
            names: Mutex::new(Vec::new()),
        }
    }

    /// A new schema name, dropped at the end.
    pub(crate) fn name(&self) -> String {
        let name = fresh_name(&self.tag);
        self.names.lock().unwrap().push(name.clone());
        name
    }

    /// A store in a new schema, dropped with the store.
    pub(crate) fn store(&self) -> PostgresStore {
        temporary_store(&self.url, &self.tag)
    }

    /// A store in the schema `name`, left in place when the store is dropped.
    pub(crate) fn store_in(&self, name: &str) -> PostgresStore {
        PostgresStore::builder()
            .schema(name)
            .pool_size(4)
            .connect(&self.url)
            .unwrap_or_else(|err| panic!("{VARIABLE} is set, but: {err}"))
    }

    /// A plain client of the server.
    pub(crate) fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls)
            .unwrap_or_else(|err| panic!("{VARIABLE} is set, but: {err}"))
    }
}

impl Drop for Schemas {
    fn drop(&mut self) {
        let names = std::mem::take(&mut *self.names.lock().unwrap_or_else(|e| e.into_inner()));
        if names.is_empty() {
            return;
        }
        if let Ok(mut client) = postgres::Client::connect(&self.url, postgres::NoTls) {
            for name in names {
                let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"));
            }
        }
    }
}
