//! A watch cache: one prefix of etcd as a loop sees it, after kube-rs's reflector. Every loop
//! (controller, scheduler, worker) keeps its view of etcd in these, fed by a [`super::Watcher`]
//! and by its own writes.
//!
//! Records sit in groups: a key `<prefix><group>/<name>` (instances by scenario, assignments by
//! worker) or `<prefix><name>` (group `""`), as its [`KeyShape`] says. Each may be held as a
//! projection of the stored record (what its user needs; a worker needs little of an instance).
//!
//! The one rule: **nothing older undoes something newer.** Two sources feed a cache, the watch
//! (in revision order) and the loop's own writes (written through at the revision etcd gave
//! them, so that the next pass does not repeat a write whose watch event is still on its way).
//! Either may be ahead of the other, so:
//! - a put is kept only if it is not older than what is held;
//! - a delete removes only what is older, and leaves a tombstone at its revision so that a put
//!   older than the delete, still on its way, does not bring the record back; tombstones go once
//!   the watch has delivered their revision (no older event can follow);
//! - a relisting (after a compaction) replaces the contents, except for what was written
//!   through after the listing's revision.

use std::collections::BTreeMap;

use super::{Versioned, WatchEvent};
use crate::keys::Keys;

/// How the keys under a cache's prefix are laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyShape {
    /// `<prefix><name>`: one level (group `""`).
    Name,
    /// `<prefix><group>/<name>`: two levels.
    GroupName,
    /// The prefix is one exact key, held under group `""`, name `""` (a watch on `…/w-1` also
    /// sees `…/w-10`; those are ignored).
    Exact,
    /// `<prefix><group>/<path>`: a group, then the rest of the key as the name (it may hold `/`).
    GroupPath,
}

/// Where a record sits in a cache.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot {
    pub group: String,
    pub name: String,
}

impl Slot {
    pub fn new(group: impl Into<String>, name: impl Into<String>) -> Self {
        Slot { group: group.into(), name: name.into() }
    }

    /// A slot of a one-level cache.
    pub fn named(name: impl Into<String>) -> Self {
        Slot::new("", name)
    }
}

/// One prefix's records, kept current by its watch and by write-through. `T` is the stored
/// record, `V` what the cache holds of it (`T` itself unless a projection is given).
pub struct WatchCache<T, V = T> {
    prefix: String,
    shape: KeyShape,
    project: fn(T) -> V,
    groups: BTreeMap<String, BTreeMap<String, Versioned<V>>>,
    /// What [`WatchCache::records`] lends for a group that holds nothing.
    empty: BTreeMap<String, Versioned<V>>,
    /// Deletions the watch may not have delivered yet, by slot: the revision they happened at.
    tombstones: BTreeMap<Slot, i64>,
    /// The newest revision the watch has delivered.
    seen: i64,
}

impl<T, V: std::fmt::Debug> std::fmt::Debug for WatchCache<T, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchCache")
            .field("prefix", &self.prefix)
            .field("groups", &self.groups)
            .field("seen", &self.seen)
            .finish_non_exhaustive()
    }
}

impl<T> WatchCache<T, T> {
    /// A cache holding whole records.
    pub fn new(prefix: impl Into<String>, shape: KeyShape) -> Self {
        Self::projected(prefix, shape, |record| record)
    }
}

impl<T, V> WatchCache<T, V> {
    /// A cache holding `project(record)` of each record.
    pub fn projected(prefix: impl Into<String>, shape: KeyShape, project: fn(T) -> V) -> Self {
        WatchCache {
            prefix: prefix.into(),
            shape,
            project,
            groups: BTreeMap::new(),
            empty: BTreeMap::new(),
            tombstones: BTreeMap::new(),
            seen: 0,
        }
    }

    /// Where the record under etcd key `key` sits, if the key belongs to this cache.
    pub fn slot_of(&self, key: &str) -> Option<Slot> {
        let rest = key.strip_prefix(&self.prefix)?;
        match self.shape {
            KeyShape::Name => Keys::name_in(&self.prefix, key).map(Slot::named),
            KeyShape::GroupName => {
                let (group, name) = rest.split_once('/')?;
                (!group.is_empty() && !name.is_empty() && !name.contains('/')).then(|| Slot::new(group, name))
            }
            KeyShape::Exact => rest.is_empty().then(|| Slot::named("")),
            KeyShape::GroupPath => {
                let (group, name) = rest.split_once('/')?;
                (!group.is_empty() && !name.is_empty()).then(|| Slot::new(group, name))
            }
        }
    }

