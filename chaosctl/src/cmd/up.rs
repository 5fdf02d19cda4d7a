//! `up`: a local stack as child processes (started by [`chaosctl::stack`]), kept until Ctrl-C
//! or SIGTERM.
//! (`demo` starts its own stack: all of it is [`chaosctl::demo`].)

use chaosctl::config::{self, Config};
use chaosctl::stack::{LOCAL_CONTEXT, Stack, StackOptions};

/// `up`: starts the stack, says how to use it, and stops it all on Ctrl-C or SIGTERM (a second
/// one forces).
pub async fn up(options: &StackOptions, write_context: bool) -> anyhow::Result<()> {
    eprintln!("starting a local stack in {} ...", options.state_dir.display());
    let mut stack = Stack::start(options).await?;
    if write_context {
        merge_context(&stack)?;
    }
    print_usage(&stack);
    // SIGTERM as Ctrl-C: a stack started by a script or a service manager is stopped, not left
    // behind, when its owner is asked to stop.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted?,
        _ = terminate.recv() => {}
    }
    eprintln!("stopping ...");
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        eprintln!("forced exit");
        std::process::exit(130);
    });
    stack.stop().await;
    eprintln!("stopped");
    Ok(())
}

/// `--write-context`: the stack's context into the user's own config, made current.
fn merge_context(stack: &Stack) -> anyhow::Result<()> {
    let path = config::path();
    let mut user = Config::load(&path)?;
    for context in stack.context().contexts {
        user.upsert(context);
    }
    user.current_context = Some(LOCAL_CONTEXT.into());
    user.save(&path)?;
    println!("context {LOCAL_CONTEXT} written to {} and made current", path.display());
    Ok(())
}

/// The processes, and the commands that reach the stack.
fn print_usage(stack: &Stack) {
    println!("stack is up (logs in {}):", stack.state_dir.display());
    for (name, pid) in stack.processes() {
        println!("  {name:<12} pid {}", pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()));
    }
    println!();
    println!(
        "  export CHAOSCTL_CONFIG={}   # the context chaos-local: the stack's admin token",
        stack.context_file.display()
    );
    let etcd: Vec<&str> = stack.etcd_members.iter().map(|(_, url)| url.as_str()).collect();
    println!("  export CHAOS_ETCD={}", etcd.join(","));
    if let Some(pki) = &stack.pki {
        println!(
            "  export CHAOS_ETCD_CA={} CHAOS_ETCD_CERT={} CHAOS_ETCD_KEY={}",
            pki.ca.display(),
            pki.client_cert.display(),
            pki.client_key.display()
        );
    }
    println!("  chaosctl apply -f examples/demo.yaml && chaosctl get scenarios");
    println!("  {}", stack.dashboard_hint());
    let several = stack.kube_urls.len() > 1;
    for (cluster, kube) in &stack.kube_urls {
        if several {
            println!("  cluster {cluster}:");
        }
        println!("  kubectl --server {kube} get rv,rva,rvr,pods -A");
        if stack.apps.iter().any(|a| a == "smoke-mini") {
            println!(
                "  kubectl --server {kube} get --raw /api/v1/namespaces/smoke-mini/services/smoke-mini/proxy/disk"
            );
        }
    }
    println!();
    println!("Ctrl-C stops everything (a second Ctrl-C forces).");
}
