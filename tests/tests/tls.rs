//! The devices reach a server behind a real TLS terminator (Debian's Caddy, as in
//! `infra/compose/compose.scale.yaml`) whose certificate a private authority signed. Given
//! that authority's certificate (`--ca-file`, `QUORATE_CA_FILE`), a member enrols and signs in
//! over HTTPS; without it the device refuses the connection, says why, and enrols nothing.

use std::path::Path;
use std::process::Command;

use quorate_e2e::caddy::{Caddy, free_port};
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

/// A private authority (`ca.pem`) and a certificate it signed for 127.0.0.1
/// (`server.pem`, `server.key`), in `folder`.
fn private_authority(folder: &Path) {
    let key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        folder,
        &[
            &["req", "-x509"][..],
            &key,
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
    openssl(
        folder,
        &[
            &["req"][..],
            &key,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
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
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
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
