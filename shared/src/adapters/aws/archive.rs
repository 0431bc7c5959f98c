//! `Archive` for AWS, read side: each thread's records are items of the table keyed by their
//! sequence number, written by the commit that records the change, which also moves the chain
//! head on the thread item, so concurrent commits cannot fork or skip the chain.

use std::sync::Arc;

use async_trait::async_trait;

use crate::archive::ArchiveRecord;
use crate::domain::ConversationId;
use crate::ports::{Archive, ArchiveError, Store};

pub struct DynamoArchive {
    store: Arc<dyn Store>,
}

impl DynamoArchive {
    pub fn new(store: Arc<dyn Store>) -> DynamoArchive {
        DynamoArchive { store }
    }
}

#[async_trait]
impl Archive for DynamoArchive {
    async fn read(&self, conversation_id: &ConversationId) -> Result<Vec<ArchiveRecord>, ArchiveError> {
        self.store.archive_records(conversation_id).await.map_err(|e| ArchiveError(Box::new(e)))
    }
}
