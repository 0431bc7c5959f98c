//! Meta's error codes (META-CLOUD-API.md section 7) sorted into what the connector does.

use serde::{Deserialize, Serialize};

/// What the employee is told when a message fails; each is a catalog entry in five languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    Undeliverable,
    MarketingLimit,
    MarketingOptOut,
    InvalidMessage,
    Template,
    Media,
    TokenExpired,
    AccountRestricted,
    SpamLimit,
    BlockedByBusiness,
    Experiment,
    RecipientIdUnsupported,
    RetriesExhausted,
    /// A contact's picture could not be downloaded for good.
    MediaUnavailable,
    /// The Graph API's answer was lost and no status came: it may or may not have arrived.
    DeliveryUnknown,
    /// Held longer than `CONNECTOR_HELD_TTL`: never sent.
    HeldExpired,
    /// The contact opted out before it left: never sent.
    OptedOut,
    Unknown,
}

/// What to do with an error from the Graph API or a `failed` status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Meta's rate limits (131056 pair rate, 130429 throughput, 131048 spam rate, 4 and 80007
    /// call rates, a bare 429): wait and send again, in order, however long it takes; the
    /// message never fails for them. `pair_rate` asks for Meta's 4^X s schedule.
    RateLimited { pair_rate: bool },
    /// Transient: back off and retry (bounded by the attempts).
    Retry,
    /// The 24-hour window is closed (131047, legacy 470): hold the message and ask to resume.
    Reengage,
    /// Permanent for this message.
    Permanent(FailureReason),
}

/// Classifies by Meta's code first (Meta: build on codes, not HTTP statuses); the HTTP
/// status only matters when there is no code (a bare 429 or 5xx from a proxy), and `None` for
/// both means the request never got an answer.
pub fn classify(code: Option<i64>, http_status: Option<u16>) -> ErrorClass {
    use FailureReason::*;
    let Some(code) = code else {
        return match http_status {
            Some(429) => ErrorClass::RateLimited { pair_rate: false },
            None | Some(500..=599) | Some(408) => ErrorClass::Retry,
            _ => ErrorClass::Permanent(Unknown),
        };
    };
    match code {
        131047 | 470 => ErrorClass::Reengage,
        131056 => ErrorClass::RateLimited { pair_rate: true },
        130429 | 131048 | 4 | 80007 => ErrorClass::RateLimited { pair_rate: false },
        131000 | 131016 | 133004 | 2 | 131057 | 1 => ErrorClass::Retry,
        131026 => ErrorClass::Permanent(Undeliverable),
        131049 => ErrorClass::Permanent(MarketingLimit),
        131050 => ErrorClass::Permanent(MarketingOptOut),
        100 | 131008 | 131009 | 131051 | 132000 | 132012 | 131021 => ErrorClass::Permanent(InvalidMessage),
        132001 | 132015 | 132016 | 132005 | 132007 => ErrorClass::Permanent(Template),
        131052 | 131053 => ErrorClass::Permanent(Media),
        190 => ErrorClass::Permanent(TokenExpired),
        130403 => ErrorClass::Permanent(BlockedByBusiness),
        130472 => ErrorClass::Permanent(Experiment),
        131062 => ErrorClass::Permanent(RecipientIdUnsupported),
        0 | 3 | 10 | 200..=299 | 368 | 131031 | 131042 | 131045 => ErrorClass::Permanent(AccountRestricted),
        _ => ErrorClass::Permanent(Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code of META-CLOUD-API.md section 7 has a deliberate mapping (none falls to Unknown).
    #[test]
    fn every_documented_code_is_mapped() {
        let documented = [
            131047, 131026, 131049, 131050, 131051, 131052, 131053, 130429, 131056, 131048, 131000, 131008, 131009,
            132000, 132001, 132012, 132015, 132016, 368, 470, 190, 4, 80007, 100, 0, 3, 10, 200, 299, 131016, 133004,
            2, 131057, 130472, 130403, 131031, 131042, 131045, 131062,
        ];
        for code in documented {
            assert_ne!(classify(Some(code), None), ErrorClass::Permanent(FailureReason::Unknown), "{code}");
        }
    }

    #[test]
    fn rate_limits_wait_transient_codes_retry_and_window_codes_reengage() {
        assert_eq!(classify(Some(130429), Some(400)), ErrorClass::RateLimited { pair_rate: false });
        assert_eq!(classify(Some(131056), Some(400)), ErrorClass::RateLimited { pair_rate: true });
        assert_eq!(classify(Some(131048), Some(400)), ErrorClass::RateLimited { pair_rate: false });
        assert_eq!(classify(None, Some(429)), ErrorClass::RateLimited { pair_rate: false });
        assert_eq!(classify(None, Some(503)), ErrorClass::Retry);
        assert_eq!(classify(None, None), ErrorClass::Retry);
        assert_eq!(classify(Some(131047), Some(400)), ErrorClass::Reengage);
        assert_eq!(classify(None, Some(400)), ErrorClass::Permanent(FailureReason::Unknown));
    }
}
