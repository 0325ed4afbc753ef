//! The dashboard's built files (web/dist), with index.html for every other path so the
//! single-page app can route.

use std::path::{Component, Path, PathBuf};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::Hub;

/// Where the dashboard is looked for when `--web` is not given: next to the binary's
/// workspace (target/<profile>/reef → web/dist) and in the working directory.
pub fn find_web_dir() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        for up in exe.ancestors().skip(1).take(4) {
            candidates.push(up.join("web/dist"));
        }
    }
    candidates.push(PathBuf::from("web/dist"));
    candidates
        .into_iter()
        .find(|d| d.join("index.html").is_file())
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

const NOT_BUILT: &str = "<!doctype html><title>Reef</title><h1>Reef hub</h1>\
<p>The dashboard is not built. Run <code>scripts/setup</code> (or <code>npm ci &amp;&amp; npm run build</code> in <code>web/</code>), \
or pass <code>--web DIR</code>. The API is at <code>/api/…</code> and <code>/ws</code> (schemas/hub-api.md).</p>";

pub async fn serve(State(hub): State<Hub>, req: Request) -> Response {
    let Some(dir) = hub.0.config.web_dir.as_deref() else {
        return Html(NOT_BUILT).into_response();
    };
    let rel = req.uri().path().trim_start_matches('/');
    // Only plain names: no `..`, no absolute paths.
    let safe = Path::new(rel)
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    if rel.starts_with("api/") || !safe {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    }
    let mut path = dir.join(rel);
    if rel.is_empty() || !path.is_file() {
        path = dir.join("index.html");
    }
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let cache = if path.starts_with(dir.join("assets")) {
                // Vite names assets by content hash.
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            (
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static(content_type(&path)),
                    ),
                    (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
                ],
                bytes,
            )
                .into_response()
        }
        Err(_) => Html(NOT_BUILT).into_response(),
    }
}
