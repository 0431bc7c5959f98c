//! `template.yaml`'s alarms and dashboard watch metrics that exist: AWS's own (by namespace),
//! or the connector's: counted by a log metric filter whose message the code really logs, or
//! written by the functions themselves (EMF).
//! A renamed log line or a mistyped metric would otherwise leave an alarm that never fires.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use regex::Regex;

/// The AWS metrics the template may use, by namespace (from each service's metric reference).
const AWS_METRICS: &[(&str, &[&str])] = &[
    ("AWS/Lambda", &["Errors", "Throttles", "Duration", "Invocations", "ConcurrentExecutions", "IteratorAge"]),
    ("AWS/SQS", &["ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"]),
    ("AWS/ApiGateway", &["Count", "4xx", "5xx", "Latency", "IntegrationLatency"]),
    ("AWS/Scheduler", &["TargetErrorCount", "InvocationDroppedCount", "InvocationAttemptCount"]),
    ("AWS/DynamoDB", &["ReadThrottleEvents", "WriteThrottleEvents"]),
];
const OURS: &str = "WhatsAppConnector";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn template() -> String {
    std::fs::read_to_string(root().join("template.yaml")).unwrap()
}

/// Every Rust source of the functions and the core, concatenated.
fn sources() -> String {
    let mut out = String::new();
    let mut dirs = vec![root().join("shared/src")];
    for f in std::fs::read_dir(root().join("functions")).unwrap() {
        dirs.push(f.unwrap().path().join("src"));
    }
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries {
            let path = e.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push_str(&std::fs::read_to_string(path).unwrap());
            }
        }
    }
    out
}

