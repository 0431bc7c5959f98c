//! `WhatsApp` over Meta's Graph API (reqwest, rustls).

use std::time::Duration;

use async_trait::async_trait;

use crate::meta::graph::{
    parse_error, parse_send_response, parse_templates, request_json, GraphError, OutboundRequest,
};
use crate::ports::{ByteStream, MediaInfo, TemplateInfo, WhatsApp};

pub struct GraphWhatsApp {
    client: reqwest::Client,
    base: String,
    phone_number_id: String,
    business_account_id: String,
    token: String,
    media_hosts: Vec<String>,
    templates: tokio::sync::Mutex<Option<(std::time::Instant, Vec<TemplateInfo>)>>,
}

/// Whether a media URL may receive the bearer token: https on one of `hosts` or a subdomain
/// (Meta's by default), or the configured Graph API's own origin (a stand-in Graph API in
/// tests and on emulators).
pub fn media_url_allowed(url: &str, base: &str, hosts: &[String]) -> bool {
    let (Ok(url), Ok(base)) = (reqwest::Url::parse(url), reqwest::Url::parse(base)) else { return false };
    if url.origin() == base.origin() {
        return true;
    }
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    url.scheme() == "https" && hosts.iter().any(|h| host == *h || host.ends_with(&format!(".{h}")))
}

/// `GET /{media-id}`: the id, from a webhook, is one path segment, encoded, so no id can point
/// the bearer token at another Graph API path.
fn media_info_url(base: &str, meta_id: &str, phone_number_id: &str) -> Option<reqwest::Url> {
    // Meta's ids are digits; "." and ".." would move the path, whatever the encoding.
    if meta_id.is_empty() || meta_id.len() > 128 || meta_id.chars().all(|c| c == '.') {
        return None;
    }
    let mut url = reqwest::Url::parse(base).ok()?;
    url.path_segments_mut().ok()?.pop_if_empty().push(meta_id);
    url.query_pairs_mut().append_pair("phone_number_id", phone_number_id);
    Some(url)
}

/// How long the approved templates are kept before they are listed again.
const TEMPLATES_TTL: Duration = Duration::from_secs(300);
/// Pages read at most (100 templates each).
const TEMPLATE_PAGES: usize = 50;

impl GraphWhatsApp {
    /// `base` includes the Graph version, e.g. `https://graph.facebook.com/v25.0`.
    /// A call that takes longer than `timeout` is abandoned: its answer counts as lost.
    pub fn new(
        base: &str,
        phone_number_id: &str,
        business_account_id: &str,
        token: String,
        timeout: Duration,
        media_hosts: Vec<String>,
    ) -> Result<GraphWhatsApp, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5).min(timeout))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()?;
        Ok(GraphWhatsApp {
            client,
            base: base.trim_end_matches('/').to_string(),
            phone_number_id: phone_number_id.to_string(),
            business_account_id: business_account_id.to_string(),
            token,
            media_hosts,
            templates: Default::default(),
        })
    }

    async fn answer(resp: Result<reqwest::Response, reqwest::Error>) -> Result<(u16, Vec<u8>), GraphError> {
        let resp = resp.map_err(|e| {
            if e.is_connect() || e.is_builder() {
                GraphError::unsent(e.to_string())
            } else {
                GraphError::transport(e.to_string())
            }
        })?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| GraphError::transport(e.to_string()))?;
        Ok((status, body.to_vec()))
    }
}

#[derive(serde::Deserialize)]
struct Uploaded {
    id: String,
}

#[async_trait]
impl WhatsApp for GraphWhatsApp {
    async fn send(&self, req: &OutboundRequest) -> Result<String, GraphError> {
        let url = format!("{}/{}/messages", self.base, self.phone_number_id);
        let (status, body) =
            Self::answer(self.client.post(url).bearer_auth(&self.token).json(&request_json(req)).send().await).await?;
        parse_send_response(status, &body)
    }

