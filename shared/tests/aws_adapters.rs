//! What only the AWS adapters do, on moto: a timer's schedule (deleted after it fires, its dead
//! letters), and the WhatsApp secrets from Secrets Manager. What every adapter of a port does
//! is in `port_contracts.rs`.

use shared::ports::{Scheduler, Timer};
use time::OffsetDateTime;

mod support;
use support::{aws_clients, unique};

#[tokio::test]
async fn a_schedule_is_armed_once_per_name_deletes_itself_and_has_a_dead_letter_queue() {
    let Some(c) = aws_clients().await else { return };
    let (s, group) = support::eventbridge_scheduler(&c).await;
    let s = s.with_dead_letter(Some("arn:aws:sqs:us-east-1:123456789012:timers-dlq".into()));
    let timer = Timer::WindowExpiry { contact_key: "447700900123".into() };
    let first = OffsetDateTime::now_utc() + time::Duration::hours(24);
    s.schedule(&timer, first).await.unwrap();
    s.schedule(&timer, first + time::Duration::hours(3)).await.unwrap();
    let list = c.scheduler.list_schedules().group_name(&group).send().await.unwrap();
    assert_eq!(list.schedules().len(), 1, "one schedule per timer name");
    let got = c.scheduler.get_schedule().group_name(&group).name(timer.name()).send().await.unwrap();
    assert_eq!(
        got.schedule_expression(),
        Some(shared::adapters::aws::at_expression(first + time::Duration::hours(3)).as_str())
    );
    assert_eq!(got.action_after_completion(), Some(&aws_sdk_scheduler::types::ActionAfterCompletion::Delete));
    // A timer Scheduler cannot deliver in a day of retries lands in the dead-letter queue.
    let target = got.target().unwrap();
    assert_eq!(
        target.dead_letter_config().and_then(|d| d.arn()),
        Some("arn:aws:sqs:us-east-1:123456789012:timers-dlq")
    );
    assert_eq!(target.retry_policy().and_then(|r| r.maximum_event_age_in_seconds()), Some(86_400));
}

#[tokio::test]
async fn each_function_reads_only_its_secrets_from_secrets_manager_and_the_rest_from_the_environment() {
    use shared::config::Secret;
    let Some(c) = aws_clients().await else { return };
    let prefix = unique("whatsapp");
    for (secret, value) in [
        (Secret::AppSecret, "s3cret"),
        (Secret::AccessToken, "EAAG-token"),
        (Secret::VerifyToken, "v-tok"),
        (Secret::ArchiveKey, "a-key"),
    ] {
        let id = shared::adapters::aws::secrets::id(&prefix, secret);
        c.secretsmanager.create_secret().name(id).secret_string(value).send().await.unwrap();
    }
    let env = |k: &str| match k {
        "WHATSAPP_API_BASE_URL" => Some("https://graph.facebook.com/v25.0".to_string()),
        "WHATSAPP_APP_SECRET" => Some("stale, from a deployment".to_string()),
        "WHATSAPP_ACCESS_TOKEN" => Some("stale token".to_string()),
        _ => None,
    };
    let webhook = shared::app::config_with_secrets(&c, &prefix, Secret::needed_by("webhook"), env).await.unwrap();
    assert_eq!(webhook.app_secret, "s3cret", "the secret wins over the environment");
    assert_eq!(webhook.verify_token, "v-tok");
    assert_eq!(webhook.settings.archive_key.as_deref(), Some(&b"a-key"[..]));
    assert_eq!(webhook.access_token, "", "the webhook is not given the token, not even the environment's");
    assert_eq!(webhook.withheld, [Secret::AccessToken]);
    assert_eq!(webhook.public_secrets(), ["AUTH_JWT_SECRET"], "the local runner's own, unused on AWS");
    assert_eq!(webhook.whatsapp_api_base_url.as_deref(), Some("https://graph.facebook.com/v25.0"));

    let dispatch = shared::app::config_with_secrets(&c, &prefix, Secret::needed_by("dispatch"), env).await.unwrap();
    assert_eq!(dispatch.access_token, "EAAG-token");
    assert_eq!((dispatch.app_secret.as_str(), dispatch.verify_token.as_str()), ("", ""));
    assert!(dispatch.settings.archive_key.is_none());

    // A function that needs no secret reads none: it starts even with no secret there at all.
    let optin = shared::app::config_with_secrets(&c, &unique("absent"), Secret::needed_by("optin"), env).await.unwrap();
    assert_eq!(optin.withheld, Secret::ALL);

    // A needed secret that is missing or empty stops the cold start instead of running on a
    // public default.
    let short = unique("short");
    let id = shared::adapters::aws::secrets::id(&short, Secret::AccessToken);
    c.secretsmanager.create_secret().name(id).secret_string("EAAG").send().await.unwrap();
    let err = shared::app::config_with_secrets(&c, &short, Secret::needed_by("send"), env).await.err().unwrap();
    assert!(err.0.contains(&format!("{short}/archive_key")), "{err}");
}
