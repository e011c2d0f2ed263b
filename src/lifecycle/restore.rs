//! `del` puts back the default route that the attach replaced (from the attachment's
//! record, `crate::record`), when its device is still there, its gateway still
//! reachable without the attachment, and no other default route of its family has
//! been made meanwhile. Decided before anything is removed, so that `--dry-run`
//! shows it; the routes through CONTAINER_IF (going with it) count for nothing.

use std::fmt;
use std::net::IpAddr;

use anyhow::Result;
use ipnetwork::IpNetwork;

use crate::model::Family;
use crate::netlink::{Link, Netlink, Route};
use crate::record::SavedRoute;

/// One route to make again in the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutBack {
    pub dst: IpNetwork,
    pub gateway: Option<IpAddr>,
    pub dev: String,
    pub index: u32,
    pub metric: Option<u32>,
    pub protocol: Option<u8>,
}

impl PutBack {
    /// `the default route via GW dev DEV`.
    pub fn describe(&self) -> String {
        let via = self.gateway.map(|gw| format!(" via {gw}")).unwrap_or_default();
        format!("the default route{via} dev {}", self.dev)
    }
}

impl fmt::Display for PutBack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "guest: ip route add default")?;
        if let Some(gw) = self.gateway {
            write!(f, " via {gw}")?;
        }
        write!(f, " dev {}", self.dev)?;
        if let Some(p) = self.protocol {
            write!(f, " proto {p}")?;
        }
        if let Some(m) = self.metric {
            write!(f, " metric {m}")?;
        }
        Ok(())
    }
}

/// What to put back, and a note for each replaced route that is not put back.
/// `links` and `routes` are the guest's; `going` CONTAINER_IF's index.
pub fn plan(
    saved: &[SavedRoute],
    links: &[Link],
    routes: &[Route],
    going: u32,
) -> (Vec<PutBack>, Vec<String>) {
    let routes: Vec<&Route> = routes.iter().filter(|r| r.oif != Some(going)).collect();
    let (mut put, mut notes) = (Vec::new(), Vec::new());
    for s in saved {
        let shown = PutBack {
            dst: s.dst,
            gateway: s.gateway,
            dev: s.dev.clone().unwrap_or_default(),
            index: 0,
            metric: s.metric,
            protocol: s.protocol,
        };
        let not =
            |why: String| format!("{} that the attach replaced is not put back: {why}", shown.describe());
        let family = Family::of(&s.dst.ip());
        let link = s.dev.as_deref().and_then(|d| links.iter().find(|l| l.name == d && l.index != going));
        let Some(link) = link else {
            notes.push(not(format!("{} is gone", shown.dev)));
            continue;
        };
        if routes.iter().any(|r| r.is_default() && Family::of(&r.dst.ip()) == family) {
            notes.push(not("the guest has another default route now".to_string()));
            continue;
        }
        if let Some(gw) = s.gateway.filter(|gw| !reachable(gw, link.index, &routes)) {
            notes.push(not(format!("{gw} is not reachable any more")));
            continue;
        }
        put.push(PutBack { index: link.index, ..shown });
    }
    (put, notes)
}

/// A route of its own (not a default one) through that device covers the gateway;
/// an IPv6 link-local gateway needs none.
fn reachable(gw: &IpAddr, index: u32, routes: &[&Route]) -> bool {
    if matches!(gw, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80) {
        return true;
    }
    routes.iter().any(|r| !r.is_default() && r.oif == Some(index) && r.dst.contains(*gw))
}

/// The guest's main-table routes of the families `saved` names.
pub async fn routes_for(nl: &Netlink, saved: &[SavedRoute]) -> Result<Vec<Route>> {
    let mut all = Vec::new();
    for family in [Family::V4, Family::V6] {
        if saved.iter().any(|s| Family::of(&s.dst.ip()) == family) {
            all.extend(nl.routes(family).await?);
        }
    }
    Ok(all)
}

/// Make them (after the attachment is removed). A route there already is no error.
pub async fn apply(nl: &Netlink, put: &[PutBack]) -> Result<()> {
    for p in put {
        let route = Route::new(p.dst, p.gateway, p.index)?.with_metric_and_protocol(p.metric, p.protocol);
        if let Err(e) = nl.add_route(&route, false).await {
            if crate::netlink::errno_of(&e) != Some(nix::errno::Errno::EEXIST) {
                return Err(e.context(format!("cannot {p}")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32, name: &str) -> Link {
        Link { index, name: name.into(), ..Default::default() }
    }

    fn route(dst: &str, gw: Option<&str>, oif: u32) -> Route {
        Route::new(dst.parse().unwrap(), gw.map(|g| g.parse().unwrap()), oif).unwrap()
    }

    fn saved() -> Vec<SavedRoute> {
        vec![SavedRoute {
            dst: "0.0.0.0/0".parse().unwrap(),
            gateway: Some("172.31.0.1".parse().unwrap()),
            dev: Some("up0".into()),
            metric: None,
            protocol: None,
        }]
    }

    #[test]
    fn the_replaced_route_comes_back_when_its_gateway_is_reachable() {
        let links = [link(2, "up0"), link(3, "eth1")];
        let routes = [route("172.31.0.0/24", None, 2), route("0.0.0.0/0", Some("10.0.0.1"), 3)];
        let (put, notes) = plan(&saved(), &links, &routes, 3);
        assert_eq!(
            put.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            ["guest: ip route add default via 172.31.0.1 dev up0"]
        );
        assert_eq!((put[0].index, notes.len()), (2, 0));
    }

    #[test]
    fn it_stays_away_when_it_cannot_or_should_not_come_back() {
        let going = [route("0.0.0.0/0", Some("10.0.0.1"), 3), route("172.31.0.0/24", None, 3)];
        let (put, notes) = plan(&saved(), &[link(2, "up0"), link(3, "eth1")], &going, 3);
        assert!(put.is_empty());
        assert_eq!(notes, ["the default route via 172.31.0.1 dev up0 that the attach replaced is not put back: 172.31.0.1 is not \
             reachable any more"]);
        let (_, notes) = plan(&saved(), &[link(3, "eth1")], &[], 3);
        assert_eq!(notes, ["the default route via 172.31.0.1 dev up0 that the attach replaced is not put back: up0 is gone"]);
        let other = [route("172.31.0.0/24", None, 2), route("0.0.0.0/0", Some("172.31.0.9"), 2)];
        let (put, notes) = plan(&saved(), &[link(2, "up0")], &other, 3);
        assert!(put.is_empty());
        assert!(notes[0].ends_with("the guest has another default route now"), "{notes:?}");
    }
}
