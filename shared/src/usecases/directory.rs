//! The directory of employees: recorded from their tokens on first use, upserted by admins,
//! searched by colleagues who want to add someone to a thread.

use crate::domain::DomainError;
use crate::ports::{Cond, DirectoryUser, Item, Key, Write};

use super::commit::{execute, Decision, Plan};
use super::{load, participant_conversation, put_versioned, Caller, Ports, Result, UseCaseError};
use crate::domain::ids::{ConversationId, UserId};

/// A user seen for the first time: enabled unless the organization enables each user itself
/// (`Settings::new_users_enabled`), but an admin always.
fn from_caller(caller: &Caller, new_users_enabled: bool) -> DirectoryUser {
    DirectoryUser {
        user_id: caller.user_id.clone(),
        name: caller.name.clone(),
        sub_org: caller.sub_org.clone(),
        region: caller.region.clone(),
        locale: caller.locale.clone(),
        whatsapp_enabled: new_users_enabled || caller.has_role("admin"),
        managed: false,
    }
}

/// Why a user not yet enabled is refused.
const NOT_ENABLED: &str = "WhatsApp is not enabled for you yet: an administrator of your organization enables it";

/// The caller as the directory knows them, checked on every request: once an admin has
/// written their profile, it decides their sub-organization and region and whether they may
/// use WhatsApp at all, whatever their token (valid for hours yet) still says. A caller seen
/// for the first time is recorded from their token.
pub async fn admit(ports: &Ports, caller: Caller) -> Result<Caller> {
    let unscoped = |c: Caller| c.scoped().map_err(UseCaseError::Unidentified);
    let Some(profile) = load::<DirectoryUser>(&*ports.store, &Key::profile(&caller.user_id)).await? else {
        let caller = unscoped(caller)?;
        record(ports, &caller).await?;
        if !ports.settings.new_users_enabled && !caller.has_role("admin") {
            return Err(UseCaseError::Forbidden(NOT_ENABLED));
        }
        return Ok(caller);
    };
    let p = profile.item;
    match (p.managed, p.whatsapp_enabled) {
        // Recorded, not enabled yet: an admin enables them.
        (false, false) if !caller.has_role("admin") => Err(UseCaseError::Forbidden(NOT_ENABLED)),
        (false, _) => unscoped(caller),
        (true, false) => Err(UseCaseError::Forbidden("an administrator has turned WhatsApp off for this user")),
        (true, true) => Ok(Caller { sub_org: p.sub_org, region: p.region, ..caller }),
    }
}

/// Records the caller the first time they are seen (an existing profile, maybe an admin's, is
/// left as it is).
pub async fn record(ports: &Ports, caller: &Caller) -> Result<()> {
    execute(ports, || async move {
        if load::<DirectoryUser>(&*ports.store, &Key::profile(&caller.user_id)).await?.is_some() {
            return Ok(Decision::Done(()));
        }
        let user = from_caller(caller, ports.settings.new_users_enabled);
        // Only enabled users are listed in the directory.
        let mut writes = vec![Write::Put { item: Item::Profile(user.clone()), cond: Cond::NotExists }];
        if user.whatsapp_enabled {
            writes.push(Write::Put { item: Item::DirectoryEntry(user), cond: Cond::Always });
        }
        Ok(Decision::Commit(Plan::of(writes), ()))
    })
    .await
}

pub struct Upsert {
    pub name: String,
    pub sub_org: String,
    pub region: String,
    pub locale: String,
    pub whatsapp_enabled: bool,
}

/// `PUT /directory/users/{id}`, admins only.
pub async fn upsert(ports: &Ports, caller: &Caller, user_id: &UserId, u: Upsert) -> Result<DirectoryUser> {
    if !caller.has_role("admin") {
        return Err(UseCaseError::Forbidden("this needs the admin role"));
    }
    // An admin who turned themselves off could not turn themselves on again.
    if *user_id == caller.user_id && !u.whatsapp_enabled {
        return Err(DomainError::Invalid("you cannot turn WhatsApp off for yourself; ask another admin".into()).into());
    }
    let user = DirectoryUser {
        user_id: user_id.clone(),
        name: u.name,
        sub_org: u.sub_org,
        region: u.region,
        locale: u.locale,
        whatsapp_enabled: u.whatsapp_enabled,
        managed: true,
    };
    let user = &user;
    execute(ports, || async move {
        let existing = load::<DirectoryUser>(&*ports.store, &Key::profile(user_id)).await?;
        let mut writes = vec![put_versioned(Item::Profile(user.clone()), existing.as_ref().map(|e| e.version))];
        // Only enabled users are listed, under their name: a move, a rename or disabling
        // takes the old entry out in the same write.
        let entry = Key::directory_entry(user);
        if user.whatsapp_enabled {
            writes.push(Write::Put { item: Item::DirectoryEntry(user.clone()), cond: Cond::Always });
        }
        let stale =
            existing.map(|old| Key::directory_entry(&old.item)).filter(|old| *old != entry || !user.whatsapp_enabled);
        writes.extend(stale.map(|key| Write::Delete { key, cond: Cond::Always }));
        Ok(Decision::Commit(Plan::of(writes), user.clone()))
    })
    .await
}

/// Whether `user` may be added by `caller`: enabled, same sub-organization and region.
pub fn addable(caller: &Caller, user: &DirectoryUser) -> std::result::Result<(), String> {
    if !user.whatsapp_enabled || user.sub_org != caller.sub_org || user.region != caller.region {
        return Err(not_addable(&user.user_id));
    }
    Ok(())
}

/// One answer for every reason a user cannot be added (unknown, disabled, another
/// organization or region), so the answer tells nothing about the directory beyond the caller's
/// own partition.
pub fn not_addable(user_id: &UserId) -> String {
    format!("{user_id} cannot be added: only colleagues of your sub-organization and region who use WhatsApp can")
}

/// Most users one search answers: type more to narrow it.
pub const SEARCH_LIMIT: usize = 50;

/// `GET /directory/users?q=`: the first `SEARCH_LIMIT` enabled users, by name, of the caller's
/// sub-organization and region whose name starts with `q` (any case), without the participants
/// of `conversation_id` if given. It reads what it answers, and at most the thread's
/// participants more, whatever the size of the directory.
pub async fn search(
    ports: &Ports,
    caller: &Caller,
    q: &str,
    conversation_id: Option<&ConversationId>,
) -> Result<Vec<DirectoryUser>> {
    let exclude: Vec<UserId> = match conversation_id {
        Some(id) => participant_conversation(&*ports.store, caller, id)
            .await?
            .item
            .participants
            .into_iter()
            .map(|p| p.user_id)
            .collect(),
        None => vec![],
    };
    let q = q.trim();
    let entries = ports.store.directory(&caller.sub_org, &caller.region, q, SEARCH_LIMIT + exclude.len()).await?;
    Ok(entries.into_iter().filter(|u| u.whatsapp_enabled && !exclude.contains(&u.user_id)).take(SEARCH_LIMIT).collect())
}
