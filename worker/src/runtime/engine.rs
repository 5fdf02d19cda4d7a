//! The one wasmtime `Engine` of a worker process: compiled with only what plugins need
//! (Cranelift, the component model, async, epoch interruption), with the pooling allocator
//! sized for thousands of small instances when the host allows its address-space reservation,
//! and the epoch ticker that gives every instance its CPU slices.

use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::config::RuntimeConfig;
use crate::error::{Error, Result};

/// Frames of wasm code; a Rust guest keeps its own stack in linear memory, so this is small.
const MAX_WASM_STACK: usize = 256 << 10;
/// The fiber a running call lives on: wasm frames plus the host futures polled on it.
const ASYNC_STACK: usize = 512 << 10;
/// Beyond the memory reservation: lets compiled code skip some bounds checks.
const GUARD: u64 = 2 << 20;

/// Core instances, tables and memories one component may use (a rustc-built wasip2 component
/// has 3 core instances, 1 memory and 2 tables; the rest is headroom).
const CORE_INSTANCES_PER_COMPONENT: u32 = 8;
const TABLES_PER_COMPONENT: u32 = 4;
const MEMORIES_PER_COMPONENT: u32 = 2;
pub(crate) const TABLE_ELEMENTS: usize = 16 << 10;

fn base(config: &RuntimeConfig) -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true)
        .epoch_interruption(true)
        // Component-model async (WIT `async func`) is not part of the interface; pinning it off
        // keeps `call_async` on the fiber path and the precompiled artifacts stable.
        .concurrency_support(false)
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(ASYNC_STACK)
        .memory_reservation(config.memory_limit as u64)
        .memory_guard_size(GUARD)
        .memory_reservation_for_growth(0);
    c
}

/// Builds the engine: pooling when enabled and possible, else on-demand allocation.
/// Returns the engine and whether it pools.
pub(crate) fn build(config: &RuntimeConfig) -> Result<(Engine, bool)> {
    if config.pooling {
        let n = config.max_instances;
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(CORE_INSTANCES_PER_COMPONENT / 2))
            .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
            .total_memories(n)
            .max_memories_per_component(MEMORIES_PER_COMPONENT)
            .max_memory_size(config.memory_limit)
            .total_tables(n.saturating_mul(TABLES_PER_COMPONENT / 2))
            .max_tables_per_component(TABLES_PER_COMPONENT)
            .table_elements(TABLE_ELEMENTS)
            .total_stacks(n)
            .max_unused_warm_slots(n.min(256));
        let mut c = base(config);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        match Engine::new(&c) {
            Ok(engine) => return Ok((engine, true)),
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "the pooling allocator is unavailable here; allocating instances on demand"
                );
            }
        }
    }
    let engine = Engine::new(&base(config)).map_err(|e| Error::Engine(format!("{e:#}")))?;
    Ok((engine, false))
}

/// Advances the engine's epoch every `tick` until the engine is dropped. A thread, not a task:
/// it must tick even when every runtime thread is busy running guests.
pub(crate) fn start_ticker(engine: &Engine, tick: Duration) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new().name("wasm-epoch".into()).spawn(move || {
        loop {
            std::thread::sleep(tick);
            match weak.upgrade() {
                Some(e) => e.increment_epoch(),
                None => break,
            }
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the epoch ticker; CPU budgets are not enforced");
    }
}
