//! Least privilege, proven from the calls themselves. The e2e suite on moto records every AWS
//! call the runner makes, by function (`adapters::aws::calls`, `CONNECTOR_AWS_CALLS`); this
//! checks template.yaml against them: each function's role allows each of its calls (the
//! action, and for S3 the bucket and folder), and grants no action that none of its calls
//! needs, but those listed in `BEYOND_THE_CALLS`, each with why.
//!
//! `scripts/test` runs it right after that suite (`--ignored`: alone it has nothing to read).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use shared::adapters::aws::calls::{read, Call};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// One `Allow` statement: its actions, and its resources as the template writes them.
#[derive(Debug, Default, Clone)]
struct Grant {
    actions: Vec<String>,
    resource: String,
    /// Granted by SAM with an event source, for Lambda's own use of it.
    for_the_event: bool,
}

/// The template's top-level entries (two-space indent), by name.
fn resources(t: &str) -> BTreeMap<String, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in t.lines() {
        let top = line.starts_with("  ") && !line.starts_with("   ") && line.trim_end().ends_with(':');
        match out.last_mut() {
            Some(last) if !top => {
                last.1.push_str(line);
                last.1.push('\n');
            }
            _ => out.push((line.trim().trim_end_matches(':').to_string(), String::new())),
        }
    }
    out.into_iter().collect()
}

/// The `Allow` statements written in `text` (a policy document or a function's `Policies`).
fn statements(text: &str) -> Vec<Grant> {
    #[derive(PartialEq)]
    enum In {
        Action,
        Resource,
        Other,
    }
    let mut out: Vec<Grant> = Vec::new();
    let mut at = In::Other;
    let list = |s: &str| -> Vec<String> {
        s.trim().trim_start_matches('[').trim_end_matches(']').split(',').map(|a| a.trim().to_string()).collect()
    };
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("- Sid:") || t.starts_with("- Effect:") {
            out.push(Grant::default());
            at = In::Other;
            continue;
        }
        let Some(g) = out.last_mut() else { continue };
        if let Some(rest) = t.strip_prefix("Action:") {
            at = In::Action;
            g.actions.extend(list(rest).into_iter().filter(|a| !a.is_empty()));
        } else if let Some(rest) = t.strip_prefix("Resource:") {
            at = In::Resource;
            g.resource.push_str(rest);
        } else if let (Some(item), In::Action) = (t.strip_prefix("- "), &at) {
            g.actions.push(item.to_string());
        } else if let (Some(item), In::Resource) = (t.strip_prefix("- "), &at) {
            g.resource.push(' ');
            g.resource.push_str(item);
        } else if !t.starts_with('#') {
            at = In::Other;
        }
    }
    out
}

/// What each function's role allows, by its handler's name.
fn roles(t: &str) -> BTreeMap<String, Vec<Grant>> {
    let all = resources(t);
    let table = statements(&all["TableAccessPolicy"]);
    let mut out = BTreeMap::new();
    for body in all.values().filter(|b| b.contains("Type: AWS::Serverless::Function")) {
        let handler = body.lines().find_map(|l| l.trim().strip_prefix("Handler: ")).unwrap().to_string();
        let policies = &body[body.find("      Policies:").expect("policies")..];
        let mut grants = statements(policies);
        if policies.contains("- !Ref TableAccessPolicy") {
            grants.extend(table.iter().cloned());
        }
        for line in policies.lines().filter(|l| l.contains("SQSSendMessagePolicy:")) {
            grants.push(Grant {
                actions: vec!["sqs:SendMessage*".into()],
                resource: line.to_string(),
                ..Grant::default()
            });
        }
        // What SAM grants with an event source (its execution-role managed policies).
        let event = |kind: &str| body.lines().any(|l| l.trim() == format!("Type: {kind}"));
        if event("SQS") {
            let poll = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"];
            let actions = poll.map(String::from).to_vec();
            grants.push(Grant { actions, resource: "the event's queue".into(), for_the_event: true });
        }
        if event("DynamoDB") {
            let read =
                ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"];
            let actions = read.map(String::from).to_vec();
            grants.push(Grant { actions, resource: "the table's stream".into(), for_the_event: true });
        }
        out.insert(handler, grants);
    }
    out
}

/// The template's name for a test bucket (`<run>-media`, `<run>-archive`).
fn bucket_of(name: &str) -> &'static str {
    match name.rsplit('-').next() {
        Some("media") => "MediaBucket",
        Some("archive") => "ArchiveBucket",
        _ => panic!("a bucket the e2e suite does not make: {name}"),
    }
}

