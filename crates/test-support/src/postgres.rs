//! The one way this project finds, initialises, starts and stops a Postgres cluster of its own:
//! the tests' throwaway clusters ([`crate::OwnPostgres`]) and the developer's persistent one under
//! `.local/` (`cargo xtask services`) both go through here.
//!
//! Two facts shape it. Debian keeps `initdb` and `pg_ctl` out of `PATH`, under
//! `/usr/lib/postgresql/N/bin`. And both refuse to run as root: as root the cluster belongs to
//! another user ([`Owner`]), and every tool runs as that user.
//!
//! Failures are returned as text (the tool's own output included), not panics: the tests turn
//! them into panics, the xtask into an error message for the developer.

use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where `initdb`, `pg_ctl` and `postgres` are. `prefer` is the version an existing data
/// directory was made with (its `PG_VERSION`): a cluster only starts with the major version that
/// created it. Else the highest `/usr/lib/postgresql/N/bin`, else whatever is on `PATH`.
pub fn bin_dir(prefer: Option<&str>) -> Option<PathBuf> {
    let debian = Path::new("/usr/lib/postgresql");
    if let Some(version) = prefer {
        let dir = debian.join(version).join("bin");
        if dir.join("pg_ctl").exists() {
            return Some(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(debian)
        .map(|dirs| dirs.flatten().map(|d| d.path()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|dir| {
            let name = dir.file_name()?.to_str()?;
            let major: u32 = name.split('.').next()?.parse().ok()?;
            let bin = dir.join("bin");
            let complete = ["initdb", "pg_ctl", "postgres"].iter().all(|t| bin.join(t).exists());
            complete.then_some((major, bin))
        })
        .collect();
    // By number: "9.6" sorts after "15" as text.
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists())
}

/// The version a data directory was made with, from its `PG_VERSION` file.
pub fn data_version(data: &Path) -> Option<String> {
    let text = std::fs::read_to_string(data.join("PG_VERSION")).ok()?;
    let version: String = text.chars().filter(|c| c.is_ascii_digit() || *c == '.').collect();
    (!version.is_empty()).then_some(version)
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The user a cluster runs as: ourselves, unless we are root.
pub struct Owner {
    /// `None`: the current user. Else the name and uid of the user the tools run as.
    other: Option<(String, u32)>,
}

impl Owner {
    /// Who owns (or will own) the cluster in `data`. As root: the user who already owns `data`,
    /// else `postgres`, else a system user `coupon-pg` created for the purpose (a machine with
    /// the server binaries unpacked by hand may have no `postgres` user).
    pub fn for_data(data: &Path) -> Result<Self, String> {
        use std::os::unix::fs::MetadataExt;
        if !is_root() {
            return Ok(Self { other: None });
        }
        let by_uid = |uid: u32| {
            nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                .ok()
                .flatten()
        };
        let by_name = |name: &str| nix::unistd::User::from_name(name).ok().flatten();
        let user = match std::fs::metadata(data) {
            Ok(meta) if meta.is_dir() && meta.uid() != 0 => by_uid(meta.uid()),
            _ => None,
        };
        let user = match user.or_else(|| by_name("postgres")) {
            Some(user) => user,
            None => {
                let name = "coupon-pg";
                if by_name(name).is_none() {
                    eprintln!("postgres: creating system user {name} to own the local cluster");
                    let status = Command::new("useradd")
                        .args(["--system", "--no-create-home", "--home-dir", "/nonexistent"])
                        .args(["--shell", "/usr/sbin/nologin", name])
                        .status()
                        .map_err(|e| format!("useradd: {e}"))?;
                    if !status.success() {
                        return Err(format!("useradd {name} failed"));
                    }
                }
                by_name(name).ok_or_else(|| format!("no user {name} after useradd"))?
            }
        };
        Ok(Self {
            other: Some((user.name, user.uid.as_raw())),
        })
    }

    /// The user's name, for messages.
    pub fn name(&self) -> String {
        match &self.other {
            Some((name, _)) => name.clone(),
            None => nix::unistd::User::from_uid(nix::unistd::geteuid())
                .ok()
                .flatten()
                .map_or_else(|| "?".to_owned(), |u| u.name),
        }
    }

    /// True when the cluster runs as someone other than us (so files need `chown`).
    pub fn is_other(&self) -> bool {
        self.other.is_some()
    }

    /// `program`, run as the owner: through `runuser` when that is another user, from `/`
    /// (the owner may not be allowed into our current directory).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        match &self.other {
            None => Command::new(program),
            Some((name, _)) => {
                let mut command = Command::new("runuser");
                command.args(["-u", name, "--"]).arg(program).current_dir("/");
                command
            }
        }
    }

    /// Hands `path` to the owner (nothing to do when that is us).
    pub fn chown(&self, path: &Path) -> Result<(), String> {
        match &self.other {
            None => Ok(()),
            Some((_, uid)) => chown(path, Some(*uid), None).map_err(|e| format!("chown {}: {e}", path.display())),
        }
    }

    /// Whether the owner may enter `dir` (a repository under `/root` is out of its reach).
    pub fn can_enter(&self, dir: &Path) -> bool {
        self.command("test")
            .arg("-x")
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success())
    }
}

/// Runs `bin/tool args` as `owner`; on failure, the error holds the tool's output.
/// On success, returns that output (initdb's is worth a log file).
pub fn run(bin: &Path, owner: &Owner, tool: &str, args: &[&str]) -> Result<String, String> {
    let out = owner
        .command(bin.join(tool))
        .args(args)
        .output()
        .map_err(|e| format!("{tool}: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{tool} {args:?} failed: {text}"))
    }
}

/// `initdb` into `data` (which the owner must be able to write): trust authentication for the
/// superuser `postgres`, UTF-8. `extra` adds e.g. `--no-sync` for a throwaway cluster.
pub fn initdb(bin: &Path, owner: &Owner, data: &Path, extra: &[&str]) -> Result<String, String> {
    let data = data.to_str().ok_or("data directory is not UTF-8")?;
    let mut args = vec!["--auth=trust", "-U", "postgres", "-D", data, "--encoding=UTF8"];
    args.extend_from_slice(extra);
    run(bin, owner, "initdb", &args)
}

/// `pg_ctl start`, waiting until it accepts connections: on 127.0.0.1:`port`, its Unix socket in
/// `socket_dir`, its log in `log`. `settings` are more server options (`-c name=value ...`).
pub fn start(
    bin: &Path,
    owner: &Owner,
    data: &Path,
    log: &Path,
    port: u16,
    socket_dir: &Path,
    settings: &str,
) -> Result<(), String> {
    let options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 {settings}",
        socket_dir.display()
    );
    let data = data.to_str().ok_or("data directory is not UTF-8")?;
    let log = log.to_str().ok_or("log path is not UTF-8")?;
    let args = [
        "-D",
        data,
        "-l",
        log,
        "-w",
        "-t",
        "60",
        "-o",
        options.trim_end(),
        "start",
    ];
    run(bin, owner, "pg_ctl", &args).map(drop)
}

/// `pg_ctl stop`: `mode` is `fast` (a clean stop) or `immediate` (as a crash would).
pub fn stop(bin: &Path, owner: &Owner, data: &Path, mode: &str) -> Result<(), String> {
    let data = data.to_str().ok_or("data directory is not UTF-8")?;
    run(
        bin,
        owner,
        "pg_ctl",
        &["-D", data, "-m", mode, "-w", "-t", "60", "stop"],
    )
    .map(drop)
}
