//! A throwaway certificate authority for the local stack (`chaosctl up`, `demo`): made fresh
//! at every start, in `<state>/tls/`, and trusted by nothing outside the stack.
//!
//! | file                      | what                                                              |
//! |---------------------------|-------------------------------------------------------------------|
//! | `ca.pem`                  | the CA's certificate: chaosctl and the daemons trust it           |
//! | `server.pem`, `-key.pem`  | `127.0.0.1` and `localhost`: the etcd members (clients and peers) and the apiserver |
//! | `client.pem`, `-key.pem`  | the daemons' client certificate, which etcd requires              |
//!
//! Keys are ECDSA P-256, written with mode 0600; certificates live 30 days (a local stack
//! does not run longer).
//!
//! [`ClusterPki`] makes the same kind of material for a deployment on Kubernetes
//! (`chaosctl certs create`): the names are the Services' of `deploy/kubernetes/`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// Where the stack's TLS material is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Pki {
    fn in_dir(dir: &Path) -> Pki {
        Pki {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server-key.pem"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client-key.pem"),
        }
    }

    /// Makes a new CA and its certificates in `dir` (replacing what was there).
    pub fn create(dir: &Path) -> anyhow::Result<Pki> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let pki = Pki::in_dir(dir);
        let ca = authority("chaosctl local stack CA", LOCAL_DAYS).context("making the local CA")?;
        write(&pki.ca, &ca.pem(), 0o644)?;
        let local = ["127.0.0.1".to_string(), "localhost".to_string()];
        let (cert, key) = leaf((&ca, LOCAL_DAYS), "chaos local server", &local, true)?;
        write(&pki.server_cert, &cert, 0o644)?;
        write(&pki.server_key, &key, 0o600)?;
        let (cert, key) = leaf((&ca, LOCAL_DAYS), "chaos-daemon", &[], false)?;
        write(&pki.client_cert, &cert, 0o644)?;
        write(&pki.client_key, &key, 0o600)?;
        Ok(pki)
    }

    /// The CA, as PEM.
    pub fn ca_pem(&self) -> anyhow::Result<Vec<u8>> {
        std::fs::read(&self.ca).with_context(|| format!("reading {}", self.ca.display()))
    }

    /// What a daemon needs to reach the stack's etcd.
    pub fn etcd_tls(&self) -> anyhow::Result<chaos_def::store::EtcdTls> {
        let read = |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
        Ok(chaos_def::store::EtcdTls {
            ca: read(&self.ca)?,
            identity: Some((read(&self.client_cert)?, read(&self.client_key)?)),
        })
    }

    /// An HTTP client that trusts the stack's CA only, and shows the daemons' client
    /// certificate (etcd's JSON gateway asks for it).
    pub fn http(&self) -> anyhow::Result<reqwest::Client> {
        let mut identity = std::fs::read(&self.client_cert)?;
        identity.extend(std::fs::read(&self.client_key)?);
        Ok(reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&self.ca_pem()?)?)
            .identity(reqwest::Identity::from_pem(&identity)?)
            .build()?)
    }
}

/// How long the local stack's certificates live, in days.
const LOCAL_DAYS: i64 = 30;

/// What `chaosctl certs create` made for a deployment, and the Secrets to make of it.
#[derive(Debug, Clone)]
pub struct ClusterPki {
    /// `(secret, kubectl command)` for each Secret the manifests mount.
    pub secrets: Vec<(String, String)>,
}

