//! The worker's availability ledger, purely: probe samples in; finished 30-second episodes,
//! pages ready for etcd and live-state changes out. No I/O and no clock — the loop in
//! [`super`] passes the time and carries the results to disk and to etcd.
//!
//! ```text
//! sample(series, state, at) ─▶ open episodes (one builder per 30 s the sample touches)
//! due(now)  ─▶ episodes whose end + grace has passed ─▶ Outbox (by page: series × minute)
//! ready()   ─▶ pages no open episode can still add to ─▶ etcd
//! live()    ─▶ what changed since the last call ─▶ etcd (on the worker's lease)
//! ```
//!
//! A sample counts for the time since the previous sample of its series, at most the probe's
//! interval plus its timeout back (so a check that hung until its timeout counts down for the
//! whole wait, and a gap — the worker stopped, the probe moved — stays no data). An episode is
//! finished `interval + timeout + 1 s` after its end: by then every sample that covers any of
//! it has come. A page (one series' episodes of one minute) is ready once no open episode of
//! its series falls in its minute.

use std::collections::{BTreeMap, BTreeSet};

use chaos_availability::{EPISODE_SECS, Episode, EpisodeBuilder, ProbeState, episode_start};
use chaos_def::availability::minute_of;
use chaos_def::probe::ProbeBinding;
use serde::{Deserialize, Serialize};

/// Who measures what: a probe as one vantage point samples it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SeriesKey {
    pub group: String,
    pub probe: String,
    pub vantage: String,
}

/// One series: its open episodes and what it shows live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub binding: ProbeBinding,
    pub scenario: String,
    pub instance: String,
    /// When the previous sample was taken (unix ms).
    pub last_ms: Option<i64>,
    /// Open episodes by start (unix seconds).
    pub open: BTreeMap<i64, EpisodeBuilder>,
    pub live: Option<Live>,
    /// The live state changed since it was last written.
    #[serde(default)]
    pub live_dirty: bool,
    /// Its instance ended here: no more samples; it goes once its episodes are finished.
    #[serde(default)]
    pub ended: bool,
}

/// The state a series shows now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Live {
    pub state: ProbeState,
    pub since_ms: i64,
    pub detail: String,
}

/// A finished episode, with what its page needs. It keeps its builder (what each millisecond
/// was) rather than its counts, so that two copies of it — one in the write-ahead store and one
/// finished again from a snapshot taken before — join without counting anything twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finished {
    pub key: SeriesKey,
    pub scenario: String,
    pub builder: EpisodeBuilder,
}

impl Finished {
    pub fn episode(&self) -> Episode {
        self.builder.finish()
    }
}

/// What changed live.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveChange {
    Put { key: SeriesKey, scenario: String, instance: String, live: Live },
    Delete(SeriesKey),
}

/// Every series this worker samples (saved as a list: JSON keys are strings).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Vec<(SeriesKey, Series)>", into = "Vec<(SeriesKey, Series)>")]
pub struct Ledger {
    series: BTreeMap<SeriesKey, Series>,
}

impl From<Vec<(SeriesKey, Series)>> for Ledger {
    fn from(list: Vec<(SeriesKey, Series)>) -> Self {
        Ledger { series: list.into_iter().collect() }
    }
}

impl From<Ledger> for Vec<(SeriesKey, Series)> {
    fn from(ledger: Ledger) -> Self {
        ledger.series.into_iter().collect()
    }
}

impl Ledger {
    /// Records one sample taken at `at_ms`.
    pub fn sample(&mut self, key: SeriesKey, tag: Sampled<'_>, state: ProbeState, detail: &str, at_ms: i64) {
        let series = self.series.entry(key).or_insert_with(|| Series {
            binding: tag.binding.clone(),
            scenario: tag.scenario.to_string(),
            instance: tag.instance.to_string(),
            last_ms: None,
            open: BTreeMap::new(),
            live: None,
            live_dirty: false,
            ended: false,
        });
        // A restarted instance takes its series over again.
        series.ended = false;
        series.binding = tag.binding.clone();
        let interval = series.binding.interval_ms as i64;
        let reach = interval + series.binding.timeout_ms as i64;
        let from = match series.last_ms {
            Some(last) if last <= at_ms && at_ms - last <= reach => last,
            _ => at_ms - interval,
        };
        series.last_ms = Some(series.last_ms.map_or(at_ms, |last| last.max(at_ms)));
        let mut start = episode_start(from);
        while start * 1000 < at_ms {
            series.open.entry(start).or_insert_with(|| EpisodeBuilder::new(start)).record(from, at_ms, state);
            start += EPISODE_SECS;
        }
        if series.live.as_ref().is_none_or(|live| live.state != state) {
            series.live = Some(Live { state, since_ms: at_ms, detail: detail.to_string() });
            series.live_dirty = true;
        }
    }

