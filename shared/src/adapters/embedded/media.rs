//! `MediaStore` on the local disk: one file per file under `<data dir>/media/`, streamed to a
//! temporary name and renamed, so a crash never leaves half a file; kept by a hard link.

use std::path::PathBuf;

use async_trait::async_trait;

use crate::ports::{ByteStream, MediaStore, MediaStoreError};

#[derive(Clone)]
pub struct DiskMediaStore {
    dir: PathBuf,
}

impl DiskMediaStore {
    pub fn new(data_dir: &std::path::Path) -> Result<DiskMediaStore, MediaStoreError> {
        let dir = data_dir.join("media");
        std::fs::create_dir_all(&dir).map_err(|e| MediaStoreError(format!("{}: {e}", dir.display()).into()))?;
        Ok(DiskMediaStore { dir })
    }

    fn path(&self, id: &str) -> Result<PathBuf, MediaStoreError> {
        // Ids are ULIDs; anything else could walk out of the folder.
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(MediaStoreError(format!("bad media id {id:?}").into()));
        }
        Ok(self.dir.join(id))
    }

    /// Uploads in progress sit beside the pictures, under a suffix no picture id has.
    fn upload_path(&self, upload: &str) -> Result<PathBuf, MediaStoreError> {
        Ok(self.path(upload)?.with_extension("upload"))
    }

    async fn open_path(path: PathBuf) -> Result<Option<ByteStream>, MediaStoreError> {
        match tokio::fs::File::open(path).await {
            Ok(f) => Ok(Some(Box::pin(tokio_util::io::ReaderStream::with_capacity(f, 64 * 1024)))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(err(e)),
        }
    }
}

fn err(e: std::io::Error) -> MediaStoreError {
    MediaStoreError(Box::new(e))
}

#[async_trait]
impl MediaStore for DiskMediaStore {
    async fn put_upload(&self, upload: &str, mut body: ByteStream, max: u64) -> Result<bool, MediaStoreError> {
        use futures_util::StreamExt;
        use tokio::io::AsyncWriteExt;
        let path = self.upload_path(upload)?;
        // Its own temporary name: two PUTs of one upload at once never mix their bytes.
        let tmp = path.with_extension(format!("{}.part", ulid::Ulid::new()));
        let mut file = tokio::fs::File::create(&tmp).await.map_err(err)?;
        let mut written = 0u64;
        let outcome = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                written += chunk.len() as u64;
                if written > max {
                    return Ok(false);
                }
                file.write_all(&chunk).await?;
            }
            file.flush().await?;
            Ok::<_, std::io::Error>(true)
        }
        .await;
        match outcome {
            Ok(true) => tokio::fs::rename(&tmp, &path).await.map(|_| true).map_err(err),
            other => {
                let _ = tokio::fs::remove_file(&tmp).await;
                other.map_err(err)
            }
        }
    }

    async fn open_upload(&self, upload: &str) -> Result<Option<ByteStream>, MediaStoreError> {
        let Ok(path) = self.upload_path(upload) else { return Ok(None) };
        Self::open_path(path).await
    }

    async fn keep(&self, upload: &str, id: &str, _mime_type: &str) -> Result<(), MediaStoreError> {
        // A second name for the same bytes: atomic, and the upload may go later.
        match tokio::fs::hard_link(self.upload_path(upload)?, self.path(id)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(err(e)),
            _ => Ok(()),
        }
    }

    async fn discard_upload(&self, upload: &str) -> Result<(), MediaStoreError> {
        match tokio::fs::remove_file(self.upload_path(upload)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(err(e)),
            _ => Ok(()),
        }
    }

    async fn open(&self, id: &str) -> Result<Option<ByteStream>, MediaStoreError> {
        let Ok(path) = self.path(id) else { return Ok(None) };
        Self::open_path(path).await
    }

    async fn remove(&self, id: &str) -> Result<(), MediaStoreError> {
        match tokio::fs::remove_file(self.path(id)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(err(e)),
        }
    }
}
