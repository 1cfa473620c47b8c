//! doctor's rows for a network with host access: the link itself, and what on this host can
//! still keep the host and the containers apart (reverse-path filtering, arp_ignore, a firewall
//! that drops by default, NetworkManager taking the link over). All WARN: each says what to do.

use std::path::Path;

use super::Checks;
use crate::netlink::Rtnl;
use crate::network::{HostAccess, Network, host_access};

pub(super) fn check(out: &mut Checks, net: &Network, ha: &HostAccess, rtnl: &Rtnl) {
    let row = format!("host access {}", net.name);
    let addrs: Vec<String> = ha.addresses.iter().map(|a| a.to_string()).collect();
    match host_access::link(rtnl, net) {
        Ok(Some(_)) => out.pass(&row, format!("{} holds {}", ha.name, addrs.join(", "))),
        Ok(None) => out.warn(
            &row,
            format!(
                "{} is missing: it is made again when a container attaches, or by 'ipvlan-hook gc'",
                ha.name
            ),
        ),
        Err(e) => out.fail(&row, e),
    }
    if let Some(detail) = rp_filter(&ha.name) {
        out.warn(format!("{row}: rp_filter"), detail);
    }
    if let Some(detail) = arp_ignore(&net.parent, ha) {
        out.warn(format!("{row}: arp_ignore"), detail);
    }
    let drops = firewall_drops();
    if !drops.is_empty() {
        out.warn(
            format!("{row}: firewall"),
            format!(
                "{} has policy drop: accept what {} receives (e.g. nft insert rule inet filter input iifname {} accept)",
                drops.join(", "),
                ha.name,
                ha.name
            ),
        );
    }
    if let Some(detail) = network_manager(&ha.name) {
        out.warn(format!("{row}: NetworkManager"), detail);
    }
}

