//! The shell that `pods/{name}/exec` runs in a simulated container.
//!
//! It owns the command language only: parsing an exec's argv or an `sh -c` script and running the
//! few programs a simulated container has. Everything that touches the container (its process
//! table, signals, the story clock, where output goes) is behind [`Host`], so the module is pure
//! and unit-tested against a table in memory.
//!
//! Programs: `kill [-SIGNAL | -s SIGNAL | -n NUMBER] PID...` (default `TERM`; `-0` only checks
//! that the process exists), `kill -l [SIGNAL | STATUS]`, `ps`, `true`, `false`, `sleep N[smhd]`,
//! `echo [-n]`, and `sh -c SCRIPT` (also `/bin/sh`, and `sh` reading its script from stdin).
//! Scripts are lists of simple commands joined by `;`, newlines, `&&` and `||`, with POSIX quoting
//! (`'...'`, `"..."`, `\`) and `#` comments, plus the `exit [N]` builtin. Pipes, redirections,
//! expansions (`$`, backquotes), subshells and background jobs are refused with a syntax error
//! rather than half-done. Words are split by hand because the shell-word crates (`shlex`) do not
//! know `;`, `&&` and `||`.
//!
//! Every input is bounded: a script's bytes, its commands, a command's arguments, the nesting of
//! `sh -c` and the story time one `sleep` may ask for.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::apps::process::{Delivery, Process, Signal, SignalError};
use crate::error::Result;

/// The longest script accepted (an `sh -c` argument or `sh`'s stdin).
pub const MAX_SCRIPT_BYTES: usize = 64 * 1024;
/// The most simple commands one script may hold.
pub const MAX_COMMANDS: usize = 1024;
/// The most words one command may have.
pub const MAX_ARGS: usize = 1024;
/// How deeply `sh -c` may run `sh -c`.
pub const MAX_DEPTH: usize = 8;
/// The longest story time one `sleep` may ask for.
pub const MAX_SLEEP: Duration = Duration::from_secs(24 * 3600);

/// Exit status of a command that does not exist (as `sh` and the kubelet report it).
pub const NOT_FOUND: i32 = 127;
/// Exit status of a script with a syntax error, and of misused shell builtins.
const MISUSE: i32 = 2;

/// Which output stream text goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// The container the shell runs in. An `Err` from it (the pod or container went away) ends the
/// whole exec, as the kubelet's exec ends when its container does.
pub trait Host {
    /// The container's processes, in PID order.
    fn processes(&mut self) -> Result<Vec<Process>>;
    /// Delivers a signal; the inner result is what `kill` reports.
    fn signal(&mut self, pid: u32, signal: Signal) -> Result<std::result::Result<Delivery, SignalError>>;
    /// Waits `story` seconds of the simulation's (sped-up) clock.
    fn sleep(&mut self, story: Duration) -> impl Future<Output = Result<()>> + Send;
    /// Writes program output.
    fn write(&mut self, stream: Stream, text: &str);
}

/// Runs `argv` as the kubelet starts an exec'd command (no shell unless `argv` names one).
/// `stdin` is the script `sh` reads when it has no `-c`. Returns the exit status (0..=255).
pub async fn exec<H: Host + Send>(host: &mut H, argv: &[String], stdin: Option<&str>) -> Result<i32> {
    let ctx = Context { depth: 0, in_shell: false, stdin };
    match run_command(host, argv, ctx).await? {
        Flow::Next(status) | Flow::Exit(Some(status)) => Ok(status),
        // Outside a shell `exit` is not a builtin, so this is never reached.
        Flow::Exit(None) => Ok(0),
    }
}

/// Whether `argv` is a shell that reads its script from stdin (so the caller should collect
/// stdin before running it).
pub fn reads_stdin(argv: &[String]) -> bool {
    match argv {
        [prog] => program(prog) == Some(Program::Sh),
        [prog, flag] => program(prog) == Some(Program::Sh) && flag == "-s",
        _ => false,
    }
}

