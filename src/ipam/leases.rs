//! What both lease stores share: the stored lease record (its encoding, and the checks that
//! make an unreadable one count as corrupt rather than free) and the round-robin cursor file.
//! The per-network lock is `fsutil::lock_file`.

use std::net::IpAddr;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use ipnetwork::IpNetwork;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::store::{LEASE_VERSION, Lease};
use crate::bail;
use crate::error::{Context, Result};
use crate::fsutil::check_name;

/// A stored lease as JSON: a [`Lease`], or a record that carries one (etcd's adds the host).
pub fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(record).context("cannot encode lease data as JSON")
}

/// Whether `lease` may be written to `network`'s store: its container id becomes a path
/// component or key segment, and its network must be the one locked.
pub fn check_writable(lease: &Lease, network: &str) -> Result<()> {
    check_name("container id", &lease.container)?;
    if lease.network != network {
        bail!(
            "lease for network {} cannot be stored on network {network}",
            lease.network
        );
    }
    Ok(())
}

/// Decode the record stored for `addr` on `network`; the error is the reason it counts as
/// corrupt (and so keeps its address occupied).
pub fn decode<T: DeserializeOwned + AsRef<Lease>>(
    bytes: &[u8],
    network: &str,
    addr: IpAddr,
) -> std::result::Result<T, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
    // The version first: a newer record may not even be a lease as this build knows it.
    match value.get("version").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(LEASE_VERSION) => {}
        Some(v) => {
            return Err(format!(
                "lease version {v}, this ipvlan-hook reads version {LEASE_VERSION}"
            ));
        }
        None => return Err("no \"version\" field".to_string()),
    }
    let record: T = serde_json::from_value(value).map_err(|e| format!("not a lease: {e}"))?;
    let lease = record.as_ref();
    if lease.address != addr {
        return Err(format!(
            "it records address {} but is stored as {addr}",
            lease.address
        ));
    }
    if lease.network != network {
        return Err(format!(
            "it records network {} but is stored under network {network}",
            lease.network
        ));
    }
    Ok(record)
}

impl AsRef<Lease> for Lease {
    fn as_ref(&self) -> &Lease {
        self
    }
}

/// The cursor file's name for `pool`: `cursor-10.1.0.0_24` ('/' -> '_').
pub fn cursor_name(pool: &IpNetwork) -> String {
    format!("cursor-{}", pool.to_string().replace('/', "_"))
}

/// The last address handed out, if the cursor file holds one.
pub fn read_cursor(path: &Path) -> Option<IpAddr> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Overwritten in place, padded to one width (an IPv6 address is at most 39 characters) so no
/// older text survives: renaming a new file over it made ext4 (auto_da_alloc) write the file
/// out on every setup, the slowest step of one (docs/benchmark-notes.md). Errors are ignored:
/// a lost, torn or stale cursor only restarts round-robin.
pub fn write_cursor(path: &Path, last: IpAddr) {
    let record = format!("{last:<39}\n");
    if let Ok(file) = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(path)
    {
        let _ = file.write_all_at(record.as_bytes(), 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shorter_cursor_overwrites_a_longer_one() {
        let path = std::env::temp_dir().join(format!("ipvlan-hook-cursor-{}", std::process::id()));
        let v6: IpAddr = "fd00:1234:5678:9abc:def0:1234:5678:9abc"
            .parse()
            .expect("addr");
        let v4: IpAddr = "10.0.0.2".parse().expect("addr");
        assert_eq!(read_cursor(&path), None);
        write_cursor(&path, v6);
        assert_eq!(read_cursor(&path), Some(v6));
        write_cursor(&path, v4);
        assert_eq!(read_cursor(&path), Some(v4));
        let _ = std::fs::remove_file(&path);
        let pool: IpNetwork = "10.1.0.0/24".parse().expect("pool");
        assert_eq!(cursor_name(&pool), "cursor-10.1.0.0_24");
    }
}
