//! The WhatsApp secrets from Secrets Manager, read once per cold start, so that rotating one
//! needs no deployment and no secret sits in a function's configuration. Each is a secret of
//! its own, `<prefix>/<name>`, so that IAM can give each function only those it needs.

use std::collections::HashMap;

use aws_sdk_secretsmanager::error::DisplayErrorContext;

use crate::config::{ConfigError, Secret};

/// The settings the `held` secrets under `prefix` fill, by their environment names, read
/// concurrently. Each must be there and non-empty: a missing one stops the cold start.
pub async fn read(
    client: &aws_sdk_secretsmanager::Client,
    prefix: &str,
    held: &[Secret],
) -> Result<HashMap<String, String>, ConfigError> {
    let mut reads = tokio::task::JoinSet::new();
    for secret in held.iter().copied() {
        let (client, id) = (client.clone(), id(prefix, secret));
        reads.spawn(async move {
            let out = client
                .get_secret_value()
                .secret_id(&id)
                .send()
                .await
                .map_err(|e| ConfigError(format!("reading the secret {id}: {}", DisplayErrorContext(&e))))?;
            match out.secret_string().filter(|v| !v.is_empty()) {
                Some(value) => Ok((secret.setting().to_string(), value.to_string())),
                None => Err(ConfigError(format!("the secret {id} holds no text"))),
            }
        });
    }
    let mut settings = HashMap::new();
    while let Some(read) = reads.join_next().await {
        let (setting, value) = read.map_err(|e| ConfigError(format!("reading a secret: {e}")))??;
        settings.insert(setting, value);
    }
    Ok(settings)
}

/// The secret's name: `<prefix>/<name>`, e.g. `whatsapp-connector-dev/access_token`.
pub fn id(prefix: &str, secret: Secret) -> String {
    format!("{prefix}/{}", secret.name())
}