    /// Applies one watch event; returns the slots whose record changed (appeared, changed or
    /// went), in order.
    pub fn apply(&mut self, event: WatchEvent<T>) -> Vec<Slot> {
        match event {
            WatchEvent::Listed { items, revision } => self.relist(items, revision),
            // The watch's own events are never older than what it delivered before: noting
            // their revision first leaves no tombstone for a deletion it brings itself.
            WatchEvent::Put { key, item } => {
                self.saw(item.mod_revision);
                let Some(slot) = self.slot_of(&key) else { return Vec::new() };
                let item = self.project_item(item);
                self.put(slot, item)
            }
            WatchEvent::Deleted { key, revision } => {
                self.saw(revision);
                let Some(slot) = self.slot_of(&key) else { return Vec::new() };
                self.delete(slot, revision)
            }
        }
    }

    /// Records this process's own write of `value` at `revision`. A write the watch has already
    /// gone past changes nothing: the watch delivered it, and whatever followed it.
    pub fn wrote(&mut self, slot: Slot, value: V, revision: i64) -> Vec<Slot> {
        if revision < self.seen {
            return Vec::new();
        }
        let item = Versioned { value, mod_revision: revision, create_revision: revision, lease: 0 };
        self.put(slot, item)
    }

    /// Records this process's own deletion of `slot` at `revision`.
    pub fn removed(&mut self, slot: Slot, revision: i64) -> Vec<Slot> {
        if revision < self.seen {
            return Vec::new();
        }
        self.delete(slot, revision)
    }

    /// Drops the record at `slot` if it is still the version written at `mod_revision`: its
    /// deletion was written, at a revision the caller does not know but later than that, and
    /// the watch will confirm it. A newer record in the slot stays.
    pub fn removed_version(&mut self, slot: Slot, mod_revision: i64) -> Vec<Slot> {
        if self.get(&slot).is_none_or(|held| held.mod_revision != mod_revision) {
            return Vec::new();
        }
        self.delete(slot, mod_revision + 1)
    }

    pub fn get(&self, slot: &Slot) -> Option<&Versioned<V>> {
        self.groups.get(&slot.group)?.get(&slot.name)
    }

    /// The record of a one-level cache named `name`.
    pub fn get_named(&self, name: &str) -> Option<&Versioned<V>> {
        self.groups.get("")?.get(name)
    }

    /// The records of one group, by name; empty for a group that holds nothing.
    pub fn records(&self, group: &str) -> &BTreeMap<String, Versioned<V>> {
        self.groups.get(group).unwrap_or(&self.empty)
    }

    /// The records of a one-level cache, by name.
    pub fn named(&self) -> &BTreeMap<String, Versioned<V>> {
        self.records("")
    }

    /// Every group with its records.
    pub fn groups(&self) -> impl Iterator<Item = (&str, &BTreeMap<String, Versioned<V>>)> {
        self.groups.iter().map(|(group, records)| (group.as_str(), records))
    }

