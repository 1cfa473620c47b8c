//! The vocabulary of links that network definitions and the kernel share: the driver, mode
//! and flag a network asks for, and the kind a link reads back as. A leaf, so `netlink` (which
//! speaks it to the kernel) and `network` (which stores it in network files) both import it.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    #[default]
    Ipvlan,
    Macvlan,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    L2,
    L3,
    L3s,
}

/// ipvlan port flag; for macvlan the same words select the macvlan mode.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Flag {
    #[default]
    Bridge,
    Private,
    Vepa,
}

/// A unicast Ethernet address a container interface asks for (`02:42:ac:11:00:02`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mac(pub [u8; 6]);

impl std::str::FromStr for Mac {
    type Err = String;

    fn from_str(s: &str) -> Result<Mac, String> {
        let bad =
            || format!("{s:?} is not a MAC address: use six hex bytes, e.g. 02:42:ac:11:00:02");
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut out {
            let p = parts.next().filter(|p| p.len() == 2).ok_or_else(bad)?;
            *byte = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        if out[0] & 1 == 1 || out == [0; 6] {
            return Err(format!(
                "{s} is a multicast or all-zero address: an interface needs a unicast one (first byte even, e.g. 02:...)"
            ));
        }
        Ok(Mac(out))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// What kind of link the kernel says a link is (`IFLA_INFO_KIND`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkKind {
    Ipvlan,
    Macvlan,
    Vlan,
    Dummy,
    Veth,
    Other(String),
}

impl LinkKind {
    /// A slave of another link, as the hook creates for containers: never a parent.
    pub fn is_slave(&self) -> bool {
        matches!(self, LinkKind::Ipvlan | LinkKind::Macvlan)
    }

    /// What to tell an operator whose kernel cannot create this kind of link.
    pub fn unsupported(&self) -> String {
        let (what, config, module) = match self {
            LinkKind::Ipvlan => ("ipvlan", "CONFIG_IPVLAN", "ipvlan"),
            LinkKind::Macvlan => ("macvlan", "CONFIG_MACVLAN", "macvlan"),
            LinkKind::Vlan => ("802.1q VLAN", "CONFIG_VLAN_8021Q", "8021q"),
            LinkKind::Dummy => ("dummy", "CONFIG_DUMMY", "dummy"),
            LinkKind::Veth => ("veth", "CONFIG_VETH", "veth"),
            LinkKind::Other(k) => (k.as_str(), "its driver", k.as_str()),
        };
        format!(
            "kernel lacks {what} support ({config}): load the {module} module (modprobe {module})"
        )
    }
}

impl From<Driver> for LinkKind {
    fn from(d: Driver) -> LinkKind {
        match d {
            Driver::Ipvlan => LinkKind::Ipvlan,
            Driver::Macvlan => LinkKind::Macvlan,
        }
    }
}

impl fmt::Display for LinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkKind::Ipvlan => "ipvlan",
            LinkKind::Macvlan => "macvlan",
            LinkKind::Vlan => "vlan",
            LinkKind::Dummy => "dummy",
            LinkKind::Veth => "veth",
            LinkKind::Other(k) => k,
        })
    }
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        LinkKind::from(*self).fmt(f)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::L2 => "l2",
            Mode::L3 => "l3",
            Mode::L3s => "l3s",
        })
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flag::Bridge => "bridge",
            Flag::Private => "private",
            Flag::Vepa => "vepa",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_addresses() {
        let m: Mac = "02:42:AC:11:00:02".parse().unwrap();
        assert_eq!(m.to_string(), "02:42:ac:11:00:02");
        for bad in [
            "",
            "02:42:ac:11:00",
            "02:42:ac:11:00:02:03",
            "2:42:ac:11:00:02",
            "zz:42:ac:11:00:02",
        ] {
            assert!(
                bad.parse::<Mac>().unwrap_err().contains("not a MAC"),
                "{bad}"
            );
        }
        assert!(
            "01:00:5e:00:00:01"
                .parse::<Mac>()
                .unwrap_err()
                .contains("multicast")
        );
        assert!(
            "00:00:00:00:00:00"
                .parse::<Mac>()
                .unwrap_err()
                .contains("all-zero")
        );
    }

    #[test]
    fn missing_driver_message_names_the_module() {
        assert_eq!(
            LinkKind::Ipvlan.unsupported(),
            "kernel lacks ipvlan support (CONFIG_IPVLAN): load the ipvlan module (modprobe ipvlan)"
        );
        assert_eq!(
            LinkKind::Vlan.unsupported(),
            "kernel lacks 802.1q VLAN support (CONFIG_VLAN_8021Q): load the 8021q module (modprobe 8021q)"
        );
    }
}
