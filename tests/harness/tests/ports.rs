//! Port reservations as the processes of one machine see them: real sockets and real lock
//! files (each open of a lock file stands for another process: its lock conflicts the same way).

use std::fs::{OpenOptions, TryLockError};
use std::net::TcpListener;

use chaos_harness::Port;
use chaos_harness::ports::{ephemeral_range, lock_dir, reserve, try_reserve};

/// Whether another process could take the port's lock now.
fn lock_is_free(port: u16) -> bool {
    let path = lock_dir().join(format!("{port}.lock"));
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(path).unwrap();
    match file.try_lock() {
        Ok(()) => true,
        Err(TryLockError::WouldBlock) => false,
        Err(TryLockError::Error(error)) => panic!("{error}"),
    }
}

#[test]
fn a_reserved_port_is_outside_the_ephemeral_range_and_its_server_can_bind_it() {
    let port = reserve().unwrap();
    assert!(!ephemeral_range().contains(&port.number()), "{port} is in {:?}", ephemeral_range());
    TcpListener::bind(("127.0.0.1", port.number())).unwrap();
}

#[test]
fn a_held_port_is_locked_against_every_other_process_until_it_is_dropped() {
    let held: Vec<Port> = (0..50).map(|_| reserve().unwrap()).collect();
    let mut numbers: Vec<u16> = held.iter().map(Port::number).collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), held.len(), "a port was handed out twice while held");
    let first = held[0].number();
    assert!(!lock_is_free(first), "another process could take held port {first}");
    assert!(try_reserve(first).unwrap().is_none(), "held port {first} was reserved again");
    drop(held);
    assert!(lock_is_free(first), "port {first} stayed locked after it was dropped");
}

#[test]
fn a_port_something_listens_on_is_never_reserved() {
    let port = reserve().unwrap();
    let number = port.number();
    // Bound, then released: as a server started without a reservation holds its port.
    let _server = TcpListener::bind(("127.0.0.1", number)).unwrap();
    drop(port);
    assert!(try_reserve(number).unwrap().is_none(), "port {number} was reserved while a server listens on it");
}
