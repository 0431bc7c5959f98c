//! Configuration from the environment, read once at start-up; names as in CONTRACT.md and
//! template.yaml.

use std::path::PathBuf;
use std::sync::Arc;

use time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

#[derive(Clone)]
pub struct Config {
    pub listen: String,
    pub data_dir: PathBuf,
    /// Graph API base with its version; `None` means the built-in sandbox.
    pub whatsapp_api_base_url: Option<String>,
    pub phone_number_id: String,
    /// The WhatsApp Business Account whose approved templates `GET /templates` lists.
    pub business_account_id: String,
    pub access_token: String,
    /// How long a Graph API call may take before its answer counts as lost.
    pub graph_timeout: std::time::Duration,
    /// Hosts (and their subdomains) a media URL the Graph API names may be on to receive the
    /// access token, over https; the Graph API's own origin always may.
    pub media_hosts: Vec<String>,
    pub app_secret: String,
    pub verify_token: String,
    pub jwt_secret: String,
    /// Who issues client tokens on AWS (the WebSocket authorizer checks them against the
    /// issuer's published keys), and the audiences accepted.
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Vec<String>,
    pub dev_clock: bool,
    pub settings: Settings,
    /// The AWS resources, when the functions run on AWS (set by template.yaml).
    pub aws: Option<AwsResources>,
    /// The secrets this process was not given (`Config::from_lookup_holding`).
    pub withheld: Vec<Secret>,
}

/// The WhatsApp secrets. On AWS each is its own Secrets Manager secret, and a function reads
/// (and may read) only those `Secret::needed_by` its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Secret {
    AppSecret,
    AccessToken,
    VerifyToken,
    ArchiveKey,
}

impl Secret {
    pub const ALL: [Secret; 4] = [Secret::AppSecret, Secret::AccessToken, Secret::VerifyToken, Secret::ArchiveKey];

    /// Its name under the stack's secret prefix: `<WhatsAppSecretName>/<name>`.
    pub fn name(self) -> &'static str {
        match self {
            Secret::AppSecret => "app_secret",
            Secret::AccessToken => "access_token",
            Secret::VerifyToken => "verify_token",
            Secret::ArchiveKey => "archive_key",
        }
    }

    /// The setting it fills, by its environment name.
    pub fn setting(self) -> &'static str {
        match self {
            Secret::AppSecret => "WHATSAPP_APP_SECRET",
            Secret::AccessToken => "WHATSAPP_ACCESS_TOKEN",
            Secret::VerifyToken => "WHATSAPP_VERIFY_TOKEN",
            Secret::ArchiveKey => "CONNECTOR_ARCHIVE_KEY",
        }
    }

    /// The secrets a function needs, by its handler (template.yaml grants exactly these):
    /// the webhook checks signatures and the handshake and fingerprints what inbound DLP
    /// redacts; send lists and checks templates and fingerprints what outbound DLP finds;
    /// dispatch and receipts call the Graph API; the archiver links records and admin verifies
    /// them under the archive key. The rest call neither Meta nor DLP.
    pub fn needed_by(handler: &str) -> &'static [Secret] {
        match handler {
            "webhook" => &[Secret::AppSecret, Secret::VerifyToken, Secret::ArchiveKey],
            "send" => &[Secret::AccessToken, Secret::ArchiveKey],
            "dispatch" | "receipts" => &[Secret::AccessToken],
            // The timers function runs exports, whose manifests anchor each chain under the key.
            "archiver" | "admin" | "timers" => &[Secret::ArchiveKey],
            _ => &[],
        }
    }
}

const LOCAL_APP_SECRET: &str = "local-app-secret";
const LOCAL_VERIFY_TOKEN: &str = "local-verify-token";
const LOCAL_JWT_SECRET: &str = "local-jwt-secret";
pub(crate) const LOCAL_ARCHIVE_KEY: &str = "local-archive-key";

/// Hosts Meta serves media from (and their subdomains): `WHATSAPP_MEDIA_HOSTS`'s default.
pub const META_MEDIA_HOSTS: [&str; 4] = ["fbcdn.net", "fbsbx.com", "whatsapp.net", "facebook.com"];

