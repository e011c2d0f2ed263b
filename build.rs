//! Build script: the git commit the binary is built from, for `pipework --version`.
//!
//! `PIPEWORK_GIT_COMMIT` in the environment wins (a build from a tarball that knows
//! its commit); otherwise `git rev-parse` in the source tree; a tree without git
//! (a tarball, `cargo install` from the registry) says `unknown`.

use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

/// Re-run the build script when this git file changes; a missing one (no packed-refs
/// yet) is left out, as cargo would otherwise re-run the script on every build.
fn watch(dir: &Path, git_path: &str) {
    if let Some(f) = git(dir, &["rev-parse", "--path-format=absolute", "--git-path", git_path]) {
        if Path::new(&f).exists() {
            println!("cargo:rerun-if-changed={f}");
        }
    }
}

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&dir);
    println!("cargo:rerun-if-env-changed=PIPEWORK_GIT_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
    let commit = match std::env::var("PIPEWORK_GIT_COMMIT") {
        Ok(c) if !c.is_empty() => c,
        _ => match git(dir, &["rev-parse", "--short=12", "HEAD"]) {
            Some(c) => {
                // Re-run when HEAD moves: HEAD itself (a checkout), the branch's ref (a
                // commit) and packed-refs. `--git-path` finds them in a worktree too.
                watch(dir, "HEAD");
                watch(dir, "packed-refs");
                if let Some(r) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
                    watch(dir, &r);
                }
                c
            }
            None => "unknown".to_string(),
        },
    };
    // The man page's date: the commit's, so that a rebuild gives the same page.
    let date = match commit.as_str() {
        "unknown" => None,
        c => git(dir, &["show", "-s", "--format=%cs", c]),
    };
    println!("cargo:rustc-env=PIPEWORK_COMMIT_DATE={}", date.as_deref().unwrap_or("unknown date"));
    let version = std::env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION");
    println!("cargo:rustc-env=PIPEWORK_VERSION_LINE={version} (commit {commit})");
}