/// How a step of a script is joined to the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connector {
    /// `;`, a newline, or the first command.
    Always,
    /// `&&`
    IfSuccess,
    /// `||`
    IfFailure,
}

/// One simple command of a script and how it is joined to the previous one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub connector: Connector,
    pub argv: Vec<String>,
}

/// Why a script cannot run; shown as `sh: syntax error: ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("syntax error: {0}")]
pub struct SyntaxError(String);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Semi,
    Newline,
    And,
    Or,
}

impl Token {
    fn text(&self) -> &str {
        match self {
            Token::Word(w) => w,
            Token::Semi => ";",
            Token::Newline => "newline",
            Token::And => "&&",
            Token::Or => "||",
        }
    }
}

/// Parses a script into the steps it runs (see the module doc for the language).
pub fn parse(script: &str) -> std::result::Result<Vec<Step>, SyntaxError> {
    if script.len() > MAX_SCRIPT_BYTES {
        return Err(SyntaxError(format!("the script is longer than {MAX_SCRIPT_BYTES} bytes")));
    }
    let mut steps = Vec::new();
    let mut connector = Connector::Always;
    let mut argv = Vec::new();
    for token in lex(script)? {
        match token {
            Token::Word(w) if argv.len() >= MAX_ARGS => {
                return Err(SyntaxError(format!("a command has more than {MAX_ARGS} words (at {w:?})")));
            }
            Token::Word(w) => argv.push(w),
            // A newline after `&&`/`||` continues the list; an empty line is nothing.
            Token::Newline if argv.is_empty() => {}
            op if argv.is_empty() => return Err(SyntaxError(format!("unexpected \"{}\"", op.text()))),
            op => {
                if steps.len() >= MAX_COMMANDS {
                    return Err(SyntaxError(format!("the script has more than {MAX_COMMANDS} commands")));
                }
                steps.push(Step { connector, argv: std::mem::take(&mut argv) });
                connector = match op {
                    Token::And => Connector::IfSuccess,
                    Token::Or => Connector::IfFailure,
                    _ => Connector::Always,
                };
            }
        }
    }
    if !argv.is_empty() {
        if steps.len() >= MAX_COMMANDS {
            return Err(SyntaxError(format!("the script has more than {MAX_COMMANDS} commands")));
        }
        steps.push(Step { connector, argv });
    } else if connector != Connector::Always {
        return Err(SyntaxError("unexpected end of file".into()));
    }
    Ok(steps)
}

fn unsupported(what: char) -> SyntaxError {
    SyntaxError(format!("'{what}' is not supported by the simulated shell"))
}

/// Splits a script into words and operators, removing quotes.
fn lex(script: &str) -> std::result::Result<Vec<Token>, SyntaxError> {
    let mut tokens = Vec::new();
    // `Some` once a word has started, even an empty one (`''`).
    let mut word: Option<String> = None;
    let mut chars = script.chars().peekable();
    let flush = |word: &mut Option<String>, tokens: &mut Vec<Token>| {
        if let Some(w) = word.take() {
            tokens.push(Token::Word(w));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' => flush(&mut word, &mut tokens),
            '\n' | ';' => {
                flush(&mut word, &mut tokens);
                tokens.push(if c == ';' { Token::Semi } else { Token::Newline });
            }
            '&' | '|' => {
                flush(&mut word, &mut tokens);
                if chars.next_if_eq(&c).is_none() {
                    return Err(unsupported(c));
                }
                tokens.push(if c == '&' { Token::And } else { Token::Or });
            }
            '<' | '>' | '(' | ')' | '`' | '$' => return Err(unsupported(c)),
            '#' if word.is_none() => while chars.next_if(|&c| c != '\n').is_some() {},
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err(SyntaxError("unterminated quoted string".into())),
                    }
                }
            }
            '"' => lex_double_quoted(&mut chars, word.get_or_insert_with(String::new))?,
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => word.get_or_insert_with(String::new).push('\\'),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    flush(&mut word, &mut tokens);
    Ok(tokens)
}