    /// Every record with its slot's group and name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &Versioned<V>)> {
        self.groups().flat_map(|(group, records)| records.iter().map(move |(name, item)| (group, name.as_str(), item)))
    }

    /// How many records are held.
    pub fn len(&self) -> usize {
        self.groups.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    fn project_item(&self, item: Versioned<T>) -> Versioned<V> {
        let Versioned { value, mod_revision, create_revision, lease } = item;
        Versioned { value: (self.project)(value), mod_revision, create_revision, lease }
    }

    /// The watch has delivered `revision`: no event older than it can follow.
    fn saw(&mut self, revision: i64) {
        if revision > self.seen {
            self.seen = revision;
            let seen = self.seen;
            self.tombstones.retain(|_, deleted| *deleted > seen);
        }
    }

    fn put(&mut self, slot: Slot, item: Versioned<V>) -> Vec<Slot> {
        if self.tombstones.get(&slot).is_some_and(|deleted| *deleted > item.mod_revision) {
            return Vec::new();
        }
        // Looked up before it is made: a burst puts into groups that mostly exist already.
        if !self.groups.contains_key(&slot.group) {
            self.groups.insert(slot.group.clone(), BTreeMap::new());
        }
        let Some(records) = self.groups.get_mut(&slot.group) else { return Vec::new() };
        match records.get_mut(&slot.name) {
            Some(held) if held.mod_revision > item.mod_revision => Vec::new(),
            Some(held) => {
                let changed = held.mod_revision != item.mod_revision;
                *held = item;
                if changed { vec![slot] } else { Vec::new() }
            }
            None => {
                records.insert(slot.name.clone(), item);
                vec![slot]
            }
        }
    }

    fn delete(&mut self, slot: Slot, revision: i64) -> Vec<Slot> {
        if revision > self.seen {
            let tombstone = self.tombstones.entry(slot.clone()).or_insert(revision);
            *tombstone = (*tombstone).max(revision);
        }
        let Some(records) = self.groups.get_mut(&slot.group) else { return Vec::new() };
        if records.get(&slot.name).is_none_or(|held| held.mod_revision >= revision) {
            return Vec::new();
        }
        records.remove(&slot.name);
        if records.is_empty() {
            self.groups.remove(&slot.group);
        }
        vec![slot]
    }

    /// Replaces the contents with a listing at `revision`, keeping what was written through
    /// after it; returns every slot that changed.
    fn relist(&mut self, items: Vec<(String, Versioned<T>)>, revision: i64) -> Vec<Slot> {
        let mut fresh: BTreeMap<Slot, Versioned<V>> = BTreeMap::new();
        for (key, item) in items {
            let Some(slot) = self.slot_of(&key) else { continue };
            if self.tombstones.get(&slot).is_none_or(|deleted| *deleted <= item.mod_revision) {
                let item = self.project_item(item);
                fresh.insert(slot, item);
            }
        }
        let mut held_revisions: BTreeMap<Slot, i64> = BTreeMap::new();
        for (group, records) in std::mem::take(&mut self.groups) {
            for (name, held) in records {
                let slot = Slot::new(group.clone(), name);
                held_revisions.insert(slot.clone(), held.mod_revision);
                // Written through after the listing: newer than what it says.
                if held.mod_revision > revision {
                    fresh.insert(slot, held);
                }
            }
        }
        let mut changed: Vec<Slot> = held_revisions.keys().filter(|slot| !fresh.contains_key(*slot)).cloned().collect();
        for (slot, item) in fresh {
            if held_revisions.get(&slot) != Some(&item.mod_revision) {
                changed.push(slot.clone());
            }
            self.groups.entry(slot.group).or_default().insert(slot.name, item);
        }
        changed.sort();
        self.saw(revision);
        changed
    }
}

#[cfg(test)]
mod tests {
    //! The cache against a model of etcd: operations commit in revision order; the watch
    //! delivers them in that order, later; the loop writes its own operations through at any
    //! moment after they commit; a relisting may come at any moment. Whatever the interleaving,
    //! the cache shows, for every key, the newest operation it has been told of.

    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    const PREFIX: &str = "/p/";

    #[derive(Debug, Clone)]
    struct Op {
        key: u8,
        /// `None`: a deletion.
        value: Option<u8>,
        /// The loop's own write: it is also written through.
        own: bool,
    }

    #[derive(Debug, Clone, Copy)]
    enum Step {
        Commit,
        Deliver,
        WriteThrough(usize),
        Relist,
    }

    fn key(k: u8) -> String {
        format!("{PREFIX}k{k}")
    }

    fn versioned(value: u8, revision: i64) -> Versioned<u8> {
        Versioned { value, mod_revision: revision, create_revision: revision, lease: 0 }
    }

    /// etcd, as far as the test needs it: committed operations with their revisions.
    #[derive(Default)]
    struct Etcd {
        log: Vec<(i64, Op)>,
    }

    impl Etcd {
        /// The value of every key at `revision`.
        fn state_at(&self, revision: i64) -> BTreeMap<u8, (u8, i64)> {
            let mut state = BTreeMap::new();
            for (rev, op) in self.log.iter().filter(|(rev, _)| *rev <= revision) {
                match op.value {
                    Some(value) => state.insert(op.key, (value, *rev)),
                    None => state.remove(&op.key),
                };
            }
            state
        }

