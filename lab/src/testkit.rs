//! Real ZooKeeper 3.8 ensembles on loopback, for tests.
//!
//! Tests of zkmigrate run against real servers, never a stub: this module
//! starts N servers of Debian's `zookeeper` package (`java ...
//! QuorumPeerMain zoo.cfg`, no wrapper script), each on its own `127.x.y.z`
//! address, and stops them when the [`Ensemble`] is dropped.
//!
//! Why it is shaped this way:
//! - **No clashes between parallel tests.** Each ensemble claims a *block*:
//!   a `/24` of loopback addresses (`127.(100+k/250).(k%250).0/24`) and four
//!   ports (`20000+4k ..`), held by an exclusive file lock for the ensemble's
//!   life. All servers of one ensemble share the ports, as on real hosts, so
//!   a plan file with one `clientPort` describes them. 127.0.0.1 and the
//!   default ports are never used (another ZooKeeper may listen there).
//! - **No leaks.** Drop stops every server. A test process killed outright
//!   cannot run Drop, so the pids of a block are written beside its lock, and
//!   the next test that claims the block kills what is left.
//! - **Installs nothing.** When the package is missing it says which command
//!   installs it (`scripts/test.sh`).

use std::collections::hash_map::RandomState;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Jars of Debian's ZooKeeper 3.8 that a server needs: the server (whose
/// manifest names its dependencies), a logger, and the servlet API that the
/// AdminServer (Jetty) needs.
const DEFAULT_CLASSPATH: &str = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar:/usr/share/java/servlet-api.jar";

/// Number of blocks; block `k` uses ports `20000 + 4k .. 20000 + 4k + 3`.
const BLOCKS: u32 = 10_000;

/// Where block locks, pid files and server directories live.
fn state_root() -> PathBuf {
    std::env::temp_dir().join("zklab-testkit")
}

/// Errors of the test harness.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    #[error(
        "failed to find ZooKeeper 3.8: {missing} is missing; run scripts/test.sh, which installs the Debian packages the tests need"
    )]
    NotInstalled { missing: String },
    #[error("failed to claim a free address block for an ensemble after {tries} tries")]
    NoFreeBlock { tries: u32 },
    #[error("failed to start ZooKeeper server {id}: {source}")]
    Spawn { id: u8, source: io::Error },
    #[error("failed to prepare the files of server {id} in {dir}: {source}")]
    Files {
        id: u8,
        dir: PathBuf,
        source: io::Error,
    },
    #[error("failed to see {what} within {timeout:?}; last seen: {last}")]
    Timeout {
        what: String,
        timeout: Duration,
        last: String,
    },
    #[error("an ensemble has 1 to 7 servers, not {0}")]
    Size(usize),
    #[error("there is no server {0} in this ensemble")]
    NoSuchServer(u8),
}

/// How to build an ensemble.
#[derive(Debug, Clone)]
pub struct EnsembleOptions {
    /// Number of servers (ids 1..=n).
    pub servers: usize,
    /// 3.5+ dynamic configuration: `reconfigEnabled=true` and the server
    /// lines in a `dynamicConfigFile` with `;addr:clientPort` suffixes.
    pub dynamic: bool,
    /// Value of `4lw.commands.whitelist`.
    pub four_letter_words: String,
    /// Start the AdminServer (HTTP `/commands/...`) on the block's admin port.
    pub admin_server: bool,
    /// `tickTime` in milliseconds. Small, so that elections are quick.
    pub tick_ms: u32,
}

impl Default for EnsembleOptions {
    fn default() -> Self {
        EnsembleOptions {
            servers: 3,
            dynamic: false,
            four_letter_words: "srvr,mntr,conf,cons,ruok,stat".to_string(),
            admin_server: true,
            tick_ms: 300,
        }
    }
}

/// One real ZooKeeper server of an [`Ensemble`].
#[derive(Debug)]
pub struct TestServer {
    /// The myid.
    pub id: u8,
    /// The loopback address it binds, alone.
    pub addr: Ipv4Addr,
    pub client_port: u16,
    pub quorum_port: u16,
    pub election_port: u16,
    pub admin_port: u16,
    /// The server's directory: `zoo.cfg`, `data/`, `zookeeper.log`.
    pub dir: PathBuf,
    pub config_path: PathBuf,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    process: Option<Child>,
}

