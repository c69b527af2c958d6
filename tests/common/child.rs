//! Child processes with a deadline: a test that runs a program must fail,
//! not hang, when the program hangs — and say where it hung. On expiry the
//! child's threads are dumped with gdb (when installed: every machine kind
//! here has it) before it is killed, and the test panics with that dump and
//! everything the child printed.

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Run `cmd` to completion (stdin closed, stdout and stderr captured) or
/// panic after `limit` with the child's stacks and output.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    // Readers drain both pipes so a chatty child never blocks on a full one.
    let drain = |r: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < limit => thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let stacks = stacks_of(child.id());
                let _ = child.kill();
                let _ = child.wait();
                let stdout = out.join().unwrap_or_default();
                let stderr = err.join().unwrap_or_default();
                panic!(
                    "{what} did not finish within {limit:?}; killed.\nstacks:\n{stacks}\n\
                     stdout:\n{}\nstderr:\n{}",
                    String::from_utf8_lossy(&stdout),
                    String::from_utf8_lossy(&stderr)
                );
            }
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Run `cmd` (stdout captured, stdin and stderr closed) and SIGKILL it
/// after `after`: what it printed, and true when it was still running (the
/// kill landed).
pub fn run_killed(cmd: &mut Command, after: Duration) -> (String, bool) {
    let mut proc = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = proc.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    thread::sleep(after);
    let running = proc.try_wait().unwrap().is_none();
    proc.kill().unwrap(); // SIGKILL
    proc.wait().unwrap();
    (reader.join().unwrap(), running)
}

/// The first number after the last line starting `saved ` a child printed
/// (the rows of its last acknowledged save; None: none yet).
pub fn acknowledged(out: &str) -> Option<usize> {
    out.lines()
        .filter_map(|l| l.strip_prefix("saved "))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .next_back()
}

/// Every thread's backtrace of process `pid` (gdb in batch mode), or why
/// there is none.
fn stacks_of(pid: u32) -> String {
    let gdb = Command::new("gdb")
        .args(["-batch", "-nx", "-p", &pid.to_string()])
        .args(["-ex", "thread apply all bt 30"])
        .stdin(Stdio::null())
        .output();
    match gdb {
        Ok(o) => format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => format!("(no stacks: gdb did not run: {e})"),
    }
}
