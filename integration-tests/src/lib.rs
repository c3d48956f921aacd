//! The harness for integration tests: real `skein` processes on free ports
//! with temporary data directories, and the real client tools installed by
//! `scripts/install-test-tools.sh`.
//!
//! Tests that need a tool which is missing fail with a message naming the
//! install command: `make test` always installs them first.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

pub mod console;
pub mod wire;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The `skein` binary under test: `$SKEIN_BIN`, else the workspace's debug build.
pub fn skein_binary() -> PathBuf {
    if let Ok(path) = std::env::var("SKEIN_BIN") {
        return PathBuf::from(path);
    }
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| repo_root().join("target"));
    target.join("debug").join("skein")
}

/// Where `scripts/install-test-tools.sh` put the client tools.
pub fn tools_dir() -> PathBuf {
    std::env::var("SKEIN_TOOLS_DIR").map(PathBuf::from).unwrap_or_else(|_| repo_root().join(".tools"))
}

/// The path of an installed tool, failing with the install hint when absent.
pub fn tool(relative: &str) -> PathBuf {
    let path = tools_dir().join(relative);
    assert!(path.exists(), "{} is missing: run `make test-tools` (scripts/install-test-tools.sh)", path.display());
    path
}

/// A running `skein` process owned by a test. Killed when dropped.
pub struct Skein {
    child: Option<Child>,
    pub port: u16,
    pub http_port: u16,
    data_dir: tempfile::TempDir,
    extra_args: Vec<String>,
    log_path: PathBuf,
}

impl Skein {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts with extra `--name=value` settings. Skein binds free ports
    /// itself (port 0) and the harness reads them from its ready line, so
    /// parallel tests can never race for a port.
    pub fn start_with(extra_args: &[&str]) -> Self {
        let data_dir = tempfile::tempdir().expect("temp data dir");
        let log_path = data_dir.path().join("skein.log");
        let mut skein = Skein {
            child: None,
            port: 0,
            http_port: 0,
            data_dir,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            log_path,
        };
        skein.launch().expect("skein starts");
        skein
    }

    fn launch(&mut self) -> anyhow::Result<()> {
        let binary = skein_binary();
        if !binary.exists() {
            bail!("{} does not exist: run `cargo build --workspace --bins`", binary.display());
        }
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log_path)?;
        let log_offset = log.metadata()?.len() as usize;
        let mut command = Command::new(&binary);
        command
            .arg(format!("--listeners=PLAINTEXT://127.0.0.1:{}", self.port))
            .arg(format!("--skein.http.listener=127.0.0.1:{}", self.http_port))
            .arg(format!("--log.dirs={}", self.data_dir.path().join("data").display()))
            .args(&self.extra_args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log);
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("SKEIN_")) {
            command.env_remove(key);
        }
        self.child = Some(command.spawn().with_context(|| format!("spawning {}", binary.display()))?);
        self.wait_ready(log_offset)
    }

    /// Waits for this run's "skein is ready" line and takes the bound ports from it.
    fn wait_ready(&mut self, log_offset: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!("skein exited during start ({status}); log:\n{}", self.log());
                }
            }
            let log = self.log();
            let this_run = log.get(log_offset..).unwrap_or_default();
            if let Some(line) = this_run.lines().find(|l| l.contains("skein is ready")) {
                self.port = port_after(line, "kafka=").context("kafka port in the ready line")?;
                self.http_port = port_after(line, "http=").context("http port in the ready line")?;
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("skein was not ready within 30 s; log:\n{}", self.log())
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// The broker's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("running")
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// `kill -9`: no flush, no goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        None
    }

    /// Starts again on the same ports and data directory.
    pub fn restart(&mut self) {
        self.kill9();
        self.launch().expect("skein restarts");
    }

    /// GET on the HTTP listener; returns (status line, body).
    pub fn http_get(&self, path: &str) -> anyhow::Result<(String, String)> {
        use std::io::{Read, Write};
        let mut stream = TcpStream::connect(("127.0.0.1", self.http_port))?;
        write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        Ok((head.lines().next().unwrap_or_default().to_owned(), body.to_owned()))
    }
}

impl Drop for Skein {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The port of the `host:port` following `key` in a log line.
fn port_after(line: &str, key: &str) -> Option<u16> {
    let rest = &line[line.find(key)? + key.len()..];
    let address = rest.split_whitespace().next()?;
    address.rsplit_once(':')?.1.parse().ok()
}

/// Runs a command with a timeout; returns its output or an error with both streams.
pub fn run(command: &mut Command, timeout: Duration) -> anyhow::Result<Output> {
    let description = format!("{command:?}");
    let mut child =
        command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().with_context(|| description.clone())?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let out_reader = std::thread::spawn(move || read_all(stdout));
    let err_reader = std::thread::spawn(move || read_all(stderr));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let status = child.wait()?;
            let stderr = err_reader.join().unwrap_or_default();
            bail!(
                "timed out after {timeout:?} ({status}): {description}\nstderr:\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(Output { status, stdout: out_reader.join().unwrap_or_default(), stderr: err_reader.join().unwrap_or_default() })
}

fn read_all(stream: Option<impl std::io::Read>) -> Vec<u8> {
    let mut buffer = Vec::new();
    if let Some(mut stream) = stream {
        let _ = stream.read_to_end(&mut buffer);
    }
    buffer
}

/// Like [`run`], but fails unless the command exits 0; returns stdout.
pub fn run_ok(command: &mut Command, timeout: Duration) -> String {
    let description = format!("{command:?}");
    let output = run(command, timeout).unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        output.status.success(),
        "{description} failed ({})\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
