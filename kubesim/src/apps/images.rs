//! What a container's image does: its processes, its port, and how it answers HTTP.
//!
//! A pod's behaviour comes from its image name (the registry and tag do not matter):
//!
//! | image | processes | port | answers |
//! |---|---|---|---|
//! | `kubesim/smoke-mini` | `/smoke-mini` | 8080 | `/` 200, `/error` 500, `/api`, `/dns`, `/disk`, `/neighbor` (below) |
//! | `kubesim/http-echo` | `/http-echo` | 5678 | 200 with the request echoed back |
//! | anything else | the image's program | its `containerPort`s, else 80 | 200 `{"status": "ok"}` |
//!
//! smoke-mini's checks, each a small JSON body with `status` `ok` (200) or `error` (500):
//! `/api` reads its own pod through the cluster API; `/dns` resolves `kubernetes.default`;
//! `/disk` writes and removes a file on each of its volumes, which fails while a replicated
//! volume is not IOReady; `/neighbor` reaches another Ready pod of its application (same `app`
//! label). Anything else is 404. Answers depend only on the cluster's state, read through
//! [`Surroundings`], so this module does no I/O.

use serde_json::{Value, json};

/// The applications kubesim can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum App {
    SmokeMini,
    HttpEcho,
    Plain,
}

/// Request bodies echoed back are cut to this many bytes.
pub const ECHO_BODY_LIMIT: usize = 4 << 10;

impl App {
    pub fn from_image(image: &str) -> Self {
        match program_of(image).as_str() {
            "smoke-mini" if image.contains("kubesim/") => Self::SmokeMini,
            "http-echo" if image.contains("kubesim/") => Self::HttpEcho,
            _ => Self::Plain,
        }
    }

    /// The port it listens on when the pod declares none.
    pub fn default_port(self) -> Option<u16> {
        match self {
            Self::SmokeMini => Some(8080),
            Self::HttpEcho => Some(5678),
            Self::Plain => Some(80),
        }
    }

    /// The command lines of its processes, PID 1 first.
    pub fn processes(self, image: &str, command_line: Option<&str>) -> Vec<String> {
        let main = match (self, command_line) {
            (_, Some(cmd)) => cmd.to_string(),
            (Self::SmokeMini, None) => "/smoke-mini --listen :8080".to_string(),
            (Self::HttpEcho, None) => "/http-echo -listen=:5678".to_string(),
            (Self::Plain, None) => program_of(image),
        };
        vec![main]
    }

    /// Answers one request.
    pub fn serve(self, pod: &str, req: &Request<'_>, env: &dyn Surroundings) -> Reply {
        match self {
            Self::SmokeMini => smoke_mini(pod, req.path, env),
            Self::HttpEcho => Reply::ok(json!({
                "status": "ok",
                "pod": pod,
                "method": req.method,
                "path": req.path,
                "query": req.query,
                "body": String::from_utf8_lossy(&req.body[..req.body.len().min(ECHO_BODY_LIMIT)]),
            })),
            Self::Plain => Reply::ok(json!({"status": "ok", "pod": pod})),
        }
    }
}

/// `registry.example/team/nginx:1.25` → `nginx`.
fn program_of(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    let name = last.split(['@', ':']).next().unwrap_or(last);
    if name.is_empty() { "app".to_string() } else { name.to_string() }
}

/// One HTTP request to an application.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path inside the application, starting with `/`.
    pub path: &'a str,
    pub query: &'a str,
    pub body: &'a [u8],
}

/// An application's answer: always JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    fn ok(body: Value) -> Self {
        Self { status: 200, body }
    }

    fn check(pod: &str, outcome: Result<Value, String>) -> Self {
        match outcome {
            Ok(details) => {
                let mut body = json!({"status": "ok", "pod": pod});
                if let (Some(body), Value::Object(details)) = (body.as_object_mut(), details) {
                    body.extend(details);
                }
                Self { status: 200, body }
            }
            Err(error) => Self { status: 500, body: json!({"status": "error", "pod": pod, "error": error}) },
        }
    }
}

/// What an application can observe of the cluster around it.
pub trait Surroundings {
    /// Reads the application's own pod through the API; `Err` says why it could not.
    fn read_own_pod(&self) -> Result<String, String>;
    /// Resolves a service name (`name.namespace`) to its cluster IP.
    fn resolve(&self, host: &str) -> Result<String, String>;
    /// Whether every volume of the pod can be written; `Err` names the first that cannot.
    fn volumes_writable(&self) -> Result<Vec<String>, String>;
    /// Another Ready pod of the same application.
    fn ready_neighbor(&self) -> Result<String, String>;
}

