//! `WhatsApp` over Meta's Graph API (reqwest, rustls).

use std::time::Duration;

use async_trait::async_trait;

use crate::meta::graph::{parse_send_response, request_json, GraphError, OutboundRequest};
use crate::ports::WhatsApp;

pub struct GraphWhatsApp {
    client: reqwest::Client,
    messages_url: String,
    token: String,
}

impl GraphWhatsApp {
    /// `base` includes the Graph version, e.g. `https://graph.facebook.com/v25.0`.
    pub fn new(base: &str, phone_number_id: &str, token: String) -> Result<GraphWhatsApp, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()?;
        Ok(GraphWhatsApp {
            client,
            messages_url: format!("{}/{}/messages", base.trim_end_matches('/'), phone_number_id),
            token,
        })
    }
}

#[async_trait]
impl WhatsApp for GraphWhatsApp {
    async fn send(&self, req: &OutboundRequest) -> Result<String, GraphError> {
        let resp = self
            .client
            .post(&self.messages_url)
            .bearer_auth(&self.token)
            .json(&request_json(req))
            .send()
            .await
            .map_err(|e| GraphError::transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| GraphError::transport(e.to_string()))?;
        parse_send_response(status, &body)
    }
}
