//! Docker's way of saying the same things `network create` has long options for: driver
//! options (`-o KEY=VALUE`) and `--aux-address NAME=IP`. Pure: the words become settings, or
//! one error naming the word; nothing is written before they all agree.

use std::net::IpAddr;

use crate::bail;
use crate::error::Result;
use crate::link::{Driver, Flag, Mode};

/// The `-o` keys Docker's ipvlan and macvlan drivers know, and what each takes.
const KEYS: &[(&str, &str)] = &[
    ("parent", "a link name"),
    ("ipvlan_mode", "l2, l3 or l3s"),
    ("ipvlan_flag", "bridge, private or vepa"),
    ("macvlan_mode", "bridge, private or vepa"),
    (MTU_KEY, "a number from 68 to 65535"),
];

const MTU_KEY: &str = "com.docker.network.driver.mtu";

/// The settings `-o` gave, each at most once.
#[derive(Debug, Default, PartialEq)]
pub struct DriverOpts {
    pub parent: Option<String>,
    pub ipvlan_mode: Option<Mode>,
    pub ipvlan_flag: Option<Flag>,
    pub macvlan_mode: Option<Flag>,
    pub mtu: Option<u32>,
}

impl DriverOpts {
    /// Parse `KEY=VALUE` words. A key given twice must say the same both times.
    pub fn parse(words: &[String]) -> Result<DriverOpts> {
        let mut o = DriverOpts::default();
        for word in words {
            let Some((key, value)) = word.split_once('=') else {
                bail!("-o {word}: use -o KEY=VALUE (keys: {})", key_list());
            };
            let Some((_, takes)) = KEYS.iter().find(|(k, _)| *k == key) else {
                bail!(
                    "-o {word}: unknown option {key:?}; the ipvlan and macvlan drivers take {}",
                    key_list()
                );
            };
            let bad = || crate::error::Error::msg(format!("-o {word}: use {takes}"));
            match key {
                "parent" => set(&mut o.parent, key, value.to_string())?,
                "ipvlan_mode" => set(
                    &mut o.ipvlan_mode,
                    key,
                    clap::ValueEnum::from_str(value, false).map_err(|_| bad())?,
                )?,
                "ipvlan_flag" => set(&mut o.ipvlan_flag, key, enum_value(value).ok_or_else(bad)?)?,
                "macvlan_mode" if value == "passthru" => bail!(
                    "-o macvlan_mode=passthru is not supported: it hands the parent's one link to a single container; use bridge, private or vepa"
                ),
                "macvlan_mode" => {
                    set(&mut o.macvlan_mode, key, enum_value(value).ok_or_else(bad)?)?
                }
                _ => set(&mut o.mtu, key, value.parse().map_err(|_| bad())?)?,
            }
        }
        Ok(o)
    }

    /// The flag (ipvlan) or macvlan mode these options set for `driver`; an option of the other
    /// driver is an error.
    pub fn flag_for(&self, driver: Driver) -> Result<Option<Flag>> {
        match driver {
            Driver::Ipvlan if self.macvlan_mode.is_some() => bail!(
                "-o macvlan_mode is an option of the macvlan driver: use -o ipvlan_flag with -d ipvlan, or -d macvlan"
            ),
            Driver::Macvlan if self.ipvlan_mode.is_some() || self.ipvlan_flag.is_some() => bail!(
                "-o ipvlan_mode and -o ipvlan_flag are options of the ipvlan driver: use -o macvlan_mode with -d macvlan, or -d ipvlan"
            ),
            Driver::Ipvlan => Ok(self.ipvlan_flag),
            Driver::Macvlan => Ok(self.macvlan_mode),
        }
    }
}

fn key_list() -> String {
    let keys: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
    keys.join(", ")
}

fn enum_value<T: clap::ValueEnum>(value: &str) -> Option<T> {
    T::from_str(value, false).ok()
}

fn set<T: PartialEq + std::fmt::Display>(slot: &mut Option<T>, key: &str, value: T) -> Result<()> {
    match slot {
        Some(old) if *old != value => {
            bail!("-o {key} given twice, as {old} and {value}: give it once")
        }
        _ => {
            *slot = Some(value);
            Ok(())
        }
    }
}

