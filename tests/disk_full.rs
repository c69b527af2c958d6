//! A full disk during `add`, `save` and `rebuild` is `DISK_FULL` with a
//! message that says so (CLI exit status 5, HTTP 507); the CLI prints what
//! was acknowledged; after space returns nothing acknowledged is missing
//! and the index is consistent.
//!
//! Run as root, the tests use a small tmpfs (a real full filesystem);
//! otherwise the engine part runs with an injected ENOSPC (fault module)
//! and the process part is skipped with a note.
#![cfg(all(feature = "cli", feature = "server"))]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use iscc_vdb::engine::{ErrorKind, IndexOptions, IndexParams, IsccIndex};
use iscc_vdb::testing::client::Client;
use serde_json::{json, Value};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_iscc-vdb"))
}

/// A tmpfs mounted for the test, unmounted on drop.
struct Tmpfs {
    _holder: tempfile::TempDir,
    path: PathBuf,
}

impl Tmpfs {
    /// `None` when this process may not mount (not root, no CAP_SYS_ADMIN).
    fn mount(size: &str) -> Option<Tmpfs> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        let holder = tempfile::tempdir().ok()?;
        let path = holder.path().join("fs");
        std::fs::create_dir(&path).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .ok()?
            .success();
        ok.then_some(Tmpfs {
            _holder: holder,
            path,
        })
    }

    fn resize(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount {size}");
    }

    /// Fill the filesystem to the last byte with a file; returns its path.
    fn fill(&self) -> PathBuf {
        let path = self.path.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 64 << 10];
        loop {
            match f.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling: {e}"),
            }
        }
        // Also the last partial block.
        let mut small = vec![0u8; 512];
        while let Ok(n) = f.write(&small) {
            if n == 0 {
                break;
            }
            small.truncate(n.max(1));
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// `iscc-vdb --path dir <command>` must fail as a full disk does: exit
/// status 5 and "disk full" on stderr.
fn fails_disk_full(dir: &Path, command: &str) {
    let out = bin().arg("--path").arg(dir).arg(command).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{command}: {stderr}");
    assert!(stderr.contains("disk full"), "{command}: {stderr}");
}

/// `iscc-vdb --path dir <command>` must succeed.
fn succeeds(dir: &Path, command: &str) {
    let out = bin().arg("--path").arg(dir).arg(command).output().unwrap();
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ids_of(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["iscc_id"].as_str().unwrap().to_string())
        .collect()
}

/// Every ID in `acked` is stored and every unit index is consistent.
fn check_consistent(dir: &Path, acked: &[String]) {
    let ro = IsccIndex::restore(dir, true).unwrap();
    for id in acked {
        assert!(ro.get(id).unwrap().is_some(), "acknowledged {id} lost");
    }
    let info = ro.info().unwrap();
    for (t, u) in &info.units {
        assert_eq!(u.len as u64, u.entries, "{t}: {info:?}");
    }
    assert!(info.repairs.is_empty() || !acked.is_empty());
}

#[test]
fn a_full_disk_says_so_and_loses_nothing_acknowledged() {
    let Some(fs) = Tmpfs::mount("12m") else {
        eprintln!("disk_full: not root (or mount refused): the tmpfs part is skipped");
        return;
    };
    let entries = common::generated_entries(60_000);
    let file = fs._holder.path().join("entries.jsonl");
    iscc_vdb::testing::write_jsonl(&file, &entries);
    let dir = fs.path.join("index");

    // add: fills the disk part-way.
    let out = bin()
        .arg("--path")
        .arg(&dir)
        .args(["add", "--no-progress", "--batch-size", "500", "--file"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("disk full"), "{stderr}");
    assert!(stderr.contains("were added and are kept"), "{stderr}");
    let acked: Vec<String> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stderr}"));
    assert!(!acked.is_empty() && acked.len() < entries.len(), "{stderr}");
    assert_eq!(acked[..], ids_of(&entries)[..acked.len()]);
    let kept = format!("{} entries in {} batches", acked.len(), acked.len() / 500);
    assert!(stderr.contains(&kept), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "starts at {}: line {}",
            file.display(),
            acked.len() + 1
        )),
        "{stderr}"
    );

    // Space returns: a save recovers everything acknowledged.
    fs.resize("400m");
    succeeds(&dir, "save");
    check_consistent(&dir, &acked);

    // rebuild on a full disk: DISK_FULL, the old state intact.
    let filler = fs.fill();
    fails_disk_full(&dir, "rebuild");
    std::fs::remove_file(&filler).unwrap();
    check_consistent(&dir, &acked);
    succeeds(&dir, "rebuild");
    check_consistent(&dir, &acked);

    // save over REST on a full disk: 507 with the envelope.
    let mut server = bin()
        .arg("--path")
        .arg(&dir)
        .args(["serve", "--port", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.rsplit("http://").next().and_then(|a| a.parse().ok()))
        .expect("server address");
    let mut client = Client::new(addr);
    let more = &entries[acked.len()..acked.len() + 2000];
    let r = client.post("/add", &json!({ "entries": more })).unwrap();
    assert_eq!(r.status, 200, "{:?}", r.json());
    let filler = fs.fill();
    let r = client.post("/save", &json!({})).unwrap();
    let body = r.json().unwrap();
    assert_eq!(r.status, 507, "{body}");
    assert_eq!(body["error"]["code"], "DISK_FULL", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("disk full"),
        "{body}"
    );
    std::fs::remove_file(&filler).unwrap();
    let r = client.post("/save", &json!({})).unwrap();
    assert_eq!(r.status, 200, "{:?}", r.json());
    server.kill().unwrap();
    server.wait().unwrap();
    let mut all = acked.clone();
    all.extend(ids_of(more));
    check_consistent(&dir, &all);

    // save from the CLI on a full disk: exit 5, "disk full", nothing lost.
    let filler = fs.fill();
    fails_disk_full(&dir, "save");
    std::fs::remove_file(&filler).unwrap();
    check_consistent(&dir, &all);
    std::thread::sleep(Duration::from_millis(10));
}

#[test]
fn an_injected_no_space_error_is_disk_full() {
    let dir = tempfile::tempdir().unwrap();
    let options = IndexOptions {
        durable: false,
        params: IndexParams {
            shard_size: 64 << 10,
            ..IndexParams::default()
        },
        ..IndexOptions::default()
    };
    let entries = common::generated_entries(500);
    let idx = IsccIndex::open(Some(dir.path()), options).unwrap();
    let refs: Vec<&Value> = entries.iter().collect();
    idx.add(&refs).unwrap();
    iscc_vdb::testing::fault::fail_next_write_with("manifest.json", libc::ENOSPC);
    let err = idx.save().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DiskFull, "{err}");
    assert!(err.to_string().contains("disk full"), "{err}");
    // Nothing lost: the journal was not trimmed; a retry saves.
    assert!(idx.info().unwrap().journal_pending > 0);
    idx.save().unwrap();
    assert_eq!(idx.info().unwrap().journal_pending, 0);
    idx.close().unwrap();
}