    /// The series' instance ended on this worker: its live state goes; its open episodes are
    /// finished in their time.
    pub fn ended(&mut self, key: &SeriesKey) {
        if let Some(series) = self.series.get_mut(key) {
            series.ended = true;
            series.live_dirty = true;
        }
    }

    /// The episodes whose end plus grace has passed at `now_ms`, and every open episode of a
    /// series whose instance ended (no sample can come for it any more: its page goes out at
    /// once, so a report made right after a stop sees the run to its end); series that ended and
    /// have nothing open are forgotten.
    pub fn due(&mut self, now_ms: i64) -> Vec<Finished> {
        let mut finished = Vec::new();
        for (key, series) in &mut self.series {
            let grace = (series.binding.interval_ms + series.binding.timeout_ms) as i64 + 1_000;
            while let Some(entry) = series.open.first_entry() {
                if !series.ended && (entry.key() + EPISODE_SECS) * 1000 + grace > now_ms {
                    break;
                }
                let builder = entry.remove();
                finished.push(Finished { key: key.clone(), scenario: series.scenario.clone(), builder });
            }
        }
        self.series.retain(|_, s| !(s.ended && s.open.is_empty() && !s.live_dirty));
        finished
    }

    /// The minutes each series may still add episodes to.
    pub fn open_minutes(&self) -> BTreeSet<(SeriesKey, i64)> {
        self.series
            .iter()
            .flat_map(|(key, s)| s.open.keys().map(move |start| (key.clone(), minute_of(*start))))
            .collect()
    }

    /// What changed live since the last call.
    pub fn live_changes(&mut self) -> Vec<LiveChange> {
        let mut changes = Vec::new();
        for (key, series) in &mut self.series {
            if !std::mem::take(&mut series.live_dirty) {
                continue;
            }
            match (&series.live, series.ended) {
                (Some(live), false) => changes.push(LiveChange::Put {
                    key: key.clone(),
                    scenario: series.scenario.clone(),
                    instance: series.instance.clone(),
                    live: live.clone(),
                }),
                _ => changes.push(LiveChange::Delete(key.clone())),
            }
        }
        changes
    }

    /// Marks every live state to be written again (the lease it was written on is gone, or a
    /// write failed): a running series' state, and an ended series' deletion.
    pub fn relive(&mut self) {
        for series in self.series.values_mut() {
            series.live_dirty = series.live.is_some();
        }
    }

    /// Every series' instance ended (a new process: none of them runs in it yet).
    pub fn end_all(&mut self) {
        for series in self.series.values_mut() {
            series.ended = true;
            series.live_dirty = series.live.is_some();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

/// The probe a sample belongs to, as the runtime tells it.
#[derive(Debug, Clone, Copy)]
pub struct Sampled<'a> {
    pub binding: &'a ProbeBinding,
    pub scenario: &'a str,
    pub instance: &'a str,
}

/// Finished episodes waiting for etcd, by page (series × minute).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outbox {
    pages: BTreeMap<(SeriesKey, i64), Page>,
}

/// One page's episodes (as builders) and the scenario that measured them.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub scenario: String,
    pub episodes: Vec<EpisodeBuilder>,
}

impl Page {
    /// The page's episodes as counted.
    pub fn finished(&self) -> Vec<Episode> {
        self.episodes.iter().map(EpisodeBuilder::finish).collect()
    }
}

impl Outbox {
    pub fn add(&mut self, finished: Finished) {
        let page = self
            .pages
            .entry((finished.key, minute_of(finished.builder.start())))
            .or_insert_with(|| Page { scenario: finished.scenario, episodes: Vec::new() });
        join_into(&mut page.episodes, &finished.builder);
    }

