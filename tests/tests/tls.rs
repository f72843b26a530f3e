//! The devices reach a server behind a real TLS terminator (Debian's Caddy, as in
//! `infra/compose/compose.scale.yaml`) whose certificate a private authority signed. Given
//! that authority's certificate (`--ca-file`, `QUORATE_CA_FILE`), a member enrols and signs in
//! over HTTPS; without it the device refuses the connection, says why, and enrols nothing.
//!
//! The server also serves HTTPS itself (`tls-certificate`, `tls-key`): its health probe
//! speaks TLS, and a renewed certificate is served without a restart, while a renewal whose
//! key does not fit is refused and the certificate in use stays.

use std::path::Path;
use std::process::Command;

use quorate_e2e::caddy::{Caddy, free_port};
use quorate_e2e::server_process::ServerProcess;
use quorate_e2e::{Backend, Device, Server};

fn openssl(folder: &Path, arguments: &[&str]) {
    let made = Command::new("openssl")
        .args(arguments)
        .current_dir(folder)
        .output()
        .expect("openssl is on Debian");
    assert!(
        made.status.success(),
        "openssl {arguments:?}: {}",
        String::from_utf8_lossy(&made.stderr)
    );
}

/// The key options of every certificate here.
const KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
];

/// A private authority (`ca.pem`) and a certificate it signed for 127.0.0.1
/// (`server.pem`, `server.key`), in `folder`.
fn private_authority(folder: &Path) {
    openssl(
        folder,
        &[
            &["req", "-x509"][..],
            &KEY,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=Quorate test authority",
            ],
        ]
        .concat(),
    );
    certificate_for_loopback(folder, "server");
}

/// A new key (`NAME.key`) and a certificate for 127.0.0.1 (`NAME.pem`) that the authority
/// in `folder` signs, as a renewal makes.
fn certificate_for_loopback(folder: &Path, name: &str) {
    let (key, csr, pem) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
    );
    openssl(
        folder,
        &[
            &["req"][..],
            &KEY,
            &["-keyout", &key, "-out", &csr, "-subj", "/CN=127.0.0.1"],
        ]
        .concat(),
    );
    std::fs::write(
        folder.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        folder,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
}

/// Caddy terminating TLS on `port` with the certificate in `folder`, in front of `upstream`.
fn caddy(folder: &Path, port: u16, upstream: std::net::SocketAddr) -> Caddy {
    let config = format!(
        "{{\n\tadmin off\n\tauto_https off\n\tstorage file_system {storage}\n}}\n\
         https://127.0.0.1:{port} {{\n\ttls {folder}/server.pem {folder}/server.key\n\
         \treverse_proxy {upstream}\n}}\n",
        storage = folder.join("caddy").display(),
        folder = folder.display(),
    );
    Caddy::start(folder, &config, port)
}

#[tokio::test]
async fn a_member_enrols_over_tls_with_the_authority_it_was_given_and_refuses_without() {
    let server = Server::start(Backend::Sqlite).await;
    let folder = tempfile::tempdir().unwrap();
    private_authority(folder.path());
    let port = free_port();
    let terminator = caddy(folder.path(), port, server.address);
    let authority = folder.path().join("ca.pem");
    let authority = authority.to_str().unwrap();
    let code = server.codes[0].code.as_str();

    let ada = Device::at(&format!("https://127.0.0.1:{port}"));
    ada.ok(&["keygen"]).await;
    // Without the authority the certificate is not trusted: nothing is sent, and it says so.
    let refused = ada
        .run(&["--json", "enroll", "--code", code, "--name", "Ada"])
        .await;
    assert_eq!(refused.code, 5, "{refused:?}");
    assert!(
        refused.stderr.contains("certificate"),
        "the error names the certificate: {refused:?}"
    );
    // A file that is not a certificate is refused before anything is sent.
    let wrong = ada
        .run(&[
            "--ca-file",
            "/etc/hostname",
            "--json",
            "enroll",
            "--code",
            code,
            "--name",
            "Ada",
        ])
        .await;
    assert_eq!(wrong.code, 2, "{wrong:?}");
    assert!(
        wrong.stderr.contains("holds no PEM certificate"),
        "{wrong:?}"
    );

    let enrolled = ada
        .ok(&[
            "--ca-file",
            authority,
            "--json",
            "enroll",
            "--code",
            code,
            "--name",
            "Ada",
        ])
        .await
        .json();
    assert_eq!(enrolled["role"], "admin");
    let members = ada
        .ok(&["--ca-file", authority, "--json", "members"])
        .await
        .json();
    assert_eq!(members["members"][0]["name"], "Ada", "{members}");

    drop(terminator);
    server.stop().await;
}