impl ClusterPki {
    /// A CA and the certificates of `deploy/kubernetes/` for `namespace`, valid `days`, in
    /// `dir`: etcd's (its members' names, for clients and peers), the components' client
    /// certificate for etcd, and the apiserver's serving certificate (its Service's names and
    /// `extra_names`, e.g. an Ingress host).
    pub fn create(dir: &Path, namespace: &str, days: i64, extra_names: &[String]) -> anyhow::Result<ClusterPki> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let ca = authority("chaosctl deployment CA", days).context("making the CA")?;
        let file = |name: &str| dir.join(name);
        write(&file("ca.crt"), &ca.pem(), 0o644)?;
        // Kept to issue more certificates (another component, a renewal); guard it.
        write(&file("ca.key"), &ca.key().serialize_pem(), 0o600)?;
        let peer = format!("chaos-etcd-peer.{namespace}.svc");
        let mut etcd_names: Vec<String> = (0..3).map(|i| format!("chaos-etcd-{i}.{peer}")).collect();
        etcd_names.extend([format!("*.{peer}"), format!("chaos-etcd.{namespace}.svc"), "chaos-etcd".into()]);
        etcd_names.extend(["localhost".into(), "127.0.0.1".into()]);
        let mut api_names = vec![
            "chaos-apiserver".to_string(),
            format!("chaos-apiserver.{namespace}"),
            format!("chaos-apiserver.{namespace}.svc"),
            format!("chaos-apiserver.{namespace}.svc.cluster.local"),
            "localhost".into(),
            "127.0.0.1".into(),
        ];
        api_names.extend(extra_names.iter().cloned());
        for (name, common_name, names, server) in [
            ("etcd-server", "chaos-etcd", etcd_names.as_slice(), true),
            ("etcd-client", "chaos-components", &[][..], false),
            ("apiserver", "chaos-apiserver", api_names.as_slice(), true),
        ] {
            let (cert, key) = leaf((&ca, days), common_name, names, server)?;
            write(&file(&format!("{name}.crt")), &cert, 0o644)?;
            write(&file(&format!("{name}.key")), &key, 0o600)?;
        }
        let d = dir.display();
        let kubectl = format!("kubectl -n {namespace} create secret");
        Ok(ClusterPki {
            secrets: vec![
                (
                    "chaos-etcd-tls".into(),
                    format!(
                        "{kubectl} generic chaos-etcd-tls --from-file=ca.crt={d}/ca.crt \\\n    --from-file=server.crt={d}/etcd-server.crt --from-file=server.key={d}/etcd-server.key"
                    ),
                ),
                (
                    "chaos-etcd-client".into(),
                    format!(
                        "{kubectl} generic chaos-etcd-client --from-file=ca.crt={d}/ca.crt \\\n    --from-file=tls.crt={d}/etcd-client.crt --from-file=tls.key={d}/etcd-client.key"
                    ),
                ),
                (
                    "chaos-apiserver-tls".into(),
                    format!("{kubectl} tls chaos-apiserver-tls --cert={d}/apiserver.crt --key={d}/apiserver.key"),
                ),
            ],
        })
    }
}

/// From yesterday (clocks a little apart) to `days` from now.
fn validity(params: &mut CertificateParams, days: i64) {
    let day = |offset: i64| {
        let date = jiff::Zoned::now().with_time_zone(jiff::tz::TimeZone::UTC).date();
        let date = date.checked_add(jiff::Span::new().days(offset)).expect("a date in range");
        rcgen::date_time_ymd(i32::from(date.year()), date.month() as u8, date.day() as u8)
    };
    params.not_before = day(-1);
    params.not_after = day(days);
}

fn authority(name: &str, days: i64) -> anyhow::Result<CertifiedIssuer<'static, KeyPair>> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    validity(&mut params, days);
    Ok(CertifiedIssuer::self_signed(params, KeyPair::generate()?)?)
}

/// A certificate for `names` signed by `ca`, and its key; `server` ones also serve (etcd's
/// members are each other's clients too, so every certificate is a client's).
fn leaf(
    (ca, days): (&CertifiedIssuer<'static, KeyPair>, i64),
    common_name: &str,
    names: &[String],
    server: bool,
) -> anyhow::Result<(String, String)> {
    let mut params = CertificateParams::new(names.to_vec())?;
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = if server {
        vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth]
    } else {
        vec![ExtendedKeyUsagePurpose::ClientAuth]
    };
    validity(&mut params, days);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, ca)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Writes `text` to a new file at `path` (replacing one there) with `mode`: the keys and the
/// stack's admin token are never readable by others, not even for a moment.
pub(crate) fn write(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_a_ca_and_certificates_with_private_keys() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::create(dir.path()).unwrap();
        for path in [&pki.ca, &pki.server_cert, &pki.client_cert] {
            assert!(std::fs::read_to_string(path).unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
        }
        for path in [&pki.server_key, &pki.client_key] {
            let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions());
            assert_eq!(mode & 0o777, 0o600, "{}", path.display());
        }
        // The material loads as the daemons and chaosctl load it.
        pki.etcd_tls().unwrap();
        pki.http().unwrap();
    }
}