    /// Pages no open episode can still add to, oldest first, at most `limit`.
    pub fn ready(&self, open: &BTreeSet<(SeriesKey, i64)>, limit: usize) -> Vec<((SeriesKey, i64), Page)> {
        self.pages
            .iter()
            .filter(|(id, _)| !open.contains(id))
            .take(limit)
            .map(|(id, page)| (id.clone(), page.clone()))
            .collect()
    }

    /// Forgets pages once etcd has them.
    pub fn shipped(&mut self, ids: &[(SeriesKey, i64)]) {
        for id in ids {
            self.pages.remove(id);
        }
    }

    /// Every episode still waiting (what the write-ahead store keeps).
    pub fn pending(&self) -> Vec<Finished> {
        self.pages
            .iter()
            .flat_map(|((key, _), page)| {
                page.episodes.iter().map(|builder| Finished {
                    key: key.clone(),
                    scenario: page.scenario.clone(),
                    builder: builder.clone(),
                })
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.pages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }
}

/// Adds an episode to a page's episodes. One vantage point can finish the same 30 s twice: its
/// instance ended (the episode was finished early) and ran again on this worker, or a restart
/// found it both in the write-ahead store and in the snapshot of open episodes. The builders
/// say which milliseconds each saw, so the two are joined as a union.
pub fn join_into(episodes: &mut Vec<EpisodeBuilder>, builder: &EpisodeBuilder) {
    match episodes.iter_mut().find(|e| e.start() == builder.start()) {
        Some(same) => same.join(builder),
        None => {
            episodes.push(builder.clone());
            episodes.sort_by_key(EpisodeBuilder::start);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding() -> ProbeBinding {
        ProbeBinding { group: "g".into(), probe: "p".into(), interval_ms: 1_000, timeout_ms: 1_000 }
    }

    fn key() -> SeriesKey {
        SeriesKey { group: "g".into(), probe: "p".into(), vantage: "w.i".into() }
    }

    fn sample(ledger: &mut Ledger, state: ProbeState, at_ms: i64) {
        let b = binding();
        ledger.sample(key(), Sampled { binding: &b, scenario: "s", instance: "i" }, state, "", at_ms);
    }

    /// Samples every second from `from` (unix s) to `to`, `state_at` deciding each.
    fn run(ledger: &mut Ledger, from: i64, to: i64, state_at: impl Fn(i64) -> ProbeState) {
        for second in from..to {
            sample(ledger, state_at(second), (second + 1) * 1000);
        }
    }

    #[test]
    fn a_steady_probe_makes_whole_up_episodes_once_their_grace_passed() {
        let mut ledger = Ledger::default();
        run(&mut ledger, 600, 660, |_| ProbeState::Up);
        assert!(ledger.due(630_000 + 2_999).is_empty(), "not before end + interval + timeout + 1 s");
        let first = ledger.due(633_000);
        assert_eq!(first.len(), 1);
        assert_eq!((first[0].episode().start, first[0].episode().counts.up), (600, 30));
        let second = ledger.due(663_000);
        assert_eq!((second[0].episode().start, second[0].episode().counts.up), (630, 30));
    }

    #[test]
    fn an_outage_counts_its_seconds_down_and_a_gap_stays_no_data() {
        let mut ledger = Ledger::default();
        // Up, then 10 s down, then nothing for 10 s (the worker stopped), then up again.
        run(&mut ledger, 600, 610, |_| ProbeState::Up);
        run(&mut ledger, 610, 620, |_| ProbeState::Down);
        run(&mut ledger, 630, 660, |_| ProbeState::Up);
        let episodes = ledger.due(700_000);
        let counts = episodes[0].episode().counts;
        assert_eq!((counts.up, counts.down, counts.nodata), (10, 10, 10), "{counts:?}");
        assert_eq!(episodes[1].episode().counts.up, 30);
    }

    #[test]
    fn a_check_that_hung_counts_down_for_its_whole_wait() {
        let mut ledger = Ledger::default();
        sample(&mut ledger, ProbeState::Up, 600_000);
        // The next check hung until its 1 s timeout: reported 2 s after the previous one.
        sample(&mut ledger, ProbeState::Down, 602_000);
        let finished = ledger.due(640_000);
        let episode = finished.iter().find(|f| f.builder.start() == 600).unwrap();
        assert_eq!(episode.episode().counts.down, 2);
    }

    #[test]
    fn pages_wait_for_both_halves_of_their_minute() {
        let mut ledger = Ledger::default();
        let mut outbox = Outbox::default();
        run(&mut ledger, 600, 640, |_| ProbeState::Up);
        for f in ledger.due(633_500) {
            outbox.add(f);
        }
        assert_eq!(outbox.len(), 1);
        assert!(outbox.ready(&ledger.open_minutes(), 10).is_empty(), "the second half is still open");
        run(&mut ledger, 640, 660, |_| ProbeState::Up);
        for f in ledger.due(663_500) {
            outbox.add(f);
        }
        let ready = outbox.ready(&ledger.open_minutes(), 10);
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].1.finished().len(), 2);
        outbox.shipped(&[ready[0].0.clone()]);
        assert!(outbox.is_empty());
    }

    #[test]
    fn live_state_is_written_on_change_and_removed_when_the_instance_ends() {
        let mut ledger = Ledger::default();
        run(&mut ledger, 600, 605, |_| ProbeState::Up);
        assert!(matches!(&ledger.live_changes()[..], [LiveChange::Put { live, .. }] if live.since_ms == 601_000));
        run(&mut ledger, 605, 607, |_| ProbeState::Up);
        assert!(ledger.live_changes().is_empty(), "no change, no write");
        run(&mut ledger, 607, 608, |_| ProbeState::Down);
        assert!(matches!(&ledger.live_changes()[..], [LiveChange::Put { live, .. }] if live.state == ProbeState::Down));
        ledger.ended(&key());
        assert!(matches!(&ledger.live_changes()[..], [LiveChange::Delete(_)]));
        ledger.due(700_000);
        assert!(ledger.is_empty(), "an ended series goes once its episodes are out");
    }

    #[test]
    fn an_ended_instance_gives_its_episodes_at_once_and_a_second_run_joins_them() {
        let mut ledger = Ledger::default();
        let mut outbox = Outbox::default();
        run(&mut ledger, 600, 610, |_| ProbeState::Up);
        ledger.ended(&key());
        let early = ledger.due(611_000);
        assert_eq!(early.len(), 1, "finished before its grace: the instance ended");
        assert_eq!((early[0].episode().counts.up, early[0].episode().counts.nodata), (10, 20));
        for f in early {
            outbox.add(f);
        }
        assert_eq!(outbox.ready(&ledger.open_minutes(), 10).len(), 1, "its page goes out at once");
        // The instance runs again here within the same 30 s.
        run(&mut ledger, 615, 630, |_| ProbeState::Down);
        for f in ledger.due(640_000) {
            outbox.add(f);
        }
        let page = &outbox.ready(&ledger.open_minutes(), 10)[0].1;
        let counts = page.finished()[0].counts;
        assert_eq!((counts.up, counts.down, counts.nodata), (10, 15, 5), "{counts:?}");
    }

    #[test]
    fn an_episode_finished_twice_after_a_crash_counts_once() {
        // Finished and written to the write-ahead store, but the crash came before the snapshot
        // of open episodes was saved: the restored ledger still has it open.
        let mut ledger = Ledger::default();
        run(&mut ledger, 600, 615, |_| ProbeState::Down);
        let snapshot = ledger.clone();
        ledger.ended(&key());
        let pending = ledger.due(620_000);
        let mut restored = snapshot;
        restored.end_all();
        let again = restored.due(620_000);
        let mut outbox = Outbox::default();
        for f in pending.into_iter().chain(again) {
            outbox.add(f);
        }
        let page = &outbox.ready(&restored.open_minutes(), 10)[0].1;
        let counts = page.finished()[0].counts;
        assert_eq!((counts.down, counts.nodata), (15, 15), "not 30 down: {counts:?}");
        // A restored series shows nothing live: its instance does not run in the new process.
        restored.relive();
        assert!(matches!(&restored.live_changes()[..], [LiveChange::Delete(_)]));
    }

    #[test]
    fn the_ledger_survives_a_round_trip_through_json() {
        let mut ledger = Ledger::default();
        run(&mut ledger, 600, 615, |s| if s % 2 == 0 { ProbeState::Up } else { ProbeState::Down });
        let text = serde_json::to_string(&ledger).unwrap();
        let mut restored: Ledger = serde_json::from_str(&text).unwrap();
        assert_eq!(restored, ledger);
        run(&mut restored, 615, 630, |_| ProbeState::Up);
        let counts = restored.due(700_000)[0].episode().counts;
        assert_eq!(counts.up + counts.down, 30, "{counts:?}");
    }
}
