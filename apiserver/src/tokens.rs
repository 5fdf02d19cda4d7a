//! API tokens: make one (its secret is shown once), list them, revoke one; and the bootstrap
//! admin token an apiserver installs from a file at start.
//!
//! A token is two keys written in one transaction: its record under the hash of its secret
//! (what a request is checked against) and its name holding that hash (names are unique, and a
//! revocation finds the record by name). Both are created only if absent and deleted together.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chaos_def::SpecErrors;
use chaos_def::api::{ActionResponse, ActionResult, TokenCreated, TokenList};
use chaos_def::auth::{self, Caller, Role, TokenRecord, TokenRequest};
use chaos_def::scenario::SpecError;
use chaos_def::store::{Batch, Store, StoreError};
use jiff::Timestamp;

use crate::AppState;
use crate::audit::AuditTarget;
use crate::error::{ApiError, ErrorBody};

/// The name the bootstrap token is kept under.
pub const BOOTSTRAP_NAME: &str = "bootstrap";

/// The most tokens one deployment keeps (each is two small keys).
pub const MAX_TOKENS: usize = 10_000;

/// Make a token. Its secret is in this answer only.
#[utoipa::path(
    post, operation_id = "createToken",
    path = "/v1/tokens",
    tag = "security",
    request_body = TokenRequest,
    security(("token" = ["admin"])),
    responses(
        (status = 201, body = TokenCreated),
        (status = 400, body = ErrorBody, description = "Not JSON, or not a token request"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "A token of that name exists"),
        (status = 422, body = ErrorBody, description = "A bad field, named"),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Result<Json<TokenRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Extension<AuditTarget>, Json<TokenCreated>), ApiError> {
    let Json(request) = body.map_err(|e| ApiError::BadRequest { message: e.body_text() })?;
    let mut problems = request.problems();
    if request.name == BOOTSTRAP_NAME {
        problems.push(("name".into(), format!("{BOOTSTRAP_NAME:?} is the apiserver's --bootstrap-token-file token")));
    }
    if !problems.is_empty() {
        let errors = problems.into_iter().map(|(path, message)| SpecError { path, line: None, message }).collect();
        return Err(ApiError::Invalid(SpecErrors(errors)));
    }
    let store = &state.store;
    if usize::try_from(store.count(&store.keys().tokens_prefix()).await?).unwrap_or(0) >= MAX_TOKENS {
        return Err(ApiError::Conflict {
            message: format!("there are {MAX_TOKENS} tokens already; revoke some first"),
        });
    }
    let now = Timestamp::now();
    let expires = request.expires_in.map(|life| now.checked_add(life.as_std())).transpose().map_err(|_| {
        ApiError::Invalid(SpecErrors(vec![SpecError {
            path: "expiresIn".into(),
            line: None,
            message: "too far in the future".into(),
        }]))
    })?;
    let record = TokenRecord {
        name: request.name.clone(),
        role: request.role,
        clusters: request.clusters,
        expires,
        created_by: caller.name.clone(),
        created: now,
        last_used: None,
    };
    let token = auth::generate_token();
    store_token(store, &token, &record).await?;
    tracing::info!(token = %record.name, role = %record.role, by = %caller.name, "token created");
    Ok((StatusCode::CREATED, Extension(AuditTarget(record.name.clone())), Json(TokenCreated { token, record })))
}

/// Creates both keys of a token, or neither.
async fn store_token(store: &Store, token: &str, record: &TokenRecord) -> Result<(), ApiError> {
    let keys = store.keys();
    let hash = auth::token_hash(token);
    let mut batch = Batch::new();
    batch.create(keys.token_name(&record.name), &hash)?;
    batch.create(keys.token(&hash), record)?;
    if batch.commit(store).await?.all_committed() {
        Ok(())
    } else {
        Err(ApiError::Conflict { message: format!("a token named {:?} exists; revoke it first", record.name) })
    }
}

/// Every token (never a secret).
#[utoipa::path(
    get, operation_id = "listTokens",
    path = "/v1/tokens",
    tag = "security",
    security(("token" = ["admin"])),
    responses((status = 200, body = TokenList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody))
)]
pub async fn list(State(state): State<AppState>) -> Result<Json<TokenList>, ApiError> {
    let store = &state.store;
    let mut items: Vec<TokenRecord> = store
        .list::<TokenRecord>(&store.keys().tokens_prefix())
        .await?
        .items
        .into_iter()
        .map(|(_, v)| v.value)
        .collect();
    items.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(TokenList { items }))
}

#[derive(Debug, Clone, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TokenPath {
    /// Token name
    pub name: String,
}

