//! A reachable Postgres: `DATABASE_URL` (default postgres://postgres@127.0.0.1:5432/coupon_issuer)
//! when its server answers, else our own cluster on 127.0.0.1:5440.., its data in `.local/pg`,
//! left running for the next command (`cargo xtask down` stops it). The database itself need not
//! exist: the service creates it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use coupon_test_support::postgres::{self as pg, Owner};

use crate::apt::{self, on_path};
use crate::local::Local;
use crate::probe;

/// Makes sure a Postgres answers; returns the URL of the wanted database on it.
pub fn ensure(local: &Local) -> Result<String, String> {
    let url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/coupon_issuer".to_owned());
    let port_file = local.pg_port_file();

    if !on_path("psql") {
        apt::install(&["postgresql-client"])?;
    }
    let db = database_name(&url);
    if answers(&admin_url(&url)) {
        eprintln!("postgres: using {url} (already running)");
        return Ok(url);
    }

    // A local instance from an earlier run?
    let data = local.pg_data();
    if probe::live_pid(&data.join("postmaster.pid")).is_some()
        && let Some(port) = probe::read_port(&port_file)
        && answers(&local_url(port, "postgres"))
    {
        eprintln!(
            "postgres: {url} not reachable; reusing local instance on 127.0.0.1:{port} ({})",
            data.display()
        );
        return Ok(local_url(port, &db));
    }

    eprintln!("postgres: {url} not reachable; starting a local instance");
    let bin = match pg::bin_dir(pg::data_version(&data).as_deref()) {
        Some(bin) => bin,
        None => {
            apt::install(&["postgresql", "postgresql-client"])?;
            pg::bin_dir(None).ok_or("postgres: no initdb/pg_ctl found even after installing postgresql")?
        }
    };
    mkdir(&local.dir)?;
    let owner = Owner::for_data(&data)?;
    move_home_if_unreachable(local, &owner)?;
    let home = local.pg_home();
    let data = home.join("pg");
    let log = home.join("pg.log");

    let socket_dir = socket_dir(local, &home);
    mkdir(&socket_dir)?;
    if !log.exists() {
        std::fs::write(&log, "").map_err(|e| format!("{}: {e}", log.display()))?;
    }
    if owner.is_other() {
        // The cluster's owner must be able to reach and write these.
        if !owner.can_enter(&home) {
            return Err(format!(
                "postgres: user {} cannot enter {}",
                owner.name(),
                home.display()
            ));
        }
        owner.chown(&socket_dir)?;
        owner.chown(&log)?;
    }

    if pg::data_version(&data).is_none() {
        mkdir(&data)?;
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
        owner.chown(&data)?;
        eprintln!(
            "postgres: initdb in {} ({}, owner {})",
            data.display(),
            bin.display(),
            owner.name()
        );
        let initdb_log = local.dir.join("pg-initdb.log");
        let result = pg::initdb(&bin, &owner, &data, &["--locale=C"]);
        let _ = std::fs::write(&initdb_log, result.as_ref().unwrap_or_else(|e| e));
        if result.is_err() {
            eprintln!("{}", probe::tail(&initdb_log, 20));
            return Err("postgres: initdb failed (see .local/pg-initdb.log)".to_owned());
        }
    }

    // Reuse the previous port when it is still free.
    let port = match probe::read_port(&port_file).filter(|&p| probe::port_free(p)) {
        Some(port) => port,
        None => probe::free_port_from(5440)?,
    };
    if let Err(e) = pg::start(&bin, &owner, &data, &log, port, &socket_dir, "") {
        eprintln!("{e}\n{}", probe::tail(&log, 20));
        return Err(format!("postgres: pg_ctl start failed (see {})", log.display()));
    }
    std::fs::write(&port_file, format!("{port}\n")).map_err(|e| format!("{}: {e}", port_file.display()))?;
    if !answers(&local_url(port, "postgres")) {
        eprintln!("{}", probe::tail(&log, 20));
        return Err(format!("postgres: local instance on port {port} does not answer"));
    }
    eprintln!(
        "postgres: started local instance on 127.0.0.1:{port} ({})",
        data.display()
    );
    Ok(local_url(port, &db))
}

