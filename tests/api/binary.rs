//! The real `loginwith` binary as a child process (`loginwith --config FILE serve`), for the tests
//! that need what only a process has: a signal (SIGTERM's graceful stop, `kill -9`), or several
//! instances on one database. Its output goes to a file in its directory, read back by
//! [`Binary::log`] when a test wants to show or check it.

use reqwest::StatusCode;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The secret every test instance signs its cookies with: instances on one database must share
/// it, or a cookie set by one is refused by the others.
pub const SECRET_KEY: &str = "instances-test-secret-key-long-enough-0123";

/// The real binary, configured by `toml` (a `[server]` table with bind and secret is added), in
/// its own directory; killed when dropped.
pub struct Binary {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`, where it listens.
    pub address: String,
    pub port: u16,
    log: PathBuf,
}

impl Binary {
    /// On a SQLite database `instances.db` in `dir`.
    pub async fn start(dir: &Path, toml: &str) -> Binary {
        let database = format!("sqlite://{}", dir.join("instances.db").display());
        Binary::start_on(dir, &database, toml).await
    }

    /// On the database at `database_url`. `toml` follows the `[server]` table's first keys, so it
    /// may start with more `[server]` keys, then add tables. Returns once `/healthz` answers.
    pub async fn start_on(dir: &Path, database_url: &str, toml: &str) -> Binary {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Binary::start_at(dir, port, database_url, toml).await
    }

    /// Like [`Binary::start_on`], listening on `port` (picked with the caller's other ports, so
    /// that none of them is the same).
    pub async fn start_at(dir: &Path, port: u16, database_url: &str, toml: &str) -> Binary {
        let config = dir.join("loginwith.toml");
        let text = format!(
            "[server]\nbind = \"127.0.0.1:{port}\"\nsecret_key = \"{SECRET_KEY}\"\n{toml}\n\
             [database]\nurl = \"{database_url}\"\n"
        );
        std::fs::write(&config, text).unwrap();
        let log = dir.join("loginwith.log");
        let output = std::fs::File::create(&log).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_loginwith"))
            .args(["--config", config.to_str().unwrap(), "serve"])
            .current_dir(dir)
            .env("LOGINWITH_LOG", "warn")
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .expect("start loginwith");
        let mut binary = Binary { child, address: format!("http://127.0.0.1:{port}"), port, log };
        let started = Instant::now();
        while reqwest::get(format!("{}/healthz", binary.address)).await.map(|r| r.status()).ok()
            != Some(StatusCode::OK)
        {
            if let Ok(Some(status)) = binary.child.try_wait() {
                panic!("loginwith exited ({status}) before it served:\n{}", binary.log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "loginwith did not start:\n{}",
                binary.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        binary
    }

    /// What the process wrote (its log, at `warn` and above).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -TERM`: the graceful stop.
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill").args(["-TERM", &self.pid().to_string()]).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -TERM");
    }

    /// `kill -9` (SIGKILL): the process ends mid-request, with no chance to finish anything.
    /// (Through `kill`, as [`Binary::terminate`], so that a test can do it while other tasks use
    /// the instance; [`Binary::exit_within`] then collects the exit status.)
    pub fn kill_9(&self) {
        let status = std::process::Command::new("kill").args(["-KILL", &self.pid().to_string()]).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -KILL");
    }

    /// Waits for the process to exit; its status, or `None` after `within`.
    pub async fn exit_within(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < within {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
