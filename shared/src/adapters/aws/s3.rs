//! `MediaStore` on S3: `media/<id>` in the media bucket.

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;

use crate::ports::{MediaStore, MediaStoreError};

pub struct S3MediaStore {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3MediaStore {
    pub fn new(client: aws_sdk_s3::Client, bucket: String) -> S3MediaStore {
        S3MediaStore { client, bucket }
    }
}

fn err<E: std::fmt::Debug>(e: E) -> MediaStoreError {
    MediaStoreError(format!("{e:?}"))
}

#[async_trait]
impl MediaStore for S3MediaStore {
    async fn put(&self, id: &str, bytes: Vec<u8>, mime_type: &str) -> Result<(), MediaStoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(format!("media/{id}"))
            .content_type(mime_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<Vec<u8>>, MediaStoreError> {
        match self.client.get_object().bucket(&self.bucket).key(format!("media/{id}")).send().await {
            Ok(out) => Ok(Some(out.body.collect().await.map_err(err)?.into_bytes().to_vec())),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(err(e)),
        }
    }
}
