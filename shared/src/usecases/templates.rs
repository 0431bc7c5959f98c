//! The approved templates: listed for client apps, and checked before a template send.

use crate::domain::message::TemplateSpec;
use crate::domain::DomainError;
use crate::ports::TemplateInfo;

use super::{Ports, Result, UseCaseError};

/// `GET /templates`: Meta's approved templates (or the sandbox's), by name then language.
pub async fn list(ports: &Ports) -> Result<Vec<TemplateInfo>> {
    let mut all = ports.whatsapp.templates().await.map_err(|e| UseCaseError::Upstream(e.message))?;
    all.sort_by(|a, b| (&a.name, &a.language).cmp(&(&b.name, &b.language)));
    Ok(all)
}

/// A template send must name an approved template in that language, with its number of body
/// parameters: `invalid_template` otherwise. When the list cannot be read (Meta unreachable,
/// no business account configured), the send goes ahead and Meta's answer decides.
pub async fn check(ports: &Ports, t: &TemplateSpec) -> Result<()> {
    let all = match ports.whatsapp.templates().await {
        Ok(all) => all,
        Err(e) => {
            tracing::warn!(error = %e.message, "approved templates unavailable; template not checked");
            return Ok(());
        }
    };
    match all.iter().find(|x| x.name == t.name && x.language == t.language) {
        None => Err(DomainError::InvalidTemplate(format!(
            "no approved template {:?} in language {:?}; see GET /templates",
            t.name, t.language
        ))
        .into()),
        Some(x) if x.params != t.params.len() => Err(DomainError::InvalidTemplate(format!(
            "template {:?} takes {} parameters, not {}",
            t.name,
            x.params,
            t.params.len()
        ))
        .into()),
        Some(_) => Ok(()),
    }
}
