//! `X-Hub-Signature-256`: HMAC-SHA256 of the raw body with the app secret, compared in
//! constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// True when `header` is `sha256=<hex>` of `body` under `secret`. An empty secret verifies
/// nothing: with no secret configured every delivery is refused.
pub fn verify(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    if secret.is_empty() {
        return false;
    }
    let Some(hex_sig) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&expected).is_ok()
}

/// The header value Meta would send for `body` (the sandbox and tests sign with it).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `given` is our secret (the webhook's verify token), compared in constant time: both
/// are MACed and the MACs compared by `verify_slice`, so the answer takes as long however much
/// of the secret a guess gets right.
pub fn same_secret(given: &str, ours: &str) -> bool {
    let mac = |s: &str| {
        let mut m = HmacSha256::new_from_slice(b"verify-token").expect("HMAC takes keys of any length");
        m.update(s.as_bytes());
        m
    };
    mac(ours).verify_slice(&mac(given).finalize().into_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_matches_only_itself() {
        assert!(same_secret("s3cret-token", "s3cret-token"));
        for other in ["", "s3cret-toke", "s3cret-token ", "S3cret-token", "x"] {
            assert!(!same_secret(other, "s3cret-token"), "{other:?}");
        }
    }

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/meta");

    #[test]
    fn every_fixture_signature_verifies_over_the_raw_bytes() {
        let Ok(sigs) = std::fs::read_to_string(format!("{FIXTURES}/signatures.json")) else {
            panic!("fixtures missing at {FIXTURES}");
        };
        let sigs: serde_json::Value = serde_json::from_str(&sigs).unwrap();
        let secret = sigs["app_secret"].as_str().unwrap().as_bytes();
        let files = sigs["files"].as_object().unwrap();
        assert!(files.len() > 20);
        for (name, entry) in files {
            let body = std::fs::read(format!("{FIXTURES}/{name}")).unwrap();
            let header = entry["x_hub_signature_256"].as_str().unwrap();
            assert!(verify(secret, &body, Some(header)), "{name}");
            assert_eq!(sign(secret, &body), header);
            let mut tampered = body.clone();
            tampered[10] ^= 1;
            assert!(!verify(secret, &tampered, Some(header)), "{name} tampered");
        }
    }

    #[test]
    fn refuses_missing_malformed_or_unkeyed() {
        let body = b"{}";
        let good = sign(b"k", body);
        assert!(verify(b"k", body, Some(&good)));
        assert!(!verify(b"", body, Some(&good)));
        assert!(!verify(b"k", body, None));
        assert!(!verify(b"k", body, Some("sha1=abc")));
        assert!(!verify(b"k", body, Some("sha256=zz")));
        assert!(!verify(b"k", body, Some(&good[..good.len() - 2])));
    }
}
