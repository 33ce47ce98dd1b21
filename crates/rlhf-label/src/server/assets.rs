//! The pages and their scripts and styles, embedded in the binary (no external assets).

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// One embedded file.
pub struct Asset {
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its text.
    pub body: &'static str,
}

impl IntoResponse for &'static Asset {
    fn into_response(self) -> Response {
        let mut response = self.body.into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        response
    }
}

macro_rules! asset {
    ($name:ident, $file:literal, $type:literal) => {
        /// `assets/` file served by the app.
        pub static $name: Asset = Asset {
            content_type: $type,
            body: include_str!(concat!("../../assets/", $file)),
        };
    };
}

asset!(INDEX_HTML, "index.html", "text/html; charset=utf-8");
asset!(RATE_HTML, "rate.html", "text/html; charset=utf-8");
asset!(ADMIN_HTML, "admin.html", "text/html; charset=utf-8");
asset!(APP_JS, "app.js", "text/javascript; charset=utf-8");
asset!(ADMIN_JS, "admin.js", "text/javascript; charset=utf-8");
asset!(COMMON_JS, "common.js", "text/javascript; charset=utf-8");
asset!(STYLE_CSS, "style.css", "text/css; charset=utf-8");