/// A comma-separated list of bare host names, lowercased. A scheme, port, path or wildcard is
/// refused: a list entry matches a host and its subdomains, nothing looser.
fn media_hosts(list: &str) -> Result<Vec<String>, ConfigError> {
    let hosts: Vec<String> = list.split(',').map(|h| h.trim().to_ascii_lowercase()).filter(|h| !h.is_empty()).collect();
    let bare = |h: &str| {
        h.contains('.')
            && !h.starts_with('.')
            && !h.ends_with('.')
            && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    };
    match hosts.iter().find(|h| !bare(h)) {
        Some(bad) => Err(ConfigError(format!("WHATSAPP_MEDIA_HOSTS: {bad:?} is not a host name like fbcdn.net"))),
        None if hosts.is_empty() => Err(ConfigError("WHATSAPP_MEDIA_HOSTS names no host".into())),
        None => Ok(hosts),
    }
}

/// Names and addresses of the AWS resources `template.yaml` creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsResources {
    pub table: String,
    pub outbound_queue_url: String,
    pub receipts_queue_url: String,
    pub schedule_group: String,
    pub timers_function_arn: String,
    pub scheduler_role_arn: String,
    /// The dead-letter queue of timers Scheduler could not deliver (optional).
    pub timers_dlq_arn: Option<String>,
    pub media_bucket: String,
    /// The archive's Object Lock bucket: given only to the functions that read or write the
    /// archive (the archiver, admin).
    pub archive_bucket: Option<String>,
    /// The officer's search (the admin function's): Athena's workgroup, and the Glue table
    /// over the archive bucket (`ATHENA_WORKGROUP`, `ATHENA_DATABASE`, `ATHENA_TABLE`).
    pub search: Option<AthenaSearch>,
    /// The archive vendors' journal: the EventBridge bus the archiver puts each record on
    /// (`JOURNAL_BUS`; none: no journal).
    pub journal_bus: Option<String>,
    /// `CONNECTOR_DYNAMODB_SERIAL_WRITES=1`: one DynamoDB write at a time, for emulators only.
    pub serial_writes: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AthenaSearch {
    pub workgroup: String,
    pub database: String,
    pub table: String,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("whatsapp_api_base_url", &self.whatsapp_api_base_url)
            .field("phone_number_id", &self.phone_number_id)
            .field("dev_clock", &self.dev_clock)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Reads the documented variables, with the local runner's defaults.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    fn hold_only(mut self, held: &[Secret]) -> Config {
        self.withheld = Secret::ALL.into_iter().filter(|s| !held.contains(s)).collect();
        for s in &self.withheld {
            match s {
                Secret::AppSecret => self.app_secret.clear(),
                Secret::AccessToken => self.access_token.clear(),
                Secret::VerifyToken => self.verify_token.clear(),
                Secret::ArchiveKey => self.settings.archive_key = None,
            }
        }
        self
    }

    /// The secrets still at their local defaults, which the README makes public: fine for the
    /// sandbox, never for a runner that Meta or AWS resources can reach.
    pub fn public_secrets(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.app_secret == LOCAL_APP_SECRET {
            out.push("WHATSAPP_APP_SECRET");
        }
        if self.verify_token == LOCAL_VERIFY_TOKEN {
            out.push("WHATSAPP_VERIFY_TOKEN");
        }
        if self.jwt_secret == LOCAL_JWT_SECRET {
            out.push("AUTH_JWT_SECRET");
        }
        if self.settings.archive_key.as_deref() == Some(LOCAL_ARCHIVE_KEY.as_bytes()) {
            out.push("CONNECTOR_ARCHIVE_KEY");
        }
        out
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        Config::from_lookup_holding(get, &Secret::ALL)
    }

    /// As `from_lookup`, holding only the `held` secrets: each of the others is withheld, so
    /// that using one fails instead of falling back to a public default. No signature
    /// verifies, no handshake passes, a Graph API call is refused before it leaves, and a
    /// fingerprint is an error.
    pub fn from_lookup_holding(get: impl Fn(&str) -> Option<String>, held: &[Secret]) -> Result<Config, ConfigError> {
        let or = |k: &str, d: &str| get(k).filter(|v| !v.is_empty()).unwrap_or_else(|| d.to_string());
        let number = |k: &str, d: u64| -> Result<u64, ConfigError> {
            match get(k).filter(|v| !v.is_empty()) {
                Some(v) => v.parse().map_err(|_| ConfigError(format!("{k} must be a whole number, not {v:?}"))),
                None => Ok(d),
            }
        };
        let mut settings = Settings::default();
        settings.max_held = number("CONNECTOR_MAX_HELD", settings.max_held as u64)? as u32;
        settings.max_attempts = number("CONNECTOR_MAX_ATTEMPTS", settings.max_attempts as u64)?.max(1) as u32;
        settings.retry_base = std::time::Duration::from_millis(number("CONNECTOR_RETRY_BASE_MS", 1000)?);
        settings.held_ttl = time::Duration::seconds(number("CONNECTOR_HELD_TTL", 604_800)?.max(1) as i64);
        settings.window_reminder =
            time::Duration::seconds(number("CONNECTOR_WINDOW_REMINDER_SECS", 3600)?.min(23 * 3600) as i64);
        settings.retention = retention(&get)?;
        settings.new_users_enabled = match get("CONNECTOR_NEW_USERS_ENABLED").as_deref().map(str::trim) {
            None | Some("") | Some("true") => true,
            Some("false") => false,
            Some(other) => {
                return Err(ConfigError(format!("CONNECTOR_NEW_USERS_ENABLED must be true or false, not {other:?}")))
            }
        };
        settings.business_name = or("CONNECTOR_BUSINESS_NAME", &settings.business_name);
        settings.optin_template = or("WHATSAPP_OPTIN_TEMPLATE", &settings.optin_template);
        settings.resume_template = or("WHATSAPP_RESUME_TEMPLATE", &settings.resume_template);
        settings.participant_template = or("WHATSAPP_PARTICIPANT_TEMPLATE", &settings.participant_template);
        settings.archive_key = Some(std::sync::Arc::from(or("CONNECTOR_ARCHIVE_KEY", LOCAL_ARCHIVE_KEY).as_bytes()));
        if let Some(path) = get("CONNECTOR_DLP_POLICY").filter(|v| !v.is_empty()) {
            let policy = crate::dlp::Policy::load(&path).map_err(|e| ConfigError(e.to_string()))?;
            settings.dlp = std::sync::Arc::new(policy);
        } else if let Some(json) = get("CONNECTOR_DLP_POLICY_JSON").filter(|v| !v.trim().is_empty()) {
            // On AWS the policy is a stack parameter, passed inline.
            let policy = crate::dlp::Policy::from_json(&json)
                .map_err(|e| ConfigError(format!("DLP policy CONNECTOR_DLP_POLICY_JSON: {e}")))?;
            settings.dlp = std::sync::Arc::new(policy);
        }
        let base = get("WHATSAPP_API_BASE_URL").filter(|v| !v.is_empty());
        let access_token = or("WHATSAPP_ACCESS_TOKEN", "");
        if base.is_some() && access_token.is_empty() && held.contains(&Secret::AccessToken) {
            return Err(ConfigError("WHATSAPP_API_BASE_URL is set but WHATSAPP_ACCESS_TOKEN is not".into()));
        }
        Ok(Config {
            listen: or("CONNECTOR_LISTEN", "127.0.0.1:3000"),
            data_dir: PathBuf::from(or("CONNECTOR_DATA_DIR", "./.connector")),
            whatsapp_api_base_url: base,
            phone_number_id: or("WHATSAPP_PHONE_NUMBER_ID", "106540352242922"),
            business_account_id: or("WHATSAPP_BUSINESS_ACCOUNT_ID", ""),
            access_token,
            graph_timeout: std::time::Duration::from_millis(number("WHATSAPP_API_TIMEOUT_MS", 30_000)?.max(1)),
            media_hosts: media_hosts(&or("WHATSAPP_MEDIA_HOSTS", &META_MEDIA_HOSTS.join(",")))?,
            // An explicitly empty secret stays empty: every webhook POST is then refused.
            app_secret: get("WHATSAPP_APP_SECRET").unwrap_or_else(|| LOCAL_APP_SECRET.into()),
            verify_token: or("WHATSAPP_VERIFY_TOKEN", LOCAL_VERIFY_TOKEN),
            jwt_secret: or("AUTH_JWT_SECRET", LOCAL_JWT_SECRET),
            jwt_issuer: get("AUTH_JWT_ISSUER").filter(|v| !v.is_empty()),
            jwt_audience: or("AUTH_JWT_AUDIENCE", "")
                .split(',')
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty())
                .collect(),
            dev_clock: get("CONNECTOR_DEV_CLOCK").as_deref() == Some("1"),
            settings,
            aws: aws_resources(&get)?,
            withheld: Vec::new(),
        }
        .hold_only(held))
    }
}

