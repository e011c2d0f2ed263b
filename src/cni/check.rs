//! CHECK (0.4.0 and later): IPAM's CHECK, then `lifecycle::check` (the attachment
//! as it was made), then the `prevResult`'s addresses on the interface.

use crate::lifecycle;
use crate::model::Check;
use crate::netlink::Netlink;
use crate::report::{Failed, Said};

use super::env::Command;
use super::error::{CniError, Code};
use super::result::CniResult;
use super::version::Version;
use super::{netns, Call};

pub async fn run(call: &Call) -> Result<(), CniError> {
    let version = call.conf.version();
    if version < Version::V0_4_0 {
        return Err(CniError::new(Code::IncompatibleVersion, format!("CHECK is not part of CNI {version}")));
    }
    let Some(prev) = &call.conf.prev_result else {
        return Err(CniError::new(Code::InvalidConfig, "CHECK needs the ADD's result as prevResult"));
    };
    let prev = CniResult::parse(prev, "prevResult")?;
    if let Some(ipam) = call.ipam() {
        ipam.call(Command::Check)?;
    }
    let guest = netns::open(&call.env.netns)?;
    let nl_guest = Netlink::in_netns(guest.netns()).map_err(|e| CniError::internal(&e))?;
    let Some(cif) = nl_guest.link_by_name(&call.env.ifname).await.map_err(|e| CniError::internal(&e))? else {
        // No interface at all: not a container we attached.
        let msg = format!("no {} in {}", call.env.ifname, call.env.netns);
        return Err(CniError::new(Code::UnknownContainer, msg));
    };
    as_attached(call).await?;
    let have = nl_guest.addresses(cif.index).await.map_err(|e| CniError::internal(&e))?;
    let ours =
        |i: Option<usize>| i.and_then(|i| prev.interfaces.get(i)).is_none_or(|i| i.name == call.env.ifname);
    for ip in prev.ips.iter().filter(|ip| ours(ip.interface)) {
        if !have.contains(&ip.address) {
            let msg = format!(
                "{} in {} has not the address {} of prevResult",
                call.env.ifname, call.env.netns, ip.address
            );
            return Err(CniError::new(Code::Internal, msg));
        }
    }
    Ok(())
}

/// `pipework check NETNS -i IFNAME`: the differences, if any, as the error.
async fn as_attached(call: &Call) -> Result<(), CniError> {
    let container_if =
        call.env.ifname.parse().map_err(|e| CniError::new(Code::InvalidEnvironment, format!("{e:#}")))?;
    let req = Check { guest: call.env.netns.clone(), container_if };
    let said = match lifecycle::check::check(&req).await {
        Ok(Said { value, .. }) if value.ok() => return Ok(()),
        Ok(Said { value, .. }) => value.differences.join("; "),
        Err(Failed { error, .. }) => format!("{error:#}"),
    };
    Err(CniError::new(Code::Internal, format!("{} in {}: {said}", call.env.ifname, call.env.netns)))
}
