//! # rlhf-label
//!
//! A labeling web app that collects human feedback the way InstructGPT's and Sparrow's labelers
//! gave it: raters rank K responses (or pick one of two), answer multiple-choice questions, tick
//! the rules a response breaks and leave a note; hidden gold items screen them; the researcher
//! watches accuracy, agreement and standings live and exports the data in the field's formats.
//!
//! Parts:
//! - [`task`], [`load`]: tasks (prompt, K responses, questions, rules, mode, gold answer,
//!   priority) and reading them from our task JSONL or any pair / ranking file of rlhf-data;
//! - [`store`]: SQLite storage (WAL, `synchronous=FULL`, one transaction per submission,
//!   migrations), assignment of tasks, idempotent submissions, screening;
//! - [`server`]: the axum app (pages, rater API, admin API, security headers, JSON errors,
//!   64 KiB body limit, graceful shutdown); [`token`]: bearer tokens (SHA-256 at rest,
//!   constant-time comparison);
//! - [`stats`]: progress, gold accuracy with Wilson intervals, Krippendorff's alpha, Fleiss'
//!   kappa, Elo and Bradley–Terry standings (all from rlhf-raters);
//! - [`export`]: hh / trl / kway / labels-csv through rlhf-data's writers;
//! - [`config`], [`error`]: session settings and errors.
//!
//! Dependencies: axum + tokio (HTTP), rusqlite with the `bundled` SQLite (WAL with
//! `synchronous=FULL` makes every acknowledged label durable without a database server, and
//! nothing needs installing), sha2 and subtle (token digests, constant-time comparison), rand
//! (tokens from the OS generator), serde_json, csv, thiserror.
//!
//! ```no_run
//! use std::sync::Arc;
//! use rlhf_label::{ServeConfig, Store, load::TaskRole, server};
//! let store = Arc::new(Store::open("labels.sqlite".as_ref())?);
//! store.load_tasks("tasks.jsonl".as_ref(), TaskRole::Tasks)?;
//! let alice = store.add_rater("alice")?;
//! println!("alice's token: {}", alice.token);
//! let handle = server::spawn(store, ServeConfig::default(), "127.0.0.1:8080", 2)?;
//! println!("serving on {}", handle.url());
//! # Ok::<(), rlhf_label::LabelError>(())
//! ```

#![warn(missing_docs)]

pub mod config;
pub mod error;
pub mod export;
pub mod load;
pub mod server;
pub mod stats;
pub mod store;
pub mod task;
pub mod token;

pub use config::ServeConfig;
pub use error::{LabelError, Result};
pub use export::{ExportFormat, export};
pub use store::Store;
