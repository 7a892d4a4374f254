//! Pure: what each descriptor of each traced process is — a tty (by the path the program
//! opened), a TCP/UDP/unix socket (by its peer), or something hsmon ignores (regular files,
//! pipes) — kept through dup, close, fork (a copy), threads (shared) and exec (close-on-exec
//! descriptors go). Also the parsers for `struct sockaddr` and `/proc/PID/net/*`.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

/// A descriptor hsmon shows as a stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A serial port or pty, by the path the program opened (`/dev/ttyUSB0`, a symlink).
    Tty {
        path: String,
    },
    Tcp {
        peer: String,
    },
    Udp {
        peer: String,
    },
    Unix {
        path: String,
    },
}

impl Endpoint {
    /// The stream's name in records: the path, `tcp HOST:PORT`, `udp HOST:PORT`, `unix PATH`.
    pub fn stream_name(&self) -> String {
        match self {
            Endpoint::Tty { path } => path.clone(),
            Endpoint::Tcp { peer } => format!("tcp {peer}"),
            Endpoint::Udp { peer } => format!("udp {peer}"),
            Endpoint::Unix { path } => format!("unix {path}"),
        }
    }

    pub fn is_tty(&self) -> bool {
        matches!(self, Endpoint::Tty { .. })
    }
}

/// Socket families the tracer follows (`AF_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Unix,
    Inet,
    Inet6,
}

impl Family {
    pub fn from_domain(d: u32) -> Option<Family> {
        match d {
            1 => Some(Family::Unix),
            2 => Some(Family::Inet),
            10 => Some(Family::Inet6),
            _ => None,
        }
    }
}

/// What a descriptor is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    Tracked(Endpoint),
    /// A socket not connected yet: it becomes a stream on connect.
    Socket {
        family: Family,
        datagram: bool,
    },
    /// A file, a pipe, a socket of another family, the program's own terminal: not shown.
    Ignored,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    slot: Slot,
    cloexec: bool,
}

/// One process's descriptors (shared by its threads).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FdTable {
    fds: BTreeMap<i32, Entry>,
}

impl FdTable {
    pub fn get(&self, fd: i32) -> Option<&Slot> {
        self.fds.get(&fd).map(|e| &e.slot)
    }

    /// `fd` now means `slot`; returns the stream that was on `fd` before, if any (it closed).
    pub fn insert(&mut self, fd: i32, slot: Slot, cloexec: bool) -> Option<Endpoint> {
        let old = self.fds.insert(fd, Entry { slot, cloexec });
        tracked(old)
    }

    /// close(fd): the stream it ends, if it was one.
    pub fn close(&mut self, fd: i32) -> Option<Endpoint> {
        tracked(self.fds.remove(&fd))
    }

    /// dup/dup2/dup3/fcntl(F_DUPFD): `new` is a copy of `old` (unknown `old`: forgotten).
    pub fn dup(&mut self, old: i32, new: i32, cloexec: bool) -> Option<Endpoint> {
        if old == new {
            return None;
        }
        match self.fds.get(&old).map(|e| e.slot.clone()) {
            Some(slot) => self.insert(new, slot, cloexec),
            None => self.close(new),
        }
    }

    pub fn set_cloexec(&mut self, fd: i32, on: bool) {
        if let Some(e) = self.fds.get_mut(&fd) {
            e.cloexec = on;
        }
    }

    /// exec: close-on-exec descriptors close; the streams that ended.
    pub fn exec(&mut self) -> Vec<(i32, Endpoint)> {
        let gone: Vec<i32> = self
            .fds
            .iter()
            .filter(|(_, e)| e.cloexec)
            .map(|(fd, _)| *fd)
            .collect();
        self.close_all(gone)
    }

    /// close_range(first, last): closed, or only marked close-on-exec.
    pub fn close_range(
        &mut self,
        first: u32,
        last: u32,
        cloexec_only: bool,
    ) -> Vec<(i32, Endpoint)> {
        let in_range: Vec<i32> = self
            .fds
            .keys()
            .copied()
            .filter(|fd| (first..=last).contains(&(*fd as u32)))
            .collect();
        if cloexec_only {
            for fd in in_range {
                self.set_cloexec(fd, true);
            }
            return Vec::new();
        }
        self.close_all(in_range)
    }

    fn close_all(&mut self, fds: Vec<i32>) -> Vec<(i32, Endpoint)> {
        fds.into_iter()
            .filter_map(|fd| self.close(fd).map(|e| (fd, e)))
            .collect()
    }

    /// Every stream still open (at exit: they all go down).
    pub fn streams(&self) -> Vec<(i32, Endpoint)> {
        self.fds
            .iter()
            .filter_map(|(fd, e)| match &e.slot {
                Slot::Tracked(ep) => Some((*fd, ep.clone())),
                _ => None,
            })
            .collect()
    }
}

