//! The blob-store stories on a local folder and on a real S3-compatible server (s3s-fs,
//! which checks SigV4 signatures).

mod common;

use bytes::Bytes;
use quorate_server::test_support::S3Server;
use quorate_server::{
    blobs::{BlobBackend, BlobError, Blobs},
    config::SecretUrl,
};
use sha2::{Digest, Sha256};

async fn stories(blobs: &Blobs) {
    let kind = blobs.backend();
    // Small objects: put, read back, size, overwrite, list, delete.
    blobs
        .put("recordings/a", Bytes::from_static(b"ciphertext a"))
        .await
        .unwrap();
    blobs
        .put("recordings/b", Bytes::from_static(b"ciphertext b, longer"))
        .await
        .unwrap();
    blobs
        .put("transcripts/t", Bytes::from_static(b"t"))
        .await
        .unwrap();
    assert_eq!(
        blobs.get("recordings/a").await.unwrap(),
        Bytes::from_static(b"ciphertext a"),
        "{kind:?}"
    );
    assert_eq!(blobs.size("recordings/b").await.unwrap(), 20);
    blobs
        .put("recordings/a", Bytes::from_static(b"replaced"))
        .await
        .unwrap();
    assert_eq!(
        blobs.get("recordings/a").await.unwrap(),
        Bytes::from_static(b"replaced")
    );
    assert_eq!(
        blobs.list("recordings").await.unwrap(),
        ["recordings/a", "recordings/b"]
    );
    blobs.delete("recordings/a").await.unwrap();
    blobs.delete("recordings/a").await.unwrap(); // already gone: fine
    assert!(
        matches!(blobs.get("recordings/a").await, Err(BlobError::NotFound(name)) if name == "recordings/a")
    );
    assert!(matches!(
        blobs.size("nothing/here").await,
        Err(BlobError::NotFound(_))
    ));

    // A 12 MiB stream: multipart on S3 (5 MiB parts), identical bytes back.
    let data: Vec<u8> = (0..12 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let written = blobs.put_stream("recordings/big", &data[..]).await.unwrap();
    assert_eq!(written, data.len() as u64);
    assert_eq!(
        blobs.size("recordings/big").await.unwrap(),
        data.len() as u64
    );
    let read = blobs.get("recordings/big").await.unwrap();
    assert_eq!(Sha256::digest(&read), Sha256::digest(&data), "{kind:?}");

    // An upload whose source fails leaves no object behind.
    let failing = tokio::io::AsyncReadExt::chain(&data[..6 * 1024 * 1024], FailingReader);
    assert!(matches!(
        blobs.put_stream("recordings/broken", failing).await,
        Err(BlobError::Read(_))
    ));
    assert!(
        matches!(
            blobs.size("recordings/broken").await,
            Err(BlobError::NotFound(_))
        ),
        "{kind:?}"
    );
}

/// A source that fails, as a dropped client connection would.
struct FailingReader;

impl tokio::io::AsyncRead for FailingReader {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        _: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "client went away",
        )))
    }
}

#[tokio::test]
async fn local_folder() {
    let folder = tempfile::tempdir().unwrap();
    let url = SecretUrl::new(format!(
        "file://{}",
        folder.path().join("objects").display()
    ));
    let blobs = Blobs::open(&url).unwrap();
    assert_eq!(blobs.backend(), BlobBackend::Local);
    stories(&blobs).await;
}

#[tokio::test]
async fn s3_compatible_server() {
    let server = S3Server::start().await;
    let blobs = Blobs::open(&server.url).unwrap();
    assert_eq!(blobs.backend(), BlobBackend::S3);
    assert!(
        !format!("{:?} {}", server.url, server.url).contains("test-secret"),
        "the secret key never prints"
    );
    stories(&blobs).await;
}

#[tokio::test]
async fn wrong_credentials_are_refused_by_the_server() {
    let server = S3Server::start().await;
    let wrong = SecretUrl::new(
        server
            .url
            .expose_secret()
            .replace("test-secret", "wrong-secret"),
    );
    let blobs = Blobs::open(&wrong).unwrap();
    assert!(matches!(
        blobs.put("x", Bytes::from_static(b"x")).await,
        Err(BlobError::Store(_))
    ));
}

#[test]
fn unsupported_urls_are_refused() {
    for url in [
        "ftp://x",
        "s3://",
        "s3://bucket/with/path",
        "s3://bucket?colour=blue",
    ] {
        assert!(
            matches!(
                Blobs::open(&SecretUrl::new(url)),
                Err(BlobError::UnsupportedUrl(_))
            ),
            "{url}"
        );
    }
}