    async fn upload_media(&self, body: ByteStream, size: u64, mime_type: &str) -> Result<String, GraphError> {
        let part = reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(body), size)
            .file_name("file")
            .mime_str(mime_type)
            .map_err(|e| GraphError::transport(e.to_string()))?;
        let form = reqwest::multipart::Form::new()
            .text("messaging_product", "whatsapp")
            .text("type", mime_type.to_string())
            .part("file", part);
        let url = format!("{}/{}/media", self.base, self.phone_number_id);
        let (status, body) =
            Self::answer(self.client.post(url).bearer_auth(&self.token).multipart(form).send().await).await?;
        if !(200..300).contains(&status) {
            return Err(parse_error(status, &body));
        }
        serde_json::from_slice::<Uploaded>(&body).map(|u| u.id).map_err(|_| GraphError {
            lost: false,
            http_status: Some(status),
            code: None,
            message: "no media id in answer".into(),
        })
    }

    async fn media_info(&self, meta_id: &str) -> Result<MediaInfo, GraphError> {
        let url = media_info_url(&self.base, meta_id, &self.phone_number_id).ok_or_else(|| GraphError {
            lost: false,
            http_status: None,
            code: None,
            message: format!("media id {meta_id:?} refused (or a bad Graph API base)"),
        })?;
        let (status, body) = Self::answer(self.client.get(url).bearer_auth(&self.token).send().await).await?;
        if !(200..300).contains(&status) {
            return Err(parse_error(status, &body));
        }
        serde_json::from_slice(&body).map_err(|e| GraphError {
            lost: false,
            http_status: Some(status),
            code: None,
            message: format!("media answer: {e}"),
        })
    }

    async fn download(&self, url: &str, max: usize) -> Result<ByteStream, GraphError> {
        if !media_url_allowed(url, &self.base, &self.media_hosts) {
            // The bearer token goes to Meta only, whatever URL an answer names.
            return Err(GraphError {
                lost: false,
                http_status: None,
                code: None,
                message: format!("media URL refused: not https on a host of WHATSAPP_MEDIA_HOSTS: {url}"),
            });
        }
        let resp = self
            .client
            .get(url)
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| GraphError::transport(e.to_string()))?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let body = resp.bytes().await.unwrap_or_default();
            return Err(parse_error(status, &body));
        }
        if resp.content_length().is_some_and(|n| n > max as u64) {
            return Err(GraphError {
                lost: false,
                http_status: Some(status),
                code: Some(131052),
                message: "media too large".into(),
            });
        }
        use futures_util::TryStreamExt;
        Ok(Box::pin(resp.bytes_stream().map_err(std::io::Error::other)))
    }

    async fn templates(&self) -> Result<Vec<TemplateInfo>, GraphError> {
        let mut cached = self.templates.lock().await;
        if let Some((at, list)) = cached.as_ref() {
            if at.elapsed() < TEMPLATES_TTL {
                return Ok(list.clone());
            }
        }
        if self.business_account_id.is_empty() {
            return Err(GraphError::unsent("WHATSAPP_BUSINESS_ACCOUNT_ID is not set"));
        }
        let mut url = Some(format!(
            "{}/{}/message_templates?fields=name,language,status,category,components&limit=100",
            self.base, self.business_account_id
        ));
        let mut all = Vec::new();
        for _ in 0..TEMPLATE_PAGES {
            let Some(next) = url.take() else { break };
            let (status, body) = Self::answer(self.client.get(next).bearer_auth(&self.token).send().await).await?;
            let (page, more) = parse_templates(status, &body)?;
            all.extend(page);
            url = more;
        }
        *cached = Some((std::time::Instant::now(), all.clone()));
        Ok(all)
    }
}

/// Meta's API in a function not given the access token: every call is refused before it
/// leaves, so that a deployment that withheld the token fails loudly and sends nothing.
pub struct NoAccessToken;

impl NoAccessToken {
    fn refused<T>() -> Result<T, GraphError> {
        Err(GraphError::unsent("this function holds no WhatsApp access token (Secret::needed_by)"))
    }
}

#[async_trait]
impl WhatsApp for NoAccessToken {
    async fn send(&self, _: &OutboundRequest) -> Result<String, GraphError> {
        Self::refused()
    }
    async fn upload_media(&self, _: ByteStream, _: u64, _: &str) -> Result<String, GraphError> {
        Self::refused()
    }
    async fn media_info(&self, _: &str) -> Result<MediaInfo, GraphError> {
        Self::refused()
    }
    async fn download(&self, _: &str, _: usize) -> Result<ByteStream, GraphError> {
        Self::refused()
    }
    async fn templates(&self) -> Result<Vec<TemplateInfo>, GraphError> {
        Self::refused()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Vec<String> {
        crate::config::META_MEDIA_HOSTS.iter().map(|h| h.to_string()).collect()
    }

    #[test]
    fn the_token_goes_only_to_metas_media_hosts_over_https_or_to_the_graph_api_itself() {
        let base = "https://graph.facebook.com/v25.0";
        let hosts = meta();
        for ok in [
            "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1",
            "https://scontent.xx.fbcdn.net/v/t1.png",
            "https://mmg.whatsapp.net/d/f/abc.enc",
            "https://graph.facebook.com/v25.0/123",
        ] {
            assert!(media_url_allowed(ok, base, &hosts), "{ok}");
        }
        for refused in [
            "http://lookaside.fbsbx.com/x",
            "https://evil.example/x",
            "https://fbcdn.net.evil.example/x",
            "https://evilfbcdn.net/x",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(!media_url_allowed(refused, base, &hosts), "{refused}");
        }
        assert!(media_url_allowed("http://127.0.0.1:4000/media/1", "http://127.0.0.1:4000/v25.0", &hosts));
        assert!(!media_url_allowed("http://127.0.0.1:4001/media/1", "http://127.0.0.1:4000/v25.0", &hosts));
    }

    #[test]
    fn a_media_id_is_one_encoded_path_segment() {
        let url = |id: &str| media_info_url("https://graph.facebook.com/v25.0", id, "106").unwrap().to_string();
        assert_eq!(url("1234567890"), "https://graph.facebook.com/v25.0/1234567890?phone_number_id=106");
        assert_eq!(url("../me?fields=x"), "https://graph.facebook.com/v25.0/..%2Fme%3Ffields=x?phone_number_id=106");
        assert_eq!(url("a/b#c"), "https://graph.facebook.com/v25.0/a%2Fb%23c?phone_number_id=106");
        for refused in ["", ".", "..", "..."] {
            assert!(media_info_url("https://graph.facebook.com/v25.0", refused, "106").is_none(), "{refused:?}");
        }
        assert_eq!(media_info_url("https://graph.facebook.com/v25.0/", "1", "106").unwrap().path(), "/v25.0/1");
    }

    #[test]
    fn a_configured_list_replaces_metas_hosts() {
        let base = "https://graph.facebook.com/v25.0";
        let hosts = vec!["media.example.com".to_string()];
        assert!(media_url_allowed("https://media.example.com/a.png", base, &hosts));
        assert!(media_url_allowed("https://eu.media.example.com/a.png", base, &hosts));
        assert!(!media_url_allowed("http://media.example.com/a.png", base, &hosts), "https only");
        assert!(!media_url_allowed("https://scontent.xx.fbcdn.net/v/t1.png", base, &hosts), "not listed");
        assert!(media_url_allowed("https://graph.facebook.com/v25.0/123", base, &hosts), "the Graph API itself");
    }
}