fn tracked(e: Option<Entry>) -> Option<Endpoint> {
    match e?.slot {
        Slot::Tracked(ep) => Some(ep),
        _ => None,
    }
}

/// Every traced process's table, by thread group; threads map to their group.
#[derive(Debug, Default)]
pub struct Processes {
    tables: HashMap<u32, FdTable>,
    group_of: HashMap<u32, u32>,
}

impl Processes {
    /// The thread group of task `tid` (itself when unknown).
    pub fn group(&self, tid: u32) -> u32 {
        self.group_of.get(&tid).copied().unwrap_or(tid)
    }

    /// A new task: a thread of `group` (shares its table) or a new process (a copy of its
    /// parent's table, or `initial` for the first).
    pub fn add_task(&mut self, tid: u32, group: u32, parent_group: Option<u32>, initial: FdTable) {
        self.group_of.insert(tid, group);
        if !self.tables.contains_key(&group) {
            let table = parent_group
                .and_then(|p| self.tables.get(&p).cloned())
                .unwrap_or(initial);
            self.tables.insert(group, table);
        }
    }

    /// The table of task `tid`'s process.
    pub fn table(&mut self, tid: u32) -> &mut FdTable {
        let g = self.group(tid);
        self.tables.entry(g).or_default()
    }

    /// A task ended; when it was its group's leader, the process's table goes and its
    /// streams are returned (they went down).
    pub fn remove_task(&mut self, tid: u32) -> Vec<(i32, Endpoint)> {
        let g = self.group(tid);
        self.group_of.remove(&tid);
        if g == tid {
            if let Some(t) = self.tables.remove(&g) {
                return t.streams();
            }
        }
        Vec::new()
    }
}

/// What a descriptor's `/proc/PID/fd/N` link says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkTarget {
    Tty,
    Socket { inode: u64 },
    Other,
}

/// Sorts a `/proc/PID/fd/N` link target: a tty device (`/dev/tty*`, `/dev/pts/N`,
/// `/dev/rfcomm*`, `/dev/serial/...`), a socket, or something else.
pub fn classify_link(target: &str) -> LinkTarget {
    if let Some(rest) = target.strip_prefix("socket:[") {
        if let Some(n) = rest.strip_suffix(']').and_then(|n| n.parse().ok()) {
            return LinkTarget::Socket { inode: n };
        }
    }
    let tty_prefixes = [
        "/dev/tty",
        "/dev/pts/",
        "/dev/rfcomm",
        "/dev/serial/",
        "/dev/ptmx",
    ];
    if tty_prefixes.iter().any(|p| target.starts_with(p)) && target != "/dev/tty" {
        LinkTarget::Tty
    } else {
        LinkTarget::Other
    }
}

/// A `struct sockaddr` as connect() got it: `HOST:PORT` for inet, the path for unix
/// (`@name` for the abstract namespace).
pub fn parse_sockaddr(b: &[u8]) -> Option<(Family, String)> {
    let family = u16::from_ne_bytes([*b.first()?, *b.get(1)?]);
    match family {
        1 => {
            let path = b.get(2..).unwrap_or_default();
            let s = if path.first() == Some(&0) {
                let name = &path[1..];
                format!("@{}", String::from_utf8_lossy(name).trim_end_matches('\0'))
            } else {
                let end = path.iter().position(|&c| c == 0).unwrap_or(path.len());
                String::from_utf8_lossy(&path[..end]).into_owned()
            };
            Some((Family::Unix, s))
        }
        2 => {
            let port = u16::from_be_bytes([*b.get(2)?, *b.get(3)?]);
            let ip = Ipv4Addr::new(*b.get(4)?, *b.get(5)?, *b.get(6)?, *b.get(7)?);
            Some((Family::Inet, SocketAddr::from((ip, port)).to_string()))
        }
        10 => {
            let port = u16::from_be_bytes([*b.get(2)?, *b.get(3)?]);
            let mut a = [0u8; 16];
            a.copy_from_slice(b.get(8..24)?);
            let ip = Ipv6Addr::from(a);
            let addr = match ip.to_ipv4_mapped() {
                Some(v4) => SocketAddr::from((v4, port)),
                None => SocketAddr::from((ip, port)),
            };
            Some((Family::Inet6, addr.to_string()))
        }
        _ => None,
    }
}

