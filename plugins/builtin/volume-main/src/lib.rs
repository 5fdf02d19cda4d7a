//! `volume-main` (a megatest plugin): one volume's life. Creates the RV and its initial attachments
//! (0, 1 or 2 random storage nodes), waits by watch until it is IOReady and in Quorum, reports
//! `{"ready": true}` (the controller then starts the volume's other plugins), and lives until
//! stopped. On stop it detaches every attachment of the volume, deletes the RV and waits until it
//! is gone — also when the stop comes in the middle of the setup (a call then answers
//! Cancelled): whatever was made or adopted by then is torn down. A restarted instance (or one finding its own RV) adopts what exists instead of
//! failing on it.
//!
//! Config: `{"name", "storageClass", "size", "initialAttachments": 0|1|2}`.

use chaos_megatest::logic::config::{self, VolumeMainConfig};
use chaos_megatest::logic::volume::{attachments_to_create, initial_nodes};
use chaos_megatest::{self as mt, HostRandom};
use chaos_plugin_sdk::kube;
use chaos_plugin_sdk::objects::{ObjectMeta, ReplicatedVolume, ReplicatedVolumeSpec};
use chaos_plugin_sdk::{self as sdk, Duration, Error, action, log};
use serde_json::{Value, json};

sdk::capabilities!(
    r#"{"rules":[
        {"resources":["storage.deckhouse.io/replicatedvolumes"],"verbs":["get","list","watch","create","delete"]},
        {"resources":["storage.deckhouse.io/replicatedvolumeattachments"],"verbs":["get","list","watch","create","delete"]},
        {"resources":["nodes"],"verbs":["list"]}
    ]}"#
);

/// How long the volume may take to become IOReady and in Quorum.
const READY_TIMEOUT: Duration = Duration::from_secs(600);
/// How long its deletion may take once its attachments are gone.
const DELETE_TIMEOUT: Duration = Duration::from_secs(300);

struct VolumeMain;

impl sdk::Guest for VolumeMain {
    fn run(config: String) -> Result<String, Error> {
        let cfg = config::volume_main(&config).map_err(mt::config_error)?;
        let info = sdk::info();
        // A stop may come at any step of the setup (a call in flight then answers Cancelled):
        // whatever the setup made, or adopted, is torn down all the same.
        // Started stopped (a cleanup run, after an earlier run failed before its own): nothing
        // to set up, only what an earlier run left to tear down.
        let set_up = if sdk::cancelled() { Err(Error::Cancelled) } else { set_up(&cfg, info.attempt) };
        let (adopted, wanted) = match set_up {
            Ok(up) => {
                // Lives until stopped: the controller ends it when its lifetime is over.
                while sdk::sleep(Duration::from_secs(3600)) {}
                up
            }
            Err(Error::Cancelled) => {
                log::info("stopped before the volume was ready", &[("rv", &cfg.name)]);
                (false, Vec::new())
            }
            // Left as is: a restart adopts it, a stop deletes it.
            Err(e) => return Err(e),
        };

        let detached = teardown(&cfg.name)?;
        sdk::summary(&json!({
            "volume": cfg.name,
            "adopted": adopted,
            "initialAttachments": wanted,
            "detached": detached,
            "deleted": true,
        }))
    }
}

/// Creates (or adopts) the volume and its initial attachments and waits until it is ready;
/// answers whether it was adopted and the nodes drawn for the attachments.
fn set_up(cfg: &VolumeMainConfig, attempt: u32) -> Result<(bool, Vec<String>), Error> {
    let adopted = create_volume(cfg, attempt)?;
    // The nodes are drawn on every attempt (the same seed draws the same ones); only those
    // missing are created, never more than asked for in all.
    let nodes = mt::storage_nodes()?;
    let wanted = initial_nodes(&nodes, cfg.initial_attachments as usize, &mut HostRandom);
    let existing = mt::attached_nodes(&cfg.name)?;
    let to_create = attachments_to_create(&existing, &wanted, cfg.initial_attachments as usize);
    log::info(
        "initial attachments",
        &[
            ("rv", &cfg.name),
            ("wanted", &wanted.join(",")),
            ("existing", &existing.join(",")),
            ("creating", &to_create.join(",")),
        ],
    );
    bring_up(cfg, &to_create)?;
    let mut state = serde_json::Map::new();
    state.insert(mt::STATE_READY.into(), Value::Bool(true));
    state.insert("volume".into(), Value::String(cfg.name.clone()));
    sdk::report(&[("attachments", mt::attached_nodes(&cfg.name)?.len() as i64)], &Value::Object(state));
    log::info("volume ready", &[("rv", &cfg.name)]);
    Ok((adopted, wanted))
}