/// Seven years (2,557 days), the record-keeping rule most of our users answer to.
pub const DEFAULT_RETENTION_DAYS: i64 = 2557;

/// `CONNECTOR_RETENTION_DAYS` (a whole number of days, at least one: S3 Object Lock's
/// shortest), or, for tests with the dev clock alone, `CONNECTOR_RETENTION_SECS`.
fn retention(get: &impl Fn(&str) -> Option<String>) -> Result<Duration, ConfigError> {
    let set = |k: &str| get(k).filter(|v| !v.is_empty());
    if let Some(secs) = set("CONNECTOR_RETENTION_SECS") {
        if get("CONNECTOR_DEV_CLOCK").as_deref() != Some("1") {
            return Err(ConfigError("CONNECTOR_RETENTION_SECS is for tests, with CONNECTOR_DEV_CLOCK=1".into()));
        }
        let secs: i64 = secs.parse().ok().filter(|s| *s >= 1).ok_or_else(|| {
            ConfigError(format!("CONNECTOR_RETENTION_SECS must be a whole number of seconds, not {secs:?}"))
        })?;
        return Ok(Duration::seconds(secs));
    }
    match set("CONNECTOR_RETENTION_DAYS") {
        None => Ok(Duration::days(DEFAULT_RETENTION_DAYS)),
        Some(days) => match days.parse::<i64>() {
            Ok(d) if (1..=36_500).contains(&d) => Ok(Duration::days(d)),
            _ => Err(ConfigError(format!("CONNECTOR_RETENTION_DAYS must be from 1 to 36500 days, not {days:?}"))),
        },
    }
}

