//! Which IP addresses outbound calls may reach: the rules of the SSRF guard.
//!
//! An address is classified once; the policy then decides. Addresses that embed an IPv4
//! address (IPv4-mapped, NAT64, 6to4) are classified by the address they reach, so
//! `::ffff:127.0.0.1` is as much a loopback address as `127.0.0.1`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::HttpPolicy;
use super::policy::ENV_ALLOW;

/// What an address is, as far as the guard cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Public,
    Loopback,
    Private,
    LinkLocal,
    Metadata,
    Unspecified,
    Multicast,
    Broadcast,
    Reserved,
}

/// Why the guard refused an address: printed as "`<ip>` is a loopback address; …".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused {
    pub ip: IpAddr,
    pub class: Class,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = self.ip;
        match self.class {
            Class::Loopback => write!(
                f,
                "{ip} is a loopback address; allow it with {ENV_ALLOW}=loopback (HttpPolicy::allow_loopback)"
            ),
            Class::Private => write!(
                f,
                "{ip} is a private address; allow it with {ENV_ALLOW}=private (HttpPolicy::allow_private)"
            ),
            class => write!(
                f,
                "{ip} is {}, which outbound calls may never reach",
                never_allowed(class)
            ),
        }
    }
}

fn never_allowed(class: Class) -> &'static str {
    match class {
        Class::LinkLocal => "a link-local address",
        Class::Metadata => "a cloud metadata address",
        Class::Unspecified => "an unspecified address",
        Class::Multicast => "a multicast address",
        Class::Broadcast => "a broadcast address",
        _ => "a reserved address",
    }
}

/// `Err` with the reason when `policy` does not let calls reach `ip`.
pub(crate) fn check(ip: IpAddr, policy: &HttpPolicy) -> Result<(), Refused> {
    let class = classify(ip);
    let allowed = match class {
        Class::Public => true,
        Class::Loopback => policy.allow_loopback,
        Class::Private => policy.allow_private,
        // Link-local and metadata addresses reach the host's own infrastructure (instance
        // credentials), never a provider: no setting opens them.
        _ => false,
    };
    match allowed {
        true => Ok(()),
        false => Err(Refused { ip, class }),
    }
}

pub(crate) fn classify(ip: IpAddr) -> Class {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// Instance metadata services. Most sit in link-local space, but some (Alibaba's in CGNAT
/// space, Oracle's in 192.0.0/24) would otherwise pass as private with `allow_private`.
const METADATA_V4: [Ipv4Addr; 6] = [
    Ipv4Addr::new(169, 254, 169, 254), // AWS, GCP, Azure, OpenStack, DigitalOcean
    Ipv4Addr::new(169, 254, 169, 253), // AWS DNS
    Ipv4Addr::new(169, 254, 170, 2),   // AWS ECS task metadata
    Ipv4Addr::new(169, 254, 170, 23),  // AWS EKS pod identity
    Ipv4Addr::new(100, 100, 100, 200), // Alibaba Cloud
    Ipv4Addr::new(192, 0, 0, 192),     // Oracle Cloud
];

const METADATA_V6: [Ipv6Addr; 3] = [
    Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254), // AWS IMDS
    Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23),  // AWS EKS pod identity
    Ipv6Addr::new(0xfd20, 0xce, 0, 0, 0, 0, 0, 0x254),  // GCP
];

