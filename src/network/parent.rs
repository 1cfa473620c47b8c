//! Parent links, the way Docker's driver handles them: an existing link is used as it is and
//! never deleted; a missing `IFACE.VID` becomes an 802.1q sub-interface of IFACE; no parent
//! means a dummy link. Links the network created are its own: deleted on `network rm`,
//! re-created when missing (after a reboot).

use crate::bail;
use crate::error::{Context, Result};
use crate::link::LinkKind;
use crate::netlink::{Link, Rtnl};
use crate::network::{Network, OwnedParent};

/// Decide the parent of a network being created: fills in `parent` and `parent_owned`.
pub fn plan(rtnl: &Rtnl, net: &mut Network) -> Result<()> {
    if net.parent.is_empty() {
        net.parent = format!("di-{}", &net.id[..12]);
        net.parent_owned = Some(OwnedParent::Dummy);
        return Ok(());
    }
    if let Some(link) = rtnl.link(&net.parent)? {
        check_usable(&link)?;
        return Ok(());
    }
    parse_vlan(&net.parent)?;
    net.parent_owned = Some(OwnedParent::Vlan);
    Ok(())
}

/// The parent link of `net`, created first if the network owns it and it is missing.
pub fn ensure(rtnl: &Rtnl, net: &Network) -> Result<Link> {
    if let Some(link) = rtnl.link(&net.parent)? {
        check_usable(&link)?;
        return Ok(link);
    }
    match net.parent_owned {
        None => bail!(
            "parent interface {} of network {} not found: create it, or recreate the network",
            net.parent,
            net.name
        ),
        Some(OwnedParent::Dummy) => rtnl.add_dummy(&net.parent).with_context(|| {
            format!(
                "cannot create dummy parent {} for network {}",
                net.parent, net.name
            )
        })?,
        Some(OwnedParent::Vlan) => {
            let (base, vid) = parse_vlan(&net.parent)?;
            let Some(base_link) = rtnl.link(base)? else {
                bail!(
                    "cannot create VLAN parent {} for network {}: base interface {base} not found",
                    net.parent,
                    net.name
                );
            };
            rtnl.add_vlan(&net.parent, base_link.index, vid)
                .with_context(|| {
                    format!(
                        "cannot create VLAN {vid} parent {} on {base} for network {}",
                        net.parent, net.name
                    )
                })?;
        }
    }
    match rtnl.link(&net.parent)? {
        Some(link) => Ok(link),
        None => bail!(
            "parent {} of network {} vanished right after it was created",
            net.parent,
            net.name
        ),
    }
}

/// Delete the parent if this network created it. A link that is not what we made (a VLAN with
/// no lower device, a dummy turned into something else) is left alone.
pub fn remove_owned(rtnl: &Rtnl, net: &Network) -> Result<()> {
    let Some(owned) = net.parent_owned else {
        return Ok(());
    };
    let Some(link) = rtnl.link(&net.parent)? else {
        return Ok(());
    };
    let ours = match owned {
        OwnedParent::Vlan => link.kind == Some(LinkKind::Vlan) && link.lower.is_some(),
        OwnedParent::Dummy => link.kind == Some(LinkKind::Dummy),
    };
    if !ours {
        bail!(
            "not deleting {}: it is a {} link now, not the {} parent network {} created",
            net.parent,
            link.kind.map_or("physical".to_string(), |k| k.to_string()),
            if owned == OwnedParent::Vlan {
                "VLAN"
            } else {
                "dummy"
            },
            net.name
        );
    }
    rtnl.del_link(link.index).with_context(|| {
        format!(
            "cannot delete parent {} of network {}",
            net.parent, net.name
        )
    })
}

fn check_usable(link: &Link) -> Result<()> {
    if link.loopback {
        bail!(
            "{} is a loopback interface and cannot be a parent",
            link.name
        );
    }
    if let Some(kind) = link.kind.as_ref().filter(|k| k.is_slave()) {
        bail!(
            "{} is itself an {kind} slave and cannot be a parent",
            link.name
        );
    }
    Ok(())
}

/// `eth0.10` → (`eth0`, 10), with Docker's rules and messages.
pub fn parse_vlan(name: &str) -> Result<(&str, u16)> {
    let Some((base, vid)) = name.rsplit_once('.') else {
        bail!(
            "parent interface {name} not found; to have it created as an 802.1q sub-interface use the form IFACE.VLAN_ID, e.g. eth0.10"
        );
    };
    match vid.parse::<u16>() {
        Ok(v) if (1..=4094).contains(&v) && !base.is_empty() => Ok((base, v)),
        _ => bail!(
            "parent {name}: VLAN id {vid:?} is not valid: use a number from 1 to 4094 (e.g. {}.10)",
            base
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_vlan;

    #[test]
    fn vlan_names() {
        assert_eq!(parse_vlan("eth0.10").unwrap(), ("eth0", 10));
        assert_eq!(parse_vlan("bond0.4094").unwrap(), ("bond0", 4094));
        for bad in ["eth0.0", "eth0.4095", "eth0.x", ".10", "eth0"] {
            assert!(parse_vlan(bad).is_err(), "{bad}");
        }
        assert!(
            parse_vlan("eth0.4095")
                .unwrap_err()
                .to_string()
                .contains("1 to 4094")
        );
    }
}