/// The IAM actions a call needs: each must be granted.
fn needs(c: &Call) -> Vec<String> {
    let op = c.operation.as_str();
    let iam = |service: &str, action: &str| format!("{service}:{action}");
    match c.service.as_str() {
        // A transaction's parts need the actions of their kinds: the executor may commit any.
        "DynamoDB" if op == "TransactWriteItems" => {
            ["UpdateItem", "DeleteItem", "ConditionCheckItem"].iter().map(|a| iam("dynamodb", a)).collect()
        }
        "DynamoDB" => vec![iam("dynamodb", op)],
        "SQS" => vec![iam("sqs", op)],
        "Scheduler" => vec![iam("scheduler", op), "iam:PassRole".into()],
        "Athena" => vec![iam("athena", op)],
        "EventBridge" => vec![iam("events", op)],
        "S3" => {
            let object = if c.version { "ObjectVersion" } else { "Object" };
            match op {
                "GetObject" | "HeadObject" => vec![format!("s3:Get{object}")],
                "DeleteObject" => vec![format!("s3:Delete{object}")],
                "PutObject" | "CreateMultipartUpload" | "UploadPart" | "CompleteMultipartUpload" => {
                    vec!["s3:PutObject".into()]
                }
                "CopyObject" | "UploadPartCopy" => vec!["s3:PutObject".into(), "s3:GetObject".into()],
                "ListObjectVersions" => vec!["s3:ListBucketVersions".into()],
                "ListObjectsV2" => vec!["s3:ListBucket".into()],
                other => vec![iam("s3", other)],
            }
        }
        other => panic!("a service this check does not know: {other} ({op})"),
    }
}

/// Actions that come with a call without being its own: what the service does with the
/// caller's rights.
fn implied(c: &Call) -> Vec<&'static str> {
    match (c.service.as_str(), c.operation.as_str()) {
        // DynamoDB encrypts under the stack's key (the table policy's kms statement).
        ("DynamoDB", _) => {
            vec!["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*", "kms:DescribeKey"]
        }
        // The archive is encrypted under the stack's key: S3 uses it for the caller.
        ("S3", _) if c.bucket.as_deref().map(bucket_of) == Some("ArchiveBucket") => {
            vec!["kms:Decrypt", "kms:GenerateDataKey"]
        }
        // Athena reads the table's definition and the archive, and writes its results, as the
        // caller.
        ("Athena", "StartQueryExecution") => vec![
            "glue:GetDatabase",
            "glue:GetTable",
            "glue:GetPartitions",
            "s3:GetBucketLocation",
            "s3:ListBucket",
            "s3:GetObject",
            "s3:PutObject",
            "s3:AbortMultipartUpload",
            "s3:ListMultipartUploadParts",
        ],
        _ => vec![],
    }
}

/// Granted beyond what the recorded calls need, and why: (function, action, reason).
const BEYOND_THE_CALLS: &[(&str, &str, &str)] = &[
    ("*", "secretsmanager:GetSecretValue", "read at a cold start; the e2e suite passes the secrets in the environment, and shared/tests/template.rs checks each function reads exactly its handler's"),
    ("*", "dynamodb:*", "every function commits through one executor whose transactions may carry any kind of write; shared/tests/template.rs checks the table policy grants exactly what the store adapter calls"),
    ("*", "scheduler:UpdateSchedule", "the scheduler adapter moves a timer already armed (CreateSchedule answers a conflict): any function that arms one may"),
    ("admin", "athena:StopQueryExecution", "stops a query it stopped waiting for (athena.rs), which the e2e suite's quick stand-in never makes it do"),
    ("archiver", "s3:GetObjectVersion", "a retried put that finds its object written reads it back to compare (vault.rs, on 412)"),
    ("archiver", "sqs:SendMessage", "Lambda's stream event source sends a failed batch's place to ArchiverDlq with the function's role"),
    ("receipts", "sqs:SendMessage*", "a status that fails a message or lets held ones go commits effects the relay publishes from this function"),
    ("receipts", "scheduler:CreateSchedule", "a status's plan may arm a timer (a retry, a delivery deadline)"),
    ("receipts", "iam:PassRole", "with the scheduler's role, when it arms a timer"),
    ("timers", "s3:AbortMultipartUpload", "aborts an export's upload when a part fails"),
];

/// The functions the e2e runner does not run, and why.
const NOT_RUN: &[(&str, &str)] =
    &[("live", "WebSockets run only on AWS: the runner serves the same events over SSE (functions/live/tests)")];