/// The inside of `"..."` (the opening quote is consumed): a backslash escapes only `$`, `` ` ``,
/// `"`, `\` and a newline, as POSIX says.
fn lex_double_quoted(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    w: &mut String,
) -> std::result::Result<(), SyntaxError> {
    loop {
        match chars.next() {
            Some('"') => return Ok(()),
            Some('$') => return Err(unsupported('$')),
            Some('`') => return Err(unsupported('`')),
            Some('\\') => match chars.next() {
                Some('\n') => {}
                Some(c @ ('$' | '`' | '"' | '\\')) => w.push(c),
                Some(c) => {
                    w.push('\\');
                    w.push(c);
                }
                None => return Err(SyntaxError("unterminated quoted string".into())),
            },
            Some(c) => w.push(c),
            None => return Err(SyntaxError("unterminated quoted string".into())),
        }
    }
}

/// The programs a simulated container has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Program {
    Kill,
    Ps,
    True,
    False,
    Sleep,
    Echo,
    Sh,
}

/// `kill`, or `/bin/kill` and the like from the usual directories.
fn program(name: &str) -> Option<Program> {
    let base = match name.rsplit_once('/') {
        Some(("/bin" | "/usr/bin" | "/sbin" | "/usr/sbin", base)) => base,
        Some(_) => return None,
        None => name,
    };
    Some(match base {
        "kill" => Program::Kill,
        "ps" => Program::Ps,
        "true" => Program::True,
        "false" => Program::False,
        "sleep" => Program::Sleep,
        "echo" => Program::Echo,
        "sh" => Program::Sh,
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy)]
struct Context<'s> {
    /// How many `sh` this command runs inside.
    depth: usize,
    /// Inside a script: `exit` is a builtin and a missing command is the shell's message.
    in_shell: bool,
    /// The script `sh` without `-c` reads (only the exec's own command gets it).
    stdin: Option<&'s str>,
}

/// What running a command leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// Go on with the next step, with this `$?`.
    Next(i32),
    /// `exit [N]`: the enclosing shell ends (with the last status when N is not given).
    Exit(Option<i32>),
}

type FlowFuture<'a> = Pin<Box<dyn Future<Output = Result<Flow>> + Send + 'a>>;

fn run_command<'a, H: Host + Send>(host: &'a mut H, argv: &'a [String], ctx: Context<'a>) -> FlowFuture<'a> {
    Box::pin(async move {
        let Some(name) = argv.first() else { return Ok(Flow::Next(0)) };
        let args = &argv[1..];
        if ctx.in_shell && name == "exit" {
            return Ok(exit_builtin(host, args));
        }
        let status = match program(name) {
            Some(Program::Kill) => kill(host, args)?,
            Some(Program::Ps) => ps(host)?,
            Some(Program::True) => 0,
            Some(Program::False) => 1,
            Some(Program::Sleep) => sleep(host, args).await?,
            Some(Program::Echo) => echo(host, args),
            Some(Program::Sh) => sh(host, args, ctx).await?,
            None => not_found(host, name, ctx.in_shell),
        };
        Ok(Flow::Next(status))
    })
}

fn not_found<H: Host>(host: &mut H, name: &str, in_shell: bool) -> i32 {
    let message = if in_shell {
        format!("sh: {name}: command not found\n")
    } else {
        // What the kubelet relays from the container runtime when the executable is missing.
        format!(
            "OCI runtime exec failed: exec failed: unable to start container process: exec: \"{name}\": \
             executable file not found in $PATH: unknown\n"
        )
    };
    host.write(Stream::Stderr, &message);
    NOT_FOUND
}

