//! Where the enclave listens: a Unix socket (development) or vsock (Nitro); and, for the
//! host only, a vsock port reached through a hybrid-vsock Unix socket (a user-space vsock
//! backend such as vhost-device-vsock or Firecracker: `CONNECT <port>\n`, `OK …\n`).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// The enclave's socket address, picked by flag: `unix:/path` (or a bare path),
/// `vsock:CID:PORT`, or (to connect only) `vsock-uds:PATH:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketAddress {
    Unix(PathBuf),
    Vsock {
        cid: u32,
        port: u32,
    },
    /// A guest's vsock `port`, through the host-side Unix socket `path` of a hybrid-vsock
    /// backend (vhost-device-vsock `--uds-path`, Firecracker `uds_path`). Connect only.
    VsockUds {
        path: PathBuf,
        port: u32,
    },
}

impl FromStr for SocketAddress {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(rest) = s.strip_prefix("vsock-uds:") {
            // The port is after the last ':' (the path may contain ':').
            let (path, port) = rest.rsplit_once(':').ok_or_else(|| format!("`{s}`: expected vsock-uds:PATH:PORT"))?;
            if path.is_empty() {
                return Err(format!("`{s}`: empty socket path"));
            }
            let port = port.parse().map_err(|_| format!("`{s}`: PORT is not a number"))?;
            return Ok(SocketAddress::VsockUds { path: PathBuf::from(path), port });
        }
        if let Some(rest) = s.strip_prefix("vsock:") {
            let (cid, port) = rest.split_once(':').ok_or_else(|| format!("`{s}`: expected vsock:CID:PORT"))?;
            let cid = cid.parse().map_err(|_| format!("`{s}`: CID is not a number"))?;
            let port = port.parse().map_err(|_| format!("`{s}`: PORT is not a number"))?;
            return Ok(SocketAddress::Vsock { cid, port });
        }
        let path = s.strip_prefix("unix:").unwrap_or(s);
        if path.is_empty() {
            return Err("empty socket path".into());
        }
        Ok(SocketAddress::Unix(PathBuf::from(path)))
    }
}

impl fmt::Display for SocketAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketAddress::Unix(p) => write!(f, "unix:{}", p.display()),
            SocketAddress::Vsock { cid, port } => write!(f, "vsock:{cid}:{port}"),
            SocketAddress::VsockUds { path, port } => write!(f, "vsock-uds:{}:{port}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn parse() {
        assert_eq!("vsock:16:5005".parse(), Ok(SocketAddress::Vsock { cid: 16, port: 5005 }));
        assert_eq!("/tmp/x.sock".parse(), Ok(SocketAddress::Unix("/tmp/x.sock".into())));
        assert_eq!("unix:/tmp/x.sock".parse(), Ok(SocketAddress::Unix("/tmp/x.sock".into())));
        assert!("vsock:16".parse::<SocketAddress>().is_err());
        assert!("vsock:a:1".parse::<SocketAddress>().is_err());
        assert!("".parse::<SocketAddress>().is_err());
        let v = SocketAddress::Vsock { cid: 3, port: 9 };
        assert_eq!(v.to_string().parse(), Ok(v));
        assert_eq!(
            "vsock-uds:/run/vm.vsock:5000".parse(),
            Ok(SocketAddress::VsockUds { path: "/run/vm.vsock".into(), port: 5000 })
        );
        assert_eq!(
            "vsock-uds:/a:b/vm.vsock:7".parse(),
            Ok(SocketAddress::VsockUds { path: "/a:b/vm.vsock".into(), port: 7 })
        );
        assert!("vsock-uds:/run/vm.vsock".parse::<SocketAddress>().is_err());
        assert!("vsock-uds::5000".parse::<SocketAddress>().is_err());
        assert!("vsock-uds:/x:port".parse::<SocketAddress>().is_err());
        let v = SocketAddress::VsockUds { path: "/tmp/v.sock".into(), port: 5000 };
        assert_eq!(v.to_string().parse(), Ok(v));
    }
}
