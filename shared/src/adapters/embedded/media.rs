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
        std::fs::create_dir_all(&dir).map_err(|e| MediaStoreError(format!("{}: {e}", dir.display())))?;
        Ok(DiskMediaStore { dir })
    }

    fn path(&self, id: &str) -> Result<PathBuf, MediaStoreError> {
        // Ids are ULIDs; anything else could walk out of the folder.
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(MediaStoreError(format!("bad media id {id:?}")));
        }
        Ok(self.dir.join(id))
    }
}

#[async_trait]
impl MediaStore for DiskMediaStore {
    async fn put(&self, id: &str, bytes: Vec<u8>, _mime_type: &str) -> Result<(), MediaStoreError> {
        let path = self.path(id)?;
        let tmp = path.with_extension("part");
        tokio::fs::write(&tmp, bytes).await.map_err(|e| MediaStoreError(e.to_string()))?;
        tokio::fs::rename(&tmp, &path).await.map_err(|e| MediaStoreError(e.to_string()))
    }

    async fn get(&self, id: &str) -> Result<Option<Vec<u8>>, MediaStoreError> {
        let Ok(path) = self.path(id) else { return Ok(None) };
        match tokio::fs::read(path).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(MediaStoreError(e.to_string())),
        }
    }
}