/// `exit [N]`: ends the script with N modulo 256 (without N, with the last status).
fn exit_builtin<H: Host>(host: &mut H, args: &[String]) -> Flow {
    match args.first() {
        None => Flow::Exit(None),
        Some(n) => match n.parse::<i64>() {
            Ok(n) => Flow::Exit(Some((n & 0xff) as i32)),
            Err(_) => {
                host.write(Stream::Stderr, &format!("sh: exit: Illegal number: {n}\n"));
                Flow::Exit(Some(MISUSE))
            }
        },
    }
}

async fn sh<H: Host + Send>(host: &mut H, args: &[String], ctx: Context<'_>) -> Result<i32> {
    let script = match args {
        [] => ctx.stdin.unwrap_or_default(),
        [flag] if flag == "-s" => ctx.stdin.unwrap_or_default(),
        [flag, script, ..] if flag == "-c" => script.as_str(),
        [flag] if flag == "-c" => {
            host.write(Stream::Stderr, "sh: -c requires an argument\n");
            return Ok(MISUSE);
        }
        [flag, ..] if flag.starts_with('-') => {
            host.write(Stream::Stderr, &format!("sh: {flag}: the simulated shell knows only -c and -s\n"));
            return Ok(MISUSE);
        }
        [file, ..] => {
            host.write(Stream::Stderr, &format!("sh: can't open '{file}': No such file or directory\n"));
            return Ok(NOT_FOUND);
        }
    };
    if ctx.depth >= MAX_DEPTH {
        host.write(Stream::Stderr, &format!("sh: sh -c is nested more than {MAX_DEPTH} deep\n"));
        return Ok(MISUSE);
    }
    let steps = match parse(script) {
        Ok(steps) => steps,
        Err(e) => {
            host.write(Stream::Stderr, &format!("sh: {e}\n"));
            return Ok(MISUSE);
        }
    };
    let inner = Context { depth: ctx.depth + 1, in_shell: true, stdin: None };
    run_steps(host, &steps, inner).await
}

async fn run_steps<H: Host + Send>(host: &mut H, steps: &[Step], ctx: Context<'_>) -> Result<i32> {
    let mut last = 0;
    for step in steps {
        let runs = match step.connector {
            Connector::Always => true,
            Connector::IfSuccess => last == 0,
            Connector::IfFailure => last != 0,
        };
        if !runs {
            continue;
        }
        match run_command(host, &step.argv, ctx).await? {
            Flow::Next(status) => last = status,
            Flow::Exit(status) => return Ok(status.unwrap_or(last)),
        }
    }
    Ok(last)
}

/// `ps`: procps-like columns, every process as `root` with no CPU time to speak of. Options are
/// accepted and ignored (there is nothing more to show).
fn ps<H: Host>(host: &mut H) -> Result<i32> {
    let procs = host.processes()?;
    let mut out = format!("{:>5} {:<8} {:>5} {:<4} {}\n", "PID", "USER", "TIME", "STAT", "COMMAND");
    for p in &procs {
        out.push_str(&format!("{:>5} {:<8} {:>5} {:<4} {}\n", p.pid, "root", "0:00", p.state.stat(), p.command));
    }
    host.write(Stream::Stdout, &out);
    Ok(0)
}

fn echo<H: Host>(host: &mut H, args: &[String]) -> i32 {
    let (newline, words) = match args {
        [flag, rest @ ..] if flag == "-n" => (false, rest),
        _ => (true, args),
    };
    let mut out = words.join(" ");
    if newline {
        out.push('\n');
    }
    host.write(Stream::Stdout, &out);
    0
}

async fn sleep<H: Host + Send>(host: &mut H, args: &[String]) -> Result<i32> {
    if args.is_empty() {
        host.write(Stream::Stderr, "sleep: missing operand\n");
        return Ok(1);
    }
    let mut total = Duration::ZERO;
    for arg in args {
        match parse_interval(arg).and_then(|d| total.checked_add(d)).filter(|t| *t <= MAX_SLEEP) {
            Some(t) => total = t,
            None => {
                host.write(Stream::Stderr, &format!("sleep: invalid time interval '{arg}'\n"));
                return Ok(1);
            }
        }
    }
    host.sleep(total).await?;
    Ok(0)
}

