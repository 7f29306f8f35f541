//! Database remotes: `unix:PATH`, `tcp:HOST:PORT`, `ssl:HOST:PORT`, and
//! comma-separated lists of them for clustered databases.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Where a database is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// A Unix domain socket.
    Unix(PathBuf),
    /// Plain TCP.
    Tcp {
        /// Host name or address (IPv6 without brackets).
        host: String,
        /// Port.
        port: u16,
    },
    /// TLS over TCP.
    Ssl {
        /// Host name or address (IPv6 without brackets).
        host: String,
        /// Port.
        port: u16,
    },
}

/// Splits `HOST:PORT`, accepting `[v6addr]:PORT`.
fn host_port(s: &str, whole: &str) -> Result<(String, u16), String> {
    let bad = || format!("{whole:?}: expected HOST:PORT (IPv6 as [ADDR]:PORT)");
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once("]:").ok_or_else(bad)?;
        (h, p)
    } else {
        let (h, p) = s.rsplit_once(':').ok_or_else(bad)?;
        if h.contains(':') {
            return Err(bad());
        }
        (h, p)
    };
    if host.is_empty() {
        return Err(bad());
    }
    let port = port.parse().map_err(|_| bad())?;
    Ok((host.to_owned(), port))
}

impl FromStr for Remote {
    type Err = String;
    fn from_str(s: &str) -> Result<Remote, String> {
        let s = s.trim();
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(format!("{s:?}: empty socket path"));
            }
            return Ok(Remote::Unix(PathBuf::from(path)));
        }
        if let Some(hp) = s.strip_prefix("tcp:") {
            let (host, port) = host_port(hp, s)?;
            return Ok(Remote::Tcp { host, port });
        }
        if let Some(hp) = s.strip_prefix("ssl:") {
            let (host, port) = host_port(hp, s)?;
            return Ok(Remote::Ssl { host, port });
        }
        Err(format!(
            "{s:?}: unsupported remote (expected unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT)"
        ))
    }
}

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hp = |f: &mut fmt::Formatter<'_>, scheme: &str, host: &str, port: u16| {
            if host.contains(':') {
                write!(f, "{scheme}:[{host}]:{port}")
            } else {
                write!(f, "{scheme}:{host}:{port}")
            }
        };
        match self {
            Remote::Unix(p) => write!(f, "unix:{}", p.display()),
            Remote::Tcp { host, port } => hp(f, "tcp", host, *port),
            Remote::Ssl { host, port } => hp(f, "ssl", host, *port),
        }
    }
}

/// Parses a comma-separated list of remotes (a clustered database).
pub fn parse_list(s: &str) -> Result<Vec<Remote>, String> {
    let list: Vec<Remote> = s
        .split(',')
        .filter(|r| !r.trim().is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    if list.is_empty() {
        return Err(format!("{s:?}: no remote"));
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(
            "unix:/run/ovs/db.sock".parse::<Remote>().unwrap(),
            Remote::Unix("/run/ovs/db.sock".into())
        );
        assert_eq!(
            "tcp:10.0.0.1:6642".parse::<Remote>().unwrap(),
            Remote::Tcp {
                host: "10.0.0.1".into(),
                port: 6642
            }
        );
        assert_eq!(
            "ssl:[fd00::1]:6642".parse::<Remote>().unwrap(),
            Remote::Ssl {
                host: "fd00::1".into(),
                port: 6642
            }
        );
        assert_eq!(
            "tcp:[::1]:6641".parse::<Remote>().unwrap().to_string(),
            "tcp:[::1]:6641"
        );
    }

    #[test]
    fn refuses_malformed_remotes() {
        for bad in [
            "unix:",
            "tcp:host",
            "tcp::6642",
            "tcp:fd00::1:6642",
            "tcp:h:port",
            "tcp:h:70000",
            "http:x:1",
            "",
        ] {
            assert!(bad.parse::<Remote>().is_err(), "{bad}");
        }
    }

    #[test]
    fn lists_are_comma_separated() {
        let l = parse_list("tcp:10.0.0.1:6642,tcp:10.0.0.2:6642, tcp:10.0.0.3:6642").unwrap();
        assert_eq!(l.len(), 3);
        assert!(parse_list(",").is_err());
        assert!(parse_list("tcp:a:1,bogus").is_err());
    }
}
