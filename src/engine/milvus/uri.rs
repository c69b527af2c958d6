//! The Milvus backend's URI:
//! `milvus://[USER:PASSWORD@]HOST:PORT/NAME[?OPTION=VALUE&...]`, options
//! `tls`, `timeout_s`, `index` and `nlist` (see `ann`), `nprobe`,
//! `consistency` (see [`Consistency`]), `replicas`.

use super::super::EngineError;
use super::ann::{Ann, MAX_NLIST};

/// The URI's shape, for messages.
const SHAPE: &str = "milvus://[USER:PASSWORD@]HOST:PORT/NAME[?tls=true&timeout_s=N&index=flat|ivf&nlist=N&nprobe=N&consistency=strong|session|bounded&replicas=N]";

/// What a read (search, get, the checks of an add) of this handle sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Consistency {
    /// Every write acknowledged before the read, by any client (the
    /// default: servers on one index stay stateless). Each read waits for
    /// the server's time tick: measured ~0.25 s a round trip on Milvus 2.3
    /// with its default 200 ms tick.
    #[default]
    Strong,
    /// This handle's own writes; other clients' after Milvus's sync lag.
    Session,
    /// Writes older than Milvus's graceful time (5 s by default): Milvus's
    /// own default, 20 times faster single searches here.
    Bounded,
}

impl Consistency {
    /// Milvus's consistency level number.
    pub(crate) fn level(self) -> i32 {
        use milvus::proto::common::ConsistencyLevel;
        (match self {
            Consistency::Strong => ConsistencyLevel::Strong,
            Consistency::Session => ConsistencyLevel::Session,
            Consistency::Bounded => ConsistencyLevel::Bounded,
        }) as i32
    }
}

/// A parsed `milvus://` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MilvusUri {
    /// `HOST:PORT`.
    pub(crate) host_port: String,
    /// The index name: every collection of the index starts with it.
    pub(crate) name: String,
    pub(crate) user: Option<String>,
    pub(crate) password: Option<String>,
    /// Connect with TLS (`https`).
    pub(crate) tls: bool,
    /// Deadline of each call to the server, in seconds.
    pub(crate) timeout_s: u64,
    /// The vector index of the unit collections (`index`, `nlist`), if
    /// named: what a new index is created with, what an existing one must
    /// have.
    pub(crate) ann: Option<Ann>,
    /// Lists an approximate search probes, if named.
    pub(crate) nprobe: Option<usize>,
    /// What reads see.
    pub(crate) consistency: Consistency,
    /// In-memory replicas of each collection this handle loads (a
    /// collection already loaded keeps its own): with 2 or more on a
    /// cluster, searches keep answering when a query node fails.
    pub(crate) replicas: u32,
}

/// Longest index name: collection names add at most 12 characters and
/// Milvus allows 255.
const MAX_NAME: usize = 200;

impl MilvusUri {
    /// Parse `uri`; errors name the URI (without its password) and the part
    /// that is wrong.
    pub(crate) fn parse(uri: &str) -> Result<MilvusUri, EngineError> {
        let bad =
            |why: &str| EngineError::Invalid(format!("{}: {why} (expected {SHAPE})", redact(uri)));
        let rest = uri
            .strip_prefix(super::super::MILVUS_SCHEME)
            .ok_or_else(|| bad("not a milvus:// URI"))?;
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, name) = rest
            .split_once('/')
            .ok_or_else(|| bad("no index name after HOST:PORT/"))?;
        let (creds, host_port) = match authority.rsplit_once('@') {
            Some((c, h)) => (Some(c), h),
            None => (None, authority),
        };
        let (user, password) = match creds {
            Some(c) => match c.split_once(':') {
                Some((u, p)) => (Some(u.to_string()), Some(p.to_string())),
                None => (Some(c.to_string()), None),
            },
            None => (None, None),
        };
        let (host, port) = host_port
            .rsplit_once(':')
            .ok_or_else(|| bad("no port (HOST:PORT)"))?;
        if host.is_empty() {
            return Err(bad("no host"));
        }
        port.parse::<u16>()
            .map_err(|_| bad(&format!("port {port:?} is not a number from 0 to 65535")))?;
        let name_ok = !name.is_empty()
            && name.len() <= MAX_NAME
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            // "__" separates the name from a collection's role: an index
            // `a` must never own the collections of an index `a__b`.
            && !name.contains("__")
            && !name.ends_with('_');
        if !name_ok {
            return Err(bad(&format!(
                "index name {name:?} must be 1 to {MAX_NAME} letters, digits or '_', not starting with a digit, without \"__\" and not ending in '_'"
            )));
        }
        let mut out = MilvusUri {
            host_port: host_port.to_string(),
            name: name.to_string(),
            user,
            password,
            tls: false,
            timeout_s: 30,
            ann: None,
            nprobe: None,
            consistency: Consistency::Strong,
            replicas: 1,
        };
        let (mut index, mut nlist) = (None, None);
        let count = |k: &str, v: &str, max: usize| {
            v.parse::<usize>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| bad(&format!("{k}={v:?} (1 to {max})")))
        };
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "tls" => {
                    out.tls = match v {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(bad(&format!("tls={v:?} (true or false)"))),
                    }
                }
                "timeout_s" => {
                    out.timeout_s = v
                        .parse()
                        .ok()
                        .filter(|t| (1..=3600).contains(t))
                        .ok_or_else(|| bad(&format!("timeout_s={v:?} (1 to 3600)")))?
                }
                "index" => index = Some(v.to_string()),
                "nlist" => nlist = Some(count(k, v, MAX_NLIST)?),
                "nprobe" => out.nprobe = Some(count(k, v, MAX_NLIST)?),
                "replicas" => out.replicas = count(k, v, 16)? as u32,
                "consistency" => {
                    out.consistency = match v {
                        "strong" => Consistency::Strong,
                        "session" => Consistency::Session,
                        "bounded" => Consistency::Bounded,
                        _ => {
                            return Err(bad(&format!(
                                "consistency={v:?} (strong, session or bounded)"
                            )))
                        }
                    }
                }
                other => return Err(bad(&format!("unknown option {other:?}"))),
            }
        }
        out.ann = match (index, nlist) {
            (None, None) => None,
            (i, n) => Some(Ann::parse(i.as_deref().unwrap_or("flat"), n).map_err(|why| bad(&why))?),
        };
        Ok(out)
    }

    /// The gRPC endpoint.
    pub(crate) fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host_port)
    }

    /// The URI as errors and `path()` show it: no credentials, no options.
    pub(crate) fn display(&self) -> String {
        format!("milvus://{}/{}", self.host_port, self.name)
    }
}

