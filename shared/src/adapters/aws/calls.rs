//! Which AWS calls each function makes: an SDK interceptor that notes each (function, service,
//! operation) once, as a JSON line appended to a file. The e2e suite on moto records them
//! (`CONNECTOR_AWS_CALLS`); `shared/tests/least_privilege.rs` then checks every call against
//! the function's role in template.yaml, and every permission of a role against its calls.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// One recorded call: `function` is `none` for work no function was named for. For S3, the
/// bucket, the key's first folder (`media`, `records`: what a role's resources name), and
/// whether it named an object version (IAM's `...ObjectVersion` actions).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Call {
    pub function: String,
    pub service: String,
    pub operation: String,
    #[serde(default)]
    pub bucket: Option<String>,
    #[serde(default)]
    pub folder: Option<String>,
    #[serde(default)]
    pub version: bool,
}

/// The bucket, the key's (or prefix's) first folder, and whether a version is named, of an S3
/// operation's input.
fn s3_target(input: &aws_smithy_runtime_api::client::interceptors::context::Input) -> Option<(String, String, bool)> {
    use aws_sdk_s3::operation as op;
    let folder = |key: Option<&str>| key.unwrap_or_default().split('/').next().unwrap_or_default().to_string();
    macro_rules! try_input {
        ($ty:ty, key) => {
            if let Some(i) = input.downcast_ref::<$ty>() {
                return Some((i.bucket().unwrap_or_default().to_string(), folder(i.key()), false));
            }
        };
        ($ty:ty, versioned) => {
            if let Some(i) = input.downcast_ref::<$ty>() {
                return Some((i.bucket().unwrap_or_default().to_string(), folder(i.key()), i.version_id().is_some()));
            }
        };
        ($ty:ty, prefix) => {
            if let Some(i) = input.downcast_ref::<$ty>() {
                return Some((i.bucket().unwrap_or_default().to_string(), folder(i.prefix()), false));
            }
        };
    }
    try_input!(op::get_object::GetObjectInput, versioned);
    try_input!(op::head_object::HeadObjectInput, versioned);
    try_input!(op::delete_object::DeleteObjectInput, versioned);
    try_input!(op::put_object_legal_hold::PutObjectLegalHoldInput, versioned);
    try_input!(op::get_object_legal_hold::GetObjectLegalHoldInput, versioned);
    try_input!(op::put_object::PutObjectInput, key);
    try_input!(op::copy_object::CopyObjectInput, key);
    try_input!(op::create_multipart_upload::CreateMultipartUploadInput, key);
    try_input!(op::upload_part::UploadPartInput, key);
    try_input!(op::upload_part_copy::UploadPartCopyInput, key);
    try_input!(op::complete_multipart_upload::CompleteMultipartUploadInput, key);
    try_input!(op::abort_multipart_upload::AbortMultipartUploadInput, key);
    try_input!(op::list_object_versions::ListObjectVersionsInput, prefix);
    try_input!(op::list_objects_v2::ListObjectsV2Input, prefix);
    None
}

#[derive(Debug, Clone)]
pub struct CallRecorder {
    path: Arc<PathBuf>,
    seen: Arc<Mutex<HashSet<Call>>>,
}

impl CallRecorder {
    pub fn new(path: impl Into<PathBuf>) -> CallRecorder {
        CallRecorder { path: Arc::new(path.into()), seen: Arc::default() }
    }

    fn note(&self, call: Call) -> std::io::Result<()> {
        if !self.seen.lock().map_err(|_| std::io::Error::other("poisoned"))?.insert(call.clone()) {
            return Ok(());
        }
        // One write of one line on a file opened for appending: processes recording into the
        // same file never interleave within a line.
        let line = format!("{}\n", serde_json::to_string(&call)?);
        std::fs::OpenOptions::new().create(true).append(true).open(&*self.path)?.write_all(line.as_bytes())
    }
}

impl Intercept for CallRecorder {
    fn name(&self) -> &'static str {
        "CallRecorder"
    }

    // Not `read_before_execution`: a client's interceptors run that before the operation's
    // configuration (and its `Metadata`) is in the bag.
    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            let function = crate::telemetry::current_function().unwrap_or("none").to_string();
            let target = s3_target(context.input());
            self.note(Call {
                function,
                service: m.service().to_string(),
                operation: m.name().to_string(),
                bucket: target.as_ref().map(|t| t.0.clone()),
                folder: target.as_ref().map(|t| t.1.clone()),
                version: target.is_some_and(|t| t.2),
            })?;
        }
        Ok(())
    }
}

/// Every call recorded in `path`.
pub fn read(path: &std::path::Path) -> std::io::Result<Vec<Call>> {
    let text = std::fs::read_to_string(path)?;
    text.lines().map(|l| serde_json::from_str(l).map_err(std::io::Error::other)).collect()
}
