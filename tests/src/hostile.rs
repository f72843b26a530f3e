//! The hostile server: the real server behind a proxy that a test programs to lie. Quorate's
//! threat model makes the API server, its database and its object store the attacker, so
//! every check a device makes is tested by pointing the device (its `server` URL) at this
//! proxy and rewriting what the honest server answers: a body, a header, a status, per
//! route. Tampering with the database and the object store directly is done through the
//! [`crate::Server`]'s `app` and `data_dir()`.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
};

use axum::{body::Body, extract::Request, response::Response};

/// One answer of the honest server, as the proxy is about to pass it on.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The headers (hop-by-hop ones and `content-length` are set again when sent).
    pub headers: reqwest::header::HeaderMap,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON (panics when it is not: a rule for a JSON route was expected).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("the answer is not JSON ({error})"))
    }

    /// Replaces the body with `value`.
    pub fn set_json(&mut self, value: &serde_json::Value) {
        self.body = serde_json::to_vec(value).unwrap();
    }
}

/// The request an answer is for.
#[derive(Debug, Clone)]
pub struct Asked {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query, if any.
    pub query: Option<String>,
}

type Edit = Arc<dyn Fn(&Asked, &mut Answer) + Send + Sync>;

struct Rule {
    method: String,
    pattern: String,
    edit: Edit,
    served: Arc<AtomicUsize>,
    /// Whether the request reaches the honest server at all (a server that drops a request
    /// answers without storing anything).
    forward: bool,
    /// Whether every matching request counts, changed or not (see [`HostileProxy::watch`]).
    count_every: bool,
}

/// How many answers a rule has changed (an answer the rule left as it was does not count): a
/// test asserts it is not zero, so that a device's refusal is shown to come from the lie and
/// not from some other route.
#[derive(Debug, Clone)]
pub struct Served(Arc<AtomicUsize>);

impl Served {
    /// Answers rewritten so far.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A proxy on port 0 in front of a real server. Dropping it stops it.
pub struct HostileProxy {
    /// Where devices reach it (`http://127.0.0.1:PORT`).
    pub url: String,
    rules: Arc<Mutex<Vec<Rule>>>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for HostileProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostileProxy")
            .field("url", &self.url)
            .field("rules", &self.rules.lock().unwrap().len())
            .finish()
    }
}