/// Stops our own cluster (`pg_ctl stop -m fast` on our data directory, nothing else). True when
/// it stopped one.
pub fn stop(local: &Local) -> Result<bool, String> {
    let data = local.pg_data();
    if probe::live_pid(&data.join("postmaster.pid")).is_none() {
        return Ok(false);
    }
    let bin = pg::bin_dir(pg::data_version(&data).as_deref())
        .ok_or_else(|| format!("postgres: cannot find pg_ctl to stop {}", data.display()))?;
    let owner = Owner::for_data(&data)?;
    pg::stop(&bin, &owner, &data, "fast")
        .map_err(|e| format!("postgres: pg_ctl stop failed for {}: {e}", data.display()))?;
    eprintln!("postgres: stopped local instance ({})", data.display());
    Ok(true)
}

/// As root, the cluster runs as another user, who must be able to enter its home. A repository
/// under /root (mode 700 on Debian) is out of its reach: then the cluster lives under /var/tmp
/// instead, in a directory named after this checkout, remembered in `.local/pg.home`.
fn move_home_if_unreachable(local: &Local, owner: &Owner) -> Result<(), String> {
    if !owner.is_other() {
        return Ok(());
    }
    let home = local.pg_home();
    mkdir(&home)?;
    if owner.can_enter(&home) {
        return Ok(());
    }
    let home = PathBuf::from(format!("/var/tmp/coupon-issuer-pg-{}", local.checksum()));
    mkdir(&home)?;
    owner.chown(&home)?;
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
    std::fs::write(local.pg_home_file(), format!("{}\n", home.display())).map_err(|e| e.to_string())?;
    eprintln!(
        "postgres: user {} cannot enter {}; keeping the local cluster in {}",
        owner.name(),
        local.dir.display(),
        home.display()
    );
    Ok(())
}

/// The directory for the cluster's Unix socket: a socket path is limited to ~107 bytes.
fn socket_dir(local: &Local, home: &Path) -> PathBuf {
    let dir = home.join("pg-run");
    if dir.as_os_str().len() > 90 {
        let uid = nix::unistd::geteuid();
        return PathBuf::from(format!("/tmp/coupon-issuer-pg-{uid}-{}", local.checksum()));
    }
    dir
}

fn mkdir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))
}

fn local_url(port: u16, db: &str) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/{db}")
}

/// Whether the server answers `select 1`, through `psql`, which understands every URL the
/// service accepts (TLS parameters included).
fn answers(url: &str) -> bool {
    Command::new("timeout")
        .args(["10", "psql", url, "-XAtq", "-c", "select 1"])
        .env("PGCONNECT_TIMEOUT", "5")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The same server and user, database `postgres`: the wanted database may not exist yet.
pub fn admin_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, format!("?{query}")),
        None => (rest, String::new()),
    };
    let authority = rest.split('/').next().unwrap_or_default();
    format!("{scheme}://{authority}/postgres{query}")
}

/// The database `url` names (default `coupon_issuer`).
fn database_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.split('?').next().unwrap_or_default();
    match rest.split_once('/') {
        Some((_, db)) if !db.is_empty() => db.to_owned(),
        _ => "coupon_issuer".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_url_keeps_server_user_and_query() {
        assert_eq!(
            admin_url("postgres://u:p@h:5432/coupon_issuer?sslmode=require"),
            "postgres://u:p@h:5432/postgres?sslmode=require"
        );
        assert_eq!(
            admin_url("postgres://postgres@127.0.0.1:5440"),
            "postgres://postgres@127.0.0.1:5440/postgres"
        );
    }

    #[test]
    fn database_name_defaults_to_the_services() {
        assert_eq!(database_name("postgres://h/db?x=1"), "db");
        assert_eq!(database_name("postgres://h/"), "coupon_issuer");
        assert_eq!(database_name("postgres://h"), "coupon_issuer");
    }
}
