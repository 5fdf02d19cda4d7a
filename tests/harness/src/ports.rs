//! Loopback ports for the servers that tests and `chaosctl up` start, reserved so that nothing
//! else takes one between the moment it is chosen and the moment its server binds it.
//!
//! Asking the kernel for a free port (bind port 0, read it, close) leaves that port free for
//! anyone until the server binds it, and on a busy machine someone does: every outgoing
//! connection of every process takes its local port from the same ephemeral range, and two
//! stacks starting at once can be handed the same number (a worker then fails to listen and
//! exits, while its readiness check is answered by the other stack's worker). A [`Port`] is
//!
//! 1. outside the kernel's ephemeral range (`net.ipv4.ip_local_port_range`), so no outgoing
//!    connection is ever given it;
//! 2. locked, for as long as the [`Port`] lives, by an advisory lock on a file that every process
//!    of this user sees (`$TMPDIR/chaos-ports-<uid>/<port>.lock`); the kernel releases the lock
//!    when its holder dies, however it dies;
//! 3. free to bind at the moment it is handed out (a foreign server may hold it).
//!
//! The lock files stay behind, empty, one per port ever reserved: removing one while another
//! process has it open would let two processes lock two different files of the same name.

use std::fs::{File, OpenOptions, TryLockError};
use std::hash::{BuildHasher, RandomState};
use std::io;
use std::net::TcpListener;
use std::ops::RangeInclusive;
use std::path::PathBuf;

/// Ports below this are left alone (well-known and commonly configured services).
const LOWEST: u16 = 10_000;

/// A loopback port reserved for one server; the reservation ends when this is dropped.
#[derive(Debug)]
pub struct Port {
    number: u16,
    /// Held, never read: the lock lives as long as the open file.
    _lock: File,
}

impl Port {
    pub fn number(&self) -> u16 {
        self.number
    }
}

impl std::fmt::Display for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.number)
    }
}

/// Reserves a loopback port (see the module's doc). Fails only when every candidate is taken
/// or the lock directory cannot be made.
pub fn reserve() -> io::Result<Port> {
    let dir = lock_dir();
    std::fs::create_dir_all(&dir)?;
    let candidates = candidates(ephemeral_range());
    // Start somewhere random so that concurrent callers rarely contend for the same locks.
    let start = RandomState::new().hash_one(std::process::id()) as usize % candidates.len();
    for &number in candidates[start..].iter().chain(&candidates[..start]) {
        if let Some(port) = try_take(&dir, number)? {
            return Ok(port);
        }
    }
    Err(io::Error::new(io::ErrorKind::AddrInUse, format!("every loopback port from {LOWEST} up is taken")))
}

/// Reserves this port if no one holds it: `None` when another reservation has it or something
/// listens on it.
pub fn try_reserve(number: u16) -> io::Result<Option<Port>> {
    let dir = lock_dir();
    std::fs::create_dir_all(&dir)?;
    try_take(&dir, number)
}

/// The port if its lock is free and it can be bound now; `None` when it is not.
fn try_take(dir: &std::path::Path, number: u16) -> io::Result<Option<Port>> {
    let path = dir.join(format!("{number}.lock"));
    let lock = match OpenOptions::new().create(true).truncate(false).write(true).open(&path) {
        Ok(file) => file,
        // Another user's file in a shared directory: that port is theirs.
        Err(error) if error.kind() == io::ErrorKind::PermissionDenied => return Ok(None),
        Err(error) => return Err(error),
    };
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(None),
        Err(TryLockError::Error(error)) => return Err(error),
    }
    // Held by a server that is not ours (or ours, started without a reservation).
    if TcpListener::bind(("127.0.0.1", number)).is_err() {
        return Ok(None);
    }
    Ok(Some(Port { number, _lock: lock }))
}

/// Every port from [`LOWEST`] up that the kernel does not hand out on its own; every port from
/// [`LOWEST`] up where the ephemeral range covers them all (the locks and the bind check still
/// hold, only outgoing connections may then take a port before its server binds it).
fn candidates(ephemeral: RangeInclusive<u16>) -> Vec<u16> {
    let outside: Vec<u16> = (LOWEST..=u16::MAX).filter(|port| !ephemeral.contains(port)).collect();
    if outside.is_empty() { (LOWEST..=u16::MAX).collect() } else { outside }
}

/// The kernel's ephemeral range; Linux's default when it cannot be read.
pub fn ephemeral_range() -> RangeInclusive<u16> {
    let read = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok();
    let parsed = read.and_then(|text| {
        let mut bounds = text.split_whitespace().map(|n| n.parse::<u16>().ok());
        Some(bounds.next()??..=bounds.next()??)
    });
    parsed.unwrap_or(32_768..=60_999)
}

/// Where the lock files are: one directory per user, shared by all their processes.
pub fn lock_dir() -> PathBuf {
    // SAFETY: getuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    let uid = unsafe { libc::getuid() };
    std::env::temp_dir().join(format!("chaos-ports-{uid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_candidates_leave_out_the_ephemeral_range_and_the_low_ports() {
        let all = candidates(32_768..=60_999);
        assert_eq!(all.first(), Some(&LOWEST));
        assert_eq!(all.last(), Some(&u16::MAX));
        assert!(all.iter().all(|p| !(32_768..=60_999).contains(p)));
        assert_eq!(all.len(), (32_768 - 10_000) + (65_535 - 60_999));
        // A range over everything leaves the locks alone to keep ports apart.
        assert_eq!(candidates(1_024..=65_535).len(), 65_535 - 10_000 + 1);
    }
}
