//! Where the enclave listens: a Unix socket (development) or vsock (Nitro).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// The enclave's socket address, picked by flag: `unix:/path` (or a bare path) or
/// `vsock:CID:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketAddress {
    Unix(PathBuf),
    Vsock { cid: u32, port: u32 },
}

impl FromStr for SocketAddress {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
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
    }
}
