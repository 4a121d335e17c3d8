//! Blobs in S3-compatible object storage, shared by replicas:
//!
//! ```text
//! <prefix>/blobs/<algo>/<hex[..2]>/<hex>      verified content, by digest
//! <prefix>/_uploads/<id>/<offset>-<nonce>     one part of an upload session
//! <prefix>/_touched/<algo>/<hex>              when a blob was last stored or mounted
//! ```
//!
//! Each append of a session is an object of its own, so two replicas that
//! race on one session never overwrite each other's bytes; the session's
//! record (in the shared metadata) says which parts count. Completing a
//! session copies a single part into place on the server, or streams many
//! into one multipart object. Objects cannot be touched, so "stored or
//! mounted just now", which garbage collection's grace period needs, is a
//! marker object's time.

use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{GetOptions, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use super::{Listed, Part};
use crate::error::Error;
use crate::storage::file_io::BlobStream;
use crate::storage::uploads::UploadBody;
use crate::types::{ByteRange, Digest, Digester, UploadId};

/// Bytes gathered before an append becomes a multipart upload, and the size
/// of each part of one (S3 wants at least 5 MiB per part but the last).
const PART: usize = 8 << 20;
/// Parts of a multipart upload in flight at once.
const IN_FLIGHT: usize = 4;
/// The largest object S3 copies in one request.
const MAX_COPY: u64 = 5 << 30;

/// A bucket (and a prefix in it).
#[derive(Clone)]
pub(crate) struct S3Blobs {
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

impl std::fmt::Debug for S3Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3Blobs({})", self.prefix)
    }
}

fn os(e: object_store::Error) -> io::Error {
    match e {
        object_store::Error::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, e),
        e => io::Error::other(e),
    }
}

impl S3Blobs {
    /// The store `s3://bucket[/prefix]`, reached with the standard `AWS_*`
    /// variables (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP` for a plain-HTTP endpoint).
    pub fn open(url: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::Config(format!("blob_url {url:?}: {why}"));
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("expected s3://bucket/prefix"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket"));
        }
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(|e| bad(&e.to_string()))?;
        Ok(Self {
            store: Arc::new(store),
            prefix: prefix.trim_matches('/').to_owned(),
        })
    }