fn sysctl(key: &str) -> Option<u32> {
    std::fs::read_to_string(Path::new("/proc/sys").join(key))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Strict reverse-path filtering (the larger of `all` and the link's value is 1) drops what
/// the link receives from addresses the host routes elsewhere.
fn rp_filter(link: &str) -> Option<String> {
    let all = sysctl("net/ipv4/conf/all/rp_filter")?;
    let own = sysctl(&format!("net/ipv4/conf/{link}/rp_filter"))?;
    (all.max(own) == 1).then(|| {
        format!("strict reverse-path filtering on {link}: sysctl -w net.ipv4.conf.{link}.rp_filter=2 (as ipvlan-hook sets it)")
    })
}

/// With arp_ignore 1 or more on the parent (the larger of `all` and the parent's), the host's
/// own addresses are not answered for on the link: containers reach the host only at the
/// link's address.
fn arp_ignore(parent: &str, ha: &HostAccess) -> Option<String> {
    let all = sysctl("net/ipv4/conf/all/arp_ignore")?;
    let own = sysctl(&format!("net/ipv4/conf/{parent}/arp_ignore")).unwrap_or(0);
    let v4: Vec<String> = ha
        .addresses
        .iter()
        .filter(|a| a.is_ipv4())
        .map(|a| a.to_string())
        .collect();
    (all.max(own) >= 1 && !v4.is_empty()).then(|| {
        format!(
            "arp_ignore={} on {parent}: containers reach this host at {} only, not at its other addresses",
            all.max(own),
            v4.join(", ")
        )
    })
}

/// Base chains on the input or forward hook whose policy is drop: nftables' ruleset, or
/// iptables' where nft is not installed.
fn firewall_drops() -> Vec<String> {
    if let Some(text) = output("nft", &["list", "ruleset"]) {
        return nft_drops(&text);
    }
    ["iptables-save", "ip6tables-save"]
        .iter()
        .filter_map(|tool| Some((*tool, output(tool, &[])?)))
        .flat_map(|(tool, text)| iptables_drops(tool, &text))
        .collect()
}

/// The output of a system tool found in the usual places (doctor is run by hand; the hook
/// never runs other programs).
fn output(tool: &str, args: &[&str]) -> Option<String> {
    let path = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.exists())?;
    let out = std::process::Command::new(path).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn nft_drops(ruleset: &str) -> Vec<String> {
    let mut table = "";
    let mut chain = "";
    let mut found = Vec::new();
    for line in ruleset.lines().map(str::trim) {
        if let Some(t) = line.strip_prefix("table ") {
            table = t.trim_end_matches('{').trim();
        } else if let Some(c) = line.strip_prefix("chain ") {
            chain = c.trim_end_matches('{').trim();
        } else if (line.contains("hook input") || line.contains("hook forward"))
            && line.contains("policy drop")
        {
            found.push(format!("nftables chain {table} {chain}"));
        }
    }
    found
}

fn iptables_drops(tool: &str, save: &str) -> Vec<String> {
    save.lines()
        .filter_map(|l| l.strip_prefix(':'))
        .filter(|l| l.starts_with("INPUT DROP") || l.starts_with("FORWARD DROP"))
        .map(|l| {
            let chain = l.split_whitespace().next().unwrap_or_default();
            format!("{tool} chain {chain}")
        })
        .collect()
}

/// NetworkManager, when it runs, may take over a link it did not make (flush its addresses,
/// start DHCP on it) unless its configuration leaves the link alone.
fn network_manager(link: &str) -> Option<String> {
    let running = std::fs::read_dir("/proc").ok()?.flatten().any(|e| {
        std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "NetworkManager")
    });
    if !running {
        return None;
    }
    let dirs = [
        "/etc/NetworkManager/conf.d",
        "/run/NetworkManager/conf.d",
        "/usr/lib/NetworkManager/conf.d",
    ];
    let files = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|entries| entries.flatten().map(|e| e.path()))
        .chain(std::iter::once(
            Path::new("/etc/NetworkManager/NetworkManager.conf").to_path_buf(),
        ));
    let left_alone = files
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .any(|text| unmanaged(&text, link));
    (!left_alone).then(|| {
        format!(
            "NetworkManager runs and no unmanaged-devices setting covers {link}: add '[keyfile]' and 'unmanaged-devices=interface-name:ha-*' to /etc/NetworkManager/conf.d/ipvlan-hook.conf, then nmcli general reload"
        )
    })
}

/// Does an `unmanaged-devices=` line name `link` (or `ha-*`)?
fn unmanaged(conf: &str, link: &str) -> bool {
    conf.lines()
        .filter_map(|l| l.trim().strip_prefix("unmanaged-devices="))
        .flat_map(|v| v.split(';'))
        .filter_map(|spec| spec.trim().strip_prefix("interface-name:"))
        .any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => link.starts_with(prefix),
            None => pattern == link,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_policies_on_input_and_forward_are_found() {
        let ruleset = "table inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t}\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n\t}\n\tchain output {\n\t\ttype filter hook output priority filter; policy drop;\n\t}\n}\ntable ip nat {\n\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t}\n}\n";
        assert_eq!(nft_drops(ruleset), ["nftables chain inet filter input"]);
        let save =
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";
        assert_eq!(
            iptables_drops("iptables-save", save),
            ["iptables-save chain FORWARD"]
        );
    }

    #[test]
    fn unmanaged_devices_patterns() {
        let conf = "[keyfile]\nunmanaged-devices=mac:00:11:22:33:44:55;interface-name:ha-*\n";
        assert!(unmanaged(conf, "ha-lan"));
        assert!(!unmanaged(conf, "eth0"));
        assert!(unmanaged(
            "unmanaged-devices=interface-name:ha-lan",
            "ha-lan"
        ));
        assert!(!unmanaged(
            "unmanaged-devices=interface-name:ha-lan",
            "ha-lan2"
        ));
    }
}
