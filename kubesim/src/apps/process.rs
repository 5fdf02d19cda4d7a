//! The processes of one simulated container and what signals do to them.
//!
//! A container's table starts with PID 1 (the image's program) and whatever helpers its image
//! declares. Signals follow Linux's default dispositions, which is what a process without
//! handlers gets: `SIGSTOP` (and `SIGTSTP`) stop it, `SIGCONT` resumes it, every other signal we
//! know ends it with exit code 128 + the signal's number. A stopped process keeps a terminating
//! signal pending until it is continued (as the kernel does), except `SIGKILL`, which always
//! lands at once. When PID 1 ends, the container ends with it: [`Delivery::ContainerExited`].

use std::fmt;

/// The signals the simulated processes understand (Linux x86-64 numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    Hup,
    Int,
    Quit,
    Kill,
    Usr1,
    Usr2,
    Term,
    Cont,
    Stop,
    Tstp,
}

const ALL: [Signal; 10] = [
    Signal::Hup,
    Signal::Int,
    Signal::Quit,
    Signal::Kill,
    Signal::Usr1,
    Signal::Usr2,
    Signal::Term,
    Signal::Cont,
    Signal::Stop,
    Signal::Tstp,
];

impl Signal {
    pub fn number(self) -> i32 {
        match self {
            Signal::Hup => 1,
            Signal::Int => 2,
            Signal::Quit => 3,
            Signal::Kill => 9,
            Signal::Usr1 => 10,
            Signal::Usr2 => 12,
            Signal::Term => 15,
            Signal::Cont => 18,
            Signal::Stop => 19,
            Signal::Tstp => 20,
        }
    }

    /// The name without `SIG`, as `kill -l` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Hup => "HUP",
            Signal::Int => "INT",
            Signal::Quit => "QUIT",
            Signal::Kill => "KILL",
            Signal::Usr1 => "USR1",
            Signal::Usr2 => "USR2",
            Signal::Term => "TERM",
            Signal::Cont => "CONT",
            Signal::Stop => "STOP",
            Signal::Tstp => "TSTP",
        }
    }

    /// Every signal known, in number order.
    pub fn all() -> &'static [Signal] {
        &ALL
    }

    /// `STOP`, `SIGSTOP`, `stop` or `19`.
    pub fn parse(s: &str) -> Option<Self> {
        if let Ok(n) = s.parse::<i32>() {
            return ALL.iter().copied().find(|sig| sig.number() == n);
        }
        let upper = s.to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        ALL.iter().copied().find(|sig| sig.name() == name)
    }

    fn stops(self) -> bool {
        matches!(self, Signal::Stop | Signal::Tstp)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIG{}", self.name())
    }
}

/// What `ps` shows in its STAT column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    Running,
    Stopped,
}

impl ProcState {
    /// `S` (sleeping: a server waiting for requests) or `T` (stopped), as procps prints them.
    pub fn stat(self) -> &'static str {
        match self {
            ProcState::Running => "S",
            ProcState::Stopped => "T",
        }
    }
}

/// One process of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    /// The command line, as `ps` shows it.
    pub command: String,
    pub state: ProcState,
    /// A terminating signal that arrived while stopped, delivered when continued.
    pending: Option<Signal>,
}

/// What a signal did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Nothing visible changed (continuing a running process, stopping a stopped one, or a
    /// terminating signal kept pending by a stopped process).
    Unchanged,
    Stopped,
    Continued,
    /// A process other than PID 1 ended; the container goes on.
    ProcessExited,
    /// PID 1 ended: the container exits with this code.
    ContainerExited {
        exit_code: i32,
    },
}

/// Why a signal could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    #[error("({0}) - No such process")]
    NoSuchProcess(u32),
}

/// The processes of one running container, in PID order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessTable {
    procs: Vec<Process>,
}

impl ProcessTable {
    /// A fresh start: PID 1 runs `commands[0]`, the rest get PIDs 7, 8, ... (as a shell would
    /// start them shortly after).
    pub fn start(commands: &[String]) -> Self {
        let procs = commands
            .iter()
            .enumerate()
            .map(|(i, command)| Process {
                pid: if i == 0 { 1 } else { 6 + i as u32 },
                command: command.clone(),
                state: ProcState::Running,
                pending: None,
            })
            .collect();
        Self { procs }
    }

    pub fn processes(&self) -> &[Process] {
        &self.procs
    }