/// The remote address of the socket with `inode` in a `/proc/PID/net/tcp` or `udp` (v4)
/// table, or `tcp6`/`udp6` (`v6`): `HOST:PORT`. Addresses there are the kernel's words in
/// host byte order, printed as hex (see proc(5)).
pub fn peer_in_proc_net(text: &str, inode: u64, v6: bool) -> Option<String> {
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.get(9).and_then(|i| i.parse::<u64>().ok()) != Some(inode) {
            continue;
        }
        let (addr, port) = cols.get(2)?.split_once(':')?;
        let port = u16::from_str_radix(port, 16).ok()?;
        let ip: std::net::IpAddr = if v6 {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                let w = u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok()?;
                chunk.copy_from_slice(&w.to_ne_bytes());
            }
            let ip6 = Ipv6Addr::from(bytes);
            ip6.to_ipv4_mapped().map_or(ip6.into(), Into::into)
        } else {
            let w = u32::from_str_radix(addr, 16).ok()?;
            Ipv4Addr::from(w.to_ne_bytes()).into()
        };
        return Some(SocketAddr::new(ip, port).to_string());
    }
    None
}

/// The path of the unix socket with `inode` in `/proc/PID/net/unix` ("" when unnamed).
pub fn path_in_proc_unix(text: &str, inode: u64) -> Option<String> {
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.get(6).and_then(|i| i.parse::<u64>().ok()) == Some(inode) {
            return Some(cols.get(7).copied().unwrap_or("").to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tty(p: &str) -> Slot {
        Slot::Tracked(Endpoint::Tty { path: p.into() })
    }

    #[test]
    fn dup_close_and_exec() {
        let mut t = FdTable::default();
        assert_eq!(t.insert(3, tty("/dev/ttyUSB0"), false), None);
        t.insert(4, Slot::Ignored, false);
        assert_eq!(t.dup(3, 7, true), None);
        assert_eq!(t.get(7), Some(&tty("/dev/ttyUSB0")));
        // dup2 over a stream closes it.
        assert_eq!(
            t.dup(4, 7, false),
            Some(Endpoint::Tty {
                path: "/dev/ttyUSB0".into()
            })
        );
        t.dup(3, 8, true);
        let gone = t.exec();
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].0, 8);
        assert_eq!(t.streams().len(), 1);
        assert!(t.close(3).is_some());
        assert!(t.close(3).is_none());
    }

    #[test]
    fn threads_share_forks_copy() {
        let mut p = Processes::default();
        p.add_task(100, 100, None, FdTable::default());
        p.table(100).insert(3, tty("/dev/pts/4"), false);
        p.add_task(101, 100, Some(100), FdTable::default());
        p.table(101).insert(5, tty("/dev/pts/5"), false);
        assert!(p.table(100).get(5).is_some(), "a thread shares the table");
        p.add_task(200, 200, Some(100), FdTable::default());
        p.table(200).close(3);
        assert!(p.table(100).get(3).is_some(), "a fork has its own copy");
        assert!(p.remove_task(101).is_empty());
        assert_eq!(p.remove_task(100).len(), 2);
    }

    #[test]
    fn links_sort() {
        assert_eq!(classify_link("/dev/pts/3"), LinkTarget::Tty);
        assert_eq!(classify_link("/dev/ttyUSB0"), LinkTarget::Tty);
        assert_eq!(classify_link("/dev/tty"), LinkTarget::Other);
        assert_eq!(
            classify_link("socket:[12345]"),
            LinkTarget::Socket { inode: 12345 }
        );
        assert_eq!(classify_link("pipe:[1]"), LinkTarget::Other);
        assert_eq!(classify_link("dump.bin"), LinkTarget::Other);
    }

    #[test]
    fn sockaddrs_parse() {
        let v4 = [2u8, 0, 0x1F, 0x90, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            parse_sockaddr(&v4),
            Some((Family::Inet, "127.0.0.1:8080".into()))
        );
        let mut v6 = vec![10u8, 0, 0x01, 0xBB, 0, 0, 0, 0];
        v6.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        v6.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(
            parse_sockaddr(&v6),
            Some((Family::Inet6, "[::1]:443".into()))
        );
        let mut un = vec![1u8, 0];
        un.extend_from_slice(b"/run/pcscd/pcscd.comm\0\0\0");
        assert_eq!(
            parse_sockaddr(&un),
            Some((Family::Unix, "/run/pcscd/pcscd.comm".into()))
        );
        assert_eq!(parse_sockaddr(&[2u8, 0, 1]), None);
    }

    #[test]
    fn proc_net_tables() {
        // The layout of proc(5) /proc/net/tcp (one row from a Linux 6 host).
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:A1B2 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 20 4 30 10 -1\n";
        assert_eq!(
            peer_in_proc_net(tcp, 4242, false),
            Some("127.0.0.1:8080".into())
        );
        assert_eq!(peer_in_proc_net(tcp, 1, false), None);
        let unix = "Num       RefCount Protocol Flags    Type St Inode Path\n0000000000000000: 00000003 00000000 00000000 0001 03 777 /run/pcscd/pcscd.comm\n";
        assert_eq!(
            path_in_proc_unix(unix, 777),
            Some("/run/pcscd/pcscd.comm".into())
        );
    }
}
