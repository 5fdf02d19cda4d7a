//! chaosctl's contexts, in kubectl's habits: a YAML file (`$CHAOSCTL_CONFIG`, by default
//! `~/.config/chaosctl/config.yaml`) of named contexts — an apiserver's URL, the token to send
//! it, the CA to check its certificate against — and the one in use.
//!
//! Where each setting of a command comes from, first found wins. A context named on the command
//! line (`--context`, or `CHAOSCTL_CONTEXT`) beats the environment; the environment beats the
//! file's current context:
//!
//! | setting | with `--context NAME`                   | without                                                   |
//! |---------|-----------------------------------------|-----------------------------------------------------------|
//! | server  | `--server`, NAME's `server`             | `--server`, `CHAOS_SERVER`, the current context's, `http://127.0.0.1:7070` |
//! | token   | NAME's `token` (only to its server)     | `CHAOS_TOKEN`, the current context's (only to its server) |
//! | CA      | `--ca`, NAME's `ca` (only for its server)| `--ca`, `CHAOS_CA`, the current context's (only for its server) |
//!
//! A context's token goes only to that context's server: `CHAOS_SERVER` pointing elsewhere
//! does not take the current context's token with it.
//!
//! A token is never taken from the command line (shell history and `ps` would show it): it
//! comes from the environment, the file, or `set-context --token-file`. The file is written
//! with mode 0600.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use chaos_def::consts::DEFAULT_SERVER;
use serde::{Deserialize, Serialize};

/// The variable naming the config file.
pub const ENV_CONFIG: &str = "CHAOSCTL_CONFIG";
/// The variable holding a token.
pub const ENV_TOKEN: &str = "CHAOS_TOKEN";
/// The variable naming a CA file.
pub const ENV_CA: &str = "CHAOS_CA";

/// The largest config file read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_context: Option<String>,
    #[serde(default)]
    pub contexts: Vec<Context>,
}

#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Context {
    pub name: String,
    pub server: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// A PEM file of the CA that signed the apiserver's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
}

impl std::fmt::Debug for Context {
    /// Without the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("name", &self.name)
            .field("server", &self.server)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("ca", &self.ca)
            .finish()
    }
}

/// Where the config file is: `$CHAOSCTL_CONFIG`, else `~/.config/chaosctl/config.yaml`.
pub fn path() -> PathBuf {
    if let Some(path) = std::env::var_os(ENV_CONFIG).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    home.join(".config/chaosctl/config.yaml")
}

impl Config {
    /// The file at `path`; an empty config when there is none.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = match std::fs::File::open(path) {
            Ok(file) => {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_CONFIG_BYTES), &mut text)
                    .with_context(|| format!("reading {}", path.display()))?;
                text
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Config::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// The config in `text`; an error names the field and line at fault.
    pub fn parse(text: &str) -> anyhow::Result<Config> {
        let mut documents = chaos_def::yaml::parse_documents(text)
            .map_err(|e| anyhow::anyhow!("line {}: invalid YAML: {}", e.line, e.message))?;
        let Some(document) = documents.pop() else { return Ok(Config::default()) };
        let config: Config = serde_path_to_error::deserialize(document.value).map_err(|e| {
            let path = e.path().to_string();
            let line = document.lines.line_of(&path).map(|l| format!("line {l}: ")).unwrap_or_default();
            anyhow::anyhow!("{line}{path}: {}", e.inner())
        })?;
        for (i, context) in config.contexts.iter().enumerate() {
            if config.contexts[..i].iter().any(|c| c.name == context.name) {
                bail!("contexts[{i}]: the context {:?} appears twice", context.name);
            }
        }
        Ok(config)
    }

    /// Writes the config to `path` with mode 0600 (through a file renamed into place, so that
    /// a crash leaves the old file or the new one).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let text = chaos_def::yaml::to_yaml_string(&serde_json::to_value(self).expect("a config serialises"));
        let mut file = tempfile::Builder::new()
            .prefix(".chaosctl-config")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .tempfile_in(dir)
            .with_context(|| format!("writing in {}", dir.display()))?;
        file.write_all(text.as_bytes())?;
        file.persist(path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    pub fn context(&self, name: &str) -> Option<&Context> {
        self.contexts.iter().find(|c| c.name == name)
    }

    /// Adds `context`, or replaces the one of the same name.
    pub fn upsert(&mut self, context: Context) {
        match self.contexts.iter_mut().find(|c| c.name == context.name) {
            Some(existing) => *existing = context,
            None => self.contexts.push(context),
        }
    }
}

