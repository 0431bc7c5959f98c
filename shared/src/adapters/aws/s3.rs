//! `MediaStore` on S3: `media/<id>` in the media bucket, uploads in progress under `uploads/`
//! (which the bucket's lifecycle expires after a day). Clients move the bytes themselves, on
//! presigned URLs, so a file never passes through API Gateway's and Lambda's 6 MB payloads;
//! what a function moves (a contact's file from Meta, ours to Meta) streams, one 8 MB part at
//! a time.

use async_trait::async_trait;
use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream as SdkStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, MetadataDirective};

use crate::ports::{ByteStream, Cause, MediaStore, MediaStoreError};

pub struct S3MediaStore {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// Files up to this size are kept with one CopyObject (S3 takes up to 5 GB); larger ones
    /// (an e-discovery export) are copied in parts of this size.
    copy_part: u64,
}

/// S3's largest CopyObject, and the largest part of a multipart copy.
const MAX_COPY: u64 = 5 * 1024 * 1024 * 1024;

impl S3MediaStore {
    pub fn new(client: aws_sdk_s3::Client, bucket: String) -> S3MediaStore {
        S3MediaStore { client, bucket, copy_part: MAX_COPY }
    }

    /// Copies in parts of `bytes` past that size (tests show a multipart copy on small files;
    /// S3 takes parts of 5 MB to 5 GB).
    pub fn with_copy_part(mut self, bytes: u64) -> S3MediaStore {
        self.copy_part = bytes.clamp(5 * 1024 * 1024, MAX_COPY);
        self
    }
}

fn err(e: impl Into<Cause>) -> MediaStoreError {
    MediaStoreError(e.into())
}

/// The size of each part of a multipart upload: memory holds one part at a time.
const PART: usize = 8 * 1024 * 1024;

fn media_key(id: &str) -> String {
    format!("media/{id}")
}

fn upload_key(upload: &str) -> String {
    format!("uploads/{upload}")
}

#[async_trait]
impl MediaStore for S3MediaStore {
    async fn put_upload(&self, upload: &str, mut body: ByteStream, max: u64) -> Result<bool, MediaStoreError> {
        use futures_util::StreamExt;
        let key = upload_key(upload);
        let mut part = Vec::with_capacity(PART);
        let mut written = 0u64;
        // Once the file passes one part: its multipart upload's id and the parts sent.
        let mut multipart: Option<(String, Vec<CompletedPart>)> = None;
        let outcome = async {
            while let Some(chunk) = body.next().await {
                let mut chunk = chunk.map_err(err)?;
                written += chunk.len() as u64;
                if written > max {
                    return Ok(false);
                }
                while !chunk.is_empty() {
                    if part.len() == PART {
                        // A full part, and more to come: it goes now.
                        if multipart.is_none() {
                            let created = self.client.create_multipart_upload().bucket(&self.bucket).key(&key);
                            let id = created.send().await.map_err(err)?.upload_id.ok_or_else(|| err("no upload id"))?;
                            multipart = Some((id, vec![]));
                        }
                        let (id, parts) = multipart.as_mut().expect("just set");
                        let full = std::mem::replace(&mut part, Vec::with_capacity(PART));
                        parts.push(self.send_part(&key, id, parts.len() as i32 + 1, full).await?);
                    }
                    let room = PART - part.len();
                    part.extend_from_slice(&chunk.split_to(room.min(chunk.len())));
                }
            }
            let Some((id, parts)) = multipart.as_mut() else {
                // Small enough for one part: one PUT.
                let put = self.client.put_object().bucket(&self.bucket).key(&key);
                put.body(SdkStream::from(std::mem::take(&mut part))).send().await.map_err(err)?;
                return Ok(true);
            };
            parts.push(self.send_part(&key, id, parts.len() as i32 + 1, std::mem::take(&mut part)).await?);
            let done = CompletedMultipartUpload::builder().set_parts(Some(std::mem::take(parts))).build();
            let complete = self.client.complete_multipart_upload().bucket(&self.bucket).key(&key);
            complete.upload_id(id.as_str()).multipart_upload(done).send().await.map_err(err)?;
            multipart = None;
            Ok(true)
        }
        .await;
        if let Some((id, _)) = multipart {
            // Refused or failed half-way: S3 drops the parts (the bucket's lifecycle would too).
            let abort = self.client.abort_multipart_upload().bucket(&self.bucket).key(&key).upload_id(id);
            if let Err(e) = abort.send().await {
                tracing::warn!(error = %crate::error::Report(&e), "could not abort a multipart upload");
            }
        }
        outcome
    }

    async fn open_upload(&self, upload: &str) -> Result<Option<ByteStream>, MediaStoreError> {
        self.open_key(upload_key(upload)).await
    }