    /// Whether PID 1 is stopped: the application answers nothing.
    pub fn main_stopped(&self) -> bool {
        self.procs.first().is_some_and(|p| p.pid == 1 && p.state == ProcState::Stopped)
    }

    /// Delivers `signal` to `pid`.
    pub fn signal(&mut self, pid: u32, signal: Signal) -> Result<Delivery, SignalError> {
        let idx = self.procs.iter().position(|p| p.pid == pid).ok_or(SignalError::NoSuchProcess(pid))?;
        let proc = &mut self.procs[idx];
        let terminate = match (signal, proc.state) {
            (Signal::Cont, ProcState::Running) => return Ok(Delivery::Unchanged),
            (Signal::Cont, ProcState::Stopped) => {
                proc.state = ProcState::Running;
                match proc.pending.take() {
                    Some(pending) => pending,
                    None => return Ok(Delivery::Continued),
                }
            }
            (s, ProcState::Stopped) if s.stops() => return Ok(Delivery::Unchanged),
            (s, ProcState::Running) if s.stops() => {
                proc.state = ProcState::Stopped;
                return Ok(Delivery::Stopped);
            }
            (Signal::Kill, _) | (_, ProcState::Running) => signal,
            (s, ProcState::Stopped) => {
                proc.pending.get_or_insert(s);
                return Ok(Delivery::Unchanged);
            }
        };
        Ok(self.exit(idx, 128 + terminate.number()))
    }

    fn exit(&mut self, idx: usize, exit_code: i32) -> Delivery {
        if self.procs[idx].pid == 1 {
            self.procs.clear();
            Delivery::ContainerExited { exit_code }
        } else {
            self.procs.remove(idx);
            Delivery::ProcessExited
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> ProcessTable {
        ProcessTable::start(&["/smoke-mini --listen :8080".to_string(), "sleep infinity".to_string()])
    }

    #[test]
    fn signals_parse_by_name_with_or_without_sig_and_by_number() {
        assert_eq!(Signal::parse("STOP"), Some(Signal::Stop));
        assert_eq!(Signal::parse("sigcont"), Some(Signal::Cont));
        assert_eq!(Signal::parse("9"), Some(Signal::Kill));
        assert_eq!(Signal::parse("SIGFOO"), None);
        assert_eq!(Signal::parse("64"), None);
        for s in Signal::all() {
            assert_eq!(Signal::parse(&s.to_string()), Some(*s));
        }
    }

    #[test]
    fn stop_and_continue_pid_1() {
        let mut t = table();
        assert_eq!(t.signal(1, Signal::Stop), Ok(Delivery::Stopped));
        assert!(t.main_stopped());
        assert_eq!(t.processes()[0].state.stat(), "T");
        assert_eq!(t.signal(1, Signal::Stop), Ok(Delivery::Unchanged));
        assert_eq!(t.signal(1, Signal::Cont), Ok(Delivery::Continued));
        assert!(!t.main_stopped());
        assert_eq!(t.signal(1, Signal::Cont), Ok(Delivery::Unchanged));
    }

    #[test]
    fn killing_pid_1_ends_the_container_with_128_plus_the_signal() {
        let mut t = table();
        assert_eq!(t.signal(1, Signal::Kill), Ok(Delivery::ContainerExited { exit_code: 137 }));
        assert!(t.processes().is_empty());
        let mut t = table();
        assert_eq!(t.signal(1, Signal::Term), Ok(Delivery::ContainerExited { exit_code: 143 }));
    }

    #[test]
    fn a_helper_process_ends_alone() {
        let mut t = table();
        assert_eq!(t.signal(7, Signal::Term), Ok(Delivery::ProcessExited));
        assert_eq!(t.processes().len(), 1);
        assert_eq!(t.signal(7, Signal::Term), Err(SignalError::NoSuchProcess(7)));
    }

    #[test]
    fn a_stopped_process_keeps_term_pending_until_continued_but_not_kill() {
        let mut t = table();
        t.signal(1, Signal::Stop).unwrap();
        assert_eq!(t.signal(1, Signal::Term), Ok(Delivery::Unchanged));
        assert!(t.main_stopped());
        assert_eq!(t.signal(1, Signal::Cont), Ok(Delivery::ContainerExited { exit_code: 143 }));
        let mut t = table();
        t.signal(1, Signal::Stop).unwrap();
        assert_eq!(t.signal(1, Signal::Kill), Ok(Delivery::ContainerExited { exit_code: 137 }));
    }
}