/// Where a command sends its requests, and with what.
#[derive(Clone, PartialEq)]
pub struct Target {
    pub server: String,
    pub token: Option<String>,
    pub ca: Option<PathBuf>,
    /// The context it came from, if any (for error messages).
    pub context: Option<String>,
}

impl std::fmt::Debug for Target {
    /// Without the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("server", &self.server)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("ca", &self.ca)
            .field("context", &self.context)
            .finish()
    }
}

/// What the command line and the environment said.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--context` or `CHAOSCTL_CONTEXT`.
    pub context: Option<String>,
    /// `--server`.
    pub server: Option<String>,
    /// `CHAOS_SERVER`.
    pub env_server: Option<String>,
    /// `CHAOS_TOKEN`.
    pub token: Option<String>,
    /// `--ca`.
    pub ca: Option<PathBuf>,
    /// `CHAOS_CA`.
    pub env_ca: Option<PathBuf>,
}

/// The module's table.
pub fn resolve(config: &Config, overrides: Overrides) -> anyhow::Result<Target> {
    if let Some(name) = overrides.context {
        let context = config.context(&name).cloned().with_context(|| {
            let known: Vec<&str> = config.contexts.iter().map(|c| c.name.as_str()).collect();
            format!(
                "no context {name:?} in {} (known: {}); see `chaosctl config get-contexts`",
                path().display(),
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            )
        })?;
        // The context's secrets go to its own server only, even when named.
        let own = overrides.server.as_ref().is_none_or(|server| *server == context.server);
        return Ok(Target {
            server: overrides.server.unwrap_or(context.server),
            token: context.token.filter(|_| own),
            ca: overrides.ca.or(context.ca.filter(|_| own)),
            context: Some(name),
        });
    }
    let current = config.current_context.as_ref().and_then(|name| config.context(name));
    let server = overrides
        .server
        .or(overrides.env_server.filter(|s| !s.is_empty()))
        .or_else(|| current.map(|c| c.server.clone()))
        .unwrap_or_else(|| DEFAULT_SERVER.to_string());
    // The current context's secrets belong to its server only.
    let own = current.filter(|c| c.server == server);
    Ok(Target {
        token: overrides.token.filter(|t| !t.is_empty()).or_else(|| own.and_then(|c| c.token.clone())),
        ca: overrides.ca.or(overrides.env_ca).or_else(|| own.and_then(|c| c.ca.clone())),
        context: own.map(|c| c.name.clone()),
        server,
    })
}

impl Target {
    /// A warning when a token would cross the network in the clear: plain HTTP to a host that
    /// is not this machine.
    pub fn cleartext_warning(&self) -> Option<String> {
        let rest = self.server.strip_prefix("http://")?;
        let host = rest.split(['/', '?']).next().unwrap_or_default();
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h).trim_matches(['[', ']']);
        let local = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        (self.token.is_some() && !local)
            .then(|| format!("warning: sending a token to {} over plain HTTP (use https://)", self.server))
    }
}

/// A token read from a file (or standard input for `-`), surrounding whitespace dropped.
pub fn read_token(file: &str) -> anyhow::Result<String> {
    let text = if file == "-" {
        std::io::read_to_string(std::io::stdin().take(8192)).context("reading the token from standard input")?
    } else {
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(std::fs::File::open(file).with_context(|| format!("reading {file}"))?, 8192),
            &mut text,
        )
        .with_context(|| format!("reading {file}"))?;
        text
    };
    let token = text.trim().to_string();
    if token.is_empty() || token.chars().any(|c| !c.is_ascii_graphic()) {
        bail!("{file} does not hold a token (one line of visible characters)");
    }
    Ok(token)
}

