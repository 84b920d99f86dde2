//! A private `redis-server` for demo mode, so the README's first command works on a
//! machine without a running Redis.
//!
//! Guarantees:
//! - only started when demo mode is on and nothing answers `PING` at `redis.url`;
//!   production mode never starts one (the caller checks `demo.enabled`);
//! - the server binds 127.0.0.1 on a free port, keeps its files in a fresh temporary
//!   directory, persists nothing (`--save ""`, no AOF), and is killed when the
//!   [`PrivateRedis`] is dropped (the service's shutdown drops it), the directory
//!   removed with it;
//! - without `redis-server` on `PATH` the start fails with a message that says how to
//!   install it on Debian/Ubuntu, macOS and with Docker.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What keeps the demo from starting its own Redis.
#[derive(Debug, thiserror::Error)]
pub enum PrivateRedisError {
    #[error(
        "nothing answers at redis.url ({url}) and no `redis-server` was found on PATH to start \
         a private one for the demo. Install Redis: Debian/Ubuntu `sudo apt-get install \
         redis-server`; macOS `brew install redis`; Docker `docker run -d -p 6379:6379 redis:7` \
         (or `docker compose up`); or point MMC__REDIS__URL at a running Redis"
    )]
    NotInstalled { url: String },
    #[error("starting the private redis-server failed: {0}")]
    Start(String),
}

/// A running private `redis-server`; killed on drop.
pub struct PrivateRedis {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl PrivateRedis {
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts `redis-server` from `PATH` (`path_var`, as in the environment variable).
    pub fn start(path_var: Option<&std::ffi::OsStr>, url: &str) -> Result<Self, PrivateRedisError> {
        let Some(binary) = path_var.and_then(|p| find_on_path("redis-server", p)) else {
            return Err(PrivateRedisError::NotInstalled {
                url: url.to_owned(),
            });
        };
        let start = |e: std::io::Error| PrivateRedisError::Start(e.to_string());
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(start)?
            .port();
        let dir =
            std::env::temp_dir().join(format!("mmc-demo-redis-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).map_err(start)?;
        let child = Command::new(&binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(start)?;
        let mut me = PrivateRedis { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !answers_ping(&format!("127.0.0.1:{port}")) {
            if Instant::now() > deadline || matches!(me.child.try_wait(), Ok(Some(_))) {
                me.stop();
                return Err(PrivateRedisError::Start(format!(
                    "{} did not answer on port {port}",
                    binary.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        tracing::warn!(
            port,
            dir = %me.dir.display(),
            binary = %binary.display(),
            "demo: nothing answered at redis.url, started a private redis-server (data is \
             temporary and goes away with the service)"
        );
        Ok(me)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
        tracing::info!(port = self.port, "demo: private redis-server stopped");
    }
}

/// The first executable `name` in a `PATH`-style list.
pub fn find_on_path(name: &str, path_var: &std::ffi::OsStr) -> Option<PathBuf> {
    std::env::split_paths(path_var)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

/// True when a Redis at `redis.url` answers `PING` within a second. Only plain
/// `redis://host:port` URLs are probed; anything else (TLS, sockets) counts as answering,
/// so an unusual setup is never replaced by a private server.
pub fn redis_answers(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return true;
    };
    if parsed.scheme() != "redis" {
        return true;
    }
    let host = parsed.host_str().unwrap_or("127.0.0.1");
    let port = parsed.port().unwrap_or(6379);
    if !parsed.password().unwrap_or("").is_empty() || !parsed.username().is_empty() {
        // An authenticated Redis answers NOAUTH to a bare PING: being there is enough.
        return connects(&format!("{host}:{port}"));
    }
    answers_ping(&format!("{host}:{port}"))
}

fn connects(addr: &str) -> bool {
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok())
}

fn answers_ping(addr: &str) -> bool {
    let Some(sock) = addr.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
        return false;
    };
    let Ok(mut s) = TcpStream::connect_timeout(&sock, Duration::from_secs(1)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    matches!(s.read(&mut buf), Ok(n) if n > 0 && (buf[..n].starts_with(b"+PONG") || buf[..n].starts_with(b"-")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_redis_server_on_path_the_error_says_how_to_install_it() {
        let empty = std::env::temp_dir();
        let Err(e) = PrivateRedis::start(Some(empty.as_os_str()), "redis://127.0.0.1:1") else {
            panic!("started without redis-server on PATH");
        };
        let text = e.to_string();
        for hint in [
            "apt-get install redis-server",
            "brew install redis",
            "docker run",
        ] {
            assert!(text.contains(hint), "{text}");
        }
        assert!(find_on_path("sh", std::ffi::OsStr::new("/bin:/usr/bin")).is_some());
    }

    #[test]
    fn a_closed_port_does_not_answer() {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(1);
        assert!(!redis_answers(&format!("redis://127.0.0.1:{port}")));
        assert!(redis_answers("rediss://example.invalid:6380"));
    }
}