fn classify_v4(ip: Ipv4Addr) -> Class {
    if METADATA_V4.contains(&ip) {
        return Class::Metadata;
    }
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        // 0/8 is "this network": 0.0.0.0 reaches the local host on Linux.
        (0, _, _) => Class::Unspecified,
        (127, _, _) => Class::Loopback,
        (10, _, _) | (192, 168, _) => Class::Private,
        (172, 16..=31, _) => Class::Private,
        (100, 64..=127, _) => Class::Private, // CGNAT, 100.64/10
        (198, 18..=19, _) => Class::Private,  // benchmarking, 198.18/15, used inside networks
        (169, 254, _) => Class::LinkLocal,
        (224..=239, _, _) => Class::Multicast,
        _ if ip.is_broadcast() => Class::Broadcast,
        (240..=255, _, _) => Class::Reserved,
        (192, 0, 0) | (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Class::Reserved,
        _ => Class::Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> Class {
    if METADATA_V6.contains(&ip) {
        return Class::Metadata;
    }
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }
    let s = ip.segments();
    match s {
        [0, 0, 0, 0, 0, 0, 0, 0] => Class::Unspecified,
        [0, 0, 0, 0, 0, 0, 0, 1] => Class::Loopback,
        // IPv4-compatible (::a.b.c.d), deprecated and never a provider's address.
        [0, 0, 0, 0, 0, 0, _, _] => Class::Reserved,
        [0x64, 0xff9b, 1, ..] => Class::Private, // local-use NAT64, 64:ff9b:1::/48
        [0x100, 0, 0, 0, ..] => Class::Reserved, // discard-only, 100::/64
        [0x2001, 0xdb8, ..] => Class::Reserved,  // documentation
        [first, ..] => classify_v6_prefix(first),
    }
}

fn classify_v6_prefix(first: u16) -> Class {
    match first {
        0xfc00..=0xfdff => Class::Private,   // unique local, fc00::/7
        0xfec0..=0xfeff => Class::Private,   // site-local, fec0::/10, deprecated
        0xfe80..=0xfebf => Class::LinkLocal, // fe80::/10
        0xff00..=0xffff => Class::Multicast,
        _ => Class::Public,
    }
}

/// The IPv4 address an IPv6 address reaches through a standard translation: IPv4-mapped
/// (`::ffff:a.b.c.d`), the well-known NAT64 prefix (`64:ff9b::/96`) or 6to4 (`2002::/16`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    match s {
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(v4_from(hi, lo)),
        [0x2002, hi, lo, ..] => Some(v4_from(hi, lo)),
        _ => None,
    }
}

