//! Implementations of the ports: `aws`, `embedded` (SQLite, the local default), `graph` (Meta's
//! Cloud API over reqwest), `sandbox` (a local stand-in for WhatsApp), `memory` (a store for
//! the simulation and tests) and the clocks. `aws` and `embedded` are features: Lambda builds
//! the one, the local runner the other (and both with `--features aws`); `sandbox` and
//! `test-support` (memory) are never in a Lambda package.

#[cfg(feature = "aws")]
pub mod aws;
pub mod clock;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod graph;
#[cfg(feature = "test-support")]
pub mod memory;
#[cfg(feature = "sandbox")]
pub mod sandbox;

/// The archive's store for a function that is not given it (least privilege: only the
/// archiver and admin functions may touch the archive bucket): every call fails.
pub struct NoVault;

#[async_trait::async_trait]
impl crate::ports::Vault for NoVault {
    async fn put(&self, name: &str, _: Vec<u8>) -> Result<(), crate::ports::ArchiveError> {
        Err(crate::ports::ArchiveError(format!("this function may not write the archive ({name})").into()))
    }
    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, crate::ports::ArchiveError> {
        Err(crate::ports::ArchiveError(format!("this function may not read the archive ({name})").into()))
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, crate::ports::ArchiveError> {
        Err(crate::ports::ArchiveError(format!("this function may not list the archive ({prefix})").into()))
    }
    async fn hold(&self, name: &str, _: bool) -> Result<(), crate::ports::ArchiveError> {
        Err(crate::ports::ArchiveError(format!("this function may not hold the archive's objects ({name})").into()))
    }
    async fn erase(&self, name: &str) -> Result<(), crate::ports::ArchiveError> {
        Err(crate::ports::ArchiveError(format!("this function may not erase the archive's objects ({name})").into()))
    }
}

/// The record's search for a function that is not given it: every call fails.
pub struct NoIndex;

#[async_trait::async_trait]
impl crate::ports::RecordIndex for NoIndex {
    async fn add(&self, _: &[crate::archive::ArchiveRecord]) -> Result<(), crate::ports::IndexError> {
        Err(crate::ports::IndexError("this function may not write the record's index".into()))
    }
    async fn search(
        &self,
        _: &crate::domain::search::Filter,
        _: Option<&[crate::domain::ConversationId]>,
    ) -> Result<Vec<crate::domain::search::Hit>, crate::ports::IndexError> {
        Err(crate::ports::IndexError("this function may not search the record".into()))
    }
    async fn forget(&self, _: &[crate::archive::ArchiveRecord]) -> Result<(), crate::ports::IndexError> {
        Err(crate::ports::IndexError("this function may not erase from the record's index".into()))
    }
}
