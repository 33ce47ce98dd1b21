//! The SQLite store: one writer thread owning the write connection, and a few reader connections
//! (WAL lets them read while the writer writes). Callers on an async runtime run these methods
//! in `spawn_blocking`.
//!
//! Group commit: the writer thread takes every write request waiting in its queue (up to 256),
//! runs each in its own SAVEPOINT inside one `BEGIN IMMEDIATE` transaction (a request that
//! fails rolls back only itself), commits once, and only then answers each caller. Writes stay
//! serialised and a request is answered only after the commit that holds it is on disk, but
//! one fsync serves many raters instead of one.
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
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags};

use crate::error::Result;
use crate::token::{TokenHash, find_digest, hash_token};

/// Reader connections kept open.
const READERS: usize = 4;

/// Most write requests committed together.
const MAX_BATCH: usize = 256;

/// What a queued write answers once its batch's commit is known.
type Deliver = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;
/// A queued write: runs on the writer connection, returns how to answer.
type Job = Box<dyn FnOnce(&mut Connection) -> Deliver + Send>;

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
    writer: Mutex<Sender<Job>>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    auth: RwLock<AuthCache>,
    /// The `target_per_task` that the `tasks.full` flags were computed for (0: not yet).
    full_target: Arc<AtomicU32>,
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

/// The writer thread: batches queued writes into one transaction (see the module docs).
fn writer_loop(mut conn: Connection, jobs: Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Without the outer transaction (BEGIN failed), each savepoint commits on its own.
        let outer = conn.execute_batch("BEGIN IMMEDIATE").is_ok();
        let delivers: Vec<Deliver> = batch.into_iter().map(|job| job(&mut conn)).collect();
        let commit = if outer {
            conn.execute_batch("COMMIT").map_err(|e| {
                let _ = conn.execute_batch("ROLLBACK");
                e.to_string()
            })
        } else {
            Ok(())
        };
        for deliver in delivers {
            deliver(commit.clone());
        }
    }
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
        let (sender, receiver) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("rlhf-label-writer".into())
            .spawn(move || writer_loop(writer, receiver))
            .map_err(|source| crate::LabelError::Io {
                file: path.to_path_buf(),
                action: "cannot start the writer thread for",
                source,
            })?;
        let store = Store {
            path: path.to_path_buf(),
            writer: Mutex::new(sender),
            readers,
            next_reader: AtomicUsize::new(0),
            auth: RwLock::new(AuthCache::default()),
            full_target: Arc::new(AtomicU32::new(0)),
        };
        store.reload_auth()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the writer thread, inside a transaction shared with the other queued writes
    /// (`f` opens a savepoint for its own changes); returns once that transaction is committed.
    fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let stopped = || crate::LabelError::Corrupt("the writer thread stopped".into());
        let (reply, answer) = sync_channel::<Result<T>>(1);
        let job: Job = Box::new(move |conn| {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)))
                .unwrap_or_else(|_| {
                    Err(crate::LabelError::Corrupt(
                        "a write panicked; rolled back".into(),
                    ))
                });
            Box::new(move |commit| {
                let out = match (result, commit) {
                    (Ok(_), Err(e)) => Err(crate::LabelError::Corrupt(format!(
                        "commit failed, nothing was saved: {e}"
                    ))),
                    (result, _) => result,
                };
                // The caller may have gone away; nothing to tell then.
                let _ = reply.send(out);
            })
        });
        lock(&self.writer).send(job).map_err(|_| stopped())?;
        answer.recv().map_err(|_| stopped())?
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
