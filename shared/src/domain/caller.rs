//! The authenticated employee making a call: who they are, their scope (sub-organization and
//! region) and their roles, from a verified token or an API Gateway authorizer's claims. Not
//! here: verifying tokens (`http::auth`) or what the directory says of them (`directory`).

use super::UserId;

/// The authenticated employee making a call.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Caller {
    pub user_id: UserId,
    pub name: String,
    pub locale: String,
    pub sub_org: String,
    pub region: String,
    pub roles: Vec<String>,
}

/// The roles the connector knows; any other role a token names grants nothing. `compliance`
/// reads the record (archives, consent histories) and writes nothing to threads or the
/// directory; `admin` does that and administers.
pub const ROLES: [&str; 3] = ["agent", "admin", "compliance"];

/// The known roles among `names`, each once.
pub fn known_roles<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        let n = n.as_ref().trim();
        if ROLES.contains(&n) && !out.iter().any(|r| r == n) {
            out.push(n.to_string());
        }
    }
    out
}

impl Caller {
    /// Whether the caller may read the compliance record: an admin or a compliance officer.
    pub fn reads_the_record(&self) -> bool {
        self.has_role("admin") || self.has_role("compliance")
    }

    /// An employee of `sub_org` in `region` with no roles, who reads English: what a token
    /// that names no `locale` and no `roles` makes.
    pub fn new(user_id: &str, name: &str, sub_org: &str, region: &str) -> Caller {
        Caller {
            user_id: user_id.into(),
            name: name.into(),
            locale: "en".into(),
            sub_org: sub_org.into(),
            region: region.into(),
            roles: Vec::new(),
        }
    }

    /// The same caller with the known roles among `roles`.
    pub fn with_roles(self, roles: &[&str]) -> Caller {
        Caller { roles: known_roles(roles), ..self }
    }

    /// The caller as the author of what they do.
    pub fn sender(&self) -> super::Sender {
        super::Sender::User(self.user_id.clone())
    }

    /// From an API Gateway JWT authorizer's claims (all strings). API Gateway writes an array
    /// claim as `[a b]`; a plain string is a comma-separated list. Only known roles count, so a
    /// role named "support admin" written as a string grants nothing.
    pub fn from_claims(claims: &std::collections::HashMap<String, String>) -> Option<Caller> {
        let sub = claims.get("sub").filter(|s| !s.is_empty())?.clone();
        let get = |k: &str| claims.get(k).cloned().unwrap_or_default();
        let roles = claims
            .get("roles")
            .or_else(|| claims.get("cognito:groups"))
            .map(|r| {
                let r = r.trim();
                match r.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
                    Some(array) => known_roles(array.split_whitespace().map(|x| x.trim_matches('"'))),
                    None => known_roles(r.split(',')),
                }
            })
            .unwrap_or_default();
        Some(Caller {
            name: claims.get("name").filter(|n| !n.is_empty()).cloned().unwrap_or_else(|| sub.clone()),
            user_id: sub.into(),
            locale: claims.get("locale").filter(|l| !l.is_empty()).cloned().unwrap_or_else(|| "en".into()),
            sub_org: get("sub_org"),
            region: get("region"),
            roles,
        })
    }

    /// The caller, if the token names one: an id that is not one of the connector's own sender
    /// ids. Their scope is checked once the directory has had its say (`directory::admit`).
    pub fn checked(self) -> std::result::Result<Caller, &'static str> {
        if self.user_id.as_str().trim().is_empty() || self.user_id.as_str().len() > 128 {
            return Err("the token's sub must be 1 to 128 characters");
        }
        if super::Sender::RESERVED.contains(&self.user_id.as_str()) {
            return Err("the token's sub is reserved by the connector");
        }
        Ok(self)
    }

    /// The caller, if they have the sub-organization and region that scope everything they see.
    /// Without them they would share one empty-named partition of the directory.
    pub fn scoped(self) -> std::result::Result<Caller, &'static str> {
        if self.sub_org.trim().is_empty() || self.region.trim().is_empty() {
            return Err(NO_SCOPE);
        }
        Ok(self)
    }
}

pub const NO_SCOPE: &str =
    "the token carries no sub_org or region claim and no administrator has set them: ask yours to";

impl Caller {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Agents and admins handle contact-started threads.
    pub fn is_agent(&self) -> bool {
        self.has_role("agent") || self.has_role("admin")
    }
}

#[cfg(test)]
mod tests {
    use super::Caller;

    #[test]
    fn claims_from_the_authorizer_become_the_caller() {
        let claims =
            [("sub", "u1"), ("name", "Alex"), ("sub_org", "retail"), ("region", "eu"), ("roles", "[admin ops]")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let c = Caller::from_claims(&claims).unwrap();
        assert_eq!(
            (c.user_id.as_str(), c.locale.as_str(), c.roles.clone()),
            ("u1", "en", vec!["admin".to_string()]),
            "only known roles count"
        );
        assert!(Caller::from_claims(&Default::default()).is_none());
    }

    fn with(pairs: &[(&str, &str)]) -> Caller {
        let claims = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Caller::from_claims(&claims).unwrap()
    }

    #[test]
    fn a_role_string_is_a_comma_list_and_an_unknown_role_grants_nothing() {
        let base = [("sub", "u1"), ("sub_org", "retail"), ("region", "eu")];
        let roles = |r: &str| with(&[base.as_slice(), &[("roles", r)]].concat()).roles;
        assert!(roles("support admin").is_empty(), "one role named 'support admin' is not admin");
        assert_eq!(roles("agent,admin"), vec!["agent", "admin"]);
        assert_eq!(roles("[agent admin agent]"), vec!["agent", "admin"]);
        assert!(roles("[superuser]").is_empty());
    }

    #[test]
    fn a_caller_needs_an_id_of_its_own_a_sub_org_and_a_region() {
        let ok = with(&[("sub", "u1"), ("sub_org", "retail"), ("region", "eu")]);
        assert!(ok.clone().checked().and_then(Caller::scoped).is_ok());
        for bad in [
            with(&[("sub", "system"), ("sub_org", "retail"), ("region", "eu")]),
            with(&[("sub", "contact"), ("sub_org", "retail"), ("region", "eu")]),
            Caller { user_id: "x".repeat(129).into(), ..ok },
        ] {
            assert!(bad.clone().checked().is_err(), "{bad:?}");
        }
        for unscoped in [
            with(&[("sub", "u1")]),
            with(&[("sub", "u1"), ("sub_org", "retail")]),
            with(&[("sub", "u1"), ("sub_org", " "), ("region", "eu")]),
        ] {
            assert!(unscoped.clone().checked().is_ok() && unscoped.clone().scoped().is_err(), "{unscoped:?}");
        }
    }
}
