//! What a DHCP step runs, decided before anything changes: the client, its argument
//! list word by word, the host name it sends, the files it writes, how long it may
//! take, and the built-in client's options. Pure, like the rest of the planner; the
//! executor (`crate::dhcp`) runs it and only hands back what it got.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use ipnetwork::{Ipv4Network, Ipv6Network};
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

use super::GuestId;
use crate::model::Family;
use crate::model::{DhcpClient, IpSpec};

/// How long an external client may take to get its lease before it is stopped and
/// everything undone. dhclient gives up by itself after 60 s (its `timeout`), and
/// must be let to say so; udhcpc without `-n` would try for ever.
const EXTERNAL_TIMEOUT: Duration = Duration::from_secs(90);

/// The image the original runs the `dhcp` helper from; it must have udhcpc's
/// `/etc/udhcpc/default.script`.
const HELPER_IMAGE: &str = "busybox";

/// One DHCP run, as planned: everything the client needs, nothing read from the system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhcpRequest {
    /// CONTAINER_IF.
    pub dev: String,
    pub client: DhcpClient,
    /// DHCPv4 (the original's words) or DHCPv6 (`dhcp6`, `dhclient6`, `dhcpcd6`).
    pub family: Family,
    /// A `-f` form: the client stays and renews the lease.
    pub foreground: bool,
    pub options: Vec<String>,
    /// Sent to the server, and part of the pid and lease file names.
    pub hostname: String,
    /// The Docker container's ID (the `dhcp` helper joins its namespaces).
    pub container: Option<String>,
    /// The guest's process, which the built-in `dhcp4-f` client lives as long as.
    pub pid: Option<u32>,
    /// The guest's stable name (a Docker container's name), which the built-in
    /// client's identity is derived from, so that the guest re-created or restarted
    /// with a new MAC gets its lease back; `None`: the MAC is the identity.
    pub identity: Option<String>,
    /// `--timeout`: how long the client may take to get its lease.
    pub timeout: Option<Duration>,
    /// A re-run of a `dhcp4-f` form whose keeper is gone (killed, OOM): the lease it
    /// held, which a new keeper verifies with INIT-REBOOT (RFC 2131 section 4.3.2)
    /// instead of asking for a new one. `None`: take a lease as a first run does.
    pub resume: Option<HeldLease>,
    /// The identity is a pod's: `del` stops the keeper without a DHCPRELEASE (see
    /// [`DhcpRequest::for_pod`]).
    pub keep_lease_on_del: bool,
}

/// The lease a `dhcp4-f` keeper holds, as it writes it each time it is bound
/// (`CLIENT.HOSTNAME.lease.json` beside its pid file): what a new keeper starts from
/// when this one died without its `del`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldLease {
    pub lease: Leased,
    /// When the server last granted it (seconds since the epoch): with the lease
    /// time, when it runs out.
    pub bound_at: u64,
}

impl HeldLease {
    /// The lease has run out at `now` (seconds since the epoch): its address is no
    /// longer the client's to use (RFC 2131 section 4.4.5).
    pub fn expired(&self, now: u64) -> bool {
        let secs = match &self.lease {
            Leased::V4(l) => l.secs,
            Leased::V6(l) => l.valid,
        };
        now >= self.bound_at.saturating_add(secs.into())
    }

    /// Where the keeper whose pid file is `pid_file` keeps it.
    pub fn path(pid_file: &std::path::Path) -> PathBuf {
        pid_file.with_extension("lease.json")
    }
}

/// An external client (udhcpc, dhclient, dhcpcd) as its sandbox runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct External {
    /// The program's name, looked up on PATH when it runs.
    pub program: String,
    /// Its arguments, after the program name.
    pub args: Vec<String>,
    /// Directories hidden under an empty tmpfs for it (state all guests would share).
    pub private_dirs: &'static [&'static str],
    /// Directories it needs and cannot create itself.
    pub make_dirs: &'static [&'static str],
    /// The signal that ends it without undoing its work (dhcpcd deconfigures the
    /// interface on SIGTERM unless configured `persistent`, so it gets SIGKILL).
    pub stop_signal: Signal,
    /// A file the original removes once it has stopped a plain form (dhclient's pid file).
    pub remove_after: Option<PathBuf>,
    /// The file the client writes its pid to on the host: a client killed on failure
    /// cannot remove it itself (SIGTERM would), so the failed run does.
    pub pid_file: Option<PathBuf>,
}