impl TestServer {
    /// The client port's socket address.
    pub fn client_addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.addr, self.client_port))
    }

    /// The AdminServer's socket address.
    pub fn admin_addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.addr, self.admin_port))
    }

    /// The JVM's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Child::id)
    }

    /// Whether the JVM is alive (reaps it when it has exited).
    pub fn is_running(&mut self) -> bool {
        match self.process.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }
}

/// A running ensemble of real ZooKeeper servers; dropped, it stops them all
/// and removes their files.
#[derive(Debug)]
pub struct Ensemble {
    servers: Vec<TestServer>,
    options: EnsembleOptions,
    block: Block,
    classpath: String,
    // Dropped after the servers are stopped (field order is drop order, but
    // Drop for Ensemble stops the servers explicitly first anyway).
    _dir: tempfile::TempDir,
}

impl Ensemble {
    /// Starts `n` servers with the default options and waits for a quorum.
    pub fn start(n: usize) -> Result<Ensemble, TestkitError> {
        Ensemble::start_with(EnsembleOptions {
            servers: n,
            ..EnsembleOptions::default()
        })
    }

    /// Starts an ensemble as `options` say and waits until every server
    /// serves and exactly one leads.
    pub fn start_with(options: EnsembleOptions) -> Result<Ensemble, TestkitError> {
        if options.servers == 0 || options.servers > 7 {
            return Err(TestkitError::Size(options.servers));
        }
        let classpath =
            std::env::var("ZKLAB_ZK_CLASSPATH").unwrap_or_else(|_| DEFAULT_CLASSPATH.to_string());
        for jar in classpath.split(':') {
            if !Path::new(jar).exists() {
                return Err(TestkitError::NotInstalled {
                    missing: jar.to_string(),
                });
            }
        }
        let block = Block::claim(options.servers)?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("ensemble-{}-", block.index))
            .tempdir_in(state_root())
            .map_err(|source| TestkitError::Files {
                id: 0,
                dir: state_root(),
                source,
            })?;
        let servers = (1..=options.servers as u8)
            .map(|id| {
                let sdir = dir.path().join(format!("server-{id}"));
                TestServer {
                    id,
                    addr: block.addr(id),
                    client_port: block.port(0),
                    quorum_port: block.port(1),
                    election_port: block.port(2),
                    admin_port: block.port(3),
                    config_path: sdir.join("zoo.cfg"),
                    data_dir: sdir.join("data"),
                    log_path: sdir.join("zookeeper.log"),
                    dir: sdir,
                    process: None,
                }
            })
            .collect();
        let mut ensemble = Ensemble {
            servers,
            options,
            block,
            classpath,
            _dir: dir,
        };
        for i in 0..ensemble.servers.len() {
            ensemble.write_files(i)?;
        }
        for id in ensemble.ids() {
            ensemble.start_server(id)?;
        }
        ensemble.wait_quorum(Duration::from_secs(60))?;
        Ok(ensemble)
    }

    fn ids(&self) -> Vec<u8> {
        self.servers.iter().map(|s| s.id).collect()
    }

    fn index(&self, id: u8) -> Result<usize, TestkitError> {
        self.servers
            .iter()
            .position(|s| s.id == id)
            .ok_or(TestkitError::NoSuchServer(id))
    }

    /// The servers, by id.
    pub fn servers(&self) -> &[TestServer] {
        &self.servers
    }

    /// Server `id`. Panics when there is none: a test asked for a server it
    /// did not start.
    pub fn server(&self, id: u8) -> &TestServer {
        &self.servers[self.index(id).expect("no such server in this ensemble")]
    }

    /// Server `id`'s client address.
    pub fn client_addr(&self, id: u8) -> SocketAddr {
        self.server(id).client_addr()
    }

    /// The client port all servers share (each on its own address).
    pub fn client_port(&self) -> u16 {
        self.block.port(0)
    }

    /// `addr:port,...` of every server, for clients.
    pub fn connect_string(&self) -> String {
        self.servers
            .iter()
            .map(|s| s.client_addr().to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The `server.N` lines every server was started with.
    pub fn server_lines(&self) -> String {
        self.servers
            .iter()
            .map(|s| {
                let suffix = if self.options.dynamic {
                    format!(":participant;{}:{}", s.addr, s.client_port)
                } else {
                    String::new()
                };
                format!(
                    "server.{}={}:{}:{}{}\n",
                    s.id, s.addr, s.quorum_port, s.election_port, suffix
                )
            })
            .collect()
    }

    fn write_files(&self, index: usize) -> Result<(), TestkitError> {
        let s = &self.servers[index];
        let files_err = |source| TestkitError::Files {
            id: s.id,
            dir: s.dir.clone(),
            source,
        };
        fs::create_dir_all(&s.data_dir).map_err(files_err)?;
        fs::write(s.data_dir.join("myid"), format!("{}\n", s.id)).map_err(files_err)?;
        let o = &self.options;
        let mut cfg = format!(
            "# written by zklab::testkit for server {id}\n\
             tickTime={tick}\n\
             initLimit=20\n\
             syncLimit=10\n\
             dataDir={data}\n\
             4lw.commands.whitelist={words}\n\
             admin.enableServer={admin}\n\
             admin.serverAddress={addr}\n\
             admin.serverPort={admin_port}\n",
            id = s.id,
            tick = o.tick_ms,
            data = s.data_dir.display(),
            words = o.four_letter_words,
            admin = o.admin_server,
            addr = s.addr,
            admin_port = s.admin_port,
        );
        if o.dynamic {
            let dynamic = s.dir.join("zoo.cfg.dynamic");
            fs::write(&dynamic, self.server_lines()).map_err(files_err)?;
            cfg.push_str(&format!(
                "reconfigEnabled=true\nstandaloneEnabled=false\nskipACL=yes\ndynamicConfigFile={}\n",
                dynamic.display()
            ));
        } else {
            cfg.push_str(&format!(
                "clientPort={}\nclientPortAddress={}\n",
                s.client_port, s.addr
            ));
            cfg.push_str(&self.server_lines());
        }
        fs::write(&s.config_path, cfg).map_err(files_err)
    }

    /// Starts server `id`'s JVM (again) and returns without waiting; see
    /// [`Ensemble::wait_serving`].
    pub fn start_server(&mut self, id: u8) -> Result<(), TestkitError> {
        let i = self.index(id)?;
        if self.servers[i].is_running() {
            return Ok(());
        }
        let s = &self.servers[i];
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&s.log_path)
            .map_err(|source| TestkitError::Spawn { id, source })?;
        let log2 = log
            .try_clone()
            .map_err(|source| TestkitError::Spawn { id, source })?;
        let child = Command::new(std::env::var("JAVA").unwrap_or_else(|_| "java".into()))
            .args([
                "-Xms16m",
                "-Xmx128m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
                "-Dorg.slf4j.simpleLogger.showDateTime=true",
                "-Dzookeeper.jmx.log4j.disable=true",
                "-cp",
                &self.classpath,
                "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            ])
            .arg(&s.config_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|source| TestkitError::Spawn { id, source })?;
        self.servers[i].process = Some(child);
        self.block.record_pids(&self.servers);
        Ok(())
    }

    /// Stops server `id` gracefully (SIGTERM) and waits for its exit.
    pub fn stop(&mut self, id: u8) -> Result<(), TestkitError> {
        let i = self.index(id)?;
        if let Some(mut child) = self.servers[i].process.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        self.block.record_pids(&self.servers);
        Ok(())
    }

    /// Kills server `id` outright (SIGKILL), as a crash would.
    pub fn kill(&mut self, id: u8) -> Result<(), TestkitError> {
        let i = self.index(id)?;
        if let Some(mut child) = self.servers[i].process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.block.record_pids(&self.servers);
        Ok(())
    }

    /// Sends a four-letter word to server `id` (no trailing newline, read to
    /// EOF, two-second timeouts).
    pub fn four_letter_word(&self, id: u8, word: &str) -> io::Result<String> {
        four_letter_word(self.client_addr(id), word, Duration::from_secs(2))
    }

    /// `Mode:` of server `id`'s `srvr`, when it serves.
    pub fn mode(&self, id: u8) -> Option<String> {
        let srvr = self.four_letter_word(id, "srvr").ok()?;
        srvr.lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(|m| m.trim().to_string())
    }

    /// The server that says it leads, when exactly one does.
    pub fn leader(&self) -> Option<u8> {
        let leaders: Vec<u8> = self
            .servers
            .iter()
            .filter(|s| self.mode(s.id).as_deref() == Some("leader"))
            .map(|s| s.id)
            .collect();
        (leaders.len() == 1).then(|| leaders[0])
    }

    /// Waits until server `id` serves (its `srvr` has a `Mode:`); returns
    /// the mode.
    pub fn wait_serving(&self, id: u8, timeout: Duration) -> Result<String, TestkitError> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.four_letter_word(id, "srvr") {
                Ok(out) => match out.lines().find_map(|l| l.strip_prefix("Mode: ")) {
                    Some(mode) => return Ok(mode.trim().to_string()),
                    None => out.trim().to_string(),
                },
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                return Err(TestkitError::Timeout {
                    what: format!("server {id} serving"),
                    timeout,
                    last,
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until every running server serves, exactly one leads and the
    /// others follow; returns the leader's id.
    pub fn wait_quorum(&self, timeout: Duration) -> Result<u8, TestkitError> {
        let deadline = Instant::now() + timeout;
        loop {
            let modes: Vec<(u8, Option<String>)> = self
                .servers
                .iter()
                .filter(|s| s.process.is_some())
                .map(|s| (s.id, self.mode(s.id)))
                .collect();
            let leaders: Vec<u8> = modes
                .iter()
                .filter(|(_, m)| m.as_deref() == Some("leader"))
                .map(|(id, _)| *id)
                .collect();
            let all_serving = modes
                .iter()
                .all(|(_, m)| matches!(m.as_deref(), Some("leader" | "follower")));
            if all_serving && leaders.len() == 1 {
                return Ok(leaders[0]);
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = self
                    .servers
                    .iter()
                    .map(|s| format!("server {} log tail:\n{}", s.id, self.log_tail(s.id, 15)))
                    .collect();
                return Err(TestkitError::Timeout {
                    what: "a quorum with one leader".into(),
                    timeout,
                    last: format!("{modes:?}\n{}", logs.join("\n")),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last `lines` lines of server `id`'s log, for failure messages.
    pub fn log_tail(&self, id: u8, lines: usize) -> String {
        let text = fs::read_to_string(&self.server(id).log_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for id in self.ids() {
            let _ = self.kill(id);
        }
    }
}

/// Sends a four-letter word with no trailing newline and reads to EOF.
pub fn four_letter_word(addr: SocketAddr, word: &str, timeout: Duration) -> io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(word.as_bytes())?;
    let mut out = Vec::new();
    stream.read_to_end(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// A claimed address-and-port block, locked for the ensemble's life.
#[derive(Debug)]
struct Block {
    index: u32,
    lock: File,
    pid_path: PathBuf,
}

impl Block {
    fn claim(servers: usize) -> Result<Block, TestkitError> {
        let root = state_root();
        fs::create_dir_all(&root).map_err(|source| TestkitError::Files {
            id: 0,
            dir: root.clone(),
            source,
        })?;
        let tries = 200;
        for attempt in 0..tries {
            let index = random_below(BLOCKS, attempt);
            let lock_path = root.join(format!("block-{index}.lock"));
            let Ok(lock) = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
            else {
                continue;
            };
            if lock.try_lock().is_err() {
                continue;
            }
            let block = Block {
                index,
                lock,
                pid_path: root.join(format!("block-{index}.pids")),
            };
            block.kill_leftovers();
            if block.is_free(servers) {
                return Ok(block);
            }
        }
        Err(TestkitError::NoFreeBlock { tries })
    }

    fn addr(&self, id: u8) -> Ipv4Addr {
        Ipv4Addr::new(
            127,
            100 + (self.index / 250) as u8,
            (self.index % 250) as u8,
            id,
        )
    }

    fn port(&self, offset: u16) -> u16 {
        20_000 + 4 * self.index as u16 + offset
    }

    /// Every port of the block binds on every address it will use.
    fn is_free(&self, servers: usize) -> bool {
        (1..=servers as u8).all(|id| {
            (0..4).all(|offset| TcpListener::bind((self.addr(id), self.port(offset))).is_ok())
        })
    }

    /// Kills the JVMs a crashed test left in this block (their pids were
    /// recorded; only java processes are touched, in case a pid was reused).
    fn kill_leftovers(&self) {
        let Ok(pids) = fs::read_to_string(&self.pid_path) else {
            return;
        };
        for pid in pids.split_whitespace() {
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "java" {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
        let _ = fs::remove_file(&self.pid_path);
    }

    fn record_pids(&self, servers: &[TestServer]) {
        let pids: Vec<String> = servers
            .iter()
            .filter_map(|s| s.pid())
            .map(|p| p.to_string())
            .collect();
        let _ = fs::write(&self.pid_path, pids.join("\n"));
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.pid_path);
        let _ = self.lock.unlock();
    }
}

/// A random number below `n` without a `rand` dependency: std's hasher keys
/// are random per process, mixed with the time and the attempt number.
fn random_below(n: u32, attempt: u32) -> u32 {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(attempt);
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (h.finish() % u64::from(n)) as u32
}