/// The action "create-volume"; true when the RV existed already and was adopted.
fn create_volume(cfg: &VolumeMainConfig, attempt: u32) -> Result<bool, Error> {
    let params = [
        ("rv", cfg.name.as_str()),
        ("storageClass", cfg.storage_class.as_str()),
        ("size", cfg.size.as_str()),
        ("attempt", &attempt.to_string()),
    ];
    let scope = action::Action::start("create-volume", &params);
    let rv = ReplicatedVolume {
        metadata: ObjectMeta::named(&cfg.name),
        spec: ReplicatedVolumeSpec {
            size: cfg.size.as_str().to_string(),
            replicated_storage_class_name: cfg.storage_class.clone(),
        },
        status: None,
    };
    match kube::create_as(&rv) {
        Ok(_) => {
            scope.ok("created");
            Ok(false)
        }
        Err(Error::Conflict(_)) => {
            // Ours (a previous attempt of this instance, killed midway): adopt it. Anyone
            // else's: refuse, never touch it.
            let existing = kube::get_as::<ReplicatedVolume>(None, &cfg.name)?;
            let owner = existing.metadata.labels.get(sdk::LABEL_INSTANCE).cloned().unwrap_or_default();
            let ours = owner == sdk::info().instance;
            if ours && existing.metadata.deletion_timestamp.is_none() {
                scope.ok("adopted the volume of a previous attempt");
                Ok(true)
            } else if ours {
                // A previous attempt was killed while tearing it down: finish that (the
                // deletion waits for the attachments), then start afresh.
                let recreated = (|| -> Result<(), Error> {
                    mt::detach_all(&cfg.name)?;
                    kube::wait_until::<ReplicatedVolume>(None, &cfg.name, DELETE_TIMEOUT, |v| v.is_none())?;
                    kube::create_as(&rv).map(|_| ())
                })();
                match recreated {
                    Ok(()) => {
                        scope.ok("created after the previous attempt's deletion finished");
                        Ok(false)
                    }
                    Err(e) => {
                        scope.fail(&e.describe());
                        Err(e)
                    }
                }
            } else {
                let why = format!("volume {} exists and is not this instance's (owner {owner:?})", cfg.name);
                scope.fail(&why);
                Err(Error::Conflict(why))
            }
        }
        Err(e) => {
            scope.fail(&e.describe());
            Err(e)
        }
    }
}

/// Creates the initial attachments, waits until the volume is ready, then until they attached.
fn bring_up(cfg: &VolumeMainConfig, to_create: &[String]) -> Result<(), Error> {
    for node in to_create {
        // Created at once (they wait for the volume in the storage); waited for below.
        action::action("create-attachment", &[("rv", &cfg.name), ("node", node)], || create_rva(&cfg.name, node))?;
    }
    action::action("wait-ready", &[("rv", &cfg.name), ("expected", "IOReady=True,Quorum=True")], || {
        kube::wait_until::<ReplicatedVolume>(None, &cfg.name, READY_TIMEOUT, |v| v.is_some_and(|v| v.ready()))
            .map(|_| ())
    })?;
    for a in mt::active_attachments(&cfg.name)? {
        // A failed attach is logged by its action and is a finding, not the end of the volume.
        let name = a.metadata.name.clone();
        match action::action("wait-attached", &[("rv", &cfg.name), ("node", &a.spec.node_name)], || {
            mt::wait_attached(&name)
        }) {
            Err(Error::Cancelled) => return Err(Error::Cancelled),
            Err(e) => log::warn("initial attachment failed", &[("rv", &cfg.name), ("error", &e.describe())]),
            Ok(()) => {}
        }
    }
    Ok(())
}

fn create_rva(rv: &str, node: &str) -> Result<(), Error> {
    use chaos_plugin_sdk::objects::{ReplicatedVolumeAttachment, ReplicatedVolumeAttachmentSpec};
    let rva = ReplicatedVolumeAttachment {
        metadata: ObjectMeta::named(mt::rva_name(rv, node)),
        spec: ReplicatedVolumeAttachmentSpec { replicated_volume_name: rv.to_string(), node_name: node.to_string() },
        status: None,
    };
    match kube::create_as(&rva) {
        Ok(_) | Err(Error::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The action "delete-volume": every attachment detached, the RV deleted and gone.
fn teardown(rv: &str) -> Result<usize, Error> {
    // An RV of that name that another instance made (or anyone else) is never touched: this
    // run may be a cleanup run that never got as far as creating its own.
    match kube::get_as::<ReplicatedVolume>(None, rv) {
        Ok(existing) if existing.metadata.labels.get(sdk::LABEL_INSTANCE) != Some(&sdk::info().instance) => {
            log::warn("the volume is not this instance's: left alone", &[("rv", rv)]);
            return Ok(0);
        }
        Ok(_) | Err(Error::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    let detached = mt::detach_all(rv)?;
    action::action("delete-volume", &[("rv", rv)], || {
        kube::delete_if_exists(kube::REPLICATED_VOLUMES, None, rv)?;
        kube::wait_until::<ReplicatedVolume>(None, rv, DELETE_TIMEOUT, |v| v.is_none()).map(|_| ())
    })?;
    Ok(detached)
}

sdk::export!(VolumeMain);