impl DhcpRequest {
    /// The DHCP step for `IPSPEC` on `dev`, or `None` for a static IPSPEC. Refuses
    /// what can be refused before any change: `dhcp` for a guest that is not a
    /// Docker container, and bad `dhcp4` options.
    /// `until_del`: a `-f` keeper with no guest process to watch is allowed, as `del`
    /// will stop it (the CNI plugin's DEL always comes; see `Terms::del_follows`).
    pub fn plan(
        ip: &IpSpec,
        dev: &str,
        guest: &GuestId,
        timeout: Option<Duration>,
        until_del: bool,
    ) -> Result<Option<DhcpRequest>> {
        let IpSpec::Dhcp { client, family, foreground, options } = ip else {
            return Ok(None);
        };
        let container = guest.container.as_ref().map(|(id, _)| id.clone());
        if *client == DhcpClient::DockerUdhcpc && container.is_none() {
            bail!(
                "DHCP client dhcp runs udhcpc in a helper Docker container, and {} is not a Docker \
                 container; use udhcpc, dhclient, dhcpcd or dhcp4",
                guest.name
            );
        }
        // The original passes `-6` on to dhclient; pipework would then wait for an IPv4
        // lease that never comes, after the client took an IPv6 one.
        if *client == DhcpClient::Dhclient && *family == Family::V4 && options.iter().any(|o| o == "-6") {
            let word = if *foreground { "dhclient6-f" } else { "dhclient6" };
            bail!("dhclient with -6 takes a DHCPv6 lease: use {word}, which waits for that");
        }
        if *client == DhcpClient::Builtin {
            BuiltinOptions::parse(options)?;
            // The keeper ends when the guest's process does; a bare netns file has none
            // to watch, and the keeper itself would keep that namespace alive for ever.
            if *foreground && guest.pid.is_none() && !until_del {
                let name = if *family == Family::V6 { "dhcp6-f" } else { "dhcp4-f" };
                bail!(
                    "{name} needs a guest with a process to watch (pid:N or a container), not a netns file"
                );
            }
        }
        Ok(Some(DhcpRequest {
            dev: dev.to_string(),
            client: *client,
            family: *family,
            foreground: *foreground,
            options: options.clone(),
            hostname: hostname(guest),
            container,
            pid: guest.pid,
            identity: identity(guest),
            timeout,
            resume: None,
            keep_lease_on_del: false,
        }))
    }

    /// The step for the sandbox of Kubernetes pod `pod` (`NAMESPACE/NAME`): the
    /// built-in client's identity is the pod's, which a new sandbox of the same pod
    /// has too. Its DEL then sends no DHCPRELEASE: the old sandbox's DEL may come
    /// after the new sandbox's ADD (a runtime cleaning up late), and a release then
    /// would give away the address the new one holds under the same identity; the
    /// lease stays the pod's until it runs out. `None`: as it is.
    pub fn for_pod(self, pod: Option<&str>) -> DhcpRequest {
        match pod {
            Some(pod) if self.client == DhcpClient::Builtin => {
                DhcpRequest { identity: Some(format!("k8s:{pod}")), keep_lease_on_del: true, ..self }
            }
            _ => self,
        }
    }

    /// The client as IPSPEC names it, without `-f`: `dhcp4`, `dhclient`, and for
    /// DHCPv6 `dhcp6`, `dhclient6`, `dhcpcd6`. Also the stem of its pid file.
    pub fn name(&self) -> String {
        client_name(self.client, self.family)
    }

    /// How long an external client (or the Docker helper) may take to get its lease.
    pub fn limit(&self) -> Duration {
        self.timeout.unwrap_or(EXTERNAL_TIMEOUT)
    }

    /// The command that runs, word by word (the `dhcp4` client runs in-process).
    pub fn command_line(&self) -> Vec<String> {
        match self.client {
            DhcpClient::DockerUdhcpc => self.helper_command(),
            DhcpClient::Builtin => self.builtin_words(),
            _ => {
                let ext = self.external().expect("an external client");
                std::iter::once(ext.program).chain(ext.args).collect()
            }
        }
    }