/// (namespace, metric) of every alarm, metric-math term and dashboard line.
fn watched(t: &str) -> BTreeSet<(String, String)> {
    let yaml = Regex::new(r"Namespace: ([\w/]+),?\s*MetricName: (\w+)").unwrap();
    let dashboard = Regex::new(r#"\["((?:AWS/)?\w+)","(\w+)""#).unwrap();
    let mut out = BTreeSet::new();
    for c in yaml.captures_iter(t).chain(dashboard.captures_iter(t)) {
        out.insert((c[1].to_string(), c[2].to_string()));
    }
    out
}

/// Our metric names, each with the log message its filter counts.
fn filtered(t: &str) -> HashMap<String, String> {
    let re = Regex::new(
        r#"FilterPattern: '\{ \$\.fields\.message = "([^"]+)" \}',?\s*MetricTransformations: \[\{ MetricNamespace: (\w+), MetricName: (\w+)"#,
    )
    .unwrap();
    re.captures_iter(t)
        .map(|c| {
            assert_eq!(&c[2], OURS, "one namespace for the connector's metrics");
            (c[3].to_string(), c[1].to_string())
        })
        .collect()
}

#[test]
fn every_watched_metric_is_one_aws_or_the_code_emits() {
    let t = template();
    let ours = filtered(&t);
    let code = sources();
    let watched = watched(&t);
    assert!(watched.len() >= 15, "the scan found the alarms and the dashboard: {watched:?}");
    for (namespace, metric) in &watched {
        if namespace == OURS {
            match ours.get(metric) {
                Some(message) => assert!(
                    code.contains(&format!("\"{message}\"")),
                    "{metric} counts log lines {message:?}, which no function logs any more"
                ),
                // Not from the logs: the functions write it (EMF, `shared/src/metrics.rs`).
                None => assert!(code.contains(&format!("\"{metric}\"")), "nothing makes {metric}"),
            }
        } else {
            let known = AWS_METRICS.iter().find(|(ns, _)| ns == namespace);
            let (_, names) = known.unwrap_or_else(|| panic!("unknown namespace {namespace}"));
            assert!(names.contains(&metric.as_str()), "{namespace} has no metric {metric}");
        }
    }
    for metric in ours.keys() {
        assert!(watched.contains(&(OURS.to_string(), metric.clone())), "{metric} is counted but nothing watches it");
    }
}

/// The template's top-level entries (two-space indent), each with its body.
fn resources(t: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in t.lines() {
        let top = line.starts_with("  ") && !line.starts_with("   ");
        match out.last_mut() {
            Some(last) if !top => {
                last.push_str(line);
                last.push('\n');
            }
            _ => out.push(format!("{line}\n")),
        }
    }
    out
}

#[test]
fn every_alarm_reaches_the_topic_and_every_dead_letter_queue_has_one() {
    let t = template();
    let alarms: Vec<String> =
        resources(&t).into_iter().filter(|r| r.contains("Type: AWS::CloudWatch::Alarm")).collect();
    assert!(alarms.len() >= 15, "{} alarms", alarms.len());
    for a in &alarms {
        assert!(a.contains("AlarmActions: [!Ref AlarmTopic]"), "an alarm that tells nobody:\n{a}");
    }
    let dlqs = Regex::new(r"\n  (\w+Dlq):\n    Type: AWS::SQS::Queue").unwrap();
    let names: Vec<String> = dlqs.captures_iter(&t).map(|c| c[1].to_string()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    for dlq in names {
        let watched = format!("Value: !GetAtt {dlq}.QueueName");
        assert!(
            alarms.iter().any(|a| a.contains(&watched) && a.contains("ApproximateNumberOfMessagesVisible")),
            "no alarm on {dlq}"
        );
    }
    // The topic's key lets CloudWatch publish (the AWS-managed aws/sns key does not).
    assert!(t.contains("KmsMasterKeyId: !Ref AlarmKey") && t.contains("Service: cloudwatch.amazonaws.com"));
}

#[test]
fn the_dashboard_body_is_json_once_substituted() {
    let t = template();
    let start = t.find("DashboardBody: !Sub >-\n").expect("a dashboard") + "DashboardBody: !Sub >-\n".len();
    let block: Vec<&str> = t[start..].lines().take_while(|l| l.starts_with("        ")).map(str::trim).collect();
    let body = Regex::new(r"\$\{[^}]+\}").unwrap().replace_all(&block.join(" "), "X").to_string();
    let dashboard: serde_json::Value = serde_json::from_str(&body).expect("the dashboard's JSON");
    assert!(dashboard["widgets"].as_array().unwrap().len() >= 8);
}

/// `Word` as the SDK names its call: `BatchGetItem` → `batch_get_item`.
fn snake(word: &str) -> String {
    let mut out = String::new();
    for (i, c) in word.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[test]
fn the_functions_may_do_to_the_table_exactly_what_the_store_adapter_does() {
    let t = template();
    let adapter = std::fs::read_to_string(root().join("shared/src/adapters/aws/dynamo.rs")).unwrap();
    assert!(!t.contains("DynamoDBCrudPolicy") && !t.contains("S3CrudPolicy"), "no blanket CRUD policies");
    let policy = resources(&t).into_iter().find(|r| r.starts_with("  TableAccessPolicy:")).expect("the policy");
    let granted: BTreeSet<String> =
        Regex::new(r"dynamodb:(\w+)").unwrap().captures_iter(&policy).map(|c| c[1].to_string()).collect();
    // Calls made directly, and the actions a transaction's parts need.
    let mut used: BTreeSet<String> = BTreeSet::new();
    for action in ["GetItem", "BatchGetItem", "Query", "UpdateItem", "DeleteItem", "PutItem", "Scan", "BatchWriteItem"]
    {
        if adapter.contains(&format!(".{}()", snake(action))) {
            used.insert(action.to_string());
        }
    }
    for (part, action) in
        [("Update::builder", "UpdateItem"), ("Delete::builder", "DeleteItem"), ("Put::builder", "PutItem")]
    {
        if adapter.contains(part) {
            used.insert(action.to_string());
        }
    }
    if adapter.contains("ConditionCheck::builder") {
        used.insert("ConditionCheckItem".into());
    }
    assert_eq!(granted, used, "the policy grants what the adapter calls, no more");
}

#[test]
fn each_function_may_read_exactly_the_secrets_its_handler_needs() {
    let t = template();
    let handler = Regex::new(r"Handler: (\w+)").unwrap();
    let secret = Regex::new(r"secret:\$\{WhatsAppSecretName\}/(\w+)-\?{6}").unwrap();
    let functions: Vec<String> =
        resources(&t).into_iter().filter(|r| r.contains("Type: AWS::Serverless::Function")).collect();
    assert!(functions.len() >= 10, "{} functions", functions.len());
    let (mut grants, mut readers) = (0, 0);
    for f in &functions {
        let h = &handler.captures(f).expect("a handler")[1];
        let granted: BTreeSet<&str> = secret.captures_iter(f).map(|c| c.get(1).unwrap().as_str()).collect();
        let needed: BTreeSet<&str> = shared::config::Secret::needed_by(h).iter().map(|s| s.name()).collect();
        assert_eq!(granted, needed, "{h}: what its policy grants, what its cold start reads");
        grants += granted.len();
        readers += usize::from(!granted.is_empty());
    }
    // No secret read outside the functions' own statements.
    assert_eq!(t.matches("Action: secretsmanager:").count(), readers);
    assert_eq!(t.matches(":secret:").count(), grants);
}

#[test]
fn only_the_archiver_writes_the_archive_and_only_the_sweep_erases_a_threads_batch() {
    let t = template();
    let all = resources(&t);
    let find = |name: &str| all.iter().find(|r| r.starts_with(&format!("  {name}:"))).expect(name).clone();
    // Object Lock in compliance mode, for CONNECTOR_RETENTION_DAYS (seven years by default).
    let bucket = find("ArchiveBucket");
    assert!(bucket.contains("ObjectLockEnabled: true"));
    assert!(bucket.contains("DefaultRetention: { Mode: COMPLIANCE, Days: !Ref ArchiveRetentionDays }"), "{bucket}");
    assert!(bucket.contains("DeletionPolicy: Retain"));
    assert!(find("ArchiveRetentionDays").contains("Default: 2557"));
    // The bucket's policy: puts only by the archiver's role, only conditional (write once),
    // and nothing deleted, shortened or unlocked by anyone.
    let policy = find("ArchiveBucketPolicy");
    let statement = |sid: &str| {
        let at = policy.find(&format!("Sid: {sid}")).unwrap_or_else(|| panic!("no {sid}"));
        let rest = &policy[at..];
        rest[..rest[1..].find("- Sid:").map_or(rest.len(), |n| n + 1)].to_string()
    };
    let only = statement("OnlyTheArchiverWrites");
    assert!(
        only.contains("Effect: Deny") && only.contains("Principal: \"*\"") && only.contains("Action: s3:PutObject")
    );
    assert!(only.contains(r#"ArnNotEquals: { "aws:PrincipalArn": !GetAtt ArchiverFunctionRole.Arn }"#), "{only}");
    assert!(statement("WriteOnce").contains(r#""s3:if-none-match": "true""#));
    let nothing = statement("NothingDeletedOrUnlocked");
    for action in ["s3:DeleteObject", "s3:PutObjectRetention", "s3:BypassGovernanceRetention"] {
        assert!(nothing.contains(&format!("- {action}\n")), "{action} is not denied");
    }
    assert!(nothing.contains("Effect: Deny") && nothing.contains("Principal: \"*\""));
    // A version is deleted only under records/ (the record of use, uses/, never), and only by
    // the retention sweep's role; Object Lock still refuses it within retention or under a hold.
    let outside = statement("OnlyTheSweepErases");
    assert!(outside.contains("Action: s3:DeleteObjectVersion") && outside.contains("Principal: \"*\""));
    assert!(outside.contains(r#"NotResource: !Sub "${ArchiveBucket.Arn}/records/*""#), "{outside}");
    let inside = statement("OnlyTheSweepErasesRecords");
    assert!(inside.contains(r#"Resource: !Sub "${ArchiveBucket.Arn}/records/*""#), "{inside}");
    assert!(inside.contains(r#"ArnNotEquals: { "aws:PrincipalArn": !GetAtt TimersFunctionRole.Arn }"#), "{inside}");
    assert!(t.contains("CONNECTOR_RETENTION_DAYS: !Ref ArchiveRetentionDays"), "the functions' retention");
    // Among the functions, the archiver alone may put into the bucket; none may delete.
    let functions: Vec<&String> = all.iter().filter(|r| r.contains("Type: AWS::Serverless::Function")).collect();
    let writers: Vec<String> = functions
        .iter()
        .filter(|f| {
            // A statement that puts into the archive bucket (the admin function puts Athena's
            // results in a bucket of their own).
            // (s3:PutObject itself, not s3:PutObjectLegalHold).
            let puts = |s: &str| {
                s.split(|c: char| c == ',' || c == '[' || c == ']' || c.is_whitespace()).any(|a| a == "s3:PutObject")
            };
            f.split("- Effect:").any(|s| puts(s) && s.contains("${ArchiveBucket.Arn}"))
        })
        .map(|f| f.lines().next().unwrap().trim().trim_end_matches(':').to_string())
        .collect();
    assert_eq!(writers, vec!["ArchiverFunction"]);
    for f in &functions {
        let sweeper = f.starts_with("  TimersFunction:");
        for statement in f.split("- Effect:").filter(|s| s.contains("ArchiveBucket")) {
            let deletes = statement.contains("s3:DeleteObjectVersion");
            assert!(!deletes || (sweeper && statement.contains("${ArchiveBucket.Arn}/records/*")), "{f}");
            assert!(!statement.contains("s3:DeleteObject,") && !statement.contains("s3:DeleteObject]"), "{f}");
            assert!(!statement.contains("s3:PutObjectRetention"), "{f}");
        }
    }
}

#[test]
fn a_first_deploy_fits_a_new_account_and_the_outbound_queue_scales_per_thread() {
    let t = template();
    let all = resources(&t);
    let find = |name: &str| all.iter().find(|r| r.starts_with(&format!("  {name}:"))).expect(name).clone();
    // No reservation by default: a new account's quota (10) cannot give one.
    let param = find("WebhookReservedConcurrency");
    assert!(param.contains("Default: 0") && param.contains("MinValue: 0"), "{param}");
    assert!(t.contains("HasWebhookReservation: !Not [!Equals [!Ref WebhookReservedConcurrency, 0]]"));
    let reserved: Vec<&str> = t.lines().filter(|l| l.contains("ReservedConcurrentExecutions:")).collect();
    assert_eq!(
        reserved,
        ["      ReservedConcurrentExecutions: !If [HasWebhookReservation, !Ref WebhookReservedConcurrency, !Ref AWS::NoValue]"],
        "no other function reserves any"
    );
    // High-throughput FIFO: ordered and deduplicated per message group (a thread).
    let queue = find("OutboundQueue");
    assert!(queue.contains("DeduplicationScope: messageGroup"), "{queue}");
    assert!(queue.contains("FifoThroughputLimit: perMessageGroupId"), "{queue}");
}

/// Which functions log each message a metric filter counts, and where: a filter on another
/// function's log group never matches. The `sources` are read here, so a message reworded in
/// the code and not in the template (or the other way round) fails too.
const LOGGED: &[(&str, &str, &[&str])] = &[
    ("Graph API refused a send", "shared/src/usecases/dispatch.rs", &["Dispatch"]),
    ("no answer from the Graph API: waiting for a status", "shared/src/usecases/dispatch.rs", &["Dispatch"]),
    ("webhook refused: bad or missing signature", "functions/webhook/src/lib.rs", &["Webhook"]),
    ("live: fan-out failed; the batch is retried from here", "functions/live/src/lib.rs", &["Live"]),
    // The relay's fast path, after any commit: in every function that commits.
    (
        "outbox entry left for the sweep",
        "shared/src/usecases/relay.rs",
        &["Webhook", "Send", "Optin", "Participants", "Admin", "Receipts", "Dispatch", "Timers"],
    ),
    // The sweep: the timers function alone runs it (Timer::OutboxSweep).
    ("outbox entry could not be published", "shared/src/usecases/relay.rs", &["Timers"]),
];

#[test]
fn every_metric_filter_counts_a_line_its_own_function_logs() {
    let t = template();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let pattern =
        regex::Regex::new(r#"LogGroupName: !Ref (\w+)Logs,? FilterPattern: '\{ \$\.fields\.message = "([^"]+)" \}'"#)
            .unwrap();
    let mut filters: Vec<(String, String)> = Vec::new();
    for r in resources(&t).iter().filter(|r| r.contains("Type: AWS::Logs::MetricFilter")) {
        let flat = r.split_whitespace().collect::<Vec<_>>().join(" ");
        let c = pattern.captures(&flat).unwrap_or_else(|| panic!("a filter of another shape: {r}"));
        filters.push((c[1].to_string(), c[2].to_string()));
    }
    assert!(filters.len() >= 13, "{filters:?}");
    for (function, message) in &filters {
        let (_, source, by) = LOGGED.iter().find(|(m, ..)| m == message).unwrap_or_else(|| panic!("{message:?}"));
        assert!(by.contains(&function.as_str()), "{function} never logs {message:?}");
        let code = std::fs::read_to_string(root.join(source)).unwrap();
        assert!(code.contains(&format!("\"{message}\"")), "{source} does not log {message:?}");
    }
    // Every function that logs a counted message has its filter.
    for (message, _, by) in LOGGED {
        for function in *by {
            assert!(filters.contains(&(function.to_string(), message.to_string())), "{function}: {message:?}");
        }
    }
}

/// Gradual deploys: every function publishes the `live` alias and shifts traffic to a new
/// version by CodeDeploy, rolled back by alarms that exist; everything that invokes a function
/// the template does not wire through SAM (the WebSocket routes, the scheduler's timers) calls
/// the alias, or a canary would never see that traffic.
#[test]
fn every_function_deploys_gradually_and_is_invoked_through_its_alias() {
    let t = template();
    let all = resources(&t);
    let globals = &t[t.find("Globals:").unwrap()..t.find("  # ---- Functions").unwrap()];
    assert!(globals.contains("    AutoPublishAlias: live\n"), "{globals}");
    assert!(globals.contains("      Type: !Ref DeploymentType\n"), "{globals}");
    let preference = &globals[globals.find("    DeploymentPreference:").unwrap()..];
    let alarms: Vec<&str> = preference
        .lines()
        .skip(3)
        .take_while(|l| l.starts_with("        - "))
        .filter_map(|l| l.trim().strip_prefix("- !Ref "))
        .collect();
    assert!(alarms.len() >= 5, "{alarms:?}");
    for a in &alarms {
        let alarm = all.iter().find(|r| r.starts_with(&format!("  {a}:"))).unwrap_or_else(|| panic!("no alarm {a}"));
        assert!(alarm.contains("Type: AWS::CloudWatch::Alarm"), "{a} is no alarm");
    }
    for f in all.iter().filter(|r| r.contains("Type: AWS::Serverless::Function")) {
        assert!(!f.contains("AutoPublishAlias") && !f.contains("DeploymentPreference"), "overrides Globals: {f}");
    }
    let param = all.iter().find(|r| r.starts_with("  DeploymentType:")).unwrap();
    assert!(param.contains("Default: Canary10Percent5Minutes") && param.contains("- AllAtOnce"), "{param}");

    let integration = all.iter().find(|r| r.starts_with("  LiveIntegration:")).expect("LiveIntegration");
    assert!(integration.contains("{ Alias: !Ref LiveFunction.Alias }"), "{integration}");
    assert!(!t.contains("${LiveFunction.Arn}"), "the WebSocket routes would call $LATEST");
    let permission = all.iter().find(|r| r.contains("Principal: apigateway.amazonaws.com")).unwrap();
    assert!(permission.contains("FunctionName: !Ref LiveFunction.Alias"), "{permission}");
    let timers = t.lines().find(|l| l.trim_start().starts_with("TIMERS_FUNCTION_ARN:")).unwrap();
    assert!(timers.ends_with("-timers:live"), "{timers}");
    let role = all.iter().find(|r| r.starts_with("  SchedulerRole:")).unwrap();
    assert!(role.contains("function:${AWS::StackName}-timers:live\n"), "the scheduler may invoke the alias: {role}");
}

/// Keepalive inside API Gateway's 10-minute idle limit, at no Lambda's cost: a `ping` route
/// answered by API Gateway itself.
#[test]
fn the_live_api_answers_a_ping_without_a_lambda() {
    let t = template();
    let all = resources(&t);
    let find = |name: &str| all.iter().find(|r| r.starts_with(&format!("  {name}:"))).expect(name).clone();
    let route = find("LivePingRoute");
    assert!(route.contains("RouteKey: ping") && route.contains("integrations/${LivePingIntegration}"), "{route}");
    assert!(find("LivePingIntegration").contains("IntegrationType: MOCK"));
    assert!(find("LivePingIntegrationResponse").contains(r#"$default: '{"event": "pong"}'"#));
    assert!(find("LivePingRouteResponse").contains("RouteId: !Ref LivePingRoute"), "two-way: the pong is sent back");
}

/// No role grants an action on every resource: `Resource: "*"` appears only in the KMS keys'
/// own policies, where it means the key itself.
#[test]
fn no_role_grants_an_action_on_every_resource() {
    let t = template();
    for r in resources(&t) {
        if r.contains("Resource: \"*\"") || r.contains("Resource: '*'") || r.contains("Resource: [\"*\"]") {
            assert!(r.contains("Type: AWS::KMS::Key"), "a statement on every resource outside a key policy:\n{r}");
        }
    }
}