/// `5`, `0.5`, `2s`, `1m`, `1h`, `1d` (as GNU and busybox `sleep` read them).
fn parse_interval(s: &str) -> Option<Duration> {
    let (number, unit) = match s.char_indices().last()? {
        (i, 's') => (&s[..i], 1.0),
        (i, 'm') => (&s[..i], 60.0),
        (i, 'h') => (&s[..i], 3600.0),
        (i, 'd') => (&s[..i], 86400.0),
        _ => (s, 1.0),
    };
    // Plain decimals only: Rust's float parser would also take `inf`, `NaN` and exponents.
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let secs: f64 = number.parse().ok()?;
    Duration::try_from_secs_f64(secs * unit).ok()
}

/// What `kill` was asked to send: a signal, or `0` (only check that the process exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sending {
    Signal(Signal),
    Probe,
}

fn parse_signal(spec: &str) -> Option<Sending> {
    if spec == "0" {
        return Some(Sending::Probe);
    }
    Signal::parse(spec).map(Sending::Signal)
}

fn kill<H: Host>(host: &mut H, args: &[String]) -> Result<i32> {
    let (spec, pids): (Option<&str>, &[String]) = match args {
        [flag, rest @ ..] if matches!(flag.as_str(), "-l" | "-L" | "--list") => return Ok(kill_list(host, rest)),
        [flag, spec, rest @ ..] if matches!(flag.as_str(), "-s" | "--signal" | "-n") => (Some(spec), rest),
        [flag, rest @ ..] if flag == "--" => (None, rest),
        [flag, rest @ ..] if flag.len() > 1 && flag.starts_with('-') => (Some(&flag[1..]), rest),
        _ => (None, args),
    };
    let sending = match spec {
        None => Sending::Signal(Signal::Term),
        Some(spec) => match parse_signal(spec) {
            Some(sending) => sending,
            None => {
                host.write(Stream::Stderr, &format!("kill: unknown signal: {spec}\n"));
                return Ok(1);
            }
        },
    };
    let pids = match pids {
        [first, rest @ ..] if first == "--" => rest,
        _ => pids,
    };
    if pids.is_empty() {
        host.write(Stream::Stderr, "kill: usage: kill [-s SIGNAL | -n NUMBER | -SIGNAL] PID... or kill -l [SIGNAL]\n");
        return Ok(1);
    }
    let mut status = 0;
    for arg in pids {
        let Some(pid) = arg.parse::<u32>().ok().filter(|p| *p > 0) else {
            host.write(Stream::Stderr, &format!("kill: failed to parse argument: '{arg}'\n"));
            status = 1;
            continue;
        };
        let delivered = match sending {
            Sending::Signal(signal) => host.signal(pid, signal)?.map(|_| ()),
            Sending::Probe => match host.processes()?.iter().any(|p| p.pid == pid) {
                true => Ok(()),
                false => Err(SignalError::NoSuchProcess(pid)),
            },
        };
        if let Err(e) = delivered {
            host.write(Stream::Stderr, &format!("kill: {e}\n"));
            status = 1;
        }
    }
    Ok(status)
}