    /// `/var/run/NAME.HOSTNAME.pid`, the original's pid file naming.
    pub fn pid_file(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("/var/run/{name}.{}.pid", self.hostname))
    }

    /// What the original ignores, and says so.
    pub fn warnings(&self) -> Vec<String> {
        match self.client {
            DhcpClient::Dhcpcd if !self.options.is_empty() => vec![crate::report::warning(format!(
                "dhcpcd options are ignored, as the original ignores them: {}",
                self.options.join(" ")
            ))],
            _ => Vec::new(),
        }
    }

    /// udhcpc, dhclient and dhcpcd as the original runs them on the host, entered
    /// into the guest; `None` for the Docker helper and the built-in client.
    pub fn external(&self) -> Option<External> {
        let pid_file = |name| self.pid_file(name).display().to_string();
        let (program, args, private_dirs, make_dirs, stop_signal, remove_after, pid_file): (
            _,
            Vec<String>,
            _,
            _,
            _,
            _,
            _,
        ) = match self.client {
            DhcpClient::Udhcpc => {
                let i = if self.foreground { "-i" } else { "-qi" };
                let host = format!("hostname:{}", self.hostname);
                let args = [i, &self.dev, "-x", &host, "-p", &pid_file("udhcpc")].map(String::from);
                let written = Some(self.pid_file("udhcpc"));
                ("udhcpc", args.into(), &[][..], &[][..], Signal::SIGTERM, None, written)
            }
            DhcpClient::Dhclient => {
                // `dhclient6` is `dhclient -6`, with files of its own beside the DHCPv4 ones.
                let name = self.name();
                let lease_file = format!("/etc/dhclient/{name}.{}.leases", self.hostname);
                let mut args: Vec<String> =
                    [&self.dev, "-pf", &pid_file(&name), "-lf", &lease_file].map(String::from).into();
                if self.family == Family::V6 {
                    args.insert(0, "-6".into());
                }
                // dhclient leaves the interface as it is on SIGTERM (releasing takes `-r`).
                let remove = Some(self.pid_file(&name));
                let written = remove.clone();
                (
                    "dhclient",
                    args,
                    &["/var/lib/dhcp"][..],
                    &["/etc/dhclient"][..],
                    Signal::SIGTERM,
                    remove,
                    written,
                )
            }
            DhcpClient::Dhcpcd => {
                // The original runs `dhcpcd -q IF -h NAME` and drops OPTIONS. dhcpcd keeps
                // its pid files and control sockets in its run directory and its leases
                // and DUID in its database directory, both host-wide: a second guest's
                // run would find the first one's `eth1` "already running". Both private.
                let mut args: Vec<String> = ["-q", &self.dev, "-h", &self.hostname].map(String::from).into();
                if self.family == Family::V6 {
                    args.insert(0, "-6".into());
                }
                let private = &["/run/dhcpcd", "/var/lib/dhcpcd"][..];
                return Some(External {
                    program: "dhcpcd".into(),
                    args,
                    private_dirs: private,
                    make_dirs: &[],
                    stop_signal: Signal::SIGKILL,
                    remove_after: None,
                    // In its private run directory, gone with the sandbox.
                    pid_file: None,
                });
            }
            DhcpClient::DockerUdhcpc | DhcpClient::Builtin => return None,
        };
        let mut args = args;
        args.extend(self.options.iter().cloned());
        Some(External {
            program: program.into(),
            args,
            private_dirs,
            make_dirs,
            stop_signal,
            remove_after,
            pid_file,
        })
    }

    /// `dhcp[:OPTS]`: busybox udhcpc in a helper container sharing the guest
    /// container's network, removed when done (`--rm`); the plain form takes the
    /// lease and quits (`-q`); `dhcp:-f` stays renewing, in the guest's PID namespace
    /// too, so that it ends with the guest.
    pub fn helper_command(&self) -> Vec<String> {
        let container = self.container.clone().unwrap_or_default();
        let fg = self.helper_stays();
        let mut args: Vec<String> = vec!["docker".into(), "run".into()];
        if fg {
            args.push("-d".into());
        }
        args.extend(["--rm", "--name"].map(String::from));
        args.push(self.helper_name());
        args.push(format!("--net=container:{container}"));
        if fg {
            // When the guest's first process ends, the kernel ends every process of its
            // PID namespace: the helper with it.
            args.push(format!("--pid=container:{container}"));
        }
        args.extend(["--cap-add", "NET_ADMIN", HELPER_IMAGE, "udhcpc"].map(String::from));
        if !fg {
            args.push("-q".into());
        }
        args.extend([
            "-i".to_string(),
            self.dev.clone(),
            "-x".to_string(),
            format!("hostname:{}", self.hostname),
        ]);
        args.extend(self.options.iter().cloned());
        args
    }

    /// The helper's udhcpc options ask for the foreground (`-f`, alone or among
    /// other short flags): it stays, renewing.
    pub fn helper_stays(&self) -> bool {
        self.options
            .iter()
            .any(|o| o == "--foreground" || (o.starts_with('-') && !o.starts_with("--") && o.contains('f')))
    }

    /// One helper per guest interface, so that a leftover one is easy to name.
    pub fn helper_name(&self) -> String {
        let dev: String = self.dev.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        format!("pipework-dhcp-{}-{dev}", self.hostname)
    }

    /// The built-in client in words, for `--dry-run` and `--verbose`.
    fn builtin_words(&self) -> Vec<String> {
        let name = if self.foreground { format!("{}-f", self.name()) } else { self.name() };
        let mut words = vec![format!("{name} (built-in)"), "-i".into(), self.dev.clone()];
        // mozim's DHCPv6 client sends no name (no Client FQDN option).
        if self.family == Family::V4 {
            words.extend(["-x".to_string(), format!("hostname:{}", self.hostname)]);
        }
        words.extend(self.options.iter().cloned());
        if let Some(held) = &self.resume {
            words.push(format!("(INIT-REBOOT from {})", held.lease.addr()));
        }
        words
    }
}

