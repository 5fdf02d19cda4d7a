//! Pushed plugins: `PUT /v1/plugins/{name}/{version}` stores a plugin after checking it is a
//! component of the plugin world, that the operator's policy grants what it declares, and that
//! it fits the size limit; `GET /v1/plugins[/{name}/{version}]` lists and describes them.
//!
//! The bytes go under `blobs/<digest>/` first, the metadata under `plugins/<name>/<version>`
//! last and only if absent: a version names one digest forever, and a push that fails half-way
//! leaves at most a blob nobody names (reused by the next push of the same bytes).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use chaos_def::api::{PluginList, PushResponse, PushResult};
use chaos_def::builtin::BuiltinPlugin;
use chaos_def::plugin::{Capabilities, Inspection, inspect, sha256_hex};
use chaos_def::records::PluginMeta;
use chaos_def::scenario::{check_dns_label, is_version};
use chaos_def::store::StoreError;
use serde::Deserialize;

use crate::AppState;
use crate::error::{ApiError, ApiQuery, ErrorBody};

/// What the operator lets plugins be: their size, and the capabilities a push may ask for.
#[derive(Debug, Clone)]
pub struct PluginPolicy {
    pub max_bytes: usize,
    /// `None`: any capability may be granted.
    pub grantable: Option<Capabilities>,
}

impl Default for PluginPolicy {
    fn default() -> Self {
        PluginPolicy { max_bytes: chaos_def::consts::DEFAULT_PLUGIN_MAX_BYTES, grantable: None }
    }
}

impl PluginPolicy {
    /// Reads the grantable capabilities from a file in the format plugins declare theirs in
    /// (`{"rules": [{"resources", "verbs", "namespaces"}]}`).
    pub fn read_grantable(path: &std::path::Path) -> Result<Capabilities, String> {
        let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Capabilities::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PushQuery {
    /// The sha256 (hex, optionally `sha256:`-prefixed) the client computed: bytes that arrive
    /// different are refused.
    pub digest: Option<String>,
}

/// Stores a plugin (the body is the `.wasm` component).
#[utoipa::path(
    put, operation_id = "pushPlugin",
    path = "/v1/plugins/{name}/{version}",
    tag = "plugins",
    security(("token" = ["push-plugins"])),
    params(("name" = String, Path), ("version" = String, Path), PushQuery),
    request_body(content = Vec<u8>, content_type = "application/wasm"),
    responses(
        (status = 201, body = PushResponse, description = "Stored"),
        (status = 200, body = PushResponse, description = "The same bytes were pushed before"),
        (status = 400, body = ErrorBody, description = "Bad name or version, or the bytes do not match the digest"),
        (status = 403, body = ErrorBody, description = "It asks for capabilities the policy does not grant"),
        (status = 409, body = ErrorBody, description = "The version exists with other bytes"),
        (status = 413, body = ErrorBody, description = "Over the size limit"),
        (status = 422, body = ErrorBody, description = "Not a component of the plugin world")
    )
)]
pub async fn push(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<PushQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<PushResponse>), ApiError> {
    check_dns_label(&name).map_err(|why| ApiError::BadRequest { message: format!("plugin name {name:?}: {why}") })?;
    if BuiltinPlugin::from_name(&name).is_some() {
        return Err(ApiError::BadRequest {
            message: format!("{name} is a built-in plugin; push yours under another name"),
        });
    }
    if !is_version(&version) {
        return Err(ApiError::BadRequest {
            message: format!(
                "plugin version {version:?}: expected letters, digits, '.', '-', '+', starting with a letter or \
                 digit, at most 64 characters"
            ),
        });
    }
    let limit = state.plugins.max_bytes;
    let too_large = |size: Option<u64>| ApiError::PluginTooLarge { size, limit };
    let announced = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return Err(too_large(announced));
    }
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| too_large(None))?;
    let digest = sha256_hex(&bytes);
    if let Some(expected) = &query.digest {
        let expected = expected.strip_prefix("sha256:").unwrap_or(expected);
        if expected != digest {
            return Err(ApiError::BadRequest {
                message: format!(
                    "the bytes received have sha256:{digest}, not the digest sent (sha256:{expected}): the file \
                     changed or was corrupted on the way; push it again"
                ),
            });
        }
    }
    let inspection = inspect(&bytes).map_err(|e| ApiError::Rejected { message: e.to_string() })?;
    if let (Some(grantable), Some(asked)) = (&state.plugins.grantable, &inspection.capabilities) {
        let refused = asked.not_granted_by(grantable);
        if !refused.is_empty() {
            return Err(ApiError::Forbidden {
                message: format!(
                    "the plugin asks for capabilities this apiserver does not grant (--plugin-policy): {}",
                    refused.join("; ")
                ),
            });
        }
    }

    let store = &state.store;
    let key = store.keys().plugin(&name, &version);
    // Decided before the bytes are written: a re-push of the same bytes writes nothing.
    if let Some(existing) = store.get::<PluginMeta>(&key).await? {
        return same_or_conflict(existing.value, &digest);
    }
    store.write_blob(&digest, &bytes).await?;
    let meta = metadata(&name, &version, inspection);
    match store.create(&key, &meta).await {
        Ok(_) => {
            tracing::info!(plugin = %name, %version, %digest, size = meta.size, "plugin pushed");
            Ok((StatusCode::CREATED, Json(PushResponse { result: PushResult::Created, plugin: meta })))
        }
        // Another push of this version won the race, or ours landed and its answer was lost.
        Err(StoreError::AlreadyExists { .. } | StoreError::OutcomeUnknown { .. }) => {
            match store.get::<PluginMeta>(&key).await? {
                Some(existing) => same_or_conflict(existing.value, &digest),
                None => Err(ApiError::Conflict {
                    message: format!("{name}@{version} changed while it was pushed; try again"),
                }),
            }
        }
        Err(error) => Err(error.into()),
    }
}

