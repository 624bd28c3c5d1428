//! Real servers for integration tests, on 127.0.0.1 only. `tests/services/test-services.sh` installs them
//! (once, into a cache under the cargo target dir); the tests start and stop them here. A server that cannot
//! be installed or started is an error for the test, never a reason to skip it.

// Each test binary includes this file and uses some of its servers.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const INSTALL_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/services/test-services.sh"
);
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// A port picked as free can be taken before the server binds it; try a few.
const START_ATTEMPTS: usize = 3;

/// Installs `service` if needed and returns its folder.
fn install(service: &str) -> Result<PathBuf, String> {
    let output = Command::new("bash")
        .arg(INSTALL_SCRIPT)
        .arg("install")
        .arg(service)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {INSTALL_SCRIPT}: {e}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!(
            "installing the {service} test server failed ({}):\n{stderr}",
            output.status
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    match stdout.lines().last() {
        Some(dir) if Path::new(dir).is_dir() => Ok(PathBuf::from(dir)),
        _ => Err(format!(
            "{INSTALL_SCRIPT} install {service} printed no folder:\n{stdout}\n{stderr}"
        )),
    }
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))
}

/// Whether `GET path` on 127.0.0.1:port answers 200.
fn http_ok(port: u16, path: &str) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    if stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .is_err()
        || stream.write_all(request.as_bytes()).is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
}

/// The last lines of a server's log, for error messages.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// A server process that dies with its owner: killed on drop, and by a watchdog if the test process is
/// killed before it can drop anything.
struct ServerProcess {
    process: Child,
    watchdog: Child,
    log: PathBuf,
}

impl ServerProcess {
    fn spawn(mut command: Command, log: PathBuf) -> Result<ServerProcess, String> {
        let log_file = std::fs::File::create(&log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let log_err = log_file
            .try_clone()
            .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
        let mut process = command
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("cannot start {command:?}: {e}"))?;
        let watchdog = Command::new("bash")
            .arg(INSTALL_SCRIPT)
            .arg("watchdog")
            .arg(std::process::id().to_string())
            .arg(process.id().to_string())
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match watchdog {
            Ok(watchdog) => Ok(ServerProcess {
                process,
                watchdog,
                log,
            }),
            Err(e) => {
                let _ = process.kill();
                let _ = process.wait();
                Err(format!("cannot start the watchdog of {command:?}: {e}"))
            }
        }
    }

    /// Waits until `ready()` holds; fails early if the process exits.
    fn wait_until(&mut self, what: &str, ready: impl Fn() -> bool) -> Result<(), String> {
        self.wait_until_within(what, READY_TIMEOUT, ready)
    }

