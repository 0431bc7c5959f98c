//! `MediaStore` on S3: `media/<id>` in the media bucket, uploads in progress under `uploads/`
//! (which the bucket's lifecycle expires after a day). Clients move the bytes themselves, on
//! presigned URLs, so a picture never passes through API Gateway's and Lambda's 6 MB payloads.

use async_trait::async_trait;
use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;

use crate::ports::{Cause, MediaStore, MediaStoreError};

pub struct S3MediaStore {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3MediaStore {
    pub fn new(client: aws_sdk_s3::Client, bucket: String) -> S3MediaStore {
        S3MediaStore { client, bucket }
    }
}

fn err(e: impl Into<Cause>) -> MediaStoreError {
    MediaStoreError(e.into())
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
        self.read(format!("media/{id}"), None).await
    }

    async fn put_upload(&self, upload: &str, bytes: Vec<u8>) -> Result<(), MediaStoreError> {
        let put = self.client.put_object().bucket(&self.bucket).key(format!("uploads/{upload}"));
        put.body(ByteStream::from(bytes)).send().await.map_err(err)?;
        Ok(())
    }

    async fn get_upload(&self, upload: &str, max: usize) -> Result<Option<Vec<u8>>, MediaStoreError> {
        self.read(format!("uploads/{upload}"), Some(max)).await
    }

    async fn upload_url(
        &self,
        upload: &str,
        mime_type: &str,
        ttl: Duration,
    ) -> Result<Option<String>, MediaStoreError> {
        let put =
            self.client.put_object().bucket(&self.bucket).key(format!("uploads/{upload}")).content_type(mime_type);
        let signed = put.presigned(PresigningConfig::expires_in(ttl).map_err(err)?).await.map_err(err)?;
        Ok(Some(signed.uri().to_string()))
    }

    async fn download_url(&self, id: &str, ttl: Duration) -> Result<Option<String>, MediaStoreError> {
        let get = self.client.get_object().bucket(&self.bucket).key(format!("media/{id}"));
        let signed = get.presigned(PresigningConfig::expires_in(ttl).map_err(err)?).await.map_err(err)?;
        Ok(Some(signed.uri().to_string()))
    }
}

impl S3MediaStore {
    /// The object's bytes, or at most `max + 1` of them (a range read: a huge object is never
    /// read whole).
    async fn read(&self, key: String, max: Option<usize>) -> Result<Option<Vec<u8>>, MediaStoreError> {
        let get = self.client.get_object().bucket(&self.bucket).key(key);
        let get = match max {
            Some(max) => get.range(format!("bytes=0-{max}")),
            None => get,
        };
        match get.send().await {
            Ok(out) => Ok(Some(out.body.collect().await.map_err(err)?.into_bytes().to_vec())),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            // A range of an empty object: there is nothing to read.
            Err(e) if e.as_service_error().and_then(|s| s.meta().code()) == Some("InvalidRange") => Ok(Some(vec![])),
            Err(e) => Err(err(e)),
        }
    }
}
