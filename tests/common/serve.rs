//! A running `iscc-vdb serve` on a free loopback port, for the tests that
//! talk to it over HTTP.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use iscc_vdb::testing::client::Client;

/// The server process; killed when dropped.
pub struct Serve {
    child: Child,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The line that reported it (it names what is served).
    pub first_line: String,
    log: mpsc::Receiver<String>,
}

impl Serve {
    /// `iscc-vdb ARGS…` (which must include `serve --port 0`), without an
    /// API key from the environment; waits for the address it reports.
    pub fn start(args: &[&str]) -> Serve {
        Serve::start_env(args, &[])
    }

    /// [`Serve::start`] with environment variables set (e.g. the key).
    pub fn start_env(args: &[&str], env: &[(&str, &str)]) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_iscc-vdb"))
            .args(args)
            .env_remove("ISCC_VDB_API_KEY")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start iscc-vdb serve");
        let (tx, log) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = log
            .recv_timeout(Duration::from_secs(120))
            .expect("the server reports its address");
        let addr = line
            .rsplit("http://")
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Serve {
            child,
            addr,
            first_line: line,
            log,
        }
    }

    /// A client of the server.
    pub fn client(&self) -> Client {
        Client::new(self.addr)
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGKILL, and wait for the process to end.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then the exit status and the rest of the log.
    pub fn terminate(mut self) -> (i32, String) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0);
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        let log: Vec<String> = self.log.try_iter().collect();
        (status.code().unwrap_or(-1), log.join("\n"))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
