//! Which addresses a callback may reach: the globally reachable ones of IANA's special-purpose
//! address registries, and nothing outside the space IANA allocates for global unicast.
//!
//! The rows are IANA's (as of 2025-06):
//! <https://www.iana.org/assignments/iana-ipv4-special-registry/> and
//! <https://www.iana.org/assignments/iana-ipv6-special-registry/>, each block with its "Globally
//! Reachable" column, where "N/A" (Teredo, 6to4, the deprecated ORCHID and 6to4 relay blocks)
//! counts as not reachable. Added from the address-space registries: IPv4 multicast
//! (224.0.0.0/4), and for IPv6 everything outside 2000::/3 (multicast, the deprecated site-local
//! fec0::/10, the rest of ::/8 such as IPv4-compatible addresses). The instance metadata
//! service's addresses are named, although their blocks already refuse them.
//!
//! The most specific block decides, so that 192.0.0.9/32 (global) wins over 192.0.0.0/24 (not).
//! No crate was found that follows the registries: `ip_network` 0.4's `is_global` passes
//! `::ffff:10.0.0.1`, 6to4 and Teredo, and std's `is_global` is unstable.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::LazyLock;

use ipnet::IpNet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// Globally reachable, by the registry.
    Global,
    /// Not globally reachable (or N/A): refused, named.
    Not(&'static str),
    /// NAT64's well-known prefix (RFC 6052): reachable, but it reaches the IPv4 address in its
    /// last 32 bits, which is judged instead.
    EmbedsIpv4,
}
use Reach::{EmbedsIpv4, Global, Not};

const V4: &[(&str, Reach)] = &[
    ("0.0.0.0/8", Not("this-network")),
    ("10.0.0.0/8", Not("private-use")),
    ("100.64.0.0/10", Not("shared address space")),
    ("127.0.0.0/8", Not("loopback")),
    ("169.254.0.0/16", Not("link-local")),
    ("169.254.169.254/32", Not("instance metadata")),
    ("172.16.0.0/12", Not("private-use")),
    ("192.0.0.0/24", Not("IETF protocol assignments")),
    ("192.0.0.9/32", Global),
    ("192.0.0.10/32", Global),
    ("192.0.2.0/24", Not("documentation")),
    ("192.88.99.0/24", Not("deprecated 6to4 relay anycast")),
    ("192.168.0.0/16", Not("private-use")),
    ("198.18.0.0/15", Not("benchmarking")),
    ("198.51.100.0/24", Not("documentation")),
    ("203.0.113.0/24", Not("documentation")),
    ("224.0.0.0/4", Not("multicast")),
    ("240.0.0.0/4", Not("reserved")),
    ("255.255.255.255/32", Not("limited broadcast")),
];

const V6: &[(&str, Reach)] = &[
    ("::/8", Not("reserved by the IETF")),
    ("::/128", Not("unspecified")),
    ("::1/128", Not("loopback")),
    ("::ffff:0:0/96", Not("IPv4-mapped")),
    ("64:ff9b::/96", EmbedsIpv4),
    ("64:ff9b:1::/48", Not("local-use IPv4/IPv6 translation")),
    ("100::/64", Not("discard-only")),
    ("100:0:0:1::/64", Not("dummy IPv6 prefix")),
    ("2001::/23", Not("IETF protocol assignments")),
    ("2001::/32", Not("Teredo")),
    ("2001:1::1/128", Global),
    ("2001:1::2/128", Global),
    ("2001:1::3/128", Global),
    ("2001:2::/48", Not("benchmarking")),
    ("2001:3::/32", Global),
    ("2001:4:112::/48", Global),
    ("2001:10::/28", Not("deprecated ORCHID")),
    ("2001:20::/28", Global),
    ("2001:30::/28", Global),
    ("2001:db8::/32", Not("documentation")),
    ("2002::/16", Not("6to4")),
    ("3fff::/20", Not("documentation")),
    ("5f00::/16", Not("segment routing SIDs")),
    ("fc00::/7", Not("unique-local")),
    ("fd00:ec2::254/128", Not("instance metadata")),
    ("fe80::/10", Not("link-local")),
    ("fec0::/10", Not("deprecated site-local")),
    ("ff00::/8", Not("multicast")),
];

/// The one block IANA allocates for IPv6 global unicast; the rest is not a callback's.
static GLOBAL_UNICAST: LazyLock<IpNet> = LazyLock::new(|| "2000::/3".parse().expect("a block"));

/// Both registries' blocks, IPv4 and IPv6 alike: a block contains only addresses of its family.
static BLOCKS: LazyLock<Vec<(IpNet, Reach)>> = LazyLock::new(|| {
    V4.iter()
        .chain(V6)
        .map(|&(block, reach)| (block.parse().expect("an IP block"), reach))
        .collect()
});