/// A setting given both as a long option and as `-o`: they must agree.
pub fn merge<T: PartialEq + std::fmt::Display>(
    long: (&str, Option<T>),
    opt: (&str, Option<T>),
) -> Result<Option<T>> {
    match (long.1, opt.1) {
        (Some(a), Some(b)) if a != b => bail!(
            "{} {a} contradicts -o {}={b}: give one of them",
            long.0,
            opt.0
        ),
        (a, b) => Ok(a.or(b)),
    }
}

/// `--aux-address NAME=IP`: an address of the subnet that is never handed out (a router, a
/// printer already there). Names are unique.
pub fn parse_aux(words: &[String]) -> Result<Vec<(String, IpAddr)>> {
    let mut out: Vec<(String, IpAddr)> = Vec::new();
    for word in words {
        let parsed = word
            .split_once('=')
            .and_then(|(n, ip)| Some((n, ip.parse::<IpAddr>().ok()?)))
            .filter(|(n, _)| !n.is_empty());
        let Some((name, ip)) = parsed else {
            bail!("--aux-address {word}: use NAME=IP, e.g. --aux-address router=192.168.1.5");
        };
        if let Some((_, other)) = out.iter().find(|(n, _)| n == name) {
            bail!(
                "--aux-address name {name} given twice ({other} and {ip}): give each a name of its own"
            );
        }
        out.push((name.to_string(), ip));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(words: &[&str]) -> Result<DriverOpts> {
        DriverOpts::parse(&words.iter().map(|w| w.to_string()).collect::<Vec<_>>())
    }

    fn err(words: &[&str]) -> String {
        opts(words).unwrap_err().to_string()
    }

    #[test]
    fn docker_keys() {
        let o = opts(&[
            "parent=eth0.20",
            "ipvlan_mode=l3",
            "ipvlan_flag=private",
            "com.docker.network.driver.mtu=1400",
            "parent=eth0.20",
        ])
        .unwrap();
        assert_eq!(o.parent.as_deref(), Some("eth0.20"));
        assert_eq!(
            (o.ipvlan_mode, o.ipvlan_flag),
            (Some(Mode::L3), Some(Flag::Private))
        );
        assert_eq!(o.mtu, Some(1400));
        assert_eq!(o.flag_for(Driver::Ipvlan).unwrap(), Some(Flag::Private));
        assert!(
            o.flag_for(Driver::Macvlan)
                .unwrap_err()
                .to_string()
                .contains("ipvlan driver")
        );
        let m = opts(&["macvlan_mode=vepa"]).unwrap();
        assert_eq!(m.flag_for(Driver::Macvlan).unwrap(), Some(Flag::Vepa));
        assert!(
            m.flag_for(Driver::Ipvlan)
                .unwrap_err()
                .to_string()
                .contains("macvlan driver")
        );
    }

    #[test]
    fn refusals_name_the_word() {
        assert!(err(&["colour=red"]).contains("unknown option \"colour\""));
        assert!(err(&["parent"]).contains("use -o KEY=VALUE"));
        assert!(err(&["parent=a", "parent=b"]).contains("-o parent given twice"));
        assert!(err(&["ipvlan_mode=l4"]).contains("-o ipvlan_mode=l4: use l2, l3 or l3s"));
        assert!(err(&["macvlan_mode=passthru"]).contains("passthru is not supported"));
        assert!(err(&["com.docker.network.driver.mtu=big"]).contains("a number"));
    }

    #[test]
    fn long_and_short_must_agree() {
        assert_eq!(
            merge(("--mtu", Some(1400)), ("mtu", Some(1400))).unwrap(),
            Some(1400)
        );
        assert_eq!(
            merge(("--mtu", None), ("mtu", Some(9000))).unwrap(),
            Some(9000)
        );
        let e = merge(("--parent", Some("a")), ("parent", Some("b"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--parent a contradicts -o parent=b: give one of them"
        );
    }

    #[test]
    fn aux_addresses() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let a = parse_aux(&words(&["router=10.0.0.5", "nas=fd00::9"])).unwrap();
        assert_eq!(a[1], ("nas".to_string(), "fd00::9".parse().unwrap()));
        for bad in ["router", "=10.0.0.5", "router=10.0.0", "router=10.0.0.5/24"] {
            let e = parse_aux(&words(&[bad])).unwrap_err().to_string();
            assert!(e.contains("use NAME=IP"), "{bad}: {e}");
        }
        let e = parse_aux(&words(&["r=10.0.0.5", "r=10.0.0.6"])).unwrap_err();
        assert!(e.to_string().contains("given twice"));
    }
}
