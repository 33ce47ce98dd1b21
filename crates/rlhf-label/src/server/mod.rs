//! The HTTP server (axum): pages, the rater API, the admin API, security headers, graceful
//! shutdown. Database work runs on tokio's blocking pool, never on the async workers.
//!
//! Parts: [`auth`] (bearer tokens), [`rater`] (`/api/me`, `/api/task/next`, `/api/label`),
//! [`admin`] (`/api/admin/*`), [`assets`] (embedded pages), [`errors`] (JSON error bodies).

pub mod admin;
pub mod assets;
pub mod auth;
pub mod errors;
pub mod rater;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;

use crate::config::ServeConfig;
use crate::error::{LabelError, Result};
use crate::store::Store;
use errors::ApiError;

/// Largest request body accepted (413 beyond).
pub const BODY_LIMIT: usize = 64 * 1024;

/// The Content-Security-Policy of every response.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                       img-src 'self' data:; frame-ancestors 'none'";

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Arc<Store>,
    /// The session's settings.
    pub config: Arc<ServeConfig>,
}

/// Runs `f` on the blocking pool; database errors become API errors.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(join) => {
            eprintln!("rlhf-label: a database task failed: {join}");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error; see the server log",
            ))
        }
    }
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn api_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such API route")
}

/// The application's routes.
pub fn router(state: AppState) -> Router {
    let page = |asset: &'static assets::Asset| get(move || async move { asset.into_response() });
    Router::new()
        .route("/", page(&assets::INDEX_HTML))
        .route("/rate", page(&assets::RATE_HTML))
        .route("/admin", page(&assets::ADMIN_HTML))
        .route("/static/app.js", page(&assets::APP_JS))
        .route("/static/admin.js", page(&assets::ADMIN_JS))
        .route("/static/common.js", page(&assets::COMMON_JS))
        .route("/static/style.css", page(&assets::STYLE_CSS))
        .route("/api/me", get(rater::me))
        .route("/api/task/next", get(rater::next_task))
        .route("/api/label", post(rater::label))
        .route("/api/admin/progress", get(admin::progress))
        .route(
            "/api/admin/raters",
            get(admin::raters).post(admin::add_rater),
        )
        .route("/api/admin/agreement", get(admin::agreement))
        .route("/api/admin/standings", get(admin::standings))
        .route("/api/admin/export", get(admin::export))
        .route("/api/{*rest}", axum::routing::any(api_not_found))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::map_response(errors::json_errors))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// Serves on `listener` until `shutdown` completes, then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
pub async fn ctrl_c() {
    let interrupt = async {
        // Without a signal handler there is nothing to wait for; run until killed.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}

/// A server running on its own thread and runtime (for tests, examples and embedding).
pub struct ServerHandle {
    /// The bound address.
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl ServerHandle {
    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, waits for requests in flight, and joins the thread.
    pub fn shutdown(mut self) -> std::io::Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("server thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Starts a server on `addr` (port 0 picks a free one) on a new thread with `workers` async
/// worker threads; returns once it is listening.
pub fn spawn(
    store: Arc<Store>,
    config: ServeConfig,
    addr: &str,
    workers: usize,
) -> Result<ServerHandle> {
    config.validate()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()
        .map_err(|e| io_error(addr, e))?;
    let listener = runtime
        .block_on(TcpListener::bind(addr))
        .map_err(|e| io_error(addr, e))?;
    let local = listener.local_addr().map_err(|e| io_error(addr, e))?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let state = AppState {
        store,
        config: Arc::new(config),
    };
    let thread = std::thread::Builder::new()
        .name("rlhf-label-server".into())
        .spawn(move || {
            runtime.block_on(serve(listener, state, async {
                let _ = rx.await;
            }))
        })
        .map_err(|e| io_error(addr, e))?;
    Ok(ServerHandle {
        addr: local,
        shutdown: Some(tx),
        thread: Some(thread),
    })
}

fn io_error(addr: &str, source: std::io::Error) -> LabelError {
    LabelError::Io {
        file: addr.into(),
        action: "cannot serve on",
        source,
    }
}

/// Serves on `addr` with `workers` async threads until Ctrl-C or SIGTERM, calling `listening`
/// with the bound address first (what `rlhf label serve` runs).
pub fn run_until_signal(
    store: Arc<Store>,
    config: ServeConfig,
    addr: &str,
    workers: usize,
    listening: impl FnOnce(SocketAddr),
) -> Result<()> {
    config.validate()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()
        .map_err(|e| io_error(addr, e))?;
    runtime.block_on(async {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| io_error(addr, e))?;
        listening(listener.local_addr().map_err(|e| io_error(addr, e))?);
        let state = AppState {
            store,
            config: Arc::new(config),
        };
        serve(listener, state, ctrl_c())
            .await
            .map_err(|e| io_error(addr, e))
    })
}
