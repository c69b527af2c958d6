//! A small blocking HTTP/1.1 client for the server's tests and the load
//! benchmark: one keep-alive connection, `Content-Length` and chunked
//! bodies. Not a general-purpose client (no TLS, no redirects).

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A response.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON.
    pub fn json(&self) -> io::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "status {}: {e}: {}",
                    self.status,
                    String::from_utf8_lossy(&self.body)
                ),
            )
        })
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One keep-alive connection to a server (reconnects when the server
/// closed it between requests).
#[derive(Debug)]
pub struct Client {
    addr: SocketAddr,
    conn: Option<BufReader<TcpStream>>,
    headers: Vec<(String, String)>,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl Client {
    /// A client of `addr` (connects on the first request).
    pub fn new(addr: SocketAddr) -> Client {
        Client {
            addr,
            conn: None,
            headers: Vec::new(),
        }
    }

    /// Send `name: value` with every request.
    pub fn with_header(mut self, name: &str, value: &str) -> Client {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// `GET path`.
    pub fn get(&mut self, path: &str) -> io::Result<Response> {
        self.request("GET", path, None, &[])
    }

    /// `POST path` with a JSON body.
    pub fn post(&mut self, path: &str, json: &serde_json::Value) -> io::Result<Response> {
        self.request("POST", path, Some(json.to_string().as_bytes()), &[])
    }

    /// `DELETE path`.
    pub fn delete(&mut self, path: &str) -> io::Result<Response> {
        self.request("DELETE", path, None, &[])
    }

    /// Any request; `extra` headers are added to the client's own.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        extra: &[(&str, &str)],
    ) -> io::Result<Response> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        for (n, v) in self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .chain(extra.iter().copied())
        {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        if let Some(b) = body {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                b.len()
            ));
        }
        head.push_str("\r\n");
        let reused = self.conn.is_some();
        match self.exchange(head.as_bytes(), body) {
            // A kept-alive connection the server closed meanwhile: once more
            // on a fresh one.
            Err(e) if reused && is_closed(&e) => {
                self.conn = None;
                self.exchange(head.as_bytes(), body)
            }
            other => other,
        }
    }

    fn exchange(&mut self, head: &[u8], body: Option<&[u8]>) -> io::Result<Response> {
        if self.conn.is_none() {
            let stream = TcpStream::connect(self.addr)?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(Duration::from_secs(300)))?;
            self.conn = Some(BufReader::new(stream));
        }
        let result = (|| {
            let conn = self.conn.as_mut().ok_or_else(|| bad("no connection"))?;
            let mut request = head.to_vec();
            request.extend_from_slice(body.unwrap_or_default());
            conn.get_mut().write_all(&request)?;
            read_response(conn)
        })();
        match &result {
            Ok(r) if r.header("connection") == Some("close") => self.conn = None,
            Err(_) => self.conn = None,
            _ => {}
        }
        result
    }
}

fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

fn read_line(r: &mut impl BufRead) -> io::Result<String> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn read_response(r: &mut impl BufRead) -> io::Result<Response> {
    let status_line = read_line(r)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(r)?;
        if line.is_empty() {
            break;
        }
        let (n, v) = line
            .split_once(':')
            .ok_or_else(|| bad(format!("bad header {line:?}")))?;
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let mut body = Vec::new();
    if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let size_line = read_line(r)?;
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| bad(format!("bad chunk size {size_line:?}")))?;
            if size == 0 {
                // trailers until the blank line
                while !read_line(r)?.is_empty() {}
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            read_line(r)?;
        }
    } else {
        let len = match find("content-length") {
            Some(v) => v
                .parse::<usize>()
                .map_err(|_| bad(format!("bad content-length {v:?}")))?,
            None => 0,
        };
        body.resize(len, 0);
        r.read_exact(&mut body)?;
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_and_chunked_bodies() {
        let raw = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi";
        let r = read_response(&mut &raw[..]).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hi"[..]));
        let raw = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let r = read_response(&mut &raw[..]).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (404, &b"abcde"[..]));
        assert!(read_response(&mut &b"garbage\r\n\r\n"[..]).is_err());
    }
}