        fn event(&self, index: usize) -> WatchEvent<u8> {
            let (revision, op) = &self.log[index];
            match op.value {
                Some(value) => WatchEvent::Put { key: key(op.key), item: versioned(value, *revision) },
                None => WatchEvent::Deleted { key: key(op.key), revision: *revision },
            }
        }
    }

    /// What the cache has been told of each key: the newest operation, by revision.
    fn told(knowledge: &mut BTreeMap<u8, (i64, Option<u8>)>, key: u8, revision: i64, value: Option<u8>) {
        if knowledge.get(&key).is_none_or(|(known, _)| *known < revision) {
            knowledge.insert(key, (revision, value));
        }
    }

    fn check(cache: &WatchCache<u8>, knowledge: &BTreeMap<u8, (i64, Option<u8>)>) -> Result<(), TestCaseError> {
        for k in 0..4u8 {
            let held = cache.get_named(&format!("k{k}")).map(|v| (v.value, v.mod_revision));
            let expected = match knowledge.get(&k) {
                Some((revision, Some(value))) => Some((*value, *revision)),
                _ => None,
            };
            prop_assert_eq!(held, expected, "key k{}", k);
        }
        Ok(())
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        prop::collection::vec(
            (0..4u8, prop::option::weighted(0.7, any::<u8>()), any::<bool>()).prop_map(|(key, value, own)| Op {
                key,
                value,
                own,
            }),
            1..40,
        )
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        prop::collection::vec(
            prop_oneof![
                4 => Just(Step::Commit),
                4 => Just(Step::Deliver),
                3 => any::<prop::sample::Index>().prop_map(|i| Step::WriteThrough(i.index(1000))),
                1 => Just(Step::Relist),
            ],
            1..120,
        )
    }

    proptest! {
        #[test]
        fn nothing_older_undoes_something_newer(ops in ops(), steps in steps()) {
            let mut etcd = Etcd::default();
            let mut cache: WatchCache<u8> = WatchCache::new(PREFIX, KeyShape::Name);
            let mut knowledge = BTreeMap::new();
            let mut pending: Vec<usize> = Vec::new();
            let (mut next_op, mut delivered) = (0usize, 0usize);
            // Every step is tried; those that cannot happen yet are skipped. Then everything
            // left happens, so the run always ends with the watch caught up.
            let drain = std::iter::repeat_n(Step::Commit, ops.len())
                .chain(std::iter::repeat_n(Step::Deliver, ops.len()))
                .chain((0..ops.len()).map(|_| Step::WriteThrough(0)));
            for step in steps.into_iter().chain(drain) {
                match step {
                    Step::Commit if next_op < ops.len() => {
                        let op = ops[next_op].clone();
                        next_op += 1;
                        let exists = etcd.state_at(i64::MAX).contains_key(&op.key);
                        // etcd writes nothing for the deletion of an absent key.
                        if op.value.is_some() || exists {
                            if op.own {
                                pending.push(etcd.log.len());
                            }
                            let revision = etcd.log.len() as i64 + 1;
                            etcd.log.push((revision, op));
                        }
                    }
                    Step::Deliver if delivered < etcd.log.len() => {
                        let (revision, op) = &etcd.log[delivered];
                        told(&mut knowledge, op.key, *revision, op.value);
                        cache.apply(etcd.event(delivered));
                        delivered += 1;
                    }
                    Step::WriteThrough(i) if !pending.is_empty() => {
                        let index = pending.remove(i % pending.len());
                        let (revision, op) = &etcd.log[index];
                        told(&mut knowledge, op.key, *revision, op.value);
                        let slot = Slot::named(format!("k{}", op.key));
                        match op.value {
                            Some(value) => cache.wrote(slot, value, *revision),
                            None => cache.removed(slot, *revision),
                        };
                    }
                    Step::Relist => {
                        let revision = etcd.log.len() as i64;
                        let state = etcd.state_at(revision);
                        for (rev, op) in etcd.log.iter() {
                            told(&mut knowledge, op.key, *rev, op.value);
                        }
                        let items = state.iter().map(|(k, (v, rev))| (key(*k), versioned(*v, *rev))).collect();
                        cache.apply(WatchEvent::Listed { items, revision });
                        // The watch resumes after the listing.
                        delivered = etcd.log.len();
                    }
                    _ => continue,
                }
                check(&cache, &knowledge)?;
            }
            let last = etcd.log.len() as i64;
            let end: BTreeMap<u8, (u8, i64)> = (0..4u8)
                .filter_map(|k| cache.get_named(&format!("k{k}")).map(|v| (k, (v.value, v.mod_revision))))
                .collect();
            prop_assert_eq!(end, etcd.state_at(last));
        }
    }

