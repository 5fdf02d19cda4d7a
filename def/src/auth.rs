//! Who may do what: the roles, the permissions each holds, API tokens as etcd keeps them, and
//! the one decision every API request goes through ([`decide`]).
//!
//! Every route of the API names the one permission it needs (none for the probes). A role
//! holds these permissions:
//!
//! | permission     | what it allows                                        | viewer | operator | plugin-author | admin |
//! |----------------|-------------------------------------------------------|:------:|:--------:|:-------------:|:-----:|
//! | `read`         | read scenarios, reports, instances, workers, plugins   |   ✓    |    ✓     |       ✓       |   ✓   |
//! | `operate`      | apply, stop and delete scenarios                       |        |    ✓     |               |   ✓   |
//! | `push-plugins` | push plugins (within the capability policy)            |        |          |       ✓       |   ✓   |
//! | `admin`        | tokens, the audit trail, the kill switch, cordon/drain |        |          |               |   ✓   |
//!
//! A viewer or operator token may be scoped to clusters: it then sees and acts on only the
//! scenarios of those clusters (the handlers check [`Caller::may_reach`]).
//!
//! A token is a random secret (`chaos_` and 64 hex digits) shown once when it is made. etcd
//! keeps its SHA-256 as the key of its record ([`TokenRecord`]: name, role, scope, expiry,
//! creator, last use), never the secret; a lookup hashes what the client presented and reads
//! that one key, so a revoked token (its key deleted) is refused by every apiserver replica
//! from the next request on. The secrets are 256 random bits, so a plain hash is enough: there
//! is no password to guess.
//!
//! [`decide`] is the decision table:
//!
//! | route needs | token presented                  | decision                     |
//! |-------------|----------------------------------|------------------------------|
//! | nothing     | anything                         | open                         |
//! | P           | none                             | 401 "no token"               |
//! | P           | not a bearer token of sane shape | 401 "malformed"              |
//! | P           | no record (unknown or revoked)   | 401 "unknown or revoked"     |
//! | P           | a record past its expiry         | 401 "expired"                |
//! | P           | a record whose role lacks P      | 403 naming the token and role|
//! | P           | a record whose role holds P      | allowed, as that caller      |

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::units::Duration;
use crate::validation::check_dns_label;

/// What a token may do, as a set of permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Viewer,
    Operator,
    PluginAuthor,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Operator, Role::PluginAuthor, Role::Admin];

    /// The module's table, row by row.
    pub fn grants(self, permission: Permission) -> bool {
        match permission {
            Permission::Read => true,
            Permission::Operate => matches!(self, Role::Operator | Role::Admin),
            Permission::PushPlugins => matches!(self, Role::PluginAuthor | Role::Admin),
            Permission::Admin => self == Role::Admin,
        }
    }

    /// Whether a token of this role may be limited to clusters: the roles that read or act on
    /// scenarios, whose clusters a scope can name.
    pub fn scopable(self) -> bool {
        matches!(self, Role::Viewer | Role::Operator)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::PluginAuthor => "plugin-author",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| format!("unknown role {text:?}: one of viewer, operator, plugin-author, admin"))
    }
}

/// What a route needs; its name is the OpenAPI security scope the route declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    Read,
    Operate,
    PushPlugins,
    Admin,
}

impl Permission {
    pub const ALL: [Permission; 4] =
        [Permission::Read, Permission::Operate, Permission::PushPlugins, Permission::Admin];

    pub fn scope(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Operate => "operate",
            Permission::PushPlugins => "push-plugins",
            Permission::Admin => "admin",
        }
    }

    pub fn from_scope(scope: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.scope() == scope)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scope())
    }
}

/// The prefix of every token this system makes (so that a leaked one is recognisable, as
/// secret scanners expect).
pub const TOKEN_PREFIX: &str = "chaos_";

/// The shortest secret accepted as a token (a bootstrap token an operator chose included).
pub const MIN_TOKEN_LEN: usize = 32;
/// The longest `Authorization` value looked at.
pub const MAX_TOKEN_LEN: usize = 512;
/// How many clusters one token's scope may name.
pub const MAX_SCOPE_CLUSTERS: usize = 64;
/// The longest life a token may be given.
pub const MAX_TOKEN_LIFE: Duration = Duration::from_secs(10 * 365 * 86_400);

/// A new random token: [`TOKEN_PREFIX`] and 256 bits from the operating system's generator,
/// as hex.
#[cfg(feature = "auth")]
pub fn generate_token() -> String {
    use rand::TryRngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.try_fill_bytes(&mut bytes).expect("the operating system's random generator");
    format!("{TOKEN_PREFIX}{}", hex(&bytes))
}

/// The SHA-256 of a token, as hex: the key its record is stored under.
#[cfg(feature = "auth")]
pub fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(token.as_bytes()))
}

