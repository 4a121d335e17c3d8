//! Which receiver addresses deliveries may reach. With
//! `refuse_private_targets` (off by default: a self-hosted registry often
//! notifies internal services), loopback, private, shared (CGNAT),
//! link-local (cloud metadata at 169.254.169.254 included), unique-local,
//! unspecified, broadcast and multicast addresses are refused.
//!
//! The check runs on the addresses DNS returned, inside the connector,
//! right before connecting: a name cannot pass a check and then resolve
//! to an internal address for the connection (DNS rebinding). IP literals
//! skip DNS, so [`check_literal`] covers them.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};

/// Whether `refuse_private_targets` forbids `ip`.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT; Alibaba's metadata)
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    let first = ip.segments()[0];
    let nat64 = ip.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    if nat64 {
        let [.., c, d] = ip.segments();
        let embedded = Ipv4Addr::new((c >> 8) as u8, c as u8, (d >> 8) as u8, d as u8);
        return forbidden_v4(embedded);
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local (AWS metadata fd00:ec2::254)
        || (first & 0xffc0) == 0xfe80 // link-local
}

/// Refuses a URI whose host is a forbidden IP literal.
pub fn check_literal(uri: &hyper::Uri) -> Result<(), String> {
    let host = uri.host().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) if is_forbidden(ip) => Err(refusal(host, &[ip])),
        _ => Ok(()),
    }
}

fn refusal(host: &str, ips: &[IpAddr]) -> String {
    let list: Vec<String> = ips.iter().map(ToString::to_string).collect();
    format!(
        "refused: {host} is {} (refuse_private_targets is on)",
        if list.len() == 1 && list[0] == host {
            "a private, loopback or link-local address".to_owned()
        } else {
            format!(
                "only at private, loopback or link-local addresses ({})",
                list.join(", ")
            )
        }
    )
}

/// The system resolver, dropping forbidden addresses when `refuse` is set.
#[derive(Clone, Debug)]
pub struct Resolver {
    gai: GaiResolver,
    refuse: bool,
}

impl Resolver {
    /// A resolver that refuses forbidden addresses when `refuse` is set.
    pub fn new(refuse: bool) -> Self {
        Self {
            gai: GaiResolver::new(),
            refuse,
        }
    }
}

impl tower_service::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.gai.poll_ready(cx)
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let lookup = self.gai.call(name.clone());
        let refuse = self.refuse;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = lookup.await?.collect();
            if !refuse {
                return Ok(addrs.into_iter());
            }
            let (allowed, refused): (Vec<_>, Vec<_>) =
                addrs.into_iter().partition(|a| !is_forbidden(a.ip()));
            if allowed.is_empty() && !refused.is_empty() {
                let ips: Vec<IpAddr> = refused.iter().map(SocketAddr::ip).collect();
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    refusal(name.as_str(), &ips),
                ));
            }
            Ok(allowed.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_forbidden_and_public_ones_are_not() {
        for ip in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.0.192",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "fc00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "ff02::1",
        ] {
            assert!(is_forbidden(ip.parse().unwrap()), "{ip} allowed");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "192.0.2.2",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip} refused");
        }
    }

    #[test]
    fn literals_are_checked_without_dns() {
        let uri = |s: &str| s.parse::<hyper::Uri>().unwrap();
        assert!(check_literal(&uri("http://127.0.0.1:9/x")).is_err());
        assert!(check_literal(&uri("http://[::1]:9/x")).is_err());
        assert!(check_literal(&uri("https://169.254.169.254/latest")).is_err());
        assert!(check_literal(&uri("https://8.8.8.8/x")).is_ok());
        assert!(check_literal(&uri("https://example.com/x")).is_ok());
    }

    #[tokio::test]
    async fn names_are_checked_after_resolution() {
        use tower_service::Service as _;
        let name: Name = "localhost".parse().unwrap();
        let err = Resolver::new(true).call(name.clone()).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(err.to_string().contains("localhost"), "{err}");
        let open = Resolver::new(false).call(name).await.unwrap();
        assert!(open.count() >= 1);
    }
}
