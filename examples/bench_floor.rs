//! Benchmark helper (scripts/bench.sh): the kernel's floor for a batch of attachments.
//! Makes the same links, addresses and routes as `pipework --batch`, with nothing else:
//! one process, one sequential loop of the bare netlink requests, no facts read, no
//! checks, no undo journal, no announcement. Run as root inside a throw-away namespace.
//!
//! Usage: bench_floor BRIDGE [--announce] < LINES, one `PID ADDR/PREFIX GATEWAY` per line.
//! With `--announce`, also the two requests by which pipework has the kernel send the
//! gratuitous ARP (`arp_notify`, then the link's own MAC set again), after the same
//! wait for the host end's bridge port to forward: sent before it, the ARP is dropped
//! at the port, and costs the bridge nothing (nor reaches anybody).

use std::fs::File;
use std::io::BufRead;
use std::net::IpAddr;
use std::os::fd::AsFd;

use anyhow::{anyhow, Context, Result};
use ipnetwork::IpNetwork;
use pipework::model::broadcast_of;
use pipework::netlink::{Netlink, Route, VethRequest, IPV4_ARP_NOTIFY};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let bridge = std::env::args().nth(1).context("usage: bench_floor BRIDGE [--announce] < LINES")?;
    let announce = std::env::args().nth(2).as_deref() == Some("--announce");
    let host = Netlink::current()?;
    let master = host.link_by_name(&bridge).await?.ok_or_else(|| anyhow!("no bridge {bridge}"))?.index;
    for (n, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line?;
        let words: Vec<&str> = line.split_whitespace().collect();
        let [pid, addr, gw] = words[..] else { anyhow::bail!("line {}: PID ADDR/PREFIX GATEWAY", n + 1) };
        let addr: IpNetwork = addr.parse()?;
        let gw: IpAddr = gw.parse()?;
        let ns = File::open(format!("/proc/{pid}/ns/net"))?;
        let guest = Netlink::in_netns(ns.as_fd())?;
        // Unique across runs too: bench.sh also runs it once per guest.
        let name = format!("vf{pid}");
        let veth = VethRequest {
            name: &name,
            mtu: 1500,
            master: Some(master),
            peer_name: "eth1",
            peer_netns: ns.as_fd(),
            peer_mac: None,
        };
        host.create_veth(&veth).await?;
        let index = guest.link_by_name("eth1").await?.ok_or_else(|| anyhow!("no eth1 in {pid}"))?.index;
        guest.add_address(index, addr, broadcast_of(&addr)).await?;
        guest.set_up(index).await?;
        let default = IpNetwork::new(IpAddr::from([0u8; 4]), 0)?;
        guest.add_route(&Route::new(default, Some(gw), index)?, true).await?;
        if announce {
            host.until_passes_frames(&name).await;
            let mac = guest.link_by_name("eth1").await?.and_then(|l| l.mac).context("no MAC")?;
            guest.set_ipv4_conf(index, IPV4_ARP_NOTIFY, 1).await?;
            guest.set_mac(index, mac).await?;
        }
    }
    Ok(())
}