/// `kill -l`: every name; `kill -l 9` and `kill -l 137` (an exit status): `KILL`;
/// `kill -l KILL`: `9`.
fn kill_list<H: Host>(host: &mut H, args: &[String]) -> i32 {
    if args.is_empty() {
        let names: Vec<&str> = Signal::all().iter().map(|s| s.name()).collect();
        host.write(Stream::Stdout, &format!("{}\n", names.join(" ")));
        return 0;
    }
    let mut status = 0;
    for arg in args {
        let answer = match arg.parse::<i32>() {
            Ok(n) => Signal::all().iter().find(|s| s.number() == n || s.number() + 128 == n).map(|s| s.name().into()),
            Err(_) => Signal::parse(arg).map(|s| s.number().to_string()),
        };
        match answer {
            Some(a) => host.write(Stream::Stdout, &format!("{a}\n")),
            None => {
                host.write(Stream::Stderr, &format!("kill: unknown signal: {arg}\n"));
                status = 1;
            }
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::process::{ProcState, ProcessTable};
    use crate::error::Error;

    /// A container in memory: a process table, captured output, and the story time slept.
    struct Fake {
        table: ProcessTable,
        out: String,
        err: String,
        slept: Duration,
        /// The container went away: every call fails.
        gone: bool,
    }

    impl Fake {
        fn new() -> Self {
            let table = ProcessTable::start(&["/smoke-mini --listen :8080".to_string(), "sleep infinity".to_string()]);
            Self { table, out: String::new(), err: String::new(), slept: Duration::ZERO, gone: false }
        }

        fn check(&self) -> Result<()> {
            match self.gone {
                true => Err(Error::BadRequest("container smoke-mini is not running".into())),
                false => Ok(()),
            }
        }
    }

    impl Host for Fake {
        fn processes(&mut self) -> Result<Vec<Process>> {
            self.check()?;
            Ok(self.table.processes().to_vec())
        }
        fn signal(&mut self, pid: u32, signal: Signal) -> Result<std::result::Result<Delivery, SignalError>> {
            self.check()?;
            Ok(self.table.signal(pid, signal))
        }
        fn sleep(&mut self, story: Duration) -> impl Future<Output = Result<()>> + Send {
            self.slept += story;
            std::future::ready(self.check())
        }
        fn write(&mut self, stream: Stream, text: &str) {
            match stream {
                Stream::Stdout => self.out.push_str(text),
                Stream::Stderr => self.err.push_str(text),
            }
        }
    }

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    fn run(host: &mut Fake, words: &[&str]) -> i32 {
        futures::executor::block_on(exec(host, &argv(words), None)).expect("the container is there")
    }

    fn sh(host: &mut Fake, script: &str) -> i32 {
        run(host, &["sh", "-c", script])
    }

    fn pid1_stat(host: &Fake) -> ProcState {
        host.table.processes()[0].state
    }

    #[test]
    fn ps_lists_every_process_with_its_state() {
        let mut h = Fake::new();
        assert_eq!(run(&mut h, &["ps"]), 0);
        let lines: Vec<&str> = h.out.lines().collect();
        assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["PID", "USER", "TIME", "STAT", "COMMAND"]);
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["1", "root", "0:00", "S", "/smoke-mini", "--listen", ":8080"]
        );
        assert_eq!(lines[2].split_whitespace().next(), Some("7"));
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn kill_spells_signals_every_way_and_defaults_to_term() {
        for spelling in [
            &["kill", "-STOP", "1"][..],
            &["kill", "-SIGSTOP", "1"],
            &["kill", "-19", "1"],
            &["kill", "-s", "STOP", "1"],
            &["kill", "-s", "sigstop", "1"],
            &["kill", "-n", "19", "1"],
        ] {
            let mut h = Fake::new();
            assert_eq!(run(&mut h, spelling), 0, "{spelling:?}: {}", h.err);
            assert_eq!(pid1_stat(&h), ProcState::Stopped, "{spelling:?}");
        }
        let mut h = Fake::new();
        assert_eq!(run(&mut h, &["/bin/kill", "7"]), 0);
        assert_eq!(h.table.processes().len(), 1, "TERM ended the helper");
    }

    #[test]
    fn kill_reports_missing_processes_and_bad_arguments() {
        let mut h = Fake::new();
        assert_eq!(run(&mut h, &["kill", "-9", "42", "7"]), 1);
        assert_eq!(h.err, "kill: (42) - No such process\n");
        assert_eq!(h.table.processes().len(), 1, "the other PID still got the signal");
        let mut h = Fake::new();
        assert_eq!(run(&mut h, &["kill", "-FOO", "1"]), 1);
        assert_eq!(h.err, "kill: unknown signal: FOO\n");
        let mut h = Fake::new();
        assert_eq!(run(&mut h, &["kill", "one"]), 1);
        assert!(h.err.contains("'one'"), "{}", h.err);
        let mut h = Fake::new();
        assert_eq!(run(&mut h, &["kill"]), 1);
        assert!(h.err.starts_with("kill: usage"), "{}", h.err);
        assert_eq!(pid1_stat(&h), ProcState::Running);
    }

    #[test]
    fn kill_zero_only_checks_existence() {
        let mut h = Fake::new();
        assert_eq!(run(&mut h, &["kill", "-0", "1"]), 0);
        assert_eq!(pid1_stat(&h), ProcState::Running);
        assert_eq!(run(&mut h, &["kill", "-0", "2"]), 1);
        assert_eq!(h.err, "kill: (2) - No such process\n");
    }

    #[test]
    fn kill_lists_signals() {
        let mut h = Fake::new();
        assert_eq!(run(&mut h, &["kill", "-l"]), 0);
        assert_eq!(h.out, "HUP INT QUIT KILL USR1 USR2 TERM CONT STOP TSTP\n");
        h.out.clear();
        assert_eq!(run(&mut h, &["kill", "-l", "9", "137", "SIGTERM"]), 0);
        assert_eq!(h.out, "KILL\nKILL\n15\n");
    }

    #[test]
    fn true_false_echo_and_unknown_commands() {
        let mut h = Fake::new();
        assert_eq!(run(&mut h, &["true"]), 0);
        assert_eq!(run(&mut h, &["false"]), 1);
        assert_eq!(run(&mut h, &["echo", "a", "b"]), 0);
        assert_eq!(run(&mut h, &["echo", "-n", "c"]), 0);
        assert_eq!(h.out, "a b\nc");
        assert_eq!(run(&mut h, &["curl", "localhost"]), NOT_FOUND);
        assert!(h.err.contains("exec: \"curl\": executable file not found in $PATH"), "{}", h.err);
        assert_eq!(run(&mut h, &["exit", "3"]), NOT_FOUND, "exit is a shell builtin, not a program");
        assert_eq!(run(&mut h, &["/opt/bin/ps"]), NOT_FOUND);
    }

    #[test]
    fn sleep_waits_story_time_within_bounds() {
        let mut h = Fake::new();
        assert_eq!(run(&mut h, &["sleep", "1.5", "2s", "1m"]), 0);
        assert_eq!(h.slept, Duration::from_millis(63_500));
        for bad in ["-1", "inf", "NaN", "1e3", "x", "2d"] {
            assert_eq!(run(&mut h, &["sleep", bad]), 1, "{bad}");
        }
        assert_eq!(run(&mut h, &["sleep"]), 1);
        assert_eq!(h.slept, Duration::from_millis(63_500), "refused sleeps do not wait");
    }

    #[test]
    fn scripts_follow_and_or_lists_and_exit() {
        let mut h = Fake::new();
        assert_eq!(sh(&mut h, "false && echo no || echo yes; echo after"), 0);
        assert_eq!(h.out, "yes\nafter\n");
        h.out.clear();
        assert_eq!(sh(&mut h, "true || echo no && echo yes"), 0);
        assert_eq!(h.out, "yes\n");
        assert_eq!(sh(&mut h, "false"), 1);
        assert_eq!(sh(&mut h, "echo a; exit 3; echo b"), 3);
        assert_eq!(sh(&mut h, "false; exit"), 1, "exit without N keeps the last status");
        assert_eq!(sh(&mut h, "exit 258"), 2);
        assert_eq!(sh(&mut h, "nope"), NOT_FOUND);
        assert_eq!(h.err, "sh: nope: command not found\n");
        h.out.clear();
        assert_eq!(run(&mut h, &["/bin/sh", "-c", "kill -STOP 1 &&\n ps # a comment\n\n"]), 0);
        assert!(h.out.lines().any(|l| l.split_whitespace().take(4).eq(["1", "root", "0:00", "T"])), "{}", h.out);
    }

    #[test]
    fn scripts_quote_as_posix_shells_do() {
        let steps = parse(
            r#"echo 'a;b' "c \"d\" \$ \x" e\ f '' g\
h"#,
        )
        .unwrap();
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].argv, ["echo", "a;b", r#"c "d" $ \x"#, "e f", "", "gh"]);
        let mut h = Fake::new();
        assert_eq!(run(&mut h, &["sh", "-c", "sh -c 'echo inner; exit 4'; echo outer $?x"]), MISUSE);
        assert!(h.err.contains("'$' is not supported"), "{}", h.err);
        h.err.clear();
        assert_eq!(run(&mut h, &["sh", "-c", "sh -c 'echo inner; exit 4' || echo outer"]), 0);
        assert_eq!(h.out, "inner\nouter\n");
    }

    #[test]
    fn syntax_errors_exit_2_without_running_anything() {
        for (script, message) in [
            ("echo a | cat", "'|' is not supported"),
            ("sleep 1 &", "'&' is not supported"),
            ("echo a > f", "'>' is not supported"),
            ("echo `ps`", "'`' is not supported"),
            ("echo 'open", "unterminated quoted string"),
            ("; echo", "unexpected \";\""),
            ("echo a &&", "unexpected end of file"),
            ("echo a && || b", "unexpected \"||\""),
        ] {
            let mut h = Fake::new();
            assert_eq!(sh(&mut h, script), MISUSE, "{script}");
            assert_eq!(h.out, "", "{script}");
            assert!(h.err.starts_with("sh: syntax error: ") && h.err.contains(message), "{script}: {}", h.err);
        }
    }

    #[test]
    fn sh_reads_its_script_from_stdin_without_c() {
        assert!(reads_stdin(&argv(&["sh"])) && reads_stdin(&argv(&["/bin/sh", "-s"])));
        assert!(!reads_stdin(&argv(&["sh", "-c", "ps"])) && !reads_stdin(&argv(&["ps"])));
        let mut h = Fake::new();
        let status = futures::executor::block_on(exec(&mut h, &argv(&["sh"]), Some("echo hi\nfalse\n"))).unwrap();
        assert_eq!((status, h.out.as_str()), (1, "hi\n"));
        assert_eq!(run(&mut h, &["sh", "script.sh"]), NOT_FOUND);
    }

    #[test]
    fn inputs_are_bounded() {
        let long = "true;".repeat(MAX_COMMANDS + 1);
        assert!(parse(&long).unwrap_err().to_string().contains("commands"));
        let wide = format!("echo {}", "a ".repeat(MAX_ARGS));
        assert!(parse(&wide).unwrap_err().to_string().contains("words"));
        let big = "#".repeat(MAX_SCRIPT_BYTES + 1);
        assert!(parse(&big).unwrap_err().to_string().contains("bytes"));
        let mut nested = "true".to_string();
        for _ in 0..MAX_DEPTH {
            nested = format!("sh -c '{}'", nested.replace('\'', r"'\''"));
        }
        let mut h = Fake::new();
        assert_eq!(sh(&mut h, &nested), MISUSE);
        assert!(h.err.contains("nested"), "{}", h.err);
        let mut h = Fake::new();
        assert_eq!(run(&mut h, &["sleep", "25h"]), 1);
    }

    #[test]
    fn a_vanished_container_ends_the_exec_with_its_error() {
        let mut h = Fake::new();
        h.gone = true;
        let err = futures::executor::block_on(exec(&mut h, &argv(&["sh", "-c", "echo a; ps; echo b"]), None));
        assert!(matches!(err, Err(Error::BadRequest(_))), "{err:?}");
        assert_eq!(h.out, "a\n");
    }
}