fn beyond(function: &str, action: &str) -> bool {
    BEYOND_THE_CALLS.iter().any(|(f, a, _)| (*f == "*" || *f == function) && matches(a, action))
}

/// Whether `granted` (maybe ending in `*`) covers `action`.
fn matches(granted: &str, action: &str) -> bool {
    match granted.strip_suffix('*') {
        Some(prefix) => action.starts_with(prefix),
        None => granted == action,
    }
}

/// Whether `resource` (a statement's, as written) covers S3 `bucket` and `folder`: the bucket
/// itself for a listing, else objects under the folder it names (or any).
fn covers(resource: &str, bucket: &str, folder: &str, listing: bool) -> bool {
    let arn = format!("{bucket}.Arn");
    resource.split_whitespace().any(|r| {
        let r = r.trim_matches(|c| c == '"' || c == '[' || c == ']' || c == ',');
        let Some(at) = r.find(&arn) else { return false };
        let path = r[at + arn.len()..].trim_start_matches('}');
        match listing {
            true => path.is_empty(),
            false => path == "/*" || path.strip_prefix('/').is_some_and(|p| p.starts_with(&format!("{folder}/"))),
        }
    })
}

#[test]
#[ignore = "reads the calls the AWS e2e run recorded: scripts/test runs it after that run"]
fn every_role_allows_its_functions_calls_and_grants_nothing_they_do_not_need() {
    let path = std::env::var("CONNECTOR_AWS_CALLS").expect("CONNECTOR_AWS_CALLS: the file the AWS e2e run recorded");
    let calls = read(Path::new(&path)).expect("the recorded calls");
    assert!(calls.len() > 20, "too few calls recorded to prove anything: {}", calls.len());
    let t = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let roles = roles(&t);
    let mut by_function: BTreeMap<&str, Vec<&Call>> = BTreeMap::new();
    for c in &calls {
        by_function.entry(c.function.as_str()).or_default().push(c);
    }
    // Lambda's event source mappings, as the runner stands in for them: their calls are the
    // service's (granted by SAM with the event), or the stand-in's own (finding the stream).
    let platform = ["SQS:ReceiveMessage", "SQS:DeleteMessage", "DynamoDB:DescribeTable"];
    for c in by_function.remove("event-source").unwrap_or_default() {
        let call = format!("{}:{}", c.service, c.operation);
        assert!(platform.contains(&call.as_str()), "an event source's call Lambda does not make: {call}");
    }
    assert!(!by_function.contains_key("none"), "calls outside any function: {:?}", by_function.get("none"));

    let mut failures = Vec::new();
    for (function, grants) in &roles {
        let Some(mine) = by_function.get(function.as_str()) else {
            assert!(NOT_RUN.iter().any(|(f, _)| f == function), "{function} made no call: is it run?");
            continue;
        };
        let mut used: BTreeSet<String> = BTreeSet::new();
        for c in mine {
            for need in needs(c) {
                let allowed = grants.iter().any(|g| {
                    g.actions.iter().any(|a| matches(a, &need))
                        && match (c.service.as_str(), &c.bucket) {
                            ("S3", Some(bucket)) => covers(
                                &g.resource,
                                bucket_of(bucket),
                                c.folder.as_deref().unwrap_or_default(),
                                need.starts_with("s3:List"),
                            ),
                            _ => true,
                        }
                });
                if !allowed {
                    failures.push(format!(
                        "{function}'s role does not allow {need} for {}:{} ({:?}/{:?})",
                        c.service, c.operation, c.bucket, c.folder
                    ));
                }
                used.insert(need);
            }
            used.extend(implied(c).into_iter().map(String::from));
        }
        for action in grants.iter().filter(|g| !g.for_the_event).flat_map(|g| &g.actions) {
            let needed = used.iter().any(|u| matches(action, u) || matches(u, action));
            if !needed && !beyond(function, action) {
                failures.push(format!("{function}'s role grants {action}, which none of its calls needs"));
            }
        }
    }
    // An exception that no longer holds (not granted, or needed by a recorded call after all)
    // is stale.
    for (f, a, _) in BEYOND_THE_CALLS.iter().filter(|(f, _, _)| *f != "*") {
        let granted = roles[*f].iter().flat_map(|g| &g.actions).any(|x| matches(a, x));
        assert!(granted, "a stale exception: {f} is not granted {a}");
        let needed = by_function[f].iter().flat_map(|c| needs(c)).any(|n| matches(a, &n));
        assert!(!needed, "a stale exception: {f}'s calls need {a}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