impl Drop for HostileProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether `path` matches `pattern`: segment by segment, `*` standing for any one segment
/// and a final `**` for any rest.
fn matches(pattern: &str, path: &str) -> bool {
    let mut wanted = pattern.trim_end_matches('/').split('/');
    let mut got = path.trim_end_matches('/').split('/');
    loop {
        match (wanted.next(), got.next()) {
            (Some("**"), _) => return true,
            (Some(want), Some(have)) if want == "*" || want == have => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

impl HostileProxy {
    /// Starts a proxy that, until told otherwise, passes everything to `upstream` unchanged.
    pub async fn start(upstream: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let rules: Arc<Mutex<Vec<Rule>>> = Arc::default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let upstream = upstream.trim_end_matches('/').to_owned();
        let shared = Arc::clone(&rules);
        let router = axum::Router::new().fallback(move |request: Request| {
            let (http, upstream, rules) = (http.clone(), upstream.clone(), Arc::clone(&shared));
            async move { forward(&http, &upstream, &rules, request).await }
        });
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self { url, rules, task }
    }

    /// From now on, answers to `method` `path` (a pattern: see [`matches`]) are passed
    /// through `edit` before the device sees them. Rules apply in the order they were added.
    pub fn rewrite(
        &self,
        method: &str,
        path: &str,
        edit: impl Fn(&Asked, &mut Answer) + Send + Sync + 'static,
    ) -> Served {
        self.add(method, path, true, false, Arc::new(edit))
    }

    /// Counts the requests to `method` `path` without changing anything: to show that a
    /// device sent nothing there.
    pub fn watch(&self, method: &str, path: &str) -> Served {
        self.add(method, path, true, true, Arc::new(|_, _| {}))
    }

    /// From now on, requests to `method` `path` never reach the honest server: the proxy
    /// answers `status` with an error body itself (a server that silently drops what a device
    /// sends).
    pub fn drop_requests(&self, method: &str, path: &str, status: u16) -> Served {
        self.add(
            method,
            path,
            false,
            true,
            Arc::new(move |_, answer: &mut Answer| {
                answer.status = status;
                answer.headers.clear();
                answer.headers.insert(
                    reqwest::header::CONTENT_TYPE,
                    "application/json".parse().unwrap(),
                );
                answer.body = br#"{"code":"unavailable","message":"try again later"}"#.to_vec();
            }),
        )
    }

    fn add(
        &self,
        method: &str,
        path: &str,
        forward: bool,
        count_every: bool,
        edit: Edit,
    ) -> Served {
        let served = Arc::new(AtomicUsize::new(0));
        self.rules.lock().unwrap().push(Rule {
            method: method.to_ascii_uppercase(),
            pattern: path.to_owned(),
            edit,
            served: Arc::clone(&served),
            forward,
            count_every,
        });
        Served(served)
    }

    /// [`HostileProxy::rewrite`] for a JSON body, left alone when the answer is an error.
    pub fn rewrite_json(
        &self,
        method: &str,
        path: &str,
        edit: impl Fn(&mut serde_json::Value) + Send + Sync + 'static,
    ) -> Served {
        self.rewrite(method, path, move |_, answer| {
            if (200..300).contains(&answer.status) {
                let mut value = answer.json();
                edit(&mut value);
                answer.set_json(&value);
            }
        })
    }

    /// Stops lying: every answer passes unchanged again.
    pub fn clear(&self) {
        self.rules.lock().unwrap().clear();
    }
}

/// Headers that belong to one connection, not to the message.
fn hop_by_hop(name: &reqwest::header::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "transfer-encoding" | "upgrade" | "content-length" | "host"
    )
}

async fn forward(
    http: &reqwest::Client,
    upstream: &str,
    rules: &Mutex<Vec<Rule>>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let asked = Asked {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
    };
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let (edits, forward) = {
        let rules = rules.lock().unwrap();
        let applying: Vec<&Rule> = rules
            .iter()
            .filter(|rule| rule.method == asked.method && matches(&rule.pattern, &asked.path))
            .collect();
        let forward = applying.iter().all(|rule| rule.forward);
        let edits: Vec<(Edit, Arc<AtomicUsize>, bool)> = applying
            .iter()
            .map(|rule| {
                (
                    Arc::clone(&rule.edit),
                    Arc::clone(&rule.served),
                    rule.count_every,
                )
            })
            .collect();
        (edits, forward)
    };
    let mut answer = if forward {
        let target = match &asked.query {
            Some(query) => format!("{upstream}{}?{query}", asked.path),
            None => format!("{upstream}{}", asked.path),
        };
        let mut outgoing = http.request(parts.method.clone(), target).body(body);
        for (name, value) in &parts.headers {
            if !hop_by_hop(name) {
                outgoing = outgoing.header(name, value);
            }
        }
        let honest = outgoing.send().await.unwrap();
        Answer {
            status: honest.status().as_u16(),
            headers: honest.headers().clone(),
            body: honest.bytes().await.unwrap().to_vec(),
        }
    } else {
        Answer {
            status: 502,
            headers: reqwest::header::HeaderMap::new(),
            body: Vec::new(),
        }
    };
    for (edit, served, count_every) in edits {
        let before = answer.clone();
        edit(&asked, &mut answer);
        let changed = answer.status != before.status
            || answer.headers != before.headers
            || answer.body != before.body;
        if changed || count_every {
            served.fetch_add(1, Ordering::SeqCst);
        }
    }
    let mut response = Response::builder().status(answer.status);
    for (name, value) in &answer.headers {
        if !hop_by_hop(name) {
            response = response.header(name, value);
        }
    }
    response.body(Body::from(answer.body)).unwrap()
}

/// A copy of `device` (its identity, pins and sessions, so what it verified before counts)
/// that reaches the server through `proxy`.
pub fn through(device: &crate::Device, proxy: &HostileProxy) -> crate::Device {
    let copy = crate::Device::at(&proxy.url);
    copy_folder(device.folder.path(), copy.folder.path());
    copy
}

fn copy_folder(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_folder(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn patterns_match_by_segment() {
        assert!(matches(
            "/api/v1/vaults/*/nodes/*",
            "/api/v1/vaults/v1/nodes/n2"
        ));
        assert!(!matches(
            "/api/v1/vaults/*/nodes/*",
            "/api/v1/vaults/v1/nodes"
        ));
        assert!(!matches(
            "/api/v1/vaults/*/nodes",
            "/api/v1/vaults/v1/nodes/n2"
        ));
        assert!(matches("/api/v1/vaults/**", "/api/v1/vaults/v1/nodes/n2"));
        assert!(matches("/api/v1/me", "/api/v1/me/"));
    }
}
