//! Reading availability out of etcd: a probe's episode pages and day records over a time range,
//! as the range API, the report and the slot fold need them. Episodes live a day
//! ([`EPISODE_LIFE_SECS`]); older time is read from the day records the fold writes.

use std::collections::BTreeMap;

use chaos_availability::range::ProbeData;
use chaos_availability::{Counts, DAY_SECS, DayRecord, Downtime, SLOT_SECS, slot_start};

use super::{Result, Store};
use crate::availability::{EPISODE_LIFE_SECS, EpisodePage, StoredDowntime};

/// The pages of one probe whose minute is in `[from, to)` (unix seconds).
pub async fn pages(store: &Store, group: &str, probe: &str, from: i64, to: i64) -> Result<Vec<EpisodePage>> {
    let keys = store.keys();
    let start = keys.availability_episodes_from(group, probe, from.div_euclid(60) * 60);
    let end = keys.availability_episodes_from(group, probe, to);
    Ok(store.list_between::<EpisodePage>(&start, &end).await?.items.into_iter().map(|(_, v)| v.value).collect())
}

/// The day records of one probe for the days touching `[from, to)`. They are stored in their
/// compact encoding as is (no JSON around it: a year of a probe is 18 KB typically, 842 KB at
/// worst).
pub async fn days(store: &Store, group: &str, probe: &str, from: i64, to: i64) -> Result<Vec<DayRecord>> {
    let keys = store.keys();
    let start = keys.availability_slots_from(group, probe, from.div_euclid(DAY_SECS));
    let end = keys.availability_slots_from(group, probe, to.div_euclid(DAY_SECS) + 1);
    let mut records = Vec::new();
    for (key, bytes) in store.list_bytes_between(&start, &end).await? {
        match DayRecord::decode(&bytes) {
            Ok(record) => records.push(record),
            Err(why) => tracing::warn!(%key, %why, "availability: skipping an unreadable day record"),
        }
    }
    Ok(records)
}

/// One day record of a probe: `None` when none is stored, `Some(Err)` when the stored bytes do
/// not decode (say, a newer format).
pub async fn day(store: &Store, group: &str, probe: &str, day: i64) -> Result<Option<Result<DayRecord, String>>> {
    let key = store.keys().availability_slots(group, probe, day);
    let end = store.keys().availability_slots(group, probe, day + 1);
    Ok(store
        .list_bytes_between(&key, &end)
        .await?
        .into_iter()
        .find(|(k, _)| *k == key)
        .map(|(_, bytes)| DayRecord::decode(&bytes).map_err(|e| e.to_string())))
}

/// Everything known of one probe over `[from, to)` at `now`: episodes where they still live,
/// slots from the day records for the rest.
pub async fn probe_data(
    store: &Store,
    group: &str,
    probe: &str,
    (from, to): (i64, i64),
    now: i64,
) -> Result<ProbeData> {
    // Episodes only for whole slots the pruning cannot have touched yet (it deletes pages a
    // day old, slot by slot): a slot read from part of its pages would show no data for the rest.
    let episodes_from = from.max(slot_start(now - EPISODE_LIFE_SECS) + SLOT_SECS);
    let episodes = if episodes_from < to {
        pages(store, group, probe, episodes_from, to).await?.into_iter().flat_map(|page| page.episodes).collect()
    } else {
        Vec::new()
    };
    let mut slots: BTreeMap<i64, Counts> = BTreeMap::new();
    for record in days(store, group, probe, from, to).await? {
        slots.extend(record.iter().filter(|(start, _)| *start + 300 > from && *start < to));
    }
    Ok(ProbeData { group: group.to_string(), probe: probe.to_string(), episodes, slots })
}

/// Every stored Downtime, users' and clusters', as the accounting takes them.
pub async fn downtimes(store: &Store) -> Result<Vec<Downtime>> {
    let listing = store.list::<StoredDowntime>(&store.keys().downtimes_prefix()).await?;
    Ok(listing.items.into_iter().map(|(_, v)| Downtime { name: v.value.name, windows: v.value.windows }).collect())
}