/// All of them when `CONNECTOR_TABLE` is set, none otherwise.
fn aws_resources(get: &impl Fn(&str) -> Option<String>) -> Result<Option<AwsResources>, ConfigError> {
    let Some(table) = get("CONNECTOR_TABLE").filter(|v| !v.is_empty()) else { return Ok(None) };
    let need = |k: &str| {
        get(k)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ConfigError(format!("CONNECTOR_TABLE is set, so {k} must be too")))
    };
    Ok(Some(AwsResources {
        table,
        outbound_queue_url: need("OUTBOUND_QUEUE_URL")?,
        receipts_queue_url: need("RECEIPTS_QUEUE_URL")?,
        schedule_group: need("SCHEDULE_GROUP")?,
        timers_function_arn: need("TIMERS_FUNCTION_ARN")?,
        scheduler_role_arn: need("SCHEDULER_ROLE_ARN")?,
        timers_dlq_arn: get("TIMERS_DLQ_ARN").filter(|v| !v.is_empty()),
        media_bucket: need("MEDIA_BUCKET")?,
        archive_bucket: get("ARCHIVE_BUCKET").filter(|v| !v.is_empty()),
        search: match get("ATHENA_WORKGROUP").filter(|v| !v.is_empty()) {
            Some(workgroup) => {
                Some(AthenaSearch { workgroup, database: need("ATHENA_DATABASE")?, table: need("ATHENA_TABLE")? })
            }
            None => None,
        },
        journal_bus: get("JOURNAL_BUS").filter(|v| !v.is_empty()),
        serial_writes: get("CONNECTOR_DYNAMODB_SERIAL_WRITES").as_deref() == Some("1"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_contract() {
        let c = Config::from_lookup(|_| None).unwrap();
        assert_eq!(c.listen, "127.0.0.1:3000");
        assert_eq!(c.phone_number_id, "106540352242922");
        assert_eq!(c.app_secret, "local-app-secret");
        assert_eq!(c.settings.max_held, 50);
        assert_eq!(c.settings.retention, Duration::days(2557));
        assert!(!c.dev_clock && c.whatsapp_api_base_url.is_none());
    }

    #[test]
    fn a_policy_that_fails_to_load_stops_start_up_naming_the_file() {
        let e = Config::from_lookup(|k| (k == "CONNECTOR_DLP_POLICY").then(|| "/nope/dlp.json".into())).unwrap_err();
        assert!(e.to_string().contains("/nope/dlp.json"), "{e}");
    }

    #[test]
    fn retention_is_whole_days_and_seconds_only_with_the_dev_clock() {
        let with = |pairs: &'static [(&'static str, &'static str)]| {
            Config::from_lookup(move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
        };
        assert_eq!(with(&[("CONNECTOR_RETENTION_DAYS", "30")]).unwrap().settings.retention, Duration::days(30));
        for bad in ["0", "-1", "1.5", "seven years", "36501"] {
            let e = Config::from_lookup(|k| (k == "CONNECTOR_RETENTION_DAYS").then(|| bad.into())).unwrap_err();
            assert!(e.to_string().contains("CONNECTOR_RETENTION_DAYS"), "{bad}: {e}");
        }
        assert!(with(&[("CONNECTOR_RETENTION_SECS", "5")]).is_err(), "not without the dev clock");
        let dev = with(&[("CONNECTOR_RETENTION_SECS", "5"), ("CONNECTOR_DEV_CLOCK", "1")]).unwrap();
        assert_eq!(dev.settings.retention, Duration::seconds(5));
    }

    #[test]
    fn new_users_are_enabled_unless_told_otherwise_in_so_many_words() {
        let new_users = |v: &'static str| {
            Config::from_lookup(move |k| (k == "CONNECTOR_NEW_USERS_ENABLED").then(|| v.into()))
                .map(|c| c.settings.new_users_enabled)
        };
        assert_eq!(
            (new_users("").unwrap(), new_users("true").unwrap(), new_users("false").unwrap()),
            (true, true, false)
        );
        assert!(new_users("no").is_err(), "a typo must not enable everyone");
    }

    #[test]
    fn bad_numbers_and_missing_token_are_refused() {
        assert!(Config::from_lookup(|k| (k == "CONNECTOR_MAX_HELD").then(|| "many".into())).is_err());
        assert!(Config::from_lookup(|k| (k == "WHATSAPP_API_BASE_URL").then(|| "http://x".into())).is_err());
    }

    #[test]
    fn a_withheld_secret_is_empty_whatever_the_environment_says() {
        let env = |k: &str| match k {
            "WHATSAPP_API_BASE_URL" => Some("https://graph.facebook.com/v25.0".to_string()),
            k if Secret::ALL.iter().any(|s| s.setting() == k) => Some(format!("{k}-value")),
            _ => None,
        };
        let all = Config::from_lookup(env).unwrap();
        assert!(all.withheld.is_empty());
        assert_eq!(all.settings.archive_key.as_deref(), Some(&b"CONNECTOR_ARCHIVE_KEY-value"[..]));
        let none = Config::from_lookup_holding(env, &[]).unwrap();
        assert_eq!(none.withheld, Secret::ALL);
        assert_eq!((none.app_secret.as_str(), none.verify_token.as_str(), none.access_token.as_str()), ("", "", ""));
        assert!(none.settings.archive_key.is_none());
        assert!(none.public_secrets().iter().all(|s| *s == "AUTH_JWT_SECRET"), "withheld is not public");
        // A Graph API base without the token is a mistake only where the token is needed.
        let base = |k: &str| (k == "WHATSAPP_API_BASE_URL").then(|| "https://graph.facebook.com/v25.0".to_string());
        assert!(Config::from_lookup_holding(base, Secret::needed_by("webhook")).is_ok());
        assert!(Config::from_lookup_holding(base, Secret::needed_by("dispatch")).is_err());
    }

    #[test]
    fn only_the_functions_that_call_meta_dlp_or_the_archive_need_secrets() {
        for h in ["optin", "participants", "live", "unknown"] {
            assert!(Secret::needed_by(h).is_empty(), "{h}");
        }
        // The timers function runs exports, whose manifests anchor chains under the key.
        for h in ["archiver", "admin", "timers"] {
            assert_eq!(Secret::needed_by(h), &[Secret::ArchiveKey], "{h}");
        }
        assert!(Secret::needed_by("webhook").contains(&Secret::AppSecret));
        assert!(!Secret::needed_by("send").contains(&Secret::AppSecret));
    }

    #[test]
    fn media_hosts_default_to_metas_and_a_list_takes_bare_host_names_only() {
        let hosts = |v: &str| Config::from_lookup(|k| (k == "WHATSAPP_MEDIA_HOSTS").then(|| v.to_string()));
        assert_eq!(Config::from_lookup(|_| None).unwrap().media_hosts, META_MEDIA_HOSTS.to_vec());
        assert_eq!(
            hosts(" Media.Example.com , cdn.example.org").unwrap().media_hosts,
            ["media.example.com", "cdn.example.org"]
        );
        for bad in ["https://media.example.com", "*.example.com", "example.com:443", "com", ".example.com", " , "] {
            assert!(hosts(bad).is_err(), "{bad:?}");
        }
    }
}

/// The settings use cases need (from `Config`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub business_name: String,
    pub optin_template: String,
    pub resume_template: String,
    /// Template telling the contact, outside the window, that a participant joined or left.
    pub participant_template: String,
    /// Held messages allowed per thread before `429 queue_full`.
    pub max_held: u32,
    /// Graph API attempts per message before it fails for good.
    pub max_attempts: u32,
    /// First retry delay; later ones grow exponentially, with jitter.
    pub retry_base: std::time::Duration,
    /// How long webhook ids are remembered for dedupe (Meta retries for up to 7 days).
    pub dedupe_ttl: Duration,
    /// Data-loss prevention rules for outbound (and optionally inbound) text.
    pub dlp: Arc<crate::dlp::Policy>,
    /// How long a message may stay held before it fails as `held_expired`.
    pub held_ttl: Duration,
    /// How long before the window closes its participants get `window_closing` (0: never).
    pub window_reminder: Duration,
    /// The key of the fingerprints that stand for what DLP found in an archived original;
    /// `None` in a function not given it (a fingerprint is then an error).
    pub archive_key: Option<Arc<[u8]>>,
    /// How long the record keeps what it holds (`CONNECTOR_RETENTION_DAYS`): each archive
    /// object is locked that long after it was written, and erased once it has passed.
    pub retention: Duration,
    /// Whether a user seen for the first time may use WhatsApp at once
    /// (`CONNECTOR_NEW_USERS_ENABLED`, default true); when false they wait until an admin
    /// enables them (`PUT /directory/users/{id}`). Admins are enabled on first sight: one must
    /// be able to enable the others.
    pub new_users_enabled: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            business_name: "Our business".into(),
            optin_template: "connector_optin".into(),
            resume_template: "connector_resume".into(),
            participant_template: "connector_participant_update".into(),
            max_held: 50,
            max_attempts: 5,
            retry_base: std::time::Duration::from_secs(1),
            dedupe_ttl: Duration::days(9),
            dlp: Arc::new(crate::dlp::Policy::default()),
            held_ttl: Duration::days(7),
            window_reminder: Duration::hours(1),
            archive_key: Some(Arc::from(LOCAL_ARCHIVE_KEY.as_bytes())),
            retention: Duration::days(DEFAULT_RETENTION_DAYS),
            new_users_enabled: true,
        }
    }
}