    async fn keep(&self, upload: &str, id: &str, mime_type: &str) -> Result<(), MediaStoreError> {
        // S3 copies within the bucket itself: the bytes never pass through here.
        let source = format!("{}/{}", self.bucket, upload_key(upload));
        let head = self.client.head_object().bucket(&self.bucket).key(upload_key(upload)).send().await;
        let size = head.map_err(err)?.content_length().unwrap_or(0).max(0) as u64;
        if size <= self.copy_part {
            let copy = self.client.copy_object().bucket(&self.bucket).key(media_key(id)).copy_source(source);
            copy.content_type(mime_type).metadata_directive(MetadataDirective::Replace).send().await.map_err(err)?;
            return Ok(());
        }
        self.copy_in_parts(&source, &media_key(id), size, mime_type).await
    }

    async fn discard_upload(&self, upload: &str) -> Result<(), MediaStoreError> {
        self.client.delete_object().bucket(&self.bucket).key(upload_key(upload)).send().await.map_err(err)?;
        Ok(())
    }

    async fn open(&self, id: &str) -> Result<Option<ByteStream>, MediaStoreError> {
        self.open_key(media_key(id)).await
    }

    async fn remove(&self, id: &str) -> Result<(), MediaStoreError> {
        super::delete_every_version(&self.client, &self.bucket, &media_key(id)).await.map_err(err)
    }

    async fn upload_url(
        &self,
        upload: &str,
        mime_type: &str,
        ttl: Duration,
    ) -> Result<Option<String>, MediaStoreError> {
        let put = self.client.put_object().bucket(&self.bucket).key(upload_key(upload)).content_type(mime_type);
        let signed = put.presigned(PresigningConfig::expires_in(ttl).map_err(err)?).await.map_err(err)?;
        Ok(Some(signed.uri().to_string()))
    }

    async fn download_url(&self, id: &str, ttl: Duration) -> Result<Option<String>, MediaStoreError> {
        let get = self.client.get_object().bucket(&self.bucket).key(media_key(id));
        let signed = get.presigned(PresigningConfig::expires_in(ttl).map_err(err)?).await.map_err(err)?;
        Ok(Some(signed.uri().to_string()))
    }
}

impl S3MediaStore {
    /// A multipart copy of `source` (`size` bytes) to `key`, one `copy_part` range at a time;
    /// aborted if a part fails.
    async fn copy_in_parts(&self, source: &str, key: &str, size: u64, mime_type: &str) -> Result<(), MediaStoreError> {
        let created = self.client.create_multipart_upload().bucket(&self.bucket).key(key).content_type(mime_type);
        let id = created.send().await.map_err(err)?.upload_id.ok_or_else(|| err("no upload id"))?;
        let copied = async {
            let mut parts = Vec::new();
            let mut from = 0;
            while from < size {
                let to = (from + self.copy_part).min(size) - 1;
                let number = parts.len() as i32 + 1;
                let part = self.client.upload_part_copy().bucket(&self.bucket).key(key).upload_id(&id);
                let part = part.part_number(number).copy_source(source).copy_source_range(format!("bytes={from}-{to}"));
                let done = part.send().await.map_err(err)?;
                let etag = done.copy_part_result().and_then(|r| r.e_tag()).map(str::to_string);
                parts.push(CompletedPart::builder().part_number(number).set_e_tag(etag).build());
                from = to + 1;
            }
            let done = CompletedMultipartUpload::builder().set_parts(Some(parts)).build();
            let complete = self.client.complete_multipart_upload().bucket(&self.bucket).key(key).upload_id(&id);
            complete.multipart_upload(done).send().await.map_err(err)?;
            Ok(())
        }
        .await;
        if copied.is_err() {
            let abort = self.client.abort_multipart_upload().bucket(&self.bucket).key(key).upload_id(&id);
            if let Err(e) = abort.send().await {
                tracing::warn!(error = %crate::error::Report(&e), "could not abort a multipart copy");
            }
        }
        copied
    }

    async fn send_part(
        &self,
        key: &str,
        id: &str,
        number: i32,
        bytes: Vec<u8>,
    ) -> Result<CompletedPart, MediaStoreError> {
        let send = self.client.upload_part().bucket(&self.bucket).key(key).upload_id(id).part_number(number);
        let sent = send.body(SdkStream::from(bytes)).send().await.map_err(err)?;
        Ok(CompletedPart::builder().part_number(number).set_e_tag(sent.e_tag).build())
    }

    /// The object's bytes as S3 sends them.
    async fn open_key(&self, key: String) -> Result<Option<ByteStream>, MediaStoreError> {
        match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => Ok(Some(Box::pin(futures_util::stream::unfold(out.body, |mut body| async move {
                let next = body.next().await?;
                Some((next.map_err(std::io::Error::other), body))
            })))),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(err(e)),
        }
    }
}