impl fmt::Display for DhcpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.command_line().join(" "))
    }
}

/// The name the guest goes by: a Docker container's own name (without Docker's
/// leading '/'), else GUEST made into a host name (`pid:123` gives `pid-123`).
/// A Docker container's name (stable across `docker restart` and re-creation under
/// the same name), as `docker:NAME`.
fn identity(guest: &GuestId) -> Option<String> {
    let (_, name) = guest.container.as_ref()?;
    Some(format!("docker:{}", name.strip_prefix('/').unwrap_or(name)))
}

fn hostname(guest: &GuestId) -> String {
    // A container named as the original takes it (name, ID or ID prefix): GUEST as
    // typed, as the original puts it in the host name and in the pid and lease file
    // names that scripts written for it look for. The leading '/' of a Docker name
    // would make a path.
    let typed = guest.name.strip_prefix('/').unwrap_or(&guest.name);
    if !guest.name.starts_with("pid:") && !typed.is_empty() && !typed.contains('/') {
        // Whole, even a 64-character ID: the sandbox cuts it for sethostname(2) only.
        return typed.to_string();
    }
    // Forms the original lacks: a name of our own making.
    let raw = match guest.pid {
        Some(pid) if guest.name.starts_with("pid:") || guest.name.starts_with("/proc/") => {
            format!("pid-{pid}")
        }
        _ => guest.name.rsplit('/').find(|p| !p.is_empty()).unwrap_or_default().to_string(),
    };
    // A host name is letters, digits and '-' (RFC 952); anything else would be refused
    // by the server, or make an odd file name. A DNS label is at most 63 bytes.
    let clean: String =
        raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
    let clean: String = clean.chars().take(63).collect();
    match clean.trim_matches('-') {
        "" => "guest".to_string(),
        c => c.to_string(),
    }
}

/// `dhcp4:` and `dhcp6:` options, `key=value` words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltinOptions {
    /// `timeout=SECONDS`: give up on getting a lease after this long (wins over
    /// `--timeout`; 30 s when neither is given).
    pub timeout: Option<u32>,
    /// `renew=SECONDS`: renew this often when the server's T1 is later (for short
    /// tests, or a server whose leases are long).
    pub renew: Option<u32>,
    /// `dns`: the lease's name servers and search domains written into the guest's
    /// `/etc/resolv.conf` (put back by `del`); without it the file is left alone.
    pub dns: bool,
    /// `id=mac`: the MAC as the client's identity (udhcpc's), not the guest's name.
    pub mac_id: bool,
}

