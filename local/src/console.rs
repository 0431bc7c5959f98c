//! The web console: static files embedded in the binary and served at `/` (no build step, no
//! separate server), plus what the page needs to know about this runner.

use std::hash::{Hash, Hasher};

use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use shared::app::Embedded;
use shared::http::{ApiError, AppState};

struct Asset {
    path: &'static str,
    mime: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset { path: "/", mime: "text/html; charset=utf-8", body: include_str!("../console/index.html") },
    Asset { path: "/console/app.js", mime: "text/javascript; charset=utf-8", body: include_str!("../console/app.js") },
    Asset {
        path: "/console/i18n.js",
        mime: "text/javascript; charset=utf-8",
        body: include_str!("../console/i18n.js"),
    },
    Asset { path: "/console/app.css", mime: "text/css; charset=utf-8", body: include_str!("../console/app.css") },
    Asset { path: "/favicon.ico", mime: "image/svg+xml", body: include_str!("../console/icon.svg") },
];

/// Scripts and styles only from this origin; pictures, voice notes and videos also as `blob:`
/// (they are fetched with the bearer token), pictures as `data:`.
const CSP: &str =
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; style-src 'self'; script-src 'self'; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The console answers what no API route claims (the router's fallback): its assets, and at
/// `/console/config.json` what the page needs to know about this runner; anything else is the
/// API's 404. As a fallback rather than routes of their own, the assets add nothing to the
/// route table every request walks; with them as routes, a thousand event streams held 15 MB
/// more (`live-bench`).
pub struct Console {
    state: AppState,
    flags: serde_json::Value,
    etags: Vec<String>,
}

impl Console {
    pub fn new(state: AppState, embedded: &Embedded) -> Console {
        let flags = json!({ "sandbox": embedded.sandbox.is_some(), "dev_clock": embedded.dev_clock.is_some() });
        Console { state, flags, etags: ASSETS.iter().map(|a| etag(a.body)).collect() }
    }

    pub fn answer(&self, method: &Method, path: &str, headers: &HeaderMap) -> Response {
        if method != Method::GET && method != Method::HEAD {
            return ApiError::NotFound.into_response();
        }
        if path == "/console/config.json" {
            let mut config = self.flags.clone();
            config["now"] = json!(self.state.ports.clock.now().unix_timestamp());
            config["business_name"] = json!(self.state.config.settings.business_name);
            return ([(header::CACHE_CONTROL, "no-store")], Json(config)).into_response();
        }
        match ASSETS.iter().position(|a| a.path == path) {
            Some(i) => serve(&ASSETS[i], &self.etags[i], headers),
            None => ApiError::NotFound.into_response(),
        }
    }
}

/// The router's fallback: the console, or 404.
pub fn fallback(console: Arc<Console>) -> impl Fn(Method, Uri, HeaderMap) -> std::future::Ready<Response> + Clone {
    move |method, uri, headers| std::future::ready(console.answer(&method, uri.path(), &headers))
}

fn etag(body: &str) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut h);
    format!("\"{:016x}\"", h.finish())
}

/// The asset, or 304 when the browser has this version (it asks again each time: `no-cache`).
fn serve(asset: &Asset, etag: &str, headers: &HeaderMap) -> Response {
    let fresh = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag);
    let common = [
        (header::ETAG, HeaderValue::from_str(etag).unwrap_or(HeaderValue::from_static("\"\""))),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (common, [(header::CONTENT_TYPE, asset.mime)], asset.body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_the_page_names_is_served() {
        let index = ASSETS[0].body;
        for name in ["/console/app.js", "/console/i18n.js", "/console/app.css"] {
            assert!(index.contains(name), "index.html does not load {name}");
            assert!(ASSETS.iter().any(|a| a.path == name));
        }
    }

    #[test]
    fn the_assets_stay_small() {
        let total: usize = ASSETS.iter().map(|a| a.body.len()).sum();
        assert!(total <= 200 * 1024, "the console's assets are {total} bytes");
    }
}
