//! Prometheus metrics, served on their own listener so they never share the API's port:
//! request counts by route template and status class, and failed sign-ins. Labels carry
//! route templates only, never IDs or arguments.

use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use axum::{
    Router,
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::Response,
    routing::get,
};

use crate::App;

/// The counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, &'static str), u64>>,
    sign_in_failures: AtomicU64,
}

impl Metrics {
    /// Counts a failed sign-in.
    pub fn sign_in_failed(&self) {
        self.sign_in_failures.fetch_add(1, Ordering::Relaxed);
    }

    fn request(&self, route: &str, status: u16) {
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        let mut requests = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *requests.entry((route.to_owned(), class)).or_default() += 1;
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP quorate_build_info The running version.\n# TYPE quorate_build_info gauge"
        );
        let _ = writeln!(
            out,
            "quorate_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        let _ = writeln!(
            out,
            "# HELP quorate_http_requests_total API requests by route template and status class."
        );
        let _ = writeln!(out, "# TYPE quorate_http_requests_total counter");
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for ((route, class), count) in requests.iter() {
            let _ = writeln!(
                out,
                "quorate_http_requests_total{{route=\"{route}\",status=\"{class}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP quorate_sign_in_failures_total Failed sign-in attempts."
        );
        let _ = writeln!(out, "# TYPE quorate_sign_in_failures_total counter");
        let _ = writeln!(
            out,
            "quorate_sign_in_failures_total {}",
            self.sign_in_failures.load(Ordering::Relaxed)
        );
        out
    }
}

/// Middleware counting every API response.
pub(crate) async fn count(State(app): State<App>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let response = next.run(request).await;
    app.metrics.request(&route, response.status().as_u16());
    response
}

/// The metrics listener's router: `GET /metrics`.
pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(app): State<App>| async move { app.metrics.render() }),
        )
        .with_state(app)
}
