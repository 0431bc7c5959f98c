//! `Push` over API Gateway's management API (`PostToConnection`).

use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use aws_sdk_apigatewaymanagement::Client;

use shared::ports::{Push, PushError};

pub struct ApiGatewayPush {
    client: Client,
}

impl ApiGatewayPush {
    pub fn new(client: Client) -> ApiGatewayPush {
        ApiGatewayPush { client }
    }

    /// A client for the WebSocket API's stage, e.g. `https://{api}.execute-api.{region}.amazonaws.com/live`.
    pub fn for_endpoint(conf: &aws_config::SdkConfig, endpoint: &str) -> ApiGatewayPush {
        let conf = aws_sdk_apigatewaymanagement::config::Builder::from(conf).endpoint_url(endpoint).build();
        ApiGatewayPush { client: Client::from_conf(conf) }
    }
}

#[async_trait]
impl Push for ApiGatewayPush {
    async fn post(&self, connection_id: &str, payload: &[u8]) -> Result<(), PushError> {
        let sent = self.client.post_to_connection().connection_id(connection_id).data(Blob::new(payload)).send().await;
        match sent {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_gone_exception()) => Err(PushError::Gone),
            Err(e) => Err(PushError::Failed(Box::new(e))),
        }
    }
}