/// The DER of `NAME.pem`'s certificate.
fn der(folder: &Path, name: &str) -> Vec<u8> {
    let (pem, der) = (format!("{name}.pem"), format!("{name}.der"));
    openssl(
        folder,
        &["x509", "-in", &pem, "-outform", "DER", "-out", &der],
    );
    std::fs::read(folder.join(der)).unwrap()
}

/// Replaces `to` with a copy of `from` in one step, as a renewal does.
fn renew(folder: &Path, from: &str, to: &str) {
    let next = folder.join(format!("{to}.next"));
    std::fs::copy(folder.join(from), &next).unwrap();
    std::fs::rename(next, folder.join(to)).unwrap();
}

/// The certificate (DER) the server at `address` presents to a client that trusts
/// `authority`, which asks it for `/readyz`.
async fn presented(address: std::net::SocketAddr, authority: &Path) -> Vec<u8> {
    let trusted = reqwest::Certificate::from_pem(&std::fs::read(authority).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(trusted)
        .tls_info(true)
        .build()
        .unwrap();
    let answer = client
        .get(format!("https://{address}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    answer
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(reqwest::tls::TlsInfo::peer_certificate)
        .expect("the server presented a certificate")
        .to_vec()
}

/// `quorate-server ARGUMENTS` with `settings`, run to its end.
fn server_command(arguments: &[&str], settings: &[(&str, &Path)]) -> std::process::Output {
    let data = tempfile::tempdir().unwrap();
    Command::new(quorate_e2e::binary("quorate-server", "quorate-server"))
        .args(arguments)
        .env("QUORATE_DATA_DIR", data.path())
        .env("QUORATE_WEB_DIR", "off")
        .env("QUORATE_METRICS_LISTEN", "off")
        .env("QUORATE_LISTEN", format!("127.0.0.1:{}", free_port()))
        .envs(settings.iter().copied())
        .output()
        .unwrap()
}

#[tokio::test]
async fn the_server_serves_https_itself_and_takes_a_renewed_certificate_without_a_restart() {
    let folder = tempfile::tempdir().unwrap();
    let folder = folder.path();
    private_authority(folder);
    certificate_for_loopback(folder, "renewed");
    let (certificate, key) = (folder.join("server.pem"), folder.join("server.key"));
    let authority = folder.join("ca.pem");

    // Half the settings, or a key that is not the certificate's: refused at start, saying
    // what to do.
    let half = server_command(&["serve"], &[("QUORATE_TLS_CERTIFICATE", &certificate)]);
    assert!(!half.status.success());
    let said = String::from_utf8_lossy(&half.stderr);
    assert!(said.contains("set both"), "{said}");
    let mismatched = server_command(
        &["serve"],
        &[
            ("QUORATE_TLS_CERTIFICATE", &certificate),
            ("QUORATE_TLS_KEY", &folder.join("renewed.key")),
        ],
    );
    assert!(!mismatched.status.success());
    let said = String::from_utf8_lossy(&mismatched.stderr);
    assert!(
        said.contains("does not belong to the certificate"),
        "{said}"
    );

    let tls = [
        ("QUORATE_TLS_CERTIFICATE", certificate.to_str().unwrap()),
        ("QUORATE_TLS_KEY", key.to_str().unwrap()),
    ];
    let server = ServerProcess::start(&tls).await;
    // The health check the images run speaks TLS to it.
    let probe = Command::new(quorate_e2e::binary("quorate-server", "quorate-server"))
        .arg("probe")
        .env("QUORATE_LISTEN", server.address.to_string())
        .envs(tls)
        .output()
        .unwrap();
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );

    // A member enrols over HTTPS, trusting the authority.
    let ada = Device::at(&format!("https://{}", server.address));
    ada.ok(&["keygen"]).await;
    let code = server.code.as_deref().unwrap();
    let authority_arg = authority.to_str().unwrap();
    let enrol = [
        "--ca-file",
        authority_arg,
        "enroll",
        "--code",
        code,
        "--name",
        "Ada",
    ];
    ada.ok(&enrol).await;
    let first = der(folder, "server");
    assert_eq!(presented(server.address, &authority).await, first);

    // A renewal half done (the new certificate, the old key) is not used: the certificate in
    // use stays.
    renew(folder, "renewed.pem", "server.pem");
    server
        .wait_for_log("the changed TLS files are not used")
        .await;
    assert_eq!(presented(server.address, &authority).await, first);

    // With its key, the renewed certificate is served, by the same process.
    renew(folder, "renewed.key", "server.key");
    let renewed = der(folder, "renewed");
    let mut served = Vec::new();
    for _ in 0..60 {
        served = presented(server.address, &authority).await;
        if served == renewed {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert_eq!(served, renewed, "the renewed certificate is served");
    let members = ada
        .ok(&["--ca-file", authority_arg, "--json", "members"])
        .await
        .json();
    assert_eq!(members["members"][0]["name"], "Ada", "{members}");
}