/// The name of the block an address must not be reached in, or `None` for a globally reachable
/// one.
pub fn refused_range(address: IpAddr) -> Option<&'static str> {
    let most_specific = BLOCKS
        .iter()
        .filter(|(block, _)| block.contains(&address))
        .max_by_key(|(block, _)| block.prefix_len());
    match (most_specific.map(|(_, reach)| *reach), address) {
        (Some(Not(name)), _) => Some(name),
        (Some(Global), _) => None,
        (Some(EmbedsIpv4), IpAddr::V6(v6)) => {
            let [.., a, b, c, d] = v6.octets();
            refused_range(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
        }
        (Some(EmbedsIpv4), IpAddr::V4(_)) => unreachable!("no IPv4 block embeds an address"),
        (None, IpAddr::V6(_)) if !GLOBAL_UNICAST.contains(&address) => {
            Some("outside global unicast space")
        }
        (None, _) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> Option<&'static str> {
        refused_range(text.parse().unwrap())
    }

    #[test]
    fn every_block_parses_as_written() {
        assert_eq!(BLOCKS.len(), V4.len() + V6.len());
        for (block, _) in BLOCKS.iter() {
            assert_eq!(block.trunc(), *block, "{block} has host bits");
        }
        let v4 = BLOCKS
            .iter()
            .filter(|(block, _)| matches!(block, IpNet::V4(_)));
        assert_eq!(v4.count(), V4.len());
    }

    #[test]
    fn ipv4_blocks_that_are_not_globally_reachable_are_refused_by_name() {
        for (address, name) in [
            ("0.0.0.0", "this-network"),
            ("0.1.2.3", "this-network"),
            ("10.1.2.3", "private-use"),
            ("100.64.0.1", "shared address space"),
            ("100.127.255.255", "shared address space"),
            ("127.255.0.9", "loopback"),
            ("169.254.1.1", "link-local"),
            ("169.254.169.254", "instance metadata"),
            ("172.31.255.255", "private-use"),
            ("192.0.0.8", "IETF protocol assignments"),
            ("192.0.0.170", "IETF protocol assignments"),
            ("192.0.2.1", "documentation"),
            ("192.88.99.1", "deprecated 6to4 relay anycast"),
            ("192.168.1.1", "private-use"),
            ("198.19.0.1", "benchmarking"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.9", "documentation"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.254", "reserved"),
            ("255.255.255.255", "limited broadcast"),
        ] {
            assert_eq!(refused(address), Some(name), "{address}");
        }
    }

    #[test]
    fn ipv6_blocks_that_are_not_globally_reachable_are_refused_by_name() {
        for (address, name) in [
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("::10.0.0.1", "reserved by the IETF"),
            ("::ffff:8.8.8.8", "IPv4-mapped"),
            ("::ffff:127.0.0.1", "IPv4-mapped"),
            ("64:ff9b::a00:1", "private-use"),
            ("64:ff9b::7f00:1", "loopback"),
            ("64:ff9b::a9fe:a9fe", "instance metadata"),
            ("64:ff9b:1::808:808", "local-use IPv4/IPv6 translation"),
            ("100::1", "discard-only"),
            ("100:0:0:1::1", "dummy IPv6 prefix"),
            ("2001::a00:1", "Teredo"),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
            ("2001:2::1", "benchmarking"),
            ("2001:10::1", "deprecated ORCHID"),
            ("2001:100::1", "IETF protocol assignments"),
            ("2001:db8::1", "documentation"),
            ("2002:a00:1::1", "6to4"),
            ("2002:808:808::1", "6to4"),
            ("3fff::1", "documentation"),
            ("5f00::1", "segment routing SIDs"),
            ("fc00::1", "unique-local"),
            ("fd12:3456::1", "unique-local"),
            ("fd00:ec2::254", "instance metadata"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("fec0::1", "deprecated site-local"),
            ("ff02::1", "multicast"),
            ("ff0e::1", "multicast"),
            ("4000::1", "outside global unicast space"),
            ("e000::1", "outside global unicast space"),
        ] {
            assert_eq!(refused(address), Some(name), "{address}");
        }
    }

    #[test]
    fn globally_reachable_addresses_pass_including_the_registries_exceptions() {
        for address in [
            "8.8.8.8",
            "93.184.215.14",
            "172.32.0.1",
            "100.128.0.1",
            "192.0.0.9",
            "192.0.0.10",
            "192.31.196.1",
            "223.255.255.255",
            "2606:4700::1111",
            "2a00:1450:4001::1",
            "2001:1::1",
            "2001:1::3",
            "2001:3::1",
            "2001:4:112::1",
            "2001:20::1",
            "2001:200::1",
            "3ffe::1",
            "64:ff9b::808:808",
        ] {
            assert_eq!(refused(address), None, "{address}");
        }
    }
}