    fn path(&self, rest: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(rest)
        } else {
            Path::from(format!("{}/{rest}", self.prefix))
        }
    }

    fn blob(&self, digest: &Digest) -> Path {
        let hex = digest.hex();
        self.path(&format!(
            "blobs/{}/{}/{hex}",
            digest.algorithm().as_str(),
            &hex[..2]
        ))
    }

    fn marker(&self, digest: &Digest) -> Path {
        self.path(&format!(
            "_touched/{}/{}",
            digest.algorithm().as_str(),
            digest.hex()
        ))
    }

    fn session(&self, id: &UploadId) -> Path {
        self.path(&format!("_uploads/{id}"))
    }

    /// Marks a new session: an empty object, so that a session shows in
    /// [`S3Blobs::staged`] before its first part.
    pub async fn stage(&self, id: &UploadId) -> io::Result<()> {
        let marker = Path::from(format!("{}/session", self.session(id)));
        self.store
            .put(&marker, PutPayload::default())
            .await
            .map_err(os)?;
        Ok(())
    }

    pub async fn size(&self, digest: &Digest) -> io::Result<Option<u64>> {
        match self.store.head(&self.blob(digest)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(os(e)),
        }
    }

    pub async fn read(&self, digest: &Digest, range: ByteRange) -> io::Result<BlobStream> {
        if range.is_empty() {
            return Ok(Box::pin(futures_util::stream::empty()));
        }
        let options = GetOptions::new().with_range(Some(range.start..range.end));
        let result = self
            .store
            .get_opts(&self.blob(digest), options)
            .await
            .map_err(os)?;
        // Through a channel: the response body must be Sync, the object's
        // stream is not; the next piece is fetched while one is sent.
        let (tx, mut rx) = tokio::sync::mpsc::channel(2);
        let mut pieces = result.into_stream();
        tokio::spawn(async move {
            while let Some(piece) = pieces.next().await {
                let failed = piece.is_err();
                if tx.send(piece.map_err(os)).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(Box::pin(futures_util::stream::poll_fn(move |cx| {
            rx.poll_recv(cx)
        })))
    }

    /// Writes `chunks` as a new object of session `id`: one PUT for up to
    /// [`PART`] bytes, a multipart upload beyond.
    pub async fn append<S: UploadBody>(
        &self,
        id: &UploadId,
        offset: u64,
        chunks: S,
    ) -> Result<Part, Error> {
        let name = format!(
            "{}/{offset:020}-{}",
            self.session(id),
            uuid::Uuid::new_v4().simple()
        );
        let path = Path::from(name.as_str());
        let mut chunks = std::pin::pin!(chunks);
        let mut head: Vec<Bytes> = Vec::new();
        let mut len = 0u64;
        let mut more = None;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            len += chunk.len() as u64;
            head.push(chunk);
            if len as usize >= PART {
                more = Some(());
                break;
            }
        }
        if more.is_none() {
            self.store
                .put(&path, PutPayload::from_iter(head))
                .await
                .map_err(|e| Error::from(os(e)))?;
            return Ok(Part { name, len });
        }
        let upload = self
            .store
            .put_multipart(&path)
            .await
            .map_err(|e| Error::from(os(e)))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        let written: Result<u64, Error> = async {
            for chunk in head {
                writer.put(chunk);
            }
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk?;
                len += chunk.len() as u64;
                writer.wait_for_capacity(IN_FLIGHT).await.map_err(os)?;
                writer.put(chunk);
            }
            Ok(len)
        }
        .await;
        match written {
            Ok(len) => {
                writer.finish().await.map_err(|e| Error::from(os(e)))?;
                Ok(Part { name, len })
            }
            Err(e) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(error = %abort, "cannot abort a multipart upload");
                }
                Err(e)
            }
        }
    }

    pub async fn delete_part(&self, part: &Part) -> io::Result<()> {
        self.delete(&Path::from(part.name.as_str())).await
    }

    async fn delete(&self, path: &Path) -> io::Result<()> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(os(e)),
        }
    }

    /// The bytes of `parts`, in order.
    fn stream_parts(
        &self,
        parts: &[Part],
    ) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send + '_ {
        let names: Vec<Path> = parts.iter().map(|p| Path::from(p.name.as_str())).collect();
        futures_util::stream::iter(names)
            .then(move |path| async move {
                let result = self.store.get(&path).await.map_err(os)?;
                Ok::<_, io::Error>(result.into_stream().map_err(os))
            })
            .try_flatten()
    }

    pub async fn hash_staged(&self, parts: &[Part], mut digester: Digester) -> io::Result<Digest> {
        let mut bytes = std::pin::pin!(self.stream_parts(parts));
        while let Some(chunk) = bytes.next().await {
            digester.update(&chunk?);
        }
        Ok(digester.finish())
    }

    /// Puts a session's parts in place as the blob `digest`: a server-side
    /// copy of a single part, or the parts streamed into one object. Two
    /// replicas completing the same digest write the same bytes.
    pub async fn commit(&self, id: &UploadId, parts: &[Part], digest: &Digest) -> io::Result<()> {
        let target = self.blob(digest);
        match parts {
            [] => {
                self.store
                    .put(&target, PutPayload::default())
                    .await
                    .map_err(os)?;
            }
            [one] if one.len <= MAX_COPY => {
                self.store
                    .copy(&Path::from(one.name.as_str()), &target)
                    .await
                    .map_err(os)?;
            }
            parts => {
                let upload = self.store.put_multipart(&target).await.map_err(os)?;
                let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
                let mut bytes = std::pin::pin!(self.stream_parts(parts));
                let copied: io::Result<()> = async {
                    while let Some(chunk) = bytes.next().await {
                        writer.wait_for_capacity(IN_FLIGHT).await.map_err(os)?;
                        writer.put(chunk?);
                    }
                    Ok(())
                }
                .await;
                match copied {
                    Ok(()) => {
                        writer.finish().await.map_err(os)?;
                    }
                    Err(e) => {
                        let _ = writer.abort().await;
                        return Err(e);
                    }
                }
            }
        }
        self.touch(digest).await?;
        self.discard(id).await
    }

    /// Removes every part of a session.
    pub async fn discard(&self, id: &UploadId) -> io::Result<()> {
        let prefix = self.session(id);
        let objects: Vec<_> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(os)?;
        for object in objects {
            self.delete(&object.location).await?;
        }
        Ok(())
    }

    pub async fn touch(&self, digest: &Digest) -> io::Result<()> {
        self.store
            .put(&self.marker(digest), PutPayload::default())
            .await
            .map_err(os)?;
        Ok(())
    }

    pub async fn remove(&self, digest: &Digest) -> io::Result<()> {
        self.delete(&self.blob(digest)).await?;
        self.delete(&self.marker(digest)).await
    }

    /// Every blob object, its age the newer of its own and its marker's.
    pub async fn list(&self) -> io::Result<Vec<Listed>> {
        let now = SystemTime::now();
        let age = |t: chrono_time::Time| now.duration_since(t).ok();
        let mut touched = std::collections::HashMap::new();
        let markers: Vec<_> = self
            .store
            .list(Some(&self.path("_touched")))
            .try_collect()
            .await
            .map_err(os)?;
        for m in markers {
            let mut parts = m.location.parts().collect::<Vec<_>>().into_iter().rev();
            let (Some(hex), Some(algo)) = (parts.next(), parts.next()) else {
                continue;
            };
            touched.insert(
                format!("{}:{}", algo.as_ref(), hex.as_ref()),
                chrono_time::of(m.last_modified),
            );
        }
        let objects: Vec<_> = self
            .store
            .list(Some(&self.path("blobs")))
            .try_collect()
            .await
            .map_err(os)?;
        let mut listed = Vec::new();
        for o in objects {
            let mut parts = o.location.parts().collect::<Vec<_>>().into_iter().rev();
            let (Some(hex), Some(_shard), Some(algo)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Some(digest) = Digest::parse(&format!("{}:{}", algo.as_ref(), hex.as_ref())) else {
                continue;
            };
            let stored = chrono_time::of(o.last_modified);
            let last = touched
                .get(digest.as_str())
                .map_or(stored, |t| (*t).max(stored));
            listed.push(Listed {
                digest,
                size: o.size,
                age: age(last),
            });
        }
        Ok(listed)
    }

    /// The sessions with parts, and how long ago their newest was written.
    pub async fn staged(&self) -> io::Result<Vec<(String, Option<Duration>)>> {
        let now = SystemTime::now();
        let objects: Vec<_> = self
            .store
            .list(Some(&self.path("_uploads")))
            .try_collect()
            .await
            .map_err(os)?;
        let mut newest: std::collections::BTreeMap<String, SystemTime> = Default::default();
        for o in objects {
            let mut parts = o.location.parts().collect::<Vec<_>>().into_iter().rev();
            let (Some(_part), Some(id)) = (parts.next(), parts.next()) else {
                continue;
            };
            let t = chrono_time::of(o.last_modified);
            let entry = newest.entry(id.as_ref().to_owned()).or_insert(t);
            *entry = (*entry).max(t);
        }
        Ok(newest
            .into_iter()
            .map(|(id, t)| (id, now.duration_since(t).ok()))
            .collect())
    }
}

