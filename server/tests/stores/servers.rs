//! Store servers private to one fault test, which stops and starts them at will without disturbing
//! the tests that share the servers of `scripts/test-stores.sh`.

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::fleet::{required_env, Store};

pub struct PrivateStore {
    kind: Store,
    port: u16,
    dir: PathBuf,
    /// The Redis process (PostgreSQL runs detached under `pg_ctl`).
    redis: Option<Child>,
    running: bool,
}

impl PrivateStore {
    /// A fresh, empty server of `kind` on a free loopback port, or `None` (and a loud notice)
    /// outside `scripts/test-stores.sh`.
    pub async fn start(kind: Store) -> Option<Self> {
        let base = PathBuf::from(required_env("REAUTH_TEST_TMP")?);
        let name = format!("{}-fault-{}", format!("{kind:?}").to_lowercase(), std::process::id());
        let dir = base.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut store = Self { kind, port: free_port(), dir, redis: None, running: false };
        if let Store::Postgres = kind {
            store.init_postgres()?;
        }
        store.resume().await;
        Some(store)
    }

    pub fn url(&self) -> String {
        match self.kind {
            Store::Redis => format!("redis://127.0.0.1:{}/", self.port),
            Store::Postgres => format!("postgres://postgres@127.0.0.1:{}/postgres", self.port),
        }
    }

    /// Stops the server the way an operator or a crash-restart supervisor would (SIGTERM for Redis,
    /// `pg_ctl stop -m fast` for PostgreSQL); its data stays on disk.
    pub fn stop(&mut self) {
        match self.kind {
            Store::Redis => {
                if let Some(mut child) = self.redis.take() {
                    run(Command::new("kill").arg("-TERM").arg(child.id().to_string()));
                    child.wait().unwrap();
                }
            }
            Store::Postgres => {
                run(as_postgres(&pg_bin("pg_ctl")).arg("-D").arg(self.pg_data()).args(["-m", "fast", "-w", "stop"]))
            }
        }
        self.running = false;
    }

    /// Suspends the server process (SIGSTOP): connections stay open and nothing answers.
    pub fn freeze(&mut self) {
        self.signal("-STOP");
    }

    /// Resumes a frozen server (SIGCONT).
    pub fn thaw(&mut self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.redis.as_ref().expect("freezing is done on Redis, whose process this test owns");
        run(Command::new("kill").arg(signal).arg(child.id().to_string()));
    }

    /// Starts the server again on the same port and data, and waits until it accepts connections.
    pub async fn resume(&mut self) {
        match self.kind {
            Store::Redis => {
                let server = required_env("REAUTH_TEST_REDIS_SERVER").expect("REAUTH_TEST_REDIS_SERVER");
                // An append-only file, so that a stop loses nothing that was acknowledged.
                let child = Command::new(server)
                    .args([
                        "--port",
                        &self.port.to_string(),
                        "--bind",
                        "127.0.0.1",
                        "--save",
                        "",
                        "--appendonly",
                        "yes",
                    ])
                    .arg("--dir")
                    .arg(&self.dir)
                    .stdout(Stdio::null())
                    .spawn()
                    .unwrap();
                self.redis = Some(child);
            }
            Store::Postgres => {
                let options = format!("-c listen_addresses=127.0.0.1 -p {} -k {}", self.port, self.dir.display());
                let log = self.dir.join("postgres.log");
                run(as_postgres(&pg_bin("pg_ctl"))
                    .arg("-D")
                    .arg(self.pg_data())
                    .arg("-l")
                    .arg(log)
                    .args(["-w", "-o", &options, "start"]));
            }
        }
        self.running = true;
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "{:?} did not come back on port {}", self.kind, self.port);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn pg_data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn init_postgres(&mut self) -> Option<()> {
        required_env("REAUTH_TEST_POSTGRES_BIN")?;
        if running_as_root() {
            run(Command::new("chown").arg("postgres:").arg(&self.dir));
        }
        run(as_postgres(&pg_bin("initdb"))
            .arg("-D")
            .arg(self.pg_data())
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .stdout(Stdio::null()));
        Some(())
    }
}

impl Drop for PrivateStore {
    fn drop(&mut self) {
        match self.kind {
            Store::Redis => {
                if let Some(mut child) = self.redis.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
            Store::Postgres if self.running => {
                let _ = as_postgres(&pg_bin("pg_ctl"))
                    .arg("-D")
                    .arg(self.pg_data())
                    .args(["-m", "immediate", "-w", "stop"])
                    .output();
            }
            Store::Postgres => {}
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn pg_bin(tool: &str) -> PathBuf {
    Path::new(&std::env::var("REAUTH_TEST_POSTGRES_BIN").expect("REAUTH_TEST_POSTGRES_BIN")).join(tool)
}

/// The owner of `/proc/self` is this process's effective user.
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").map(|meta| meta.uid() == 0).unwrap_or(false)
}

/// PostgreSQL refuses to run as root: as root, its tools run as the `postgres` user.
fn as_postgres(tool: &Path) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        // From `/`: the postgres user may not be allowed into the test's working directory.
        command.current_dir("/").args(["-u", "postgres", "--"]).arg(tool);
        command
    } else {
        Command::new(tool)
    }
}

fn run(command: &mut Command) {
    let output = command.stdin(Stdio::null()).output().unwrap();
    assert!(output.status.success(), "{command:?}: {}", String::from_utf8_lossy(&output.stderr));
}
