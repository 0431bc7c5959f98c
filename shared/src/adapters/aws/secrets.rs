//! The WhatsApp secrets from Secrets Manager, read once per cold start, so that rotating one
//! needs no deployment and no secret sits in a function's configuration.

use std::collections::HashMap;

use aws_sdk_secretsmanager::error::DisplayErrorContext;

use crate::config::ConfigError;

/// The secret's JSON keys and the settings they fill. Every one must be there: a missing one
/// would fall back to a public local default.
const SECRET_KEYS: [(&str, &str); 4] = [
    ("app_secret", "WHATSAPP_APP_SECRET"),
    ("access_token", "WHATSAPP_ACCESS_TOKEN"),
    ("verify_token", "WHATSAPP_VERIFY_TOKEN"),
    ("archive_key", "CONNECTOR_ARCHIVE_KEY"),
];

/// The settings the secret `id` holds, by their environment names.
pub async fn read(client: &aws_sdk_secretsmanager::Client, id: &str) -> Result<HashMap<String, String>, ConfigError> {
    let out = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| ConfigError(format!("reading the secret {id}: {}", DisplayErrorContext(&e))))?;
    let text = out.secret_string().ok_or_else(|| ConfigError(format!("the secret {id} holds no text")))?;
    settings(text).map_err(|why| ConfigError(format!("the secret {id}: {why}")))
}

/// The settings in a secret's text: a JSON object with every key of `SECRET_KEYS`, as strings.
pub fn settings(text: &str) -> Result<HashMap<String, String>, String> {
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|_| "is not a JSON object".to_string())?;
    SECRET_KEYS
        .iter()
        .map(|(key, setting)| match object.get(*key).and_then(|v| v.as_str()).filter(|v| !v.is_empty()) {
            Some(value) => Ok((setting.to_string(), value.to_string())),
            None => Err(format!("has no {key} (a non-empty string)")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::settings;

    #[test]
    fn every_key_is_needed_and_fills_its_setting() {
        let full = r#"{"app_secret":"a","access_token":"t","verify_token":"v","archive_key":"k","other":1}"#;
        let s = settings(full).unwrap();
        assert_eq!(s["WHATSAPP_APP_SECRET"], "a");
        assert_eq!(s["WHATSAPP_ACCESS_TOKEN"], "t");
        assert_eq!(s["WHATSAPP_VERIFY_TOKEN"], "v");
        assert_eq!(s["CONNECTOR_ARCHIVE_KEY"], "k");
        assert_eq!(s.len(), 4);
        for (bad, why) in [
            (r#"{"app_secret":"a","access_token":"t","verify_token":"v"}"#, "archive_key"),
            (r#"{"app_secret":"a","access_token":"t","verify_token":"","archive_key":"k"}"#, "verify_token"),
            (r#"{"app_secret":1,"access_token":"t","verify_token":"v","archive_key":"k"}"#, "app_secret"),
            ("not json", "JSON object"),
            ("[]", "JSON object"),
        ] {
            assert!(settings(bad).unwrap_err().contains(why), "{bad}");
        }
    }
}