fn smoke_mini(pod: &str, path: &str, env: &dyn Surroundings) -> Reply {
    match path.trim_end_matches('/') {
        "" => Reply::check(pod, Ok(json!({}))),
        "/error" => Reply { status: 500, body: json!({"status": "error", "pod": pod, "error": "as requested"}) },
        "/api" => Reply::check(pod, env.read_own_pod().map(|phase| json!({"phase": phase}))),
        "/dns" => Reply::check(
            pod,
            env.resolve("kubernetes.default").map(|ip| json!({"host": "kubernetes.default", "address": ip})),
        ),
        "/disk" => Reply::check(pod, env.volumes_writable().map(|volumes| json!({"volumes": volumes}))),
        "/neighbor" => Reply::check(pod, env.ready_neighbor().map(|n| json!({"neighbor": n}))),
        _ => Reply { status: 404, body: json!({"status": "error", "pod": pod, "error": format!("no route {path}")}) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Healthy(bool);

    impl Surroundings for Healthy {
        fn read_own_pod(&self) -> Result<String, String> {
            Ok("Running".into())
        }
        fn resolve(&self, _: &str) -> Result<String, String> {
            Ok("10.96.0.1".into())
        }
        fn volumes_writable(&self) -> Result<Vec<String>, String> {
            if self.0 { Ok(vec!["data".into()]) } else { Err("volume data (pvc-1) is not IOReady".into()) }
        }
        fn ready_neighbor(&self) -> Result<String, String> {
            Err("no other Ready pod of app smoke-mini".into())
        }
    }

    fn get(app: App, path: &str, env: &dyn Surroundings) -> Reply {
        app.serve("p-0", &Request { method: "GET", path, query: "", body: b"" }, env)
    }

    #[test]
    fn images_pick_the_application_by_program_name() {
        assert_eq!(App::from_image("kubesim/smoke-mini"), App::SmokeMini);
        assert_eq!(App::from_image("registry.local/kubesim/smoke-mini:v2"), App::SmokeMini);
        assert_eq!(App::from_image("kubesim/http-echo@sha256:abc"), App::HttpEcho);
        assert_eq!(App::from_image("nginx:1.25"), App::Plain);
        assert_eq!(App::Plain.processes("docker.io/library/nginx:1.25", None), ["nginx"]);
        assert_eq!(App::SmokeMini.processes("kubesim/smoke-mini", Some("/bin/app -v")), ["/bin/app -v"]);
    }

    #[test]
    fn smoke_mini_answers_its_endpoints() {
        let env = Healthy(true);
        assert_eq!(get(App::SmokeMini, "/", &env).status, 200);
        assert_eq!(get(App::SmokeMini, "/", &env).body["status"], "ok");
        assert_eq!(get(App::SmokeMini, "/error", &env).status, 500);
        assert_eq!(get(App::SmokeMini, "/dns", &env).body["address"], "10.96.0.1");
        assert_eq!(get(App::SmokeMini, "/api", &env).body["phase"], "Running");
        assert_eq!(get(App::SmokeMini, "/nope", &env).status, 404);
        let neighbor = get(App::SmokeMini, "/neighbor", &env);
        assert_eq!((neighbor.status, neighbor.body["status"].as_str()), (500, Some("error")));
    }

    #[test]
    fn disk_fails_while_a_volume_cannot_be_written() {
        assert_eq!(get(App::SmokeMini, "/disk", &Healthy(true)).status, 200);
        let broken = get(App::SmokeMini, "/disk", &Healthy(false));
        assert_eq!(broken.status, 500);
        assert!(broken.body["error"].as_str().unwrap().contains("not IOReady"));
    }

    #[test]
    fn http_echo_echoes_and_cuts_large_bodies() {
        let body = vec![b'x'; ECHO_BODY_LIMIT * 2];
        let r = App::HttpEcho.serve(
            "p",
            &Request { method: "POST", path: "/a", query: "b=1", body: &body },
            &Healthy(true),
        );
        assert_eq!(r.body["path"], "/a");
        assert_eq!(r.body["query"], "b=1");
        assert_eq!(r.body["body"].as_str().unwrap().len(), ECHO_BODY_LIMIT);
    }
}
