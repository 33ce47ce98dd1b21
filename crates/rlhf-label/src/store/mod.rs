//! The SQLite store: one writer connection (every write is one `BEGIN IMMEDIATE` transaction,
//! so submissions are serialised and a commit means the label is on disk) and a few reader
//! connections (WAL lets them read while the writer writes). Callers on an async runtime run
//! these methods in `spawn_blocking`.
//!
//! Why SQLite (the `bundled` build, so nothing needs installing): with `journal_mode=WAL` and
//! `synchronous=FULL` a committed transaction has been fsynced to the write-ahead log before
//! `COMMIT` returns, so a label acknowledged with HTTP 200 survives `kill -9` and power loss,
//! without a database server to run.
//!
//! Parts: [`schema`] (migrations), [`tasks`] (loading), [`raters`] (tokens, status),
//! [`assign`] (the next task of a rater), [`labels`] (validated, idempotent submissions),
//! [`snapshot`] (everything the statistics and exports read).

pub mod assign;
pub mod labels;
pub mod raters;
pub mod schema;
pub mod snapshot;
pub mod tasks;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags};

use crate::error::Result;
use crate::token::{TokenHash, find_digest, hash_token};

/// Reader connections kept open.
const READERS: usize = 4;

/// Who a bearer token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// The researcher.
    Admin,
    /// A rater, by database id.
    Rater(i64),
}

/// Token digests held in memory so that authentication is a constant-time scan.
#[derive(Debug, Default)]
struct AuthCache {
    admin: Option<TokenHash>,
    raters: Vec<(TokenHash, i64)>,
}

/// A labeling database.
pub struct Store {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    auth: RwLock<AuthCache>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a connection rolled its transaction back (rusqlite's Drop); the
    // connection itself is still usable.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store> {
        let mut writer = Connection::open(path)?;
        configure(&writer)?;
        let mode: String = writer.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(crate::LabelError::Corrupt(format!(
                "{}: SQLite refused WAL mode (got `{mode}`); is it on a network file system?",
                path.display()
            )));
        }
        schema::migrate(&mut writer)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let reader = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            reader.busy_timeout(std::time::Duration::from_secs(30))?;
            readers.push(Mutex::new(reader));
        }
        let store = Store {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            readers,
            next_reader: AtomicUsize::new(0),
            auth: RwLock::new(AuthCache::default()),
        };
        store.reload_auth()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the writer connection (one at a time).
    fn write<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        f(&mut lock(&self.writer))
    }

    /// Runs `f` on one of the reader connections.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        f(&lock(&self.readers[i]))
    }

    fn reload_auth(&self) -> Result<()> {
        let (admin, raters) = self.read(|conn| {
            let admin = raters::admin_hash(conn)?;
            let raters = raters::all_hashes(conn)?;
            Ok((admin, raters))
        })?;
        let mut cache = self.auth.write().unwrap_or_else(|p| p.into_inner());
        cache.admin = admin;
        cache.raters = raters;
        Ok(())
    }

    fn lookup(&self, digest: &TokenHash) -> Option<Principal> {
        let cache = self.auth.read().unwrap_or_else(|p| p.into_inner());
        let admin = cache.admin.iter().map(|h| (h, Principal::Admin));
        let raters = cache
            .raters
            .iter()
            .map(|(h, id)| (h, Principal::Rater(*id)));
        find_digest(digest, admin.chain(raters))
    }

    /// Who `token` belongs to, if anyone. Digests are compared in constant time against every
    /// known token; an unknown token reloads the tokens once (raters added by another process).
    pub fn authenticate(&self, token: &str) -> Result<Option<Principal>> {
        let digest = hash_token(token);
        if let Some(found) = self.lookup(&digest) {
            return Ok(Some(found));
        }
        self.reload_auth()?;
        Ok(self.lookup(&digest))
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// A store in a fresh temporary file.
    pub fn temp_store(name: &str) -> (Store, PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "rlhf-label-unit-{}-{name}-{}",
            std::process::id(),
            now_ms()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("labels.sqlite");
        (Store::open(&path).unwrap(), dir)
    }
}