impl BuiltinOptions {
    pub fn parse(words: &[String]) -> Result<BuiltinOptions> {
        let mut opts = BuiltinOptions { timeout: None, renew: None, dns: false, mac_id: false };
        for word in words {
            let bad = || {
                anyhow!(
                    "invalid dhcp4/dhcp6 option {word:?} (expected timeout=SECONDS, renew=SECONDS, dns or id=mac)"
                )
            };
            if word == "dns" {
                opts.dns = true;
                continue;
            }
            if word == "id=mac" {
                opts.mac_id = true;
                continue;
            }
            let (key, value) = word.split_once('=').ok_or_else(bad)?;
            let secs: u32 = value.parse().ok().filter(|s| *s > 0).ok_or_else(bad)?;
            match key {
                "timeout" => opts.timeout = Some(secs),
                "renew" => opts.renew = Some(secs),
                _ => return Err(bad()),
            }
        }
        Ok(opts)
    }
}

/// A DHCPv4 lease that pipework applies itself (the built-in client's): applied by
/// the same steps as a static address (see `addressing::lease_steps`), and handed to
/// the `dhcp4-f` keeper as it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub addr: Ipv4Network,
    pub broadcast: Option<Ipv4Addr>,
    pub router: Option<Ipv4Addr>,
    pub server: Ipv4Addr,
    /// Renewal (T1) and rebinding (T2) times and the lease time, in seconds.
    pub t1: u32,
    pub t2: u32,
    pub secs: u32,
    /// The classless static routes (option 121, or 249 without it) other than the
    /// default one, which gives `router` (RFC 3442: then the router option is
    /// ignored). Each one checked: its router on the lease's subnet. Missing in the
    /// keeper arguments and records of earlier versions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<LeaseRoute>,
    /// The interface MTU (option 26), checked: at least 576, at most the host side's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// The name servers (option 6) and search domains (119, else 15's domain),
    /// bounded and checked (see `dhcp::options4::dns`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    /// The domain name (option 15), checked as a DNS name: the CNI result's `domain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

/// One classless static route of a lease: to `dst` via `via`, or on-link (a router
/// of 0.0.0.0, RFC 3442).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRoute {
    pub dst: Ipv4Network,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<Ipv4Addr>,
}

/// A DHCPv6 address (IA_NA) that pipework applies itself (the built-in `dhcp6`
/// client's), and hands to the `dhcp6-f` keeper as it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease6 {
    /// The address, as a /128: DHCPv6 gives no prefix length (see
    /// `addressing::lease_steps`).
    pub addr: Ipv6Network,
    /// The server's DUID, as it sent it (a Renew must name the server), and IAID.
    pub server_id: Vec<u8>,
    pub iaid: u32,
    /// Renewal (T1) and rebinding (T2) times, preferred and valid lifetimes, in seconds.
    pub t1: u32,
    pub t2: u32,
    pub preferred: u32,
    pub valid: u32,
    /// The name servers (OPTION_DNS_SERVERS, 23) and search domains
    /// (OPTION_DOMAIN_LIST, 24), bounded and checked as DHCPv4's are. Missing in the
    /// keeper arguments of earlier versions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<std::net::Ipv6Addr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
}

/// A lease of either family, for the steps that apply it and the keeper.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Leased {
    V4(Lease),
    V6(Lease6),
}

impl Leased {
    /// The address as the interface carries it.
    pub fn addr(&self) -> ipnetwork::IpNetwork {
        match self {
            Leased::V4(l) => l.addr.into(),
            Leased::V6(l) => l.addr.into(),
        }
    }

    pub fn family(&self) -> Family {
        match self {
            Leased::V4(_) => Family::V4,
            Leased::V6(_) => Family::V6,
        }
    }
}

#[cfg(test)]
mod tests;

/// A DHCP form's name as IPSPEC spells it (`dhcp4`, `dhcp6`, `dhclient6`, ...): its
/// messages, pid files, and the client an attachment's record names.
pub fn client_name(client: DhcpClient, family: Family) -> String {
    match (client, family) {
        (DhcpClient::Builtin, Family::V6) => "dhcp6".into(),
        (client, Family::V6) => format!("{client}6"),
        (client, Family::V4) => client.to_string(),
    }
}
