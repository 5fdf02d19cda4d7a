//! `certs create DIR`: the TLS material a deployment on Kubernetes needs
//! ([`chaosctl::pki::ClusterPki`]), and the commands that make its Secrets.

use std::path::Path;

use chaosctl::pki::ClusterPki;

/// Writes the CA and certificates in `dir` and prints the `kubectl create secret` commands.
pub fn create(dir: &Path, namespace: &str, days: u32, names: &[String]) -> anyhow::Result<()> {
    let made = ClusterPki::create(dir, namespace, i64::from(days), names)?;
    println!("CA and certificates written to {} (keys mode 0600; keep ca.key offline).", dir.display());
    println!("Make the Secrets deploy/kubernetes/ mounts:");
    println!();
    for (_, command) in &made.secrets {
        println!("{command}");
    }
    println!();
    println!(
        "Give chaosctl the CA: chaosctl config set-context NAME --server URL --certificate-authority {}/ca.crt",
        dir.display()
    );
    Ok(())
}