fn same_or_conflict(existing: PluginMeta, digest: &str) -> Result<(StatusCode, Json<PushResponse>), ApiError> {
    if existing.digest == digest {
        return Ok((StatusCode::OK, Json(PushResponse { result: PushResult::Unchanged, plugin: existing })));
    }
    Err(ApiError::Conflict {
        message: format!(
            "version {} was pushed before with other bytes (sha256:{}); a version names one build forever: push \
             this one as a new version",
            existing.version, existing.digest
        ),
    })
}

fn metadata(name: &str, version: &str, inspection: Inspection) -> PluginMeta {
    PluginMeta {
        name: name.to_string(),
        version: version.to_string(),
        digest: inspection.digest,
        size: inspection.size,
        capabilities: inspection
            .capabilities
            .map(|c| serde_json::to_value(c).unwrap_or_default())
            .unwrap_or(serde_json::Value::Null),
        interface_version: inspection.interface_version,
        pushed_at: jiff::Timestamp::now(),
    }
}

/// Every pushed plugin, by name then version.
#[utoipa::path(
    get, operation_id = "listPlugins",
    path = "/v1/plugins",
    tag = "plugins",
    security(("token" = ["read"])),
    responses((status = 200, body = PluginList), (status = 503, body = ErrorBody))
)]
pub async fn list(State(state): State<AppState>) -> Result<Json<PluginList>, ApiError> {
    let store = &state.store;
    let items = store.list::<PluginMeta>(&store.keys().plugins_prefix()).await?.items;
    Ok(Json(PluginList { items: items.into_iter().map(|(_, v)| v.value).collect() }))
}

/// One pushed plugin version.
#[utoipa::path(
    get, operation_id = "getPlugin",
    path = "/v1/plugins/{name}/{version}",
    tag = "plugins",
    security(("token" = ["read"])),
    params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = PluginMeta), (status = 404, body = ErrorBody))
)]
pub async fn get(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<PluginMeta>, ApiError> {
    let store = &state.store;
    match store.get::<PluginMeta>(&store.keys().plugin(&name, &version)).await? {
        Some(meta) => Ok(Json(meta.value)),
        None => Err(ApiError::NotFound { kind: "plugin", name: format!("{name}@{version}") }),
    }
}