/// Revoke a token: every apiserver refuses it from the next request on.
#[utoipa::path(
    delete, operation_id = "revokeToken",
    path = "/v1/tokens/{name}",
    tag = "security",
    params(TokenPath),
    security(("token" = ["admin"])),
    responses(
        (status = 200, body = ActionResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(TokenPath { name }): Path<TokenPath>,
) -> Result<Json<ActionResponse>, ApiError> {
    if !remove(&state.store, &name).await.map_err(crate::error::switch_error)? {
        return Err(ApiError::NotFound { kind: "token", name });
    }
    tracing::info!(token = %name, by = %caller.name, "token revoked");
    Ok(Json(ActionResponse { result: ActionResult::Revoked, name }))
}

/// Deletes the token called `name`; false when there is none. A revoked bootstrap token is
/// remembered, so that an apiserver restarted with the same file does not bring it back.
/// Compare-and-swap on the name: a token replaced meanwhile (a bootstrap rotation) is read
/// again and revoked too, never reported revoked while its successor lives untouched.
async fn remove(store: &Store, name: &str) -> Result<bool, StoreError> {
    let keys = store.keys();
    for _ in 0..INSTALL_TRIES {
        let Some(hash) = store.get::<String>(&keys.token_name(name)).await? else { return Ok(false) };
        let mut batch = Batch::new();
        batch.delete_if(keys.token_name(name), hash.mod_revision);
        batch.delete(keys.token(&hash.value));
        // Its dashboard sessions end with it.
        batch.delete_prefix(keys.ui_sessions_of(&hash.value));
        if name == BOOTSTRAP_NAME {
            batch.put(keys.revoked_bootstrap(&hash.value), &Timestamp::now())?;
        }
        if batch.commit(store).await?.all_committed() {
            return Ok(true);
        }
    }
    Err(StoreError::Conflict { key: keys.token_name(name) })
}

/// Why a bootstrap token cannot be used.
pub fn check_bootstrap(token: &str) -> Result<(), String> {
    if auth::bearer(&format!("Bearer {token}")) != Some(token) {
        return Err(format!(
            "the bootstrap token must be {} to {} visible ASCII characters (e.g. `openssl rand -hex 32`)",
            auth::MIN_TOKEN_LEN,
            auth::MAX_TOKEN_LEN
        ));
    }
    Ok(())
}

/// Installs `token` as the admin token named [`BOOTSTRAP_NAME`], replacing an earlier bootstrap
/// token (so that rotating the file rotates the token). Nothing is written when it is in place.
/// A bootstrap token that was revoked is refused: the file must get a new one.
///
/// Each try reads the name's current hash and replaces exactly that one (compare-and-swap), so
/// two replicas starting with the same file agree; one starting with another file replaces the
/// token (the last started wins, and says so in its log). The install is fenced on the token
/// not being revoked meanwhile.
pub async fn install_bootstrap(store: &Store, token: &str, created_by: &str) -> Result<(), ApiError> {
    check_bootstrap(token).map_err(|message| ApiError::BadRequest { message })?;
    let keys = store.keys();
    let hash = auth::token_hash(token);
    let record = TokenRecord {
        name: BOOTSTRAP_NAME.into(),
        role: Role::Admin,
        clusters: Vec::new(),
        expires: None,
        created_by: created_by.into(),
        created: Timestamp::now(),
        last_used: None,
    };
    for _ in 0..INSTALL_TRIES {
        if store.get::<Timestamp>(&keys.revoked_bootstrap(&hash)).await?.is_some() {
            return Err(ApiError::Forbidden {
                message: "this bootstrap token was revoked; put a new secret in the --bootstrap-token-file".into(),
            });
        }
        let current = store.get::<String>(&keys.token_name(BOOTSTRAP_NAME)).await?;
        let mut batch = Batch::new();
        // Not revoked between the check above and this write.
        batch.require_unchanged(keys.revoked_bootstrap(&hash), 0);
        match &current {
            Some(found) if found.value == hash => return Ok(()),
            Some(found) => {
                batch.update(keys.token_name(BOOTSTRAP_NAME), &hash, found.mod_revision)?;
                batch.delete(keys.token(&found.value));
            }
            None => {
                batch.create(keys.token_name(BOOTSTRAP_NAME), &hash)?;
            }
        }
        batch.create(keys.token(&hash), &record)?;
        if batch.commit(store).await?.all_committed() {
            if current.is_some() {
                tracing::info!("the bootstrap token changed; the old one no longer works");
            }
            return Ok(());
        }
    }
    Err(ApiError::Conflict { message: "the bootstrap token kept changing while it was installed".into() })
}

/// Tries of [`install_bootstrap`] while other replicas install theirs.
const INSTALL_TRIES: usize = 5;

/// Whether any token exists: an apiserver with token auth and none at all could never be used.
pub async fn any(store: &Store) -> Result<bool, StoreError> {
    Ok(store.count(&store.keys().tokens_prefix()).await? > 0)
}