#[cfg(feature = "auth")]
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The token in an `Authorization` header value, when it has a sane shape: `Bearer `, then
/// 32 to 512 visible ASCII characters. `None` for anything else (so that no odd bytes reach a
/// log or a hash).
pub fn bearer(header: &str) -> Option<&str> {
    well_formed(header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer "))?.trim())
}

/// `token` when it could be a token (its length, printable ASCII); `None` for anything else,
/// which is refused before any lookup.
pub fn well_formed(token: &str) -> Option<&str> {
    let sane = (MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_graphic());
    sane.then_some(token)
}

/// `tokens/<sha256>` — one API token, written by the apiserver; the secret itself is never
/// stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenRecord {
    pub name: String,
    pub role: Role,
    /// The clusters a viewer or operator token is limited to; empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub expires: Option<Timestamp>,
    /// Who made it: a token's name, or how the apiserver was started for the bootstrap token.
    pub created_by: String,
    #[schema(value_type = String)]
    pub created: Timestamp,
    /// Updated at most once a minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub last_used: Option<Timestamp>,
}

impl TokenRecord {
    pub fn expired(&self, now: Timestamp) -> bool {
        self.expires.is_some_and(|at| at <= now)
    }
}

/// Who a request comes from, once its token was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
    /// `None`: every cluster.
    pub clusters: Option<BTreeSet<String>>,
}

impl Caller {
    /// Everything, for an apiserver started with `--auth none`.
    pub fn anonymous() -> Caller {
        Caller { name: "anonymous".into(), role: Role::Admin, clusters: None }
    }

    fn of(record: &TokenRecord) -> Caller {
        let clusters = (!record.clusters.is_empty()).then(|| record.clusters.iter().cloned().collect());
        Caller { name: record.name.clone(), role: record.role, clusters }
    }

    /// Whether the caller may see and act on what belongs to `cluster`.
    pub fn may_reach(&self, cluster: &str) -> bool {
        self.clusters.as_ref().is_none_or(|clusters| clusters.contains(cluster))
    }

    /// The 403 message for a scenario of a cluster outside the caller's scope.
    pub fn out_of_scope(&self, what: &str, cluster: &str) -> String {
        let scope = self.clusters.iter().flatten().cloned().collect::<Vec<_>>().join(", ");
        format!("token {:?} is limited to clusters [{scope}]; {what} belongs to cluster {cluster:?}", self.name)
    }
}

/// What the client presented, after the lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    Nothing,
    Malformed,
    /// No record has its hash: never made, or revoked.
    Unknown,
    Found(TokenRecord),
}

/// The outcome for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The route needs no token.
    Open,
    Allowed(Caller),
    /// 401, and why.
    Unauthenticated(String),
    /// 403, and why; the caller is known.
    Forbidden {
        caller: Caller,
        message: String,
    },
}

/// The module's decision table.
pub fn decide(needs: Option<Permission>, presented: Presented, now: Timestamp) -> Decision {
    let Some(permission) = needs else { return Decision::Open };
    match presented {
        Presented::Nothing => Decision::Unauthenticated("no token".into()),
        Presented::Malformed => {
            Decision::Unauthenticated("malformed Authorization header: expected `Bearer <token>`".into())
        }
        Presented::Unknown => Decision::Unauthenticated("unknown or revoked token".into()),
        Presented::Found(record) if record.expired(now) => {
            let at = record.expires.map(|t| t.to_string()).unwrap_or_default();
            Decision::Unauthenticated(format!("token {:?} expired at {at}", record.name))
        }
        Presented::Found(record) if !record.role.grants(permission) => {
            let message = format!(
                "token {:?} has role {}, which does not hold the `{permission}` permission this request needs",
                record.name, record.role
            );
            Decision::Forbidden { caller: Caller::of(&record), message }
        }
        Presented::Found(record) => Decision::Allowed(Caller::of(&record)),
    }
}

/// A request to make a token (`POST /v1/tokens`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"name": "ci", "role": "operator", "clusters": ["default"], "expiresIn": "30d"}))]
pub struct TokenRequest {
    /// A DNS label, unique among tokens.
    #[schema(pattern = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", min_length = 1, max_length = 63)]
    pub name: String,
    pub role: Role,
    /// Viewer and operator only: the clusters it is limited to (DNS labels).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 64)] // MAX_SCOPE_CLUSTERS
    pub clusters: Vec<String>,
    /// How long it lives (`30d`, `12h`; more than 0, at most 10 years); without it, until
    /// revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, pattern = r"^([0-9]{1,9}(ms|s|m|h|d))+$")]
    pub expires_in: Option<Duration>,
}

