//! `Vault` on the local disk: the archive's batch objects as files under `<data dir>/vault/`,
//! each written once (created, never replaced) and left read-only. They are as safe as the data
//! directory, no more: what the local runner gains is the same archive and verification as on
//! AWS, where the bucket's Object Lock keeps them from everyone.

use std::io::Write as _;
use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;

use crate::ports::{ArchiveError, Vault};

pub struct DiskVault {
    dir: PathBuf,
}

impl DiskVault {
    pub fn new(data_dir: &Path) -> DiskVault {
        DiskVault { dir: data_dir.join("vault") }
    }

    /// Names are relative paths of plain parts (`records/2026/12/04/...jsonl`).
    fn path(&self, name: &str) -> Result<PathBuf, ArchiveError> {
        let plain = Path::new(name).components().all(|c| matches!(c, Component::Normal(_)));
        if name.is_empty() || !plain {
            return Err(ArchiveError(format!("bad vault name {name:?}").into()));
        }
        Ok(self.dir.join(name))
    }
}

fn io(e: std::io::Error) -> ArchiveError {
    ArchiveError(Box::new(e))
}

#[async_trait]
impl Vault for DiskVault {
    async fn put(&self, name: &str, body: Vec<u8>) -> Result<(), ArchiveError> {
        let path = self.path(name)?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| self.dir.clone());
        let name = name.to_string();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir).map_err(io)?;
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                // Read-only once written: the local stand-in for Object Lock keeps honest
                // mistakes out (the verifier finds the rest).
                Ok(mut file) => file
                    .write_all(&body)
                    .and_then(|()| file.sync_all())
                    .and_then(|()| {
                        let mut perms = file.metadata()?.permissions();
                        perms.set_readonly(true);
                        std::fs::set_permissions(&path, perms)
                    })
                    .map_err(io),
                // Taken: a retry of this very put is done; other bytes are refused.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match std::fs::read(&path) {
                    Ok(first) if first == body => Ok(()),
                    Ok(_) => Err(ArchiveError(format!("{name} is written already, with other bytes").into())),
                    Err(e) => Err(io(e)),
                },
                Err(e) => Err(io(e)),
            }
        })
        .await
        .map_err(|e| ArchiveError(Box::new(e)))?
    }

    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, ArchiveError> {
        match tokio::fs::read(self.path(name)?).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    async fn erase(&self, name: &str) -> Result<(), ArchiveError> {
        let path = self.path(name)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, ArchiveError> {
        let (dir, prefix) = (self.dir.clone(), prefix.to_string());
        tokio::task::spawn_blocking(move || {
            let mut names = Vec::new();
            let mut folders = vec![dir.clone()];
            while let Some(folder) = folders.pop() {
                let entries = match std::fs::read_dir(&folder) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io(e)),
                };
                for entry in entries {
                    let path = entry.map_err(io)?.path();
                    if path.is_dir() {
                        folders.push(path);
                    } else if let Some(name) = path.strip_prefix(&dir).ok().and_then(Path::to_str) {
                        let name = name.replace(std::path::MAIN_SEPARATOR, "/");
                        if name.starts_with(&prefix) {
                            names.push(name);
                        }
                    }
                }
            }
            names.sort();
            Ok(names)
        })
        .await
        .map_err(|e| ArchiveError(Box::new(e)))?
    }
}