fn v4_from(hi: u16, lo: u16) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(ip: &str) -> Class {
        classify(ip.parse().expect("an IP address"))
    }

    fn policy(allow_loopback: bool, allow_private: bool) -> HttpPolicy {
        HttpPolicy {
            allow_loopback,
            allow_private,
            ..HttpPolicy::default()
        }
    }

    fn allowed(ip: &str, policy: &HttpPolicy) -> bool {
        check(ip.parse().expect("an IP address"), policy).is_ok()
    }

    #[test]
    fn ipv4_ranges_are_classified() {
        let cases = [
            ("8.8.8.8", Class::Public),
            ("93.184.216.34", Class::Public),
            ("0.0.0.0", Class::Unspecified),
            ("0.1.2.3", Class::Unspecified),
            ("127.0.0.1", Class::Loopback),
            ("127.255.255.254", Class::Loopback),
            ("10.0.0.1", Class::Private),
            ("10.255.255.255", Class::Private),
            ("172.16.0.1", Class::Private),
            ("172.31.255.255", Class::Private),
            ("172.15.255.255", Class::Public),
            ("172.32.0.0", Class::Public),
            ("192.168.1.1", Class::Private),
            ("100.64.0.1", Class::Private),
            ("100.127.255.255", Class::Private),
            ("100.63.255.255", Class::Public),
            ("100.128.0.0", Class::Public),
            ("198.18.0.1", Class::Private),
            ("169.254.0.1", Class::LinkLocal),
            ("169.254.169.254", Class::Metadata),
            ("169.254.170.2", Class::Metadata),
            ("100.100.100.200", Class::Metadata),
            ("192.0.0.192", Class::Metadata),
            ("224.0.0.1", Class::Multicast),
            ("239.255.255.250", Class::Multicast),
            ("255.255.255.255", Class::Broadcast),
            ("240.0.0.1", Class::Reserved),
            ("192.0.2.1", Class::Reserved),
            ("198.51.100.1", Class::Reserved),
            ("203.0.113.1", Class::Reserved),
        ];
        for (ip, expected) in cases {
            assert_eq!(class(ip), expected, "{ip}");
        }
    }

    #[test]
    fn ipv6_ranges_are_classified() {
        let cases = [
            ("2606:4700::1111", Class::Public),
            ("::", Class::Unspecified),
            ("::1", Class::Loopback),
            ("fc00::1", Class::Private),
            ("fd12:3456::1", Class::Private),
            ("fec0::1", Class::Private),
            ("fe80::1", Class::LinkLocal),
            ("febf::1", Class::LinkLocal),
            ("ff02::1", Class::Multicast),
            ("fd00:ec2::254", Class::Metadata),
            ("fd20:ce::254", Class::Metadata),
            ("::7f00:1", Class::Reserved),
            ("100::1", Class::Reserved),
            ("2001:db8::1", Class::Reserved),
            ("64:ff9b:1::1", Class::Private),
        ];
        for (ip, expected) in cases {
            assert_eq!(class(ip), expected, "{ip}");
        }
    }

    #[test]
    fn ipv6_forms_of_ipv4_addresses_are_classified_by_the_ipv4_address() {
        let cases = [
            ("::ffff:8.8.8.8", Class::Public),
            ("::ffff:127.0.0.1", Class::Loopback),
            ("::ffff:7f00:1", Class::Loopback),
            ("::ffff:10.0.0.1", Class::Private),
            ("::ffff:172.16.0.1", Class::Private),
            ("::ffff:192.168.0.1", Class::Private),
            ("::ffff:100.64.0.1", Class::Private),
            ("::ffff:169.254.1.1", Class::LinkLocal),
            ("::ffff:169.254.169.254", Class::Metadata),
            ("::ffff:a9fe:a9fe", Class::Metadata),
            ("::ffff:0.0.0.0", Class::Unspecified),
            ("::ffff:224.0.0.1", Class::Multicast),
            ("::ffff:255.255.255.255", Class::Broadcast),
            ("64:ff9b::127.0.0.1", Class::Loopback),
            ("64:ff9b::169.254.169.254", Class::Metadata),
            ("64:ff9b::8.8.8.8", Class::Public),
            ("2002:7f00:1::", Class::Loopback),
            ("2002:a9fe:a9fe::1", Class::Metadata),
            ("2002:0808:0808::1", Class::Public),
        ];
        for (ip, expected) in cases {
            assert_eq!(class(ip), expected, "{ip}");
        }
    }

    #[test]
    fn the_default_policy_allows_only_public_addresses() {
        let policy = HttpPolicy::default();
        assert!(allowed("8.8.8.8", &policy));
        assert!(allowed("2606:4700::1111", &policy));
        for ip in [
            "127.0.0.1",
            "::1",
            "10.0.0.1",
            "fd12::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!allowed(ip, &policy), "{ip}");
        }
    }

    #[test]
    fn allow_loopback_allows_only_loopback() {
        let policy = policy(true, false);
        for ip in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            assert!(allowed(ip, &policy), "{ip}");
        }
        for ip in [
            "10.0.0.1",
            "192.168.0.1",
            "fd12::1",
            "0.0.0.0",
            "169.254.1.1",
        ] {
            assert!(!allowed(ip, &policy), "{ip}");
        }
    }

    #[test]
    fn allow_private_allows_only_private_ranges() {
        let policy = policy(false, true);
        for ip in [
            "10.0.0.1",
            "172.16.0.1",
            "192.168.0.1",
            "100.64.0.1",
            "fd12::1",
        ] {
            assert!(allowed(ip, &policy), "{ip}");
        }
        for ip in ["127.0.0.1", "::1", "169.254.1.1", "fe80::1"] {
            assert!(!allowed(ip, &policy), "{ip}");
        }
    }

    #[test]
    fn link_local_metadata_and_special_addresses_are_refused_even_with_both_allows() {
        let policy = policy(true, true);
        let never = [
            "169.254.169.254",
            "169.254.1.1",
            "100.100.100.200",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "fe80::1",
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "ff02::1",
            "255.255.255.255",
            "240.0.0.1",
        ];
        for ip in never {
            assert!(!allowed(ip, &policy), "{ip}");
        }
    }

    #[test]
    fn a_refusal_names_the_address_and_how_to_allow_it() {
        let refused = check("127.0.0.1".parse().unwrap(), &HttpPolicy::default()).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "127.0.0.1 is a loopback address; allow it with DURABLE_HTTP_ALLOW=loopback (HttpPolicy::allow_loopback)"
        );
        let refused = check("169.254.169.254".parse().unwrap(), &policy(true, true)).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "169.254.169.254 is a cloud metadata address, which outbound calls may never reach"
        );
    }
}