impl TokenRequest {
    /// Every problem, each naming its field.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if let Err(why) = check_dns_label(&self.name) {
            problems.push(("name".to_string(), why));
        }
        if !self.clusters.is_empty() && !self.role.scopable() {
            problems.push((
                "clusters".into(),
                format!("a {} token cannot be limited to clusters; only viewer and operator tokens can", self.role),
            ));
        }
        if self.clusters.len() > MAX_SCOPE_CLUSTERS {
            problems.push(("clusters".into(), format!("at most {MAX_SCOPE_CLUSTERS} clusters")));
        }
        for (i, cluster) in self.clusters.iter().enumerate() {
            if let Err(why) = check_dns_label(cluster) {
                problems.push((format!("clusters[{i}]"), why));
            }
        }
        if let Some(life) = self.expires_in
            && (life == Duration::ZERO || life > MAX_TOKEN_LIFE)
        {
            problems.push(("expiresIn".into(), format!("must be more than 0 and at most {MAX_TOKEN_LIFE}")));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(role: Role, expires: Option<Timestamp>) -> TokenRecord {
        TokenRecord {
            name: "ci".into(),
            role,
            clusters: Vec::new(),
            expires,
            created_by: "admin".into(),
            created: Timestamp::UNIX_EPOCH,
            last_used: None,
        }
    }

    #[test]
    fn the_role_table_row_by_row() {
        use Permission::*;
        let holds = |role: Role| Permission::ALL.into_iter().filter(|p| role.grants(*p)).collect::<Vec<_>>();
        assert_eq!(holds(Role::Viewer), [Read]);
        assert_eq!(holds(Role::Operator), [Read, Operate]);
        assert_eq!(holds(Role::PluginAuthor), [Read, PushPlugins]);
        assert_eq!(holds(Role::Admin), [Read, Operate, PushPlugins, Admin]);
    }

    #[test]
    fn the_decision_table() {
        let now: Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
        let past = Some("2026-05-01T00:00:00Z".parse().unwrap());
        let future = Some("2026-07-01T00:00:00Z".parse().unwrap());
        let op = Some(Permission::Operate);
        assert_eq!(decide(None, Presented::Nothing, now), Decision::Open);
        assert!(matches!(decide(op, Presented::Nothing, now), Decision::Unauthenticated(m) if m == "no token"));
        assert!(
            matches!(decide(op, Presented::Malformed, now), Decision::Unauthenticated(m) if m.contains("malformed"))
        );
        assert!(matches!(decide(op, Presented::Unknown, now), Decision::Unauthenticated(m) if m.contains("revoked")));
        let expired = decide(op, Presented::Found(record(Role::Admin, past)), now);
        assert!(matches!(expired, Decision::Unauthenticated(m) if m.contains("expired")));
        let forbidden = decide(op, Presented::Found(record(Role::Viewer, None)), now);
        assert!(
            matches!(&forbidden, Decision::Forbidden { message, .. } if message.contains("role viewer") && message.contains("`operate`")),
            "{forbidden:?}"
        );
        let allowed = decide(op, Presented::Found(record(Role::Operator, future)), now);
        assert!(matches!(allowed, Decision::Allowed(Caller { role: Role::Operator, clusters: None, .. })));
    }

    #[test]
    fn a_scoped_caller_reaches_only_its_clusters() {
        let mut scoped = record(Role::Operator, None);
        scoped.clusters = vec!["a".into()];
        let Decision::Allowed(caller) = decide(Some(Permission::Read), Presented::Found(scoped), Timestamp::now())
        else {
            panic!("allowed")
        };
        assert!(caller.may_reach("a"));
        assert!(!caller.may_reach("b"));
        assert!(caller.out_of_scope("scenario \"x\"", "b").contains("[a]"));
        assert!(Caller::anonymous().may_reach("anything"));
    }

    #[cfg(feature = "auth")]
    #[test]
    fn tokens_are_random_hashed_and_parsed_only_in_a_sane_shape() {
        let (a, b) = (generate_token(), generate_token());
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 64, "{a}");
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), token_hash(&b));
        assert_eq!(token_hash(&a).len(), 64);
        assert_eq!(bearer(&format!("Bearer {a}")), Some(a.as_str()));
        assert_eq!(bearer(&a), None, "no scheme");
        assert_eq!(bearer("Bearer short"), None);
        assert_eq!(bearer(&format!("Bearer {}", "x".repeat(MAX_TOKEN_LEN + 1))), None);
        assert_eq!(bearer(&format!("Bearer {}\u{7f}", "x".repeat(40))), None);
    }

    #[test]
    fn a_token_request_names_each_bad_field() {
        let request = TokenRequest {
            name: "Bad_Name".into(),
            role: Role::Admin,
            clusters: vec!["a".into(), "B!".into()],
            expires_in: Some(Duration::ZERO),
        };
        let fields: Vec<String> = request.problems().into_iter().map(|(field, _)| field).collect();
        assert_eq!(fields, ["name", "clusters", "clusters[1]", "expiresIn"]);
        let fine = TokenRequest {
            name: "ci".into(),
            role: Role::Operator,
            clusters: vec!["a".into()],
            expires_in: Some("30d".parse().unwrap()),
        };
        assert!(fine.problems().is_empty());
    }
}
