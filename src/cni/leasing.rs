//! IPAM's ADD in the background: started before the links are made, so that the
//! plugin (Debian's are Go programs, 2-3 ms to start) runs while they are. The
//! attach awaits the addresses in `Step::Delegated` (see `apply::Delegated`); the ADD
//! then joins the thread for the whole result (routes, DNS).

use std::net::IpAddr;
use std::thread::JoinHandle;

use anyhow::anyhow;
use ipnetwork::IpNetwork;

use crate::apply::Delegated;

use super::error::{CniError, Code};
use super::result::{CniResult, RouteEntry};
use super::{request, Call};

/// The background ADD, under way.
pub struct Leasing {
    thread: JoinHandle<Leased>,
}

/// What the background ADD came to.
pub struct Leased {
    /// IPAM's answer, with the gateways the bridge would give it ([`gateways`]).
    pub result: Result<CniResult, CniError>,
    /// IPAM answered, but with addresses no attach can take (its DEL is due).
    pub refused: Option<CniError>,
}

impl Leasing {
    /// Start `call`'s IPAM ADD; its addresses will come on the receiver returned.
    pub fn start(call: &Call) -> Result<(Leasing, Delegated), CniError> {
        let (answer, delegated) = tokio::sync::oneshot::channel();
        let no_plugin = || CniError::new(Code::Internal, "no IPAM plugin to run");
        let call = call.clone();
        let thread = std::thread::Builder::new()
            .name("ipam".into())
            .spawn(move || {
                let Some(ipam) = call.ipam() else {
                    return Leased { result: Err(no_plugin()), refused: None };
                };
                // Started on this thread: the exec (a vfork that lasts until the new
                // program is loaded, ~1 ms here) holds up this thread, not the links.
                let mut result = ipam.add();
                let (specs, refused) = match &mut result {
                    Ok(leased) => {
                        gateways(&call, leased);
                        match request::specs(leased) {
                            Ok(specs) => (Ok(specs), None),
                            Err(e) => (Err(anyhow!("{}", e.msg)), Some(e)),
                        }
                    }
                    Err(e) => (Err(anyhow!("{}", e.msg)), None),
                };
                // The attach may have failed, and stopped listening, before it asked.
                let _ = answer.send(specs);
                Leased { result, refused }
            })
            .map_err(|e| CniError::new(Code::Internal, format!("cannot start a thread for IPAM: {e}")))?;
        Ok((Leasing { thread }, delegated))
    }

    /// Wait for the plugin to be done.
    pub fn join(self) -> Leased {
        self.thread.join().unwrap_or_else(|_| Leased {
            result: Err(CniError::new(Code::Internal, "the IPAM thread panicked")),
            refused: None,
        })
    }
}

/// With a gateway on the bridge, an IP that IPAM gave none gets the subnet's first
/// address, as the bridge plugin computes it; `isDefaultGateway` routes through it.
pub fn gateways(call: &Call, leased: &mut CniResult) {
    if !call.conf.gateway_on_bridge() {
        return;
    }
    for ip in &mut leased.ips {
        ip.gateway = ip.gateway.or_else(|| first_address(&ip.address));
    }
    if !call.conf.is_default_gateway {
        return;
    }
    for ip in leased.ips.clone() {
        let default = if ip.address.is_ipv4() { "0.0.0.0/0" } else { "::/0" };
        let dst: IpNetwork = default.parse().expect("a network");
        if !leased.routes.iter().any(|r| r.dst == dst) {
            leased.routes.push(RouteEntry { dst, gw: ip.gateway });
        }
    }
}

fn first_address(net: &IpNetwork) -> Option<IpAddr> {
    match net {
        IpNetwork::V4(n) => Some(IpAddr::V4((u32::from(n.network()) + 1).into())),
        IpNetwork::V6(n) => Some(IpAddr::V6((u128::from(n.network()) + 1).into())),
    }
}
