//! `MediaStore` on the local disk: one file per picture under `<data dir>/media/`, written to a
//! temporary name and renamed, so a crash never leaves half a picture.

use std::path::PathBuf;

use async_trait::async_trait;

use crate::ports::{MediaStore, MediaStoreError};

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

    async fn write(path: PathBuf, bytes: Vec<u8>) -> Result<(), MediaStoreError> {
        let tmp = path.with_extension("part");
        tokio::fs::write(&tmp, bytes).await.map_err(|e| MediaStoreError(Box::new(e)))?;
        tokio::fs::rename(&tmp, &path).await.map_err(|e| MediaStoreError(Box::new(e)))
    }

    async fn read(path: PathBuf, max: Option<usize>) -> Result<Option<Vec<u8>>, MediaStoreError> {
        use tokio::io::AsyncReadExt;
        let file = match tokio::fs::File::open(path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(MediaStoreError(Box::new(e))),
        };
        let mut out = Vec::new();
        let limit = max.map_or(u64::MAX, |m| m as u64 + 1);
        file.take(limit).read_to_end(&mut out).await.map_err(|e| MediaStoreError(Box::new(e)))?;
        Ok(Some(out))
    }
}

#[async_trait]
impl MediaStore for DiskMediaStore {
    async fn put(&self, id: &str, bytes: Vec<u8>, _mime_type: &str) -> Result<(), MediaStoreError> {
        Self::write(self.path(id)?, bytes).await
    }

    async fn get(&self, id: &str) -> Result<Option<Vec<u8>>, MediaStoreError> {
        let Ok(path) = self.path(id) else { return Ok(None) };
        Self::read(path, None).await
    }

    async fn put_upload(&self, upload: &str, bytes: Vec<u8>) -> Result<(), MediaStoreError> {
        Self::write(self.upload_path(upload)?, bytes).await
    }

    async fn get_upload(&self, upload: &str, max: usize) -> Result<Option<Vec<u8>>, MediaStoreError> {
        let Ok(path) = self.upload_path(upload) else { return Ok(None) };
        Self::read(path, Some(max)).await
    }
}