/// `uri` with any `USER:PASSWORD@` part removed (for messages).
pub(crate) fn redact(uri: &str) -> String {
    let Some(rest) = uri.strip_prefix(super::super::MILVUS_SCHEME) else {
        return uri.to_string();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("milvus://{}", &rest[at + 1..]),
        None => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let u = MilvusUri::parse("milvus://127.0.0.1:19530/my_index").unwrap();
        assert_eq!(u.host_port, "127.0.0.1:19530");
        assert_eq!(u.name, "my_index");
        assert_eq!(u.endpoint(), "http://127.0.0.1:19530");
        assert!(!u.tls && u.user.is_none());
        let u =
            MilvusUri::parse("milvus://ann:s3cret@db.example:443/x?tls=true&timeout_s=5").unwrap();
        assert_eq!(u.user.as_deref(), Some("ann"));
        assert_eq!(u.password.as_deref(), Some("s3cret"));
        assert!(u.tls);
        assert_eq!(u.timeout_s, 5);
        assert_eq!(u.endpoint(), "https://db.example:443");
        assert_eq!(u.display(), "milvus://db.example:443/x");
        assert_eq!((u.ann, u.nprobe), (None, None));
        let u = MilvusUri::parse("milvus://h:1/x?index=ivf&nlist=256&nprobe=32").unwrap();
        assert_eq!((u.ann, u.nprobe), (Some(Ann::Ivf { nlist: 256 }), Some(32)));
        assert_eq!((u.consistency, u.replicas), (Consistency::Strong, 1));
        assert_eq!(
            MilvusUri::parse("milvus://h:1/x?replicas=2")
                .unwrap()
                .replicas,
            2
        );
        for (v, c) in [
            ("strong", Consistency::Strong),
            ("session", Consistency::Session),
            ("bounded", Consistency::Bounded),
        ] {
            let u = MilvusUri::parse(&format!("milvus://h:1/x?consistency={v}")).unwrap();
            assert_eq!(u.consistency, c);
        }
        for (bad, says) in [
            ("milvus://host/x", "no port"),
            ("milvus://host:99999/x", "port"),
            ("milvus://host:1", "no index name"),
            ("milvus://host:1/", "index name"),
            ("milvus://host:1/9x", "index name"),
            ("milvus://host:1/a-b", "index name"),
            ("milvus://host:1/a__b", "index name"),
            ("milvus://host:1/a_", "index name"),
            ("milvus://host:1/x?tls=maybe", "tls="),
            ("milvus://host:1/x?colour=red", "unknown option"),
            ("milvus://:1/x", "no host"),
            ("milvus://host:1/x?index=hnsw", "flat or ivf"),
            ("milvus://host:1/x?nlist=64", "nlist applies to index=ivf"),
            ("milvus://host:1/x?index=ivf&nlist=0", "nlist="),
            ("milvus://host:1/x?nprobe=x", "nprobe="),
            (
                "milvus://host:1/x?consistency=eventual",
                "strong, session or bounded",
            ),
            ("milvus://host:1/x?replicas=0", "replicas="),
        ] {
            let e = MilvusUri::parse(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let e = MilvusUri::parse("milvus://ann:s3cret@host/x")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("s3cret"), "{e}");
    }
}