#[cfg(test)]
impl S3Blobs {
    /// Replaces a stored blob's bytes (tests damaging a store).
    pub async fn overwrite(&self, digest: &Digest, bytes: &'static [u8]) {
        let payload = PutPayload::from_static(bytes);
        self.store.put(&self.blob(digest), payload).await.unwrap();
    }
}

/// A bucket of its own on the test server (`BERTH_TEST_S3`, which
/// `scripts/setup-test-env.sh` starts; the `AWS_*` variables it exports
/// reach it), as a `blob_url`. Without it the tests fail, never skip.
#[cfg(test)]
pub(crate) mod testing {
    pub(crate) async fn bucket() -> String {
        let endpoint = std::env::var("AWS_ENDPOINT_URL").expect(
            "AWS_ENDPOINT_URL names the test S3 server (scripts/setup-test-env.sh exports it)",
        );
        let name = format!("b{}", uuid::Uuid::new_v4().simple());
        let status = std::process::Command::new("curl")
            .args(["-fsS", "-X", "PUT", &format!("{endpoint}/{name}")])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("curl");
        assert!(
            status.success(),
            "cannot create bucket {name} at {endpoint}"
        );
        format!("s3://{name}/berth")
    }
}

/// Object times (`chrono` in `object_store`'s API) as [`SystemTime`].
mod chrono_time {
    pub(super) type Time = std::time::SystemTime;

    pub(super) fn of(t: chrono::DateTime<chrono::Utc>) -> Time {
        let (secs, nanos) = (t.timestamp(), t.timestamp_subsec_nanos());
        let since = std::time::Duration::new(u64::try_from(secs).unwrap_or(0), nanos);
        std::time::UNIX_EPOCH + since
    }
}
