//! The plugin's stdout and stderr: split into lines and sent to the instance's sink as log
//! records (field `stream`). Writes never fail and never block; past a per-instance budget,
//! output is dropped (counted once) so that a chatty plugin cannot flood the log. The last
//! lines of stderr are kept to explain a trap (Rust writes the panic message there).

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use super::host::Shared;
use super::sink::Level;

/// Output a plugin may write to stdout/stderr over its life (beyond: dropped).
const OUTPUT_BUDGET: usize = 4 << 20;
/// A line longer than this is cut.
const MAX_LINE: usize = 8 << 10;
/// How much of stderr is kept to explain a failure.
const TAIL: usize = 2 << 10;

/// The end of the plugin's stderr.
#[derive(Clone, Default)]
pub struct StderrTail(Arc<Mutex<String>>);

impl StderrTail {
    fn push(&self, line: &str) {
        if let Ok(mut t) = self.0.lock() {
            t.push_str(line);
            t.push('\n');
            if t.len() > TAIL {
                let mut cut = t.len() - TAIL;
                while !t.is_char_boundary(cut) {
                    cut += 1;
                }
                t.drain(..cut);
            }
        }
    }

    pub fn text(&self) -> String {
        self.0.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

#[derive(Clone)]
pub(crate) struct LogStream {
    shared: Arc<Shared>,
    stream: &'static str,
    partial: Arc<Mutex<Vec<u8>>>,
    budget: Arc<AtomicUsize>,
    tail: Option<StderrTail>,
}

impl LogStream {
    pub fn stdout(shared: Arc<Shared>, budget: Arc<AtomicUsize>) -> Self {
        LogStream { shared, stream: "stdout", partial: Arc::default(), budget, tail: None }
    }

    pub fn stderr(shared: Arc<Shared>, budget: Arc<AtomicUsize>, tail: StderrTail) -> Self {
        LogStream { shared, stream: "stderr", partial: Arc::default(), budget, tail: Some(tail) }
    }

    pub fn new_budget() -> Arc<AtomicUsize> {
        Arc::new(AtomicUsize::new(OUTPUT_BUDGET))
    }

    fn line(&self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim_end_matches('\r');
        if let Some(tail) = &self.tail {
            tail.push(text);
        }
        let level = if self.tail.is_some() { Level::Warn } else { Level::Info };
        // Through the gate: stdout and stderr share the log's limits with the `log` import.
        let fields = vec![("stream".into(), self.stream.into())];
        self.shared.gate.log_line(level, text.to_string(), fields);
    }

    fn emit(&self, mut bytes: &[u8]) {
        let left = self.budget.load(Ordering::Relaxed);
        if left == 0 {
            return;
        }
        if bytes.len() >= left {
            bytes = &bytes[..left];
            self.budget.store(0, Ordering::Relaxed);
            self.line(b"[plugin output budget exhausted; further output dropped]");
        } else {
            self.budget.fetch_sub(bytes.len(), Ordering::Relaxed);
        }
        let Ok(mut partial) = self.partial.lock() else {
            return;
        };
        for chunk in bytes.split_inclusive(|b| *b == b'\n') {
            if let Some(line) = chunk.strip_suffix(b"\n") {
                partial.extend_from_slice(line);
                let whole = std::mem::take(&mut *partial);
                self.line(&whole);
            } else {
                partial.extend_from_slice(chunk);
                if partial.len() > MAX_LINE {
                    let whole = std::mem::take(&mut *partial);
                    self.line(&whole);
                }
            }
        }
    }

    /// Emits an unfinished last line.
    pub fn finish(&self) {
        let rest = self.partial.lock().map(|mut p| std::mem::take(&mut *p)).unwrap_or_default();
        if !rest.is_empty() {
            self.line(&rest);
        }
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        // Direct, instead of the default adapter that spawns a task per stream.
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for LogStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.emit(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 << 10)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogStream {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for LogStream {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.emit(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
