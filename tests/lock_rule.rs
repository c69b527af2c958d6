//! The lock rule of `src/sync.rs`, checked on the source: no guard held
//! across parallel work. A guard bound by `let` (from `.read()`, `.write()`,
//! `lock(..)`, `read_lock(..)`, `write_lock(..)`) is live until its block
//! closes or it is dropped by name; a parallel call (`par_iter`,
//! `par_chunks`, `rayon::join`, `rayon::scope`, `.install(`, `on_pool(`,
//! `search_split`) while one is live fails the test, naming both lines.
//! A heuristic of the source's shape, not a proof: it catches the
//! pattern that deadlocked (a guard, then parallel work in its scope).

use std::path::{Path, PathBuf};

const PARALLEL: [&str; 8] = [
    "par_iter",
    "par_chunks",
    "rayon::join",
    "rayon::scope",
    ".install(",
    "on_pool(",
    "search_split(",
    "into_par_iter",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The guard name a line binds, if it takes one (`let [mut] name = …`).
fn guard_bound(line: &str) -> Option<String> {
    let rest = line.trim_start().strip_prefix("let ")?;
    let rest = rest.strip_prefix("mut ").unwrap_or(rest);
    let (name, value) = rest.split_once(" = ")?;
    let name = name.split(':').next()?.trim();
    if name.starts_with('(') {
        return None; // a tuple of values read under a guard, not a guard
    }
    let value = value.trim_end();
    let takes = value.ends_with(".read();")
        || value.ends_with(".write();")
        || value.ends_with(");") && value.contains("lock(");
    takes.then(|| name.to_string())
}

fn violations(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    // (name, depth it lives at, line it was taken)
    let mut live: Vec<(String, i64, usize)> = Vec::new();
    let mut depth: i64 = 0;
    let mut in_tests = false;
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        if code.contains("#[cfg(test)]") {
            in_tests = true;
        }
        if in_tests {
            continue;
        }
        if let Some(name) = guard_bound(code) {
            live.push((name, depth, i + 1));
        }
        live.retain(|(name, _, _)| !code.contains(&format!("drop({name})")));
        if PARALLEL.iter().any(|p| code.contains(p)) {
            for (name, _, at) in &live {
                found.push(format!(
                    "line {}: parallel work while guard `{name}` (line {at}) is held",
                    i + 1
                ));
            }
        }
        depth += code.matches('{').count() as i64 - code.matches('}').count() as i64;
        live.retain(|(_, d, _)| depth >= *d);
    }
    found
}

#[test]
fn no_guard_is_held_across_parallel_work() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 50, "the source tree was not found");
    let mut all = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read source");
        for v in violations(&text) {
            all.push(format!("{}: {v}", file.display()));
        }
    }
    assert!(
        all.is_empty(),
        "the lock rule is broken:\n{}",
        all.join("\n")
    );
}

#[test]
fn the_check_finds_a_guard_across_parallel_work() {
    let bad = "fn f(&self) {\n    let state = self.state.read();\n    rows.par_iter().map(|r| state.get(r)).count();\n}\n";
    assert_eq!(violations(bad).len(), 1);
    let dropped = "fn f(&self) {\n    let state = self.state.read();\n    drop(state);\n    rows.par_iter().count();\n}\n";
    assert!(violations(dropped).is_empty());
    let scoped = "fn f(&self) {\n    {\n        let g = lock(&self.m);\n    }\n    rayon::join(|| (), || ());\n}\n";
    assert!(violations(scoped).is_empty());
}
