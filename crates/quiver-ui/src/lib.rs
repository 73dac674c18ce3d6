//! The web catalog: the files under `ui/` compiled into the binary, and the routes that
//! serve them, so `quiver serve` needs no front-end build step or install.
//!
//! - `/` and client-side routes (`/features/NAME`, `/search?q=…`, `/jobs`, …) answer
//!   `index.html`; the page's own script draws the route. Which unmatched requests get
//!   the page is decided by [`wants_page`], which the API's fallback asks, so API paths
//!   keep their JSON 404 problems.
//! - `/ui/FILE` answers one embedded asset with its content type. Our own files are
//!   revalidated on every load (`no-cache` plus an `ETag`) because their names do not
//!   change between releases; the vendored libraries carry their version in the file name
//!   and are cached for a year.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// One embedded file.
struct Asset {
    /// Path under `/ui/`.
    path: &'static str,
    bytes: &'static [u8],
}

macro_rules! assets {
    ($($path:literal),* $(,)?) => {
        &[$(Asset { path: $path, bytes: include_bytes!(concat!("../../../ui/", $path)) }),*]
    };
}

/// Every file the page loads. `tests::every_ui_file_is_embedded` checks that no file of
/// `ui/` is forgotten here.
static ASSETS: &[Asset] = assets![
    "index.html",
    "style.css",
    "favicon.svg",
    "app.js",
    "api.js",
    "dom.js",
    "home.js",
    "search.js",
    "list.js",
    "detail.js",
    "lineage.js",
    "jobs.js",
    "highlight.js",
    "vendor/cytoscape-3.34.4.esm.min.mjs",
    "vendor/cytoscape-dagre-4.0.1.min.mjs",
    "vendor/cytoscape.LICENSE",
    "vendor/cytoscape-dagre.LICENSE",
];

/// The page itself. Scripts may only come from this server (no inline script), so even
/// a bug that put user text into markup could not run it.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Strong validators, computed once from the bytes (FNV-1a: fast, and collisions between
/// two releases of one file are not a concern for cache revalidation).
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
            for byte in asset.bytes {
                hash ^= u64::from(*byte);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
            format!("\"{hash:016x}\"")
        })
        .collect()
});

/// The routes of the UI: `/`, `/favicon.ico` and `/ui/{*path}`. Generic over the state
/// so the API can merge them into its own router.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/favicon.ico", get(favicon))
        .route("/ui/{*path}", get(asset))
}

/// Whether an unmatched request should get the UI page: a `GET` (or `HEAD`) of a path
/// outside `/api/` and `/ui/` from a client that accepts HTML (a browser navigating).
/// Everything else keeps the API's JSON `404`.
pub fn wants_page(method: &Method, uri: &Uri, headers: &HeaderMap) -> bool {
    let path = uri.path();
    let navigable = (method == Method::GET || method == Method::HEAD)
        && !path.starts_with("/api/")
        && path != "/api"
        && !path.starts_with("/ui/");
    let accepts_html = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"));
    navigable && accepts_html
}

/// `index.html`, for `/` and for client-side routes; the script shows a friendly "not
/// found" page itself for a path it does not know.
pub fn page(headers: &HeaderMap) -> Response {
    let mut response = serve(index_position(), headers);
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

fn index_position() -> usize {
    ASSETS
        .iter()
        .position(|a| a.path == "index.html")
        .unwrap_or_default()
}

async fn index(headers: HeaderMap) -> Response {
    page(&headers)
}

/// Some browsers ask for `/favicon.ico` before (or regardless of) the page's
/// `<link rel="icon">`; a 404 there shows up as a console error, so it gets the SVG icon.
async fn favicon(headers: HeaderMap) -> Response {
    match ASSETS.iter().position(|a| a.path == "favicon.svg") {
        Some(position) => serve(position, &headers),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().position(|a| a.path == path) {
        Some(position) => serve(position, &headers),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "no such UI file\n",
        )
            .into_response(),
    }
}

fn serve(position: usize, headers: &HeaderMap) -> Response {
    let asset = &ASSETS[position];
    let etag = ETAGS[position].as_str();
    let cache = if asset.path.starts_with("vendor/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, content_type(asset.path))],
            asset.bytes,
        )
            .into_response()
    };
    let out = response.headers_mut();
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(value) = HeaderValue::from_str(etag) {
        out.insert(header::ETAG, value);
    }
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn content_type(path: &str) -> &'static str {
    let extension = path.rsplit('.').next().unwrap_or_default();
    match extension {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "svg" => "image/svg+xml",
        _ => "text/plain; charset=utf-8",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    fn ui_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui")
    }

    /// Every file of `ui/` the page may load is in [`ASSETS`] (the README and the browser
    /// tests are not served).
    #[test]
    fn every_ui_file_is_embedded() {
        let mut missing = Vec::new();
        for dir in ["", "vendor"] {
            for entry in std::fs::read_dir(ui_dir().join(dir)).expect("read ui/") {
                let entry = entry.expect("entry");
                if !entry.file_type().expect("file type").is_file() {
                    continue;
                }
                let name = entry.file_name().to_string_lossy().into_owned();
                let path = if dir.is_empty() {
                    name
                } else {
                    format!("{dir}/{name}")
                };
                if path != "README.md" && !ASSETS.iter().any(|a| a.path == path) {
                    missing.push(path);
                }
            }
        }
        assert!(missing.is_empty(), "not embedded: {missing:?}");
    }

    async fn get(uri: &str, headers: &[(&str, &str)]) -> Response {
        let mut request = Request::builder().uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        router::<()>()
            .oneshot(request.body(Body::empty()).expect("request"))
            .await
            .expect("infallible")
    }

    #[tokio::test]
    async fn serves_the_page_and_assets_with_types_and_caching() {
        let index = get("/", &[]).await;
        assert_eq!(index.status(), StatusCode::OK);
        assert_eq!(
            index.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert!(index
            .headers()
            .contains_key(header::CONTENT_SECURITY_POLICY));

        let script = get("/ui/app.js", &[]).await;
        assert_eq!(
            script.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert_eq!(script.headers()[header::CACHE_CONTROL], "no-cache");
        let etag = script.headers()[header::ETAG].to_str().unwrap().to_string();
        let again = get("/ui/app.js", &[("if-none-match", &etag)]).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

        let vendor = get("/ui/vendor/cytoscape-3.34.4.esm.min.mjs", &[]).await;
        assert!(vendor.headers()[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("immutable"));
        let icon = get("/favicon.ico", &[]).await;
        assert_eq!(icon.status(), StatusCode::OK);
        assert_eq!(icon.headers()[header::CONTENT_TYPE], "image/svg+xml");
        assert_eq!(
            get("/ui/nope.js", &[]).await.status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            get("/ui/../Cargo.toml", &[]).await.status(),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn only_browser_navigation_outside_the_api_gets_the_page() {
        let html = {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_static("text/html,*/*"));
            h
        };
        let json = HeaderMap::new();
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert!(wants_page(&Method::GET, &uri("/features/x"), &html));
        assert!(wants_page(&Method::GET, &uri("/search?q=a"), &html));
        assert!(!wants_page(&Method::GET, &uri("/features/x"), &json));
        assert!(!wants_page(&Method::GET, &uri("/api/v1/nope"), &html));
        assert!(!wants_page(&Method::POST, &uri("/features/x"), &html));
        assert!(!wants_page(&Method::GET, &uri("/ui/missing.js"), &html));
    }
}