    #[test]
    fn a_relisting_reports_what_appeared_changed_and_went() {
        let mut cache: WatchCache<u8> = WatchCache::new(PREFIX, KeyShape::Name);
        let listed = vec![(key(1), versioned(1, 2)), (key(2), versioned(2, 3))];
        assert_eq!(cache.apply(WatchEvent::Listed { items: listed, revision: 3 }).len(), 2);
        // k1 unchanged, k2 changed, k3 new, and a write-through after the listing is kept.
        cache.wrote(Slot::named("k0"), 9, 12);
        let relisted = vec![(key(1), versioned(1, 2)), (key(2), versioned(5, 8)), (key(3), versioned(3, 9))];
        let changed = cache.apply(WatchEvent::Listed { items: relisted, revision: 10 });
        assert_eq!(changed, vec![Slot::named("k2"), Slot::named("k3")]);
        assert_eq!(cache.get_named("k0").map(|v| v.value), Some(9));
        // k2 gone at the next relisting.
        let changed = cache.apply(WatchEvent::Listed { items: vec![(key(1), versioned(1, 2))], revision: 13 });
        assert_eq!(changed, vec![Slot::named("k0"), Slot::named("k2"), Slot::named("k3")]);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn keys_are_placed_by_their_shape_and_projected() {
        let mut grouped: WatchCache<u8, String> =
            WatchCache::projected("/i/", KeyShape::GroupName, |value| format!("v{value}"));
        grouped.apply(WatchEvent::Put { key: "/i/s1/a".into(), item: versioned(1, 2) });
        grouped.apply(WatchEvent::Put { key: "/i/s1/b".into(), item: versioned(2, 3) });
        grouped.apply(WatchEvent::Put { key: "/i/s2/a".into(), item: versioned(3, 4) });
        // Not of this shape: ignored.
        grouped.apply(WatchEvent::Put { key: "/i/s3".into(), item: versioned(3, 5) });
        grouped.apply(WatchEvent::Put { key: "/i/s3/a/b".into(), item: versioned(3, 6) });
        assert_eq!(grouped.records("s1").len(), 2);
        assert_eq!(grouped.get(&Slot::new("s2", "a")).map(|v| v.value.as_str()), Some("v3"));
        assert_eq!(grouped.len(), 3);
        grouped.apply(WatchEvent::Deleted { key: "/i/s2/a".into(), revision: 7 });
        assert_eq!(grouped.groups().count(), 1, "an emptied group goes");

        let mut exact: WatchCache<u8> = WatchCache::new("/c/w-1", KeyShape::Exact);
        exact.apply(WatchEvent::Put { key: "/c/w-10".into(), item: versioned(1, 2) });
        assert!(exact.is_empty(), "a longer key under the same prefix is another record");
        exact.apply(WatchEvent::Put { key: "/c/w-1".into(), item: versioned(1, 3) });
        assert_eq!(exact.get_named("").map(|v| v.value), Some(1));
    }

    #[test]
    fn a_run_forgets_the_assignment_it_finished_but_not_a_newer_one() {
        let mut cache: WatchCache<u8> = WatchCache::new(PREFIX, KeyShape::Name);
        cache.apply(WatchEvent::Put { key: key(1), item: versioned(1, 5) });
        assert_eq!(cache.removed_version(Slot::named("k1"), 5), vec![Slot::named("k1")]);
        // The watch still brings the put of the finished version: it stays gone.
        cache.apply(WatchEvent::Put { key: key(1), item: versioned(1, 5) });
        assert!(cache.get_named("k1").is_none());
        // A newer assignment is not touched.
        cache.apply(WatchEvent::Put { key: key(1), item: versioned(2, 9) });
        assert!(cache.removed_version(Slot::named("k1"), 5).is_empty());
        assert_eq!(cache.get_named("k1").map(|v| v.value), Some(2));
    }
}