use std::io::Read as _;

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::parse(
            "current-context: prod\ncontexts:\n  - name: prod\n    server: https://chaos.example:7443\n    token: t-prod\n    ca: /etc/ca.pem\n  - name: local\n    server: http://127.0.0.1:7070\n",
        )
        .unwrap()
    }

    #[test]
    fn the_table_row_by_row() {
        let config = config();
        let target = resolve(&config, Overrides::default()).unwrap();
        assert_eq!(target.server, "https://chaos.example:7443");
        assert_eq!(target.token.as_deref(), Some("t-prod"));
        assert_eq!(target.ca.as_deref(), Some(Path::new("/etc/ca.pem")));
        let local = resolve(&config, Overrides { context: Some("local".into()), ..Default::default() }).unwrap();
        assert_eq!((local.server.as_str(), local.token), ("http://127.0.0.1:7070", None));
        let overridden = resolve(
            &config,
            Overrides { server: Some("http://other".into()), token: Some("t-env".into()), ..Default::default() },
        )
        .unwrap();
        assert_eq!((overridden.server.as_str(), overridden.token.as_deref()), ("http://other", Some("t-env")));
        let none = resolve(&Config::default(), Overrides::default()).unwrap();
        assert_eq!((none.server.as_str(), none.token), (DEFAULT_SERVER, None));
        let missing = resolve(&config, Overrides { context: Some("nope".into()), ..Default::default() }).unwrap_err();
        assert!(missing.to_string().contains("known: prod, local"), "{missing}");
    }

    #[test]
    fn a_contexts_token_goes_only_to_its_server() {
        let config = config();
        // CHAOS_SERVER elsewhere: the current context's token and CA stay home.
        let elsewhere =
            resolve(&config, Overrides { env_server: Some("http://elsewhere:7070".into()), ..Default::default() })
                .unwrap();
        assert_eq!((elsewhere.server.as_str(), elsewhere.token, elsewhere.ca), ("http://elsewhere:7070", None, None));
        // A context named on the command line beats the environment.
        let named = resolve(
            &config,
            Overrides {
                context: Some("prod".into()),
                env_server: Some("http://elsewhere:7070".into()),
                token: Some("t-env".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!((named.server.as_str(), named.token.as_deref()), ("https://chaos.example:7443", Some("t-prod")));
        // Named, but sent elsewhere with --server: its token stays home.
        let redirected = resolve(
            &config,
            Overrides { context: Some("prod".into()), server: Some("http://elsewhere".into()), ..Default::default() },
        )
        .unwrap();
        assert_eq!((redirected.token, redirected.ca), (None, None));
    }

    #[test]
    fn a_token_over_plain_http_to_another_host_is_warned_of() {
        let target = |server: &str, token: Option<&str>| Target {
            server: server.into(),
            token: token.map(str::to_string),
            ca: None,
            context: None,
        };
        assert!(target("http://chaos.example:7070", Some("t")).cleartext_warning().is_some());
        assert!(target("http://127.0.0.1:7070", Some("t")).cleartext_warning().is_none());
        assert!(target("http://[::1]:7070/", Some("t")).cleartext_warning().is_none());
        assert!(target("https://chaos.example", Some("t")).cleartext_warning().is_none());
        assert!(target("http://chaos.example", None).cleartext_warning().is_none());
    }

    #[test]
    fn a_bad_file_names_the_field_and_line() {
        let error = Config::parse("contexts:\n  - name: a\n    server: x\n    tokn: y\n").unwrap_err().to_string();
        assert!(error.contains("line 4") && error.contains("tokn"), "{error}");
        let error = Config::parse("contexts:\n  - {name: a, server: x}\n  - {name: a, server: y}\n").unwrap_err();
        assert!(error.to_string().contains("twice"), "{error}");
    }

    #[test]
    fn it_round_trips_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.yaml");
        let mut config = config();
        config.upsert(Context { name: "local".into(), server: "http://x".into(), token: Some("t".into()), ca: None });
        config.save(&path).unwrap();
        assert_eq!(Config::load(&path).unwrap(), config);
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600);
        assert!(!format!("{:?}", resolve(&config, Overrides::default()).unwrap()).contains("t-prod"));
    }
}
