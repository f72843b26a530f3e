//! `quorate-server`: parses arguments, loads the configuration, installs tracing and runs.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use quorate_server::{
    App, Db,
    config::{self, Settings},
};

#[derive(Debug, Parser)]
#[command(
    name = "quorate-server",
    version,
    about = "The Quorate API server: holds ciphertext, never a key."
)]
struct Cli {
    /// A TOML configuration file (see `default-config`).
    #[arg(long, env = "QUORATE_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print a documented example configuration.
    DefaultConfig,
    /// Print the OpenAPI document of the HTTP API (JSON).
    Openapi,
    /// Ask the server this configuration describes whether it is ready (`GET /readyz` on its
    /// listen address, loopback when it listens on every address); exit 0 when it is. For
    /// container health checks, in images that have no curl.
    Probe,
}

fn load(cli: &Cli) -> Result<config::Config, String> {
    let file = match &cli.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|error| {
                format!(
                    "cannot read the configuration file {}: {error}",
                    path.display()
                )
            })?;
            Settings::from_toml(&text).map_err(|error| format!("{}: {error}", path.display()))?
        }
        None => Settings::default(),
    };
    let env =
        Settings::from_env(|name| std::env::var(name).ok()).map_err(|error| error.to_string())?;
    Settings::default()
        .merge(file)
        .merge(env)
        .merge(cli.settings.clone())
        .resolve(
            std::env::var_os("HOME").map(PathBuf::from),
            std::env::var_os("XDG_DATA_HOME").map(PathBuf::from),
        )
        .map_err(|error| error.to_string())
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// `GET /readyz` on the server listening at `listen` (over TLS when it serves `tls`, taking
/// whatever certificate it presents: see [`quorate_server::tls::AnyCertificate`]): `Ok` when
/// it answers 200 within five seconds.
async fn probe(
    listen: std::net::SocketAddr,
    tls: Option<&quorate_server::tls::TlsFiles>,
) -> Result<(), String> {
    let mut address = listen;
    if address.ip().is_unspecified() {
        address.set_ip(match address {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let connector = tls.map(|_| {
        tokio_rustls::TlsConnector::from(std::sync::Arc::new(
            quorate_server::tls::AnyCertificate::client_config(),
        ))
    });
    let asked = async {
        let stream = tokio::net::TcpStream::connect(address).await?;
        match connector {
            Some(connector) => {
                let name = rustls::pki_types::ServerName::IpAddress(address.ip().into());
                ask_ready(connector.connect(name, stream).await?, address).await
            }
            None => ask_ready(stream, address).await,
        }
    };
    let answer = tokio::time::timeout(std::time::Duration::from_secs(5), asked)
        .await
        .map_err(|_| format!("the server at {address} did not answer within 5 s"))?
        .map_err(|error| format!("cannot reach the server at {address}: {error}"))?;
    let status = String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    if status.split_whitespace().nth(1) == Some("200") {
        println!("ready: {address}");
        Ok(())
    } else {
        Err(format!("the server at {address} is not ready: {status}"))
    }
}

/// Sends `GET /readyz` on `stream` and reads the whole answer.
async fn ask_ready(
    mut stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    address: std::net::SocketAddr,
) -> std::io::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = format!("GET /readyz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer).await {
        // A TLS peer that closes without a close_notify has still said all it had to.
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => {
            Ok(answer)
        }
        read => read.map(|_| answer),
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    if matches!(cli.command, Some(Command::DefaultConfig)) {
        print!("{}", config::EXAMPLE);
        return Ok(());
    }
    if matches!(cli.command, Some(Command::Openapi)) {
        let document = quorate_server::openapi_document()
            .to_pretty_json()
            .map_err(|error| format!("cannot write the OpenAPI document: {error}"))?;
        println!("{document}");
        return Ok(());
    }
    let config = load(&cli)?;
    if matches!(cli.command, Some(Command::Migrate)) {
        let db = Db::connect(&config.database_url)
            .await
            .map_err(|error| error.to_string())?;
        db.migrate().await.map_err(|error| error.to_string())?;
        println!("migrations applied to {}", config.database_url);
        return Ok(());
    }
    if matches!(cli.command, Some(Command::Probe)) {
        return probe(config.listen, config.tls.as_ref()).await;
    }
    let listen = config.listen;
    tracing::info!(database = %config.database_url, objects = %config.object_store, "starting");
    let (app, codes) = App::start(config)
        .await
        .map_err(|error| error.to_string())?;
    let scheme = if app.config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let hours = app.config.enrolment_code_ttl as f64 / 3600.0;
    for code in &codes {
        // The web UI's Join page does the same in a browser, with no command installed.
        let in_browser = if app.config.web_dir.is_some() {
            format!(
                "or in a browser:\n    {scheme}://{listen}/#/join?code={}\n",
                code.code.as_str()
            )
        } else {
            String::new()
        };
        println!(
            "\nFirst-admin enrolment code for vault {}:\n\n    {}\n\nIt works once, within {hours:.1} hours (until Unix time {}); restarting the server\nreplaces it. Enrol with:\n    quorate enroll --server {scheme}://{listen} --code {}\n{in_browser}",
            code.vault_id,
            code.code.as_str(),
            code.expires_at,
            code.code.as_str(),
        );
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|error| {
            format!("cannot listen on {listen}: {error} (choose another with --listen)")
        })?;
    if !listen.ip().is_loopback()
        && app.config.trusted_proxies.is_empty()
        && app.config.tls.is_none()
    {
        // Sessions and enrolment codes would cross the network in the clear.
        tracing::warn!(
            %listen,
            "serving plain HTTP beyond loopback with no trusted proxy: serve HTTPS (tls-certificate and tls-key), or put a TLS terminator in front and name it in trusted-proxies (docs/OPERATIONS.md, TLS)"
        );
    }
    tracing::info!(%listen, "listening");
    match &app.config.web_dir {
        Some(dir) => {
            println!(
                "Web UI at {scheme}://{listen}/ (from {}); members sign in there with their identity file.",
                dir.display()
            );
            for code in &codes {
                println!(
                    "Sign-in link for vault {0}: {scheme}://{listen}/#/sign-in?vault={0}",
                    code.vault_id
                );
            }
        }
        None => println!(
            "API at {scheme}://{listen}/api/v1 (no web UI: scripts/run.sh builds and serves it)."
        ),
    }
    let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    if let Some(metrics_listen) = app.config.metrics_listen {
        let metrics_listener = tokio::net::TcpListener::bind(metrics_listen).await.map_err(|error| {
            format!("cannot listen for metrics on {metrics_listen}: {error} (choose another with --metrics-listen, or off)")
        })?;
        tracing::info!(%metrics_listen, "metrics at /metrics");
        let metrics_app = app.clone();
        tokio::spawn(async move {
            let stopped = async {
                let _ = metrics_stopped.await;
            };
            if let Err(error) = metrics_app.serve_metrics(metrics_listener, stopped).await {
                tracing::error!(%error, "metrics listener failed");
            }
        });
    }
    let served = app
        .serve(listener, shutdown_signal())
        .await
        .map_err(|error| error.to_string());
    let _ = stop_metrics.send(());
    served
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
