//! `connector-local`: starts the connector (the default), mints a client token, or acts as the
//! WhatsApp contact in the sandbox of a running connector.

use std::process::ExitCode;

use shared::error::Report;
use shared::http::issue_token;
use shared::Config;

const USAGE: &str = "usage:
  connector-local [serve]                      start every function on CONNECTOR_LISTEN
  connector-local token [--sub ID] [--name NAME] [--locale LOCALE] [--sub-org ORG] [--region REGION] [--admin] [--compliance]
                                               print a client JWT signed with AUTH_JWT_SECRET
  connector-local contact PHONE say TEXT       act as the contact in the sandbox: send a text
  connector-local contact PHONE tap BUTTON     tap accept | reject | resume
  connector-local contact PHONE read           read everything received
  connector-local contact PHONE image [CAPTION] send a picture
  connector-local contact PHONE reply TEXT     send a text quoting the business's last message
  connector-local contact PHONE send KIND      send a sample: document | voice | video | sticker |
                                               location | contact | poll
  connector-local contact PHONE inbox          show what the contact received
  connector-local archive verify CONVERSATION  re-compute a thread's keyed hash chain and check it holds every
                                               change committed (reads CONNECTOR_DATA_DIR)
  connector-local archive export CONVERSATION  print a thread's archive as JSON Lines
  connector-local archive fingerprint TEXT     TEXT as the archive keeps it when DLP finds something in it
                                               (CONNECTOR_ARCHIVE_KEY, CONNECTOR_DLP_POLICY): search exports for it
  connector-local archive audit PREFIX         check every record under PREFIX (records/ for all) in the vault
                                               against the chains as the table indexes them
  connector-local archive verify-export FILE   check an e-discovery export offline under CONNECTOR_ARCHIVE_KEY:
                                               every chain, file hash and anchor; names the first that fails";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let result = match args.first().map(String::as_str) {
        None | Some("serve") => serve(config).await,
        Some("token") => token(&config, &args[1..]),
        Some("contact") => contact(&config, &args[1..]).await,
        Some("archive") => archive(config, &args[1..]).await,
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), String> {
    shared::telemetry::init();
    let running = connector_local::start(config).await.map_err(|e| Report(&*e).to_string())?;
    eprintln!("connector listening on http://{}", running.addr);
    tokio::select! {
        _ = running.wait() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    Ok(())
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn token(config: &Config, args: &[String]) -> Result<(), String> {
    let roles: Vec<String> = ["admin", "compliance"]
        .into_iter()
        .filter(|role| args.iter().any(|a| a.strip_prefix("--") == Some(*role)))
        .map(String::from)
        .collect();
    let claims = connector_local::local_claims(
        flag(args, "--sub").unwrap_or_else(|| "alex".into()),
        Some(flag(args, "--name").unwrap_or_else(|| "Alex Kim".into())),
        flag(args, "--locale"),
        flag(args, "--sub-org"),
        flag(args, "--region"),
        roles,
    );
    println!("{}", issue_token(&config.jwt_secret, &claims));
    Ok(())
}

async fn contact(config: &Config, args: &[String]) -> Result<(), String> {
    let (Some(phone), Some(verb)) = (args.first(), args.get(1)) else {
        return Err(USAGE.into());
    };
    let rest = args[2..].join(" ");
    let url = format!("http://{}/sandbox/contacts/{}/messages", config.listen, phone.replace('+', "%2B"));
    let client = reqwest::Client::new();
    let req = match verb.as_str() {
        "inbox" => client.get(&url),
        "say" if !rest.is_empty() => client.post(&url).json(&serde_json::json!({ "text": rest })),
        "tap" if !rest.is_empty() => client.post(&url).json(&serde_json::json!({ "tap": rest })),
        "read" => client.post(&url).json(&serde_json::json!({ "read": true })),
        "image" => client.post(&url).json(&serde_json::json!({ "image": rest })),
        "reply" if !rest.is_empty() => client.post(&url).json(&serde_json::json!({ "reply": rest })),
        "send" if !rest.is_empty() => client.post(&url).json(&serde_json::json!({ "sample": rest })),
        _ => return Err(USAGE.into()),
    };
    let resp = req.send().await.map_err(|e| format!("is the connector running on {}? {e}", config.listen))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    println!("{}", serde_json::to_string_pretty(&body).unwrap_or_default());
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("sandbox answered {status}"))
    }
}

/// Reads the archive straight from the data directory (the connector may be running: what
/// its archiver has not reached yet, this one archives first, as a second writer may).
async fn archive(config: Config, args: &[String]) -> Result<(), String> {
    use shared::usecases::{archive, archiver};
    let (Some(verb), Some(arg)) = (args.first(), args.get(1)) else {
        return Err(USAGE.into());
    };
    if verb == "fingerprint" {
        let kept = archive::original(&config.settings, &args[1..].join(" "));
        println!("{}", kept.map_err(|e| Report(&e).to_string())?);
        return Ok(());
    }
    if verb == "verify-export" {
        let key = config.settings.archive_key.clone().ok_or("CONNECTOR_ARCHIVE_KEY is not set")?;
        let check = shared::export::verify(std::path::Path::new(arg), &key)
            .await
            .map_err(|e| format!("{arg}: {}", Report(&e)))?;
        println!("{}", serde_json::to_string(&check).unwrap_or_default());
        return match check.problem {
            None => Ok(()),
            Some(why) => Err(format!("the export does not hold: {why}")),
        };
    }
    let report = |e: shared::usecases::UseCaseError| Report(&e).to_string();
    let (state, embedded) = shared::app::embedded(config).await.map_err(|e| e.to_string())?;
    let ports = &state.ports;
    archiver::catch_up(ports, &embedded.store).await.map_err(report)?;
    if verb == "audit" {
        let audit = archive::audit(ports, arg).await.map_err(report)?;
        println!("{}", serde_json::to_string(&audit).unwrap_or_default());
        return match audit.mismatches.len() {
            0 => Ok(()),
            n => Err(format!("{n} archived records are not where their chains say")),
        };
    }
    let conv = shared::domain::ConversationId::from(arg.as_str());
    let records = archive::records(ports, &conv).await.map_err(report)?;
    match verb.as_str() {
        "verify" => {
            let key = ports.settings.archive_key.clone().ok_or("CONNECTOR_ARCHIVE_KEY is not set")?;
            let counts = archiver::counts(ports, &conv).await.map_err(report)?;
            let v = shared::archive::verify_complete(&key, &records, &counts);
            println!("{}", serde_json::to_string(&v).unwrap_or_default());
            if v.valid {
                Ok(())
            } else {
                Err(format!("the chain breaks at record {}", v.first_break.unwrap_or(0)))
            }
        }
        "export" => {
            for r in records {
                println!("{}", serde_json::to_string(&r).unwrap_or_default());
            }
            Ok(())
        }
        _ => Err(USAGE.into()),
    }
}
