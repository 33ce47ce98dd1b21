//! Raters and the admin token: tokens are stored as SHA-256 digests only.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::{Store, now_ms};
use crate::error::{LabelError, Result};
use crate::token::{TokenHash, hash_token, new_token};

/// A rater's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RaterStatus {
    /// Receives tasks.
    Active,
    /// Fell below the gold-accuracy rule; receives no more tasks.
    ScreenedOut,
    /// At or above the super threshold; draws high-priority tasks first.
    Super,
}

impl RaterStatus {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            RaterStatus::Active => "active",
            RaterStatus::ScreenedOut => "screened_out",
            RaterStatus::Super => "super",
        }
    }

    /// The status named `name`.
    pub fn from_name(name: &str) -> Result<RaterStatus> {
        match name {
            "active" => Ok(RaterStatus::Active),
            "screened_out" => Ok(RaterStatus::ScreenedOut),
            "super" => Ok(RaterStatus::Super),
            other => Err(LabelError::Corrupt(format!("rater status `{other}`"))),
        }
    }
}

/// The API id of a rater (`r3`).
pub fn rater_key(id: i64) -> String {
    format!("r{id}")
}

/// A new rater and the token to hand them (shown once, never stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewRater {
    /// API id, `r{n}`.
    pub rater_id: String,
    /// The bearer token.
    pub token: String,
}

/// What a rater sees about themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RaterSelf {
    /// API id.
    pub rater_id: String,
    /// Name.
    pub name: String,
    /// Standing.
    pub status: RaterStatus,
    /// Labels submitted.
    pub labels: u64,
    /// Gold items answered (the rater does not learn which ones).
    pub gold_seen: u64,
}

const ADMIN_KEY: &str = "admin_token_sha256";

/// The admin token's digest, if set.
pub fn admin_hash(conn: &Connection) -> Result<Option<TokenHash>> {
    let value: Option<Vec<u8>> = conn
        .query_row(
            "SELECT value FROM settings WHERE key = ?1",
            [ADMIN_KEY],
            |r| r.get(0),
        )
        .optional()?;
    value
        .map(|v| {
            v.try_into()
                .map_err(|_| LabelError::Corrupt("admin token digest is not 32 bytes".into()))
        })
        .transpose()
}

/// Every rater's token digest and id.
pub fn all_hashes(conn: &Connection) -> Result<Vec<(TokenHash, i64)>> {
    let mut stmt = conn.prepare("SELECT token_sha256, id FROM raters")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (digest, id) = row?;
        let digest: TokenHash = digest.try_into().map_err(|_| {
            LabelError::Corrupt(format!("rater {id}: token digest is not 32 bytes"))
        })?;
        out.push((digest, id));
    }
    Ok(out)
}

/// Validates a rater name: 1 to 100 characters, no control characters.
pub fn check_name(name: &str) -> Result<()> {
    let n = name.chars().count();
    if n == 0 || n > 100 || name.chars().any(char::is_control) || name.trim() != name {
        return Err(LabelError::invalid(
            "name",
            "1 to 100 characters, no control characters or surrounding spaces",
        ));
    }
    Ok(())
}

impl Store {
    /// Adds a rater named `name` and returns their token (shown once).
    pub fn add_rater(&self, name: &str) -> Result<NewRater> {
        check_name(name)?;
        let token = new_token();
        let digest = hash_token(&token);
        let name = name.to_string();
        let id = self.write(move |conn| {
            let inserted = conn.execute(
                "INSERT INTO raters (name, token_sha256, status, created) VALUES (?1, ?2, 'active', ?3) \
                 ON CONFLICT (name) DO NOTHING",
                params![name, &digest[..], now_ms()],
            )?;
            if inserted == 0 {
                return Err(LabelError::Conflict(format!(
                    "a rater named `{name}` already exists"
                )));
            }
            Ok(conn.last_insert_rowid())
        })?;
        self.auth
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .raters
            .push((digest, id));
        Ok(NewRater {
            rater_id: rater_key(id),
            token,
        })
    }

    /// Sets the admin token (its digest replaces any earlier one).
    pub fn set_admin_token(&self, token: &str) -> Result<()> {
        if token.len() < 16 {
            return Err(LabelError::invalid("admin token", "at least 16 characters"));
        }
        let digest = hash_token(token);
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![ADMIN_KEY, &digest[..]],
            )?;
            Ok(())
        })?;
        self.auth.write().unwrap_or_else(|p| p.into_inner()).admin = Some(digest);
        Ok(())
    }

    /// Creates an admin token if the database has none, returning it (to print once); `None`
    /// when one was set before.
    pub fn ensure_admin_token(&self) -> Result<Option<String>> {
        if self.read(admin_hash)?.is_some() {
            return Ok(None);
        }
        let token = new_token();
        self.set_admin_token(&token)?;
        Ok(Some(token))
    }

    /// A rater's view of themselves.
    pub fn rater_self(&self, rater: i64) -> Result<RaterSelf> {
        self.read(|conn| {
            let (name, status): (String, String) = conn.query_row(
                "SELECT name, status FROM raters WHERE id = ?1",
                [rater],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let (labels, gold_seen): (i64, i64) = conn.query_row(
                "SELECT COUNT(*), COALESCE(SUM(t.is_gold), 0) FROM labels l \
                 JOIN assignments a ON a.id = l.assignment_id JOIN tasks t ON t.id = a.task_id \
                 WHERE a.rater_id = ?1",
                [rater],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok(RaterSelf {
                rater_id: rater_key(rater),
                name,
                status: RaterStatus::from_name(&status)?,
                labels: labels as u64,
                gold_seen: gold_seen as u64,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::Principal;
    use super::super::test_support::temp_store;

    #[test]
    fn tokens_authenticate_their_owner_only() {
        let (store, dir) = temp_store("raters");
        let alice = store.add_rater("alice").unwrap();
        let bob = store.add_rater("bob").unwrap();
        assert!(store.add_rater("alice").is_err());
        assert!(store.add_rater("").is_err());
        let admin = store.ensure_admin_token().unwrap().unwrap();
        assert_eq!(store.ensure_admin_token().unwrap(), None);
        assert_eq!(
            store.authenticate(&alice.token).unwrap(),
            Some(Principal::Rater(1))
        );
        assert_eq!(
            store.authenticate(&bob.token).unwrap(),
            Some(Principal::Rater(2))
        );
        assert_eq!(store.authenticate(&admin).unwrap(), Some(Principal::Admin));
        assert_eq!(store.authenticate("guess").unwrap(), None);
        // A second process (another Store on the same file) sees raters added later.
        let other = super::Store::open(store.path()).unwrap();
        let carol = store.add_rater("carol").unwrap();
        assert_eq!(
            other.authenticate(&carol.token).unwrap(),
            Some(Principal::Rater(3))
        );
        assert_eq!(store.rater_self(1).unwrap().name, "alice");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
