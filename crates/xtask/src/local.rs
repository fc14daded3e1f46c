//! `.local/`: where the project-local Redis and Postgres keep their data, logs, pid and port
//! files between runs. The paths are those the bash version used, so an existing `.local/`
//! (and servers it started) keep working.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{postgres, redis};

pub struct Local {
    /// The repository (the workspace root), where `scripts/` lives.
    pub repo: PathBuf,
    /// `repo/.local`.
    pub dir: PathBuf,
}

impl Local {
    /// The repository this xtask was run in: `cargo run` sets `CARGO_MANIFEST_DIR` (this crate's
    /// directory) for the process; the compile-time value is only the fallback, since one
    /// target directory may serve several clones.
    pub fn of_repo() -> Self {
        let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
        let repo = manifest.join("../..");
        let repo = repo.canonicalize().unwrap_or(repo);
        let dir = repo.join(".local");
        Self { repo, dir }
    }

    pub fn redis_dir(&self) -> PathBuf {
        self.dir.join("redis")
    }

    pub fn redis_port_file(&self) -> PathBuf {
        self.dir.join("redis.port")
    }

    /// Where the Postgres cluster lives (its data, log and socket directory): `.local/`, unless
    /// an earlier run had to move it (see `postgres::move_home_if_unreachable`) and said where
    /// in `.local/pg.home`.
    pub fn pg_home(&self) -> PathBuf {
        std::fs::read_to_string(self.pg_home_file())
            .ok()
            .and_then(|text| text.lines().next().map(str::to_owned))
            .filter(|line| !line.is_empty())
            .map_or_else(|| self.dir.clone(), PathBuf::from)
    }

    pub fn pg_home_file(&self) -> PathBuf {
        self.dir.join("pg.home")
    }

    pub fn pg_data(&self) -> PathBuf {
        self.pg_home().join("pg")
    }

    pub fn pg_port_file(&self) -> PathBuf {
        self.dir.join("pg.port")
    }

    /// A name unique to this checkout, for directories that cannot live inside it: the POSIX
    /// `cksum` of `.local`'s path, as the bash version computed it, so the names stay the same.
    pub fn checksum(&self) -> String {
        let mut child = Command::new("cksum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("cksum runs (coreutils)");
        let path = self.dir.to_string_lossy().into_owned();
        child.stdin.take().unwrap().write_all(path.as_bytes()).unwrap();
        let out = child.wait_with_output().expect("cksum runs");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap_or("0")
            .to_owned()
    }
}

/// `scripts/down`: stop our servers and the local Redis Cluster; with `purge`, delete their data.
pub fn down(local: &Local, purge: bool) -> Result<(), String> {
    let redis = redis::stop(local);
    let postgres = postgres::stop(local)?;
    if !redis && !postgres {
        eprintln!("services: no local instances running under .local/");
    }
    // Its nodes keep nothing on disk: stopping it deletes it, with or without --purge.
    let cluster = Command::new(local.repo.join("scripts/cluster"))
        .arg("stop")
        .status()
        .map_err(|e| format!("scripts/cluster stop: {e}"))?;
    if !cluster.success() {
        return Err("scripts/cluster stop failed".to_owned());
    }
    if purge {
        let home = local.pg_home();
        if home != local.dir {
            remove(&home); // the cluster had to live outside .local/ (see postgres.rs)
        }
        for name in [
            "pg.home",
            "redis",
            "redis.port",
            "pg",
            "pg.port",
            "pg.log",
            "pg-initdb.log",
            "pg-run",
            "coupon-issuer.log",
        ] {
            remove(&local.dir.join(name));
        }
        let _ = std::fs::remove_dir(&local.dir);
        eprintln!("services: removed local data under .local/");
    }
    Ok(())
}

fn remove(path: &Path) {
    let _ = std::fs::remove_dir_all(path).or_else(|_| std::fs::remove_file(path));
}