    fn wait_until_within(
        &mut self,
        what: &str,
        timeout: Duration,
        ready: impl Fn() -> bool,
    ) -> Result<(), String> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.process.try_wait() {
                return Err(format!(
                    "{what} exited ({status}) before it was ready; log {}:\n{}",
                    self.log.display(),
                    log_tail(&self.log)
                ));
            }
            if ready() {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(format!(
                    "{what} not ready after {} s; log {}:\n{}",
                    timeout.as_secs(),
                    self.log.display(),
                    log_tail(&self.log)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // the watchdog first, so that it can never signal a recycled pid
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
        let _ = self.process.kill();
        let _ = self.process.wait();
        // a failing test keeps the log for diagnosis
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Creates a user with full S3 rights and its access key (moto lets the first three requests through
/// unauthenticated, for exactly these three IAM calls), then the bucket with that key.
/// Prints `ACCESS_KEY_ID SECRET_ACCESS_KEY`.
const S3_BOOTSTRAP: &str = r#"
import json, sys
import boto3
endpoint, region, bucket = sys.argv[1:4]
def client(service, key_id, secret):
    return boto3.client(service, endpoint_url=endpoint, region_name=region,
                        aws_access_key_id=key_id, aws_secret_access_key=secret)
iam = client("iam", "bootstrap", "bootstrap")
iam.create_user(UserName="phygital-tests")
iam.put_user_policy(UserName="phygital-tests", PolicyName="s3-all", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
key = iam.create_access_key(UserName="phygital-tests")["AccessKey"]
client("s3", key["AccessKeyId"], key["SecretAccessKey"]).create_bucket(Bucket=bucket)
print(key["AccessKeyId"], key["SecretAccessKey"])
"#;
/// How many requests moto serves before it starts checking credentials: the IAM calls of `S3_BOOTSTRAP`.
const S3_UNAUTHENTICATED_REQUESTS: &str = "3";

/// An S3-compatible server (moto) on 127.0.0.1 with one empty bucket. Credentials are checked: only the
/// key in [`S3Server::env`] is accepted. The server stops when this value is dropped.
pub struct S3Server {
    /// `http://127.0.0.1:<port>`
    pub endpoint: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
    /// Time to install (a no-op once cached), start and bootstrap the server.
    pub startup: Duration,
    /// Held for its `Drop`, which stops the server.
    _process: ServerProcess,
}

impl S3Server {
    pub fn start() -> Result<S3Server, String> {
        let started = Instant::now();
        let dir = install("s3")?;
        let log_dir = dir.with_file_name("logs");
        std::fs::create_dir_all(&log_dir)
            .map_err(|e| format!("cannot create {}: {e}", log_dir.display()))?;
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let mut command = Command::new(dir.join("bin/moto_server"));
            command
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("INITIAL_NO_AUTH_ACTION_COUNT", S3_UNAUTHENTICATED_REQUESTS);
            let log = log_dir.join(format!("moto-{port}.log"));
            let mut process = ServerProcess::spawn(command, log)?;
            if let Err(e) = process.wait_until("moto_server", || http_ok(port, "/moto-api/")) {
                last_error = e;
                continue;
            }
            let endpoint = format!("http://127.0.0.1:{port}");
            let (bucket, region) = ("phygital-test", "us-east-1");
            let (access_key_id, secret_access_key) =
                create_user_and_bucket(&dir.join("bin/python"), &endpoint, region, bucket)
                    .map_err(|e| format!("{e}\nserver log:\n{}", log_tail(&process.log)))?;
            return Ok(S3Server {
                endpoint,
                bucket: bucket.to_string(),
                access_key_id,
                secret_access_key,
                region: region.to_string(),
                startup: started.elapsed(),
                _process: process,
            });
        }
        Err(format!(
            "the S3 test server did not start in {START_ATTEMPTS} attempts: {last_error}"
        ))
    }

    /// `s3://<bucket>/<path>`
    pub fn url(&self, path: &str) -> String {
        format!("s3://{}/{}", self.bucket, path.trim_start_matches('/'))
    }

    /// The environment that points an AWS SDK (object_store's `AmazonS3Builder::from_env`) at this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT", self.endpoint.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_ACCESS_KEY_ID", self.access_key_id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_access_key.as_str()),
            ("AWS_DEFAULT_REGION", self.region.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// A command with exactly this server's AWS environment: inherited `AWS_*` variables (a developer's
    /// real profile, session token...) are removed first.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        without_aws_env(&mut command);
        command.envs(self.env());
        command
    }
}

/// Runs `S3_BOOTSTRAP`; returns the access key id and secret it created.
fn create_user_and_bucket(
    python: &Path,
    endpoint: &str,
    region: &str,
    bucket: &str,
) -> Result<(String, String), String> {
    let mut command = Command::new(python);
    command
        .args(["-c", S3_BOOTSTRAP, endpoint, region, bucket])
        .stdin(Stdio::null());
    without_aws_env(&mut command);
    let output = command
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    match (
        output.status.success(),
        stdout.split_whitespace().collect::<Vec<_>>().as_slice(),
    ) {
        (true, [key_id, secret]) => Ok((key_id.to_string(), secret.to_string())),
        _ => Err(format!(
            "creating the bucket on the S3 test server failed ({}):\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )),
    }
}

fn without_aws_env(command: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AWS_") {
            command.env_remove(key);
        }
    }
}

/// The project every BigQuery emulator request uses.
pub const BIGQUERY_PROJECT: &str = "test-proj";

/// A BigQuery emulator (local-bigquery 0.4.0, DuckDB underneath) on 127.0.0.1 with project
/// [`BIGQUERY_PROJECT`] and its data in a fresh folder. Auth is not checked: any token works.
/// The server stops when this value is dropped (or with the test process, through the watchdog).
pub struct BigQueryServer {
    /// `http://127.0.0.1:<port>`
    pub endpoint: String,
    pub port: u16,
    /// Time to install (a no-op once cached) and start the server.
    pub startup: Duration,
    _process: ServerProcess,
    data_dir: PathBuf,
}

/// local-bigquery takes 6-9 s to start on this class of machine; allow for a loaded one.
const BIGQUERY_READY_TIMEOUT: Duration = Duration::from_secs(90);

impl BigQueryServer {
    pub fn start() -> Result<BigQueryServer, String> {
        let started = Instant::now();
        let dir = install("bigquery")?;
        let log_dir = dir.with_file_name("logs");
        std::fs::create_dir_all(&log_dir)
            .map_err(|e| format!("cannot create {}: {e}", log_dir.display()))?;
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            let (port, grpc_port) = (free_port()?, free_port()?);
            let data_dir = std::env::temp_dir()
                .join(format!("phygital-bigquery-{}-{port}", std::process::id()));
            let _ = std::fs::remove_dir_all(&data_dir);
            std::fs::create_dir_all(&data_dir)
                .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
            let mut command = Command::new(dir.join("bin/local-bigquery"));
            command
                .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
                .args([
                    "--grpc-port",
                    &grpc_port.to_string(),
                    "--project",
                    BIGQUERY_PROJECT,
                ])
                .arg("--data-dir")
                .arg(&data_dir)
                // DuckDB loads its extensions from $HOME/.duckdb; the install put them there.
                .env("HOME", dir.join("duckdb-home"));
            let log = log_dir.join(format!("bigquery-{port}.log"));
            let mut process = ServerProcess::spawn(command, log)?;
            let ready = process.wait_until_within("local-bigquery", BIGQUERY_READY_TIMEOUT, || {
                http_ok(port, "/bigquery/v2/projects")
            });
            if let Err(e) = ready {
                last_error = e;
                let _ = std::fs::remove_dir_all(&data_dir);
                continue;
            }
            return Ok(BigQueryServer {
                endpoint: format!("http://127.0.0.1:{port}"),
                port,
                startup: started.elapsed(),
                _process: process,
                data_dir,
            });
        }
        Err(format!(
            "the BigQuery emulator did not start in {START_ATTEMPTS} attempts: {last_error}"
        ))
    }
}

impl Drop for BigQueryServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
