//! The live function's AWS adapters on moto: connections as DynamoDB items, the stream's
//! fan-out reading them, and `PostToConnection` through the management API.

use std::sync::Arc;

use serde_json::json;

use live::push::ApiGatewayPush;
use live::{Auth, Live};
use shared::adapters::aws::{AwsClients, DynamoStore};
use shared::domain::Phone;
use shared::ports::{Item, Push};
use shared::usecases::{conversations, Caller};

fn caller(user: &str) -> Caller {
    Caller::new(user, &format!("User {user}"), "retail", "eu")
}

#[tokio::test]
async fn connections_live_in_dynamodb_and_the_stream_reaches_them_through_the_management_api() {
    let Some((conf, clients)) = AwsClients::emulator_from_env().await else { return };
    let table = AwsClients::emulator_name("live");
    DynamoStore::create_table(&clients.dynamodb, &table).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let config = shared::Config::from_lookup(|k| (k == "CONNECTOR_DATA_DIR").then(|| data.clone())).unwrap();
    let mut ports = shared::app::embedded(config).await.unwrap().0.ports;
    ports.store = Arc::new(DynamoStore::new(clients.dynamodb.clone(), table).with_serial_writes(true));
    let endpoint = std::env::var("MOTO_ENDPOINT").unwrap();
    let push = Arc::new(ApiGatewayPush::for_endpoint(&conf, &endpoint));
    push.post("warm-up", b"{}").await.expect("the management API on moto takes a post");
    let auth = Auth::Local(shared::http::JwtVerifier::hs256("local-jwt-secret"));
    let live = Live { ports: ports.clone(), push, auth, agents: Default::default() };

    let alex = caller("alex");
    let cmd = conversations::StartConversation { phone: Phone::parse("+447700900123").unwrap(), name: None };
    let conv = conversations::start(&ports, &alex, cmd).await.unwrap();
    let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
    let token = shared::http::issue_token("local-jwt-secret", &shared::http::Claims::of(&alex, exp));
    let connect = json!({"requestContext": {"eventType": "CONNECT", "connectionId": "conn-1"},
        "queryStringParameters": {"token": token}});
    assert_eq!(live::handle(&live, connect).await.unwrap(), json!({"statusCode": 200}));
    assert_eq!(ports.store.connections(&"alex".into()).await.unwrap().len(), 1);

    let message = ports.store.messages(&conv.id, None, 10, true).await.unwrap().pop().unwrap().item;
    let record = json!({"Records": [{"eventSource": "aws:dynamodb", "eventName": "INSERT",
        "dynamodb": {"SequenceNumber": "100", "NewImage": {"body": {"S": serde_json::to_string(&message).unwrap()}}}}]});
    assert_eq!(live::handle(&live, record).await.unwrap(), json!({"batchItemFailures": []}));

    let disconnect = json!({"requestContext": {"eventType": "DISCONNECT", "connectionId": "conn-1"}});
    assert_eq!(live::handle(&live, disconnect).await.unwrap(), json!({"statusCode": 200}));
    let left: Vec<Item> = ports.store.connections(&"alex".into()).await.unwrap();
    assert!(left.is_empty(), "{left:?}");
}
