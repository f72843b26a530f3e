//! Prometheus metrics, served on their own listener so they never share the API's port:
//! this process's request counts by route template and status class and its failed sign-ins,
//! and the state all replicas share, read from the database at each scrape (uploads open,
//! jobs by status, the queue's age, lapsed leases: take their `max` over replicas, not their
//! sum). Labels carry route templates and fixed words only, never IDs or arguments.

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

use crate::{App, now, store};

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

    /// The Prometheus text exposition, with what this process's job bell tells.
    pub fn render(&self, bell: &crate::store::bell::JobBell) -> String {
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
        let _ = writeln!(
            out,
            "# HELP quorate_job_claims_waiting Nodes' claims waiting on this replica for a job.\n\
             # TYPE quorate_job_claims_waiting gauge\nquorate_job_claims_waiting {}",
            bell.waiting()
        );
        let _ = writeln!(
            out,
            "# HELP quorate_job_bell_rings_total Times this replica heard of a job queued or handed back (on any replica).\n\
             # TYPE quorate_job_bell_rings_total counter\nquorate_job_bell_rings_total {}",
            bell.rings()
        );
        out
    }
}

/// The shared state in the exposition format; `quorate_database_up 0` when no connection to
/// the database could be had.
async fn render_shared(app: &App) -> String {
    let (up, snapshot) = match app.db.connection().await {
        Ok(mut connection) => {
            let snapshot = store::metrics::snapshot(&mut connection, now()).await;
            if let Err(error) = &snapshot {
                tracing::warn!(%error, "the metrics' shared state could not be read");
            }
            (true, snapshot.ok())
        }
        Err(error) => {
            tracing::warn!(%error, "no database connection for the metrics");
            (false, None)
        }
    };
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, values: &[(&str, i64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, value) in values {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    gauge(
        "quorate_database_up",
        "Whether the database answered this scrape.",
        &[("", i64::from(up))],
    );
    let Some(shared) = snapshot else {
        return out;
    };
    gauge(
        "quorate_uploads_open",
        "Uploads not yet complete (all replicas): with a length, and live ones without one yet.",
        &[
            ("{kind=\"sized\"}", shared.uploads_sized),
            ("{kind=\"live\"}", shared.uploads_live),
        ],
    );
    gauge(
        "quorate_jobs",
        "Transcription and release jobs by status (all replicas).",
        &[
            ("{status=\"queued\"}", shared.jobs_queued),
            ("{status=\"leased\"}", shared.jobs_leased),
            ("{status=\"done\"}", shared.jobs_done),
            ("{status=\"failed\"}", shared.jobs_failed),
        ],
    );
    gauge(
        "quorate_job_queue_oldest_seconds",
        "How long the oldest queued job has waited for a node (0 when none waits).",
        &[(
            "",
            shared.oldest_queued_at.map_or(0, |at| (now() - at).max(0)),
        )],
    );
    gauge(
        "quorate_job_leases_lapsed",
        "Leased jobs whose node stopped renewing the lease; the next claim takes them back.",
        &[("", shared.leases_lapsed)],
    );
    out
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
            get(|State(app): State<App>| async move {
                app.metrics.render(app.db.job_bell()) + &render_shared(&app).await
            }),
        )
        .with_state(app)
}
