//! Blob storage for recordings and transcripts (ciphertext only): a local folder by default,
//! S3 (or any S3-compatible server) by configuration, both through object_store.
//!
//! URLs: `file:///PATH`, or `s3://[ACCESS_KEY:SECRET_KEY@]BUCKET[?endpoint=URL&region=NAME]`
//! with keys, endpoint and region otherwise taken from the usual `AWS_*` variables.

use std::{path::PathBuf, sync::Arc};

use bytes::Bytes;
use futures::{StreamExt, stream::BoxStream};
use object_store::{
    GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload,
    aws::{AmazonS3, AmazonS3Builder},
    local::LocalFileSystem,
    path::Path,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::config::SecretUrl;

/// Which kind of store is behind [`Blobs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobBackend {
    /// A local folder.
    Local,
    /// S3 or an S3-compatible server.
    S3,
}

/// Blob-store failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// The URL is neither `file://` nor `s3://`, or is malformed.
    #[error("unsupported object store URL {0}: use file:///PATH or s3://BUCKET?endpoint=URL")]
    UnsupportedUrl(SecretUrl),
    /// The local folder could not be created.
    #[error("cannot create the object folder {path}: {source}")]
    Folder {
        /// The folder.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// No object at that name.
    #[error("no object named {0}")]
    NotFound(String),
    /// The store failed.
    #[error("object store error: {0}")]
    Store(#[from] object_store::Error),
    /// Reading the source of an upload failed.
    #[error("reading the upload failed: {0}")]
    Read(#[from] std::io::Error),
}

/// The blob store.
#[derive(Debug, Clone)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    backend: BlobBackend,
    /// The folder behind a local store (uploads append to part files in it).
    local_root: Option<PathBuf>,
    /// The S3 store again, for its multipart API (uploads keep part IDs in the database).
    s3: Option<Arc<AmazonS3>>,
}

impl Blobs {
    /// Opens the store a URL names (creating a local folder when missing).
    pub fn open(url: &SecretUrl) -> Result<Self, BlobError> {
        let text = url.expose_secret();
        let unsupported = || BlobError::UnsupportedUrl(url.clone());
        if let Some(path) = text.strip_prefix("file://") {
            std::fs::create_dir_all(path).map_err(|source| BlobError::Folder {
                path: path.to_owned(),
                source,
            })?;
            let store = LocalFileSystem::new_with_prefix(path)?;
            return Ok(Self {
                store: Arc::new(store),
                backend: BlobBackend::Local,
                local_root: Some(PathBuf::from(path)),
                s3: None,
            });
        }
        let rest = text.strip_prefix("s3://").ok_or_else(unsupported)?;
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (credentials, bucket) = match location.rsplit_once('@') {
            Some((credentials, bucket)) => (Some(credentials), bucket),
            None => (None, location),
        };
        let bucket = bucket.trim_end_matches('/');
        if bucket.is_empty() || bucket.contains('/') {
            return Err(unsupported());
        }
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(credentials) = credentials {
            let (key, secret) = credentials.split_once(':').ok_or_else(unsupported)?;
            builder = builder
                .with_access_key_id(key)
                .with_secret_access_key(secret);
        }
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            match pair.split_once('=') {
                Some(("endpoint", endpoint)) => {
                    builder = builder
                        .with_allow_http(endpoint.starts_with("http://"))
                        .with_endpoint(endpoint);
                }
                Some(("region", region)) => builder = builder.with_region(region),
                _ => return Err(unsupported()),
            }
        }
        let s3 = Arc::new(builder.build()?);
        Ok(Self {
            store: Arc::clone(&s3) as Arc<dyn ObjectStore>,
            backend: BlobBackend::S3,
            local_root: None,
            s3: Some(s3),
        })
    }

    /// The kind of store.
    pub fn backend(&self) -> BlobBackend {
        self.backend
    }

    /// Stores a small object whole.
    pub async fn put(&self, name: &str, bytes: Bytes) -> Result<(), BlobError> {
        self.store
            .put(&Path::from(name), PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    /// Stores `bytes` as a new object named `{prefix}{fresh}.age`, then runs `record` with
    /// that name: it stores the row that describes the object. If `record` fails, the object
    /// is removed again, since no row refers to it.
    ///
    /// A fresh name is what keeps an object and the row describing it in step. The store has
    /// no transaction to join, and its writes replace whole objects, last writer wins: a write
    /// to a name a row already describes (by a retried or concurrent completion, or by one
    /// whose lease lapsed while it wrote) would replace the bytes that the row's signed
    /// manifest commits to, and no row insert failing afterwards could undo it.
    pub async fn put_fresh<T, E: From<BlobError>>(
        &self,
        prefix: &str,
        bytes: Bytes,
        record: impl AsyncFnOnce(&str) -> Result<T, E>,
    ) -> Result<T, E> {
        let name = format!("{prefix}{}.age", uuid::Uuid::new_v4().simple());
        self.put(&name, bytes).await?;
        let recorded = record(&name).await;
        if recorded.is_err()
            && let Err(error) = self.delete(&name).await
        {
            tracing::error!(%error, object = %name, "an object no row refers to could not be removed; remove it by hand");
        }
        recorded
    }

    /// Streams `source` into an object (multipart in 5 MiB parts on S3), holding at most a
    /// few parts in memory. The object appears only once complete. Returns its length.
    pub async fn put_stream(
        &self,
        name: &str,
        mut source: impl AsyncRead + Unpin,
    ) -> Result<u64, BlobError> {
        let mut writer =
            object_store::buffered::BufWriter::new(Arc::clone(&self.store), Path::from(name));
        let mut buffer = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let read = match source.read(&mut buffer).await {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) => {
                    let _ = writer.abort().await;
                    return Err(error.into());
                }
            };
            writer.write_all(&buffer[..read]).await?;
            total += read as u64;
        }
        writer.shutdown().await?;
        Ok(total)
    }

    /// The file behind object `name` on a local store.
    pub(crate) fn local_file(&self, name: &str) -> Option<PathBuf> {
        self.local_root
            .as_ref()
            .map(|root| root.join(Path::from(name).as_ref()))
    }

    /// The S3 store's multipart API.
    pub(crate) fn multipart(&self) -> Option<&AmazonS3> {
        self.s3.as_deref()
    }

    /// Streams an object, or `range` of it. Returns the stream and the object's full size.
    pub async fn get_stream(
        &self,
        name: &str,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<(BoxStream<'static, object_store::Result<Bytes>>, u64), BlobError> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let result = self
            .store
            .get_opts(&Path::from(name), options)
            .await
            .map_err(|error| not_found(error, name))?;
        let size = result.meta.size;
        Ok((result.into_stream(), size))
    }

    /// Reads a whole object.
    pub async fn get(&self, name: &str) -> Result<Bytes, BlobError> {
        let result = self
            .store
            .get(&Path::from(name))
            .await
            .map_err(|error| not_found(error, name))?;
        Ok(result.bytes().await?)
    }

    /// An object's length.
    pub async fn size(&self, name: &str) -> Result<u64, BlobError> {
        let meta = self
            .store
            .head(&Path::from(name))
            .await
            .map_err(|error| not_found(error, name))?;
        Ok(meta.size)
    }

    /// Deletes an object (no error when it is already gone).
    pub async fn delete(&self, name: &str) -> Result<(), BlobError> {
        match self.store.delete(&Path::from(name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// The names of objects under `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, BlobError> {
        let prefix = Path::from(prefix);
        let mut names = Vec::new();
        let mut listing = self.store.list(Some(&prefix));
        while let Some(meta) = listing.next().await {
            names.push(meta?.location.to_string());
        }
        names.sort();
        Ok(names)
    }
}

fn not_found(error: object_store::Error, name: &str) -> BlobError {
    match error {
        object_store::Error::NotFound { .. } => BlobError::NotFound(name.to_owned()),
        other => BlobError::Store(other),
    }
}
