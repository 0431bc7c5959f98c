//! `Vault` on S3: the archive bucket, created with Object Lock in compliance mode and a default
//! retention (`template.yaml`), so every object put here is locked for that long. A name is
//! written once: puts are conditional (`If-None-Match: *`, which the bucket's policy demands of
//! every put), and a read takes the name's first version, so a version put past both (by
//! someone who may bypass the policy) cannot stand in for the first.

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumAlgorithm;

use crate::ports::{ArchiveError, Cause, Vault};

pub struct S3Vault {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// Each batch is locked until this long after the time in its name (the connector's
    /// clock, which the retention sweep reads too); other names take the bucket's default.
    retention: time::Duration,
}

impl S3Vault {
    pub fn new(client: aws_sdk_s3::Client, bucket: String, retention: time::Duration) -> S3Vault {
        S3Vault { client, bucket, retention }
    }
}

impl S3Vault {
    /// Creates the bucket as `template.yaml` does, Object Lock in compliance mode for `days` by
    /// default (for tests against an emulator).
    pub async fn create_bucket(client: &aws_sdk_s3::Client, bucket: &str, days: i32) -> Result<(), ArchiveError> {
        use aws_sdk_s3::types::{
            DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode, ObjectLockRule,
        };
        client.create_bucket().bucket(bucket).object_lock_enabled_for_bucket(true).send().await.map_err(err)?;
        let retention = DefaultRetention::builder().mode(ObjectLockRetentionMode::Compliance).days(days).build();
        let rule = ObjectLockRule::builder().default_retention(retention).build();
        let lock =
            ObjectLockConfiguration::builder().object_lock_enabled(ObjectLockEnabled::Enabled).rule(rule).build();
        let put = client.put_object_lock_configuration().bucket(bucket).object_lock_configuration(lock);
        put.send().await.map_err(err)?;
        Ok(())
    }

    /// The id of `name`'s oldest version (its delete markers aside).
    async fn first_version(&self, name: &str) -> Result<Option<String>, ArchiveError> {
        let all = super::versions(&self.client, &self.bucket, name).await.map_err(ArchiveError)?;
        Ok(all.into_iter().filter(|(_, marker)| !marker).map(|(v, _)| v).next_back())
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
        let put = put.checksum_algorithm(ChecksumAlgorithm::Sha256).if_none_match("*");
        let put = match crate::archive::written_at(name) {
            Some(at) => {
                put.object_lock_mode(aws_sdk_s3::types::ObjectLockMode::Compliance).object_lock_retain_until_date(
                    aws_sdk_s3::primitives::DateTime::from_secs((at + self.retention).unix_timestamp()),
                )
            }
            None => put,
        };
        match put.body(ByteStream::from(body.clone())).send().await {
            Ok(_) => Ok(()),
            // Taken: a retry of this very put is done; other bytes are refused.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => match self.get(name).await? {
                Some(first) if first == body => Ok(()),
                _ => Err(ArchiveError(format!("{name} is written already, with other bytes").into())),
            },
            Err(e) => Err(err(e)),
        }
    }

    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, ArchiveError> {
        let Some(first) = self.first_version(name).await? else { return Ok(None) };
        let out =
            self.client.get_object().bucket(&self.bucket).key(name).version_id(first).send().await.map_err(err)?;
        Ok(Some(out.body.collect().await.map_err(err)?.into_bytes().to_vec()))
    }

    async fn hold(&self, name: &str, on: bool) -> Result<(), ArchiveError> {
        use aws_sdk_s3::types::{ObjectLockLegalHold, ObjectLockLegalHoldStatus};
        let status = if on { ObjectLockLegalHoldStatus::On } else { ObjectLockLegalHoldStatus::Off };
        let hold = ObjectLockLegalHold::builder().status(status).build();
        let version = self.first_version(name).await?;
        let put = self.client.put_object_legal_hold().bucket(&self.bucket).key(name).set_version_id(version);
        put.legal_hold(hold).send().await.map_err(err)?;
        Ok(())
    }

    async fn held(&self, name: &str) -> Result<Option<bool>, ArchiveError> {
        use aws_sdk_s3::types::ObjectLockLegalHoldStatus;
        let version = self.first_version(name).await?;
        let got =
            self.client.get_object_legal_hold().bucket(&self.bucket).key(name).set_version_id(version).send().await;
        match got {
            Ok(out) => Ok(Some(out.legal_hold().and_then(|h| h.status()) == Some(&ObjectLockLegalHoldStatus::On))),
            // S3 answers "no such configuration" for an object never held.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(Some(false)),
            Err(e) => Err(err(e)),
        }
    }

    async fn list_after(&self, prefix: &str, after: &str, limit: usize) -> Result<Vec<String>, ArchiveError> {
        let list = self.client.list_objects_v2().bucket(&self.bucket).prefix(prefix);
        let page = list.start_after(after).max_keys(limit.min(1000) as i32).send().await.map_err(err)?;
        Ok(page.contents().iter().filter_map(|o| o.key().map(str::to_string)).collect())
    }

    async fn erase(&self, name: &str) -> Result<(), ArchiveError> {
        super::delete_every_version(&self.client, &self.bucket, name).await.map_err(err)
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
