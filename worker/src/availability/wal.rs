//! The worker's write-ahead store for availability, under `--state-dir`: what the worker
//! measured stays on its disk until etcd has it, so that a worker cut off from etcd, killed, or
//! restarted with the same name and state directory loses nothing it measured (but the last
//! second of open episodes, written once a second).
//!
//! Two files in `<state-dir>/availability/`:
//! - `pending.jsonl`: finished episodes not yet in etcd, one JSON line each, appended and
//!   synced as they finish; rewritten (to a temporary file, then renamed) once etcd has some.
//! - `open.json`: the open episodes and live states (the [`Ledger`]), rewritten the same way.
//!
//! A line that does not parse (a torn last write) is skipped with a warning: the lines before
//! it are intact.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use super::ledger::{Finished, Ledger};

/// The most finished episodes kept waiting (about a week of 100 probes): past it, the oldest
/// are dropped with a warning rather than filling the disk.
pub const MAX_PENDING: usize = 2_000_000;

#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    pending: File,
}

impl Wal {
    /// Opens (creating) the store in `state_dir` and reads back what it holds.
    pub fn open(state_dir: &Path) -> std::io::Result<(Wal, Ledger, Vec<Finished>)> {
        let dir = state_dir.join("availability");
        fs::create_dir_all(&dir)?;
        let ledger = match fs::read(dir.join("open.json")) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "availability: open.json is unreadable; open episodes start afresh");
                Ledger::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ledger::default(),
            Err(e) => return Err(e),
        };
        let pending = read_pending(&dir.join("pending.jsonl"))?;
        let file = OpenOptions::new().create(true).append(true).open(dir.join("pending.jsonl"))?;
        Ok((Wal { dir, pending: file }, ledger, pending))
    }

    /// Appends finished episodes and syncs them to disk.
    pub fn append(&mut self, finished: &[Finished]) -> std::io::Result<()> {
        if finished.is_empty() {
            return Ok(());
        }
        let mut text = Vec::new();
        for f in finished {
            serde_json::to_writer(&mut text, f)?;
            text.push(b'\n');
        }
        self.pending.write_all(&text)?;
        self.pending.sync_data()
    }

    /// Replaces the pending file with `left` (what etcd does not have yet).
    pub fn rewrite_pending(&mut self, left: &[Finished]) -> std::io::Result<()> {
        let mut text = Vec::new();
        for f in left {
            serde_json::to_writer(&mut text, f)?;
            text.push(b'\n');
        }
        let path = self.dir.join("pending.jsonl");
        replace(&path, &text)?;
        self.pending = OpenOptions::new().append(true).open(path)?;
        Ok(())
    }

    /// Saves the open episodes and live states.
    pub fn save_open(&self, ledger: &Ledger) -> std::io::Result<()> {
        replace(&self.dir.join("open.json"), &serde_json::to_vec(ledger)?)
    }
}

fn read_pending(path: &Path) -> std::io::Result<Vec<Finished>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for (number, line) in BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Finished>(&line) {
            Ok(f) => found.push(f),
            Err(e) => tracing::warn!(line = number + 1, error = %e, "availability: skipping a torn pending line"),
        }
    }
    if found.len() > MAX_PENDING {
        let dropped = found.len() - MAX_PENDING;
        tracing::warn!(dropped, "availability: too many pending episodes; dropping the oldest");
        found.drain(..dropped);
    }
    Ok(found)
}

/// Writes `bytes` to `path` atomically: a temporary file, synced, renamed over it.
fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_data()?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent()
        && let Ok(dir) = File::open(dir)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::availability::ledger::SeriesKey;
    use chaos_availability::{EpisodeBuilder, ProbeState};

    fn finished(start: i64) -> Finished {
        let mut builder = EpisodeBuilder::new(start);
        builder.record(start * 1000, (start + 30) * 1000, ProbeState::Up);
        Finished {
            key: SeriesKey { group: "g".into(), probe: "p".into(), vantage: "w.i".into() },
            scenario: "s".into(),
            builder,
        }
    }

    #[test]
    fn what_is_appended_is_read_back_and_a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, ledger, pending) = Wal::open(dir.path()).unwrap();
        assert!(ledger.is_empty() && pending.is_empty());
        wal.append(&[finished(600), finished(630)]).unwrap();
        drop(wal);
        // A write cut short by a crash.
        let path = dir.path().join("availability/pending.jsonl");
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"key\":{\"gro").unwrap();
        let (mut wal, _, pending) = Wal::open(dir.path()).unwrap();
        assert_eq!(pending, vec![finished(600), finished(630)]);
        wal.rewrite_pending(&[finished(630)]).unwrap();
        wal.append(&[finished(660)]).unwrap();
        let (_, _, pending) = Wal::open(dir.path()).unwrap();
        assert_eq!(pending, vec![finished(630), finished(660)]);
    }
}
