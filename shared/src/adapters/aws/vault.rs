//! `Vault` on S3: the anchor bucket, created with Object Lock in compliance mode and a default
//! retention (`template.yaml`), so every object put here is locked for that long; its
//! versioning keeps a rewritten name's first object too.

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumAlgorithm;

use crate::ports::{ArchiveError, Cause, Vault};

pub struct S3Vault {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Vault {
    pub fn new(client: aws_sdk_s3::Client, bucket: String) -> S3Vault {
        S3Vault { client, bucket }
    }
}

fn err(e: impl Into<Cause>) -> ArchiveError {
    ArchiveError(e.into())
}

#[async_trait]
impl Vault for S3Vault {
    async fn put(&self, name: &str, body: Vec<u8>) -> Result<(), ArchiveError> {
        // S3 takes a put into a locked bucket only with an integrity checksum.
        let put = self.client.put_object().bucket(&self.bucket).key(name).content_type("application/json");
        put.checksum_algorithm(ChecksumAlgorithm::Sha256).body(ByteStream::from(body)).send().await.map_err(err)?;
        Ok(())
    }

    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, ArchiveError> {
        match self.client.get_object().bucket(&self.bucket).key(name).send().await {
            Ok(out) => Ok(Some(out.body.collect().await.map_err(err)?.into_bytes().to_vec())),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(err(e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, ArchiveError> {
        let mut pages = self.client.list_objects_v2().bucket(&self.bucket).prefix(prefix).into_paginator().send();
        let mut names = Vec::new();
        while let Some(page) = pages.next().await {
            names.extend(page.map_err(err)?.contents().iter().filter_map(|o| o.key().map(str::to_string)));
        }
        Ok(names)
    }
}
