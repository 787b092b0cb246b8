//! Who is asking, and the context a command is decided in (time, region, request id).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::Region;

/// The kind of principal behind a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A user of a customer account (tenant); roles decide what it may do.
    Tenant,
    /// The provider itself: publishes base images, saves snapshot data, runs tasks.
    /// Never reachable from the public API.
    Operator,
}

/// The authenticated caller: an account (tenant), a user in it, and the user's roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The account (tenant) id, e.g. `"123456"`. Member ids are tenant ids.
    pub tenant_id: String,
    /// The user id within the account.
    pub user_id: String,
    /// Role names as the identity service gave them; compared case-insensitively.
    pub roles: Vec<String>,
    /// Tenant user or provider.
    pub kind: ActorKind,
}

impl Actor {
    /// A tenant user with the given roles.
    pub fn tenant(tenant_id: &str, user_id: &str, roles: &[&str]) -> Self {
        Actor {
            tenant_id: tenant_id.to_owned(),
            user_id: user_id.to_owned(),
            roles: roles.iter().map(|role| (*role).to_owned()).collect(),
            kind: ActorKind::Tenant,
        }
    }

    /// The provider, acting as `user_id` (a service name such as `task-worker`).
    pub fn operator(user_id: &str) -> Self {
        Actor {
            tenant_id: String::new(),
            user_id: user_id.to_owned(),
            roles: Vec::new(),
            kind: ActorKind::Operator,
        }
    }

    /// True for the provider.
    pub fn is_operator(&self) -> bool {
        self.kind == ActorKind::Operator
    }

    /// True if the caller holds `role` (case-insensitive).
    pub fn has_role(&self, role: &str) -> bool {
        self.roles
            .iter()
            .any(|held| held.eq_ignore_ascii_case(role))
    }
}

/// Everything a decision needs besides the state and the command. The domain never reads a clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// The time of the request, from the adapter's clock.
    pub now: DateTime<Utc>,
    /// The caller.
    pub actor: Actor,
    /// The region the request is made in; other regions' images do not exist for it.
    pub region: Region,
    /// The API request id, kept in event metadata for audits.
    pub request_id: Option<String>,
    /// The caller's own request id (`req-<uuid>` in the request's `X-Openstack-Request-Id`, as
    /// Glance keeps it as the global request id), kept in event metadata next to `request_id`.
    pub global_request_id: Option<String>,
}

impl Context {
    /// A context for `actor` in `region` at `now`.
    pub fn new(actor: Actor, region: Region, now: DateTime<Utc>) -> Self {
        Context {
            now,
            actor,
            region,
            request_id: None,
            global_request_id: None,
        }
    }
}
