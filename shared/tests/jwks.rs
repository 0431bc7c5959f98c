//! The issuer's keys (`JwksVerifier`): read once, read again when a token names a key they do
//! not hold (a rotation), and never more often than the gap allows; a withdrawn key's tokens are
//! refused once the keys are read again. The issuer is a stand-in serving `fixtures/jwks/`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use shared::http::{ApiError, JwksVerifier};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/jwks/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// An issuer on a free port whose published keys the test swaps; counts the reads.
async fn issuer(keys: Arc<Mutex<Value>>, reads: Arc<Mutex<usize>>) -> String {
    let app = axum::Router::new().route(
        "/.well-known/jwks.json",
        get(move || {
            let (keys, reads) = (keys.clone(), reads.clone());
            async move {
                *reads.lock().unwrap() += 1;
                axum::Json(keys.lock().unwrap().clone())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn token(issuer: &str, kid: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    let claims = json!({"sub": "alex", "name": "Alex Kim", "sub_org": "retail", "region": "eu", "iss": issuer,
        "exp": time::OffsetDateTime::now_utc().unix_timestamp() + 600});
    let key = EncodingKey::from_rsa_pem(fixture(&format!("{kid}.pem")).as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

#[tokio::test]
async fn a_rotated_key_is_read_when_a_token_names_it_and_the_keys_no_more_often_than_the_gap() {
    let keys = Arc::new(Mutex::new(serde_json::from_str::<Value>(&fixture("a.jwks.json")).unwrap()));
    let reads = Arc::new(Mutex::new(0));
    let url = issuer(keys.clone(), reads.clone()).await;
    let verifier = JwksVerifier::new(&url, vec![]).unknown_key_gap(Duration::from_millis(300));

    assert_eq!(verifier.verify(&token(&url, "a")).await.unwrap().user_id.as_str(), "alex");
    assert_eq!(verifier.verify(&token(&url, "a")).await.unwrap().user_id.as_str(), "alex");
    assert_eq!(*reads.lock().unwrap(), 1, "read once");

    // The issuer rotates: it publishes key b, and signs with it.
    *keys.lock().unwrap() = serde_json::from_str(&fixture("b.jwks.json")).unwrap();
    assert!(matches!(verifier.verify(&token(&url, "b")).await, Err(ApiError::Unauthorized)), "within the gap");
    assert_eq!(*reads.lock().unwrap(), 1, "an unknown key within the gap reads nothing");
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(verifier.verify(&token(&url, "b")).await.unwrap().user_id.as_str(), "alex", "read again for it");
    assert_eq!(*reads.lock().unwrap(), 2);
    // Key a was withdrawn with that read: its tokens are refused now.
    assert!(matches!(verifier.verify(&token(&url, "a")).await, Err(ApiError::Unauthorized)));

    // A token naming a key nobody published costs at most one read per gap.
    for _ in 0..5 {
        let _ = verifier.verify(&token(&url, "a")).await;
    }
    assert_eq!(*reads.lock().unwrap(), 2);
}
