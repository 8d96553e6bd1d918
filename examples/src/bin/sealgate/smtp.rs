//! The SMTP of `sealgate filter` (RFC 5321): a server-side codec (bounded line reader, command
//! parser, DATA reader that undoes dot-stuffing) and a small client (EHLO, MAIL, RCPT, DATA
//! with dot-stuffing, RSET, QUIT) for the next hop. Plain SMTP on loopback, as Postfix's
//! after-queue content filter protocol uses it (FILTER_README): no TLS, no AUTH.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Longest command line accepted (RFC 5321 §4.5.3.1.4 says 512 with the CRLF; extensions
/// such as SIZE= and BODY= fit easily in 4 KiB).
pub(crate) const MAX_COMMAND_LINE: usize = 4096;

/// Longest text line accepted inside DATA. RFC 5321 says 1000; real mail breaks it, so we
/// take up to 64 KiB before we answer 500.
pub(crate) const MAX_DATA_LINE: usize = 64 * 1024;

/// One line read, without its line ending.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// A line (its bytes are in the caller's buffer).
    Text,
    /// A line longer than the limit: its bytes up to the end of the line were discarded.
    TooLong,
    /// The peer closed the connection (a partial last line is dropped).
    Eof,
}

/// A reader of CRLF (or bare LF) terminated lines with a bound on their length, over a stream
/// with a read timeout: a timeout calls `on_idle`, which says whether to keep waiting.
pub(crate) struct LineReader<R> {
    inner: BufReader<R>,
}

impl<R: Read> LineReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner: BufReader::with_capacity(64 * 1024, inner),
        }
    }

    /// Read one line into `buf` (cleared first), at most `max` bytes. `on_idle` is called on
    /// each read timeout with whether a partial line is pending; `false` ends the wait with
    /// `TimedOut`.
    pub(crate) fn read_line(
        &mut self,
        buf: &mut Vec<u8>,
        max: usize,
        on_idle: &mut dyn FnMut(bool) -> bool,
    ) -> io::Result<Line> {
        buf.clear();
        let mut too_long = false;
        loop {
            let available = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if on_idle(!buf.is_empty() || too_long) {
                        continue;
                    }
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "idle timeout"));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                return Ok(Line::Eof);
            }
            let (chunk, done) = match memchr_lf(available) {
                Some(i) => (&available[..i], Some(i + 1)),
                None => (available, None),
            };
            if !too_long {
                if buf.len() + chunk.len() > max {
                    too_long = true;
                    buf.clear();
                } else {
                    buf.extend_from_slice(chunk);
                }
            }
            let used = done.unwrap_or(available.len());
            self.inner.consume(used);
            if done.is_some() {
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
                return Ok(if too_long { Line::TooLong } else { Line::Text });
            }
        }
    }
}

fn memchr_lf(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

/// A command of the server side.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Command {
    Helo(String),
    Ehlo(String),
    /// MAIL FROM: the reverse path (empty for `<>`) and the SIZE= parameter.
    Mail {
        from: String,
        size: Option<u64>,
    },
    /// RCPT TO: the forward path.
    Rcpt(String),
    Data,
    Rset,
    Noop,
    Quit,
    Vrfy,
    Help,
    /// A command we do not implement (502).
    Unknown,
    /// A known command with bad arguments (501), with what is wrong.
    Syntax(&'static str),
}

/// Parse a command line (without CRLF).
pub(crate) fn parse_command(line: &[u8]) -> Command {
    let Ok(line) = std::str::from_utf8(line) else {
        return Command::Syntax("not UTF-8");
    };
    let (verb, rest) = match line.find(' ') {
        Some(i) => (&line[..i], line[i + 1..].trim()),
        None => (line.trim(), ""),
    };
    match verb.to_ascii_uppercase().as_str() {
        "HELO" if !rest.is_empty() => Command::Helo(rest.to_owned()),
        "EHLO" if !rest.is_empty() => Command::Ehlo(rest.to_owned()),
        "HELO" | "EHLO" => Command::Syntax("a domain is required"),
        "MAIL" => match prefixed(rest, "FROM:").and_then(path_and_params) {
            Some((from, params)) => {
                let mut size = None;
                for p in params.split_ascii_whitespace() {
                    if p.get(..5).is_some_and(|k| k.eq_ignore_ascii_case("SIZE=")) {
                        match p[5..].parse::<u64>() {
                            Ok(n) => size = Some(n),
                            Err(_) => return Command::Syntax("bad SIZE parameter"),
                        }
                    }
                }
                Command::Mail { from, size }
            }
            None => Command::Syntax("MAIL FROM:<address>"),
        },
        "RCPT" => match prefixed(rest, "TO:").and_then(path_and_params) {
            Some((to, _)) if !to.is_empty() => Command::Rcpt(to),
            _ => Command::Syntax("RCPT TO:<address>"),
        },
        "DATA" if rest.is_empty() => Command::Data,
        "RSET" if rest.is_empty() => Command::Rset,
        "QUIT" if rest.is_empty() => Command::Quit,
        "DATA" | "RSET" | "QUIT" => Command::Syntax("no parameters allowed"),
        "NOOP" => Command::Noop,
        "VRFY" => Command::Vrfy,
        "HELP" => Command::Help,
        _ => Command::Unknown,
    }
}

fn prefixed<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s[prefix.len()..].trim_start())
}

/// `<path> params`: the address inside the angle brackets (source routes dropped) and the
/// rest. Control characters and spaces in the address are refused.
fn path_and_params(s: &str) -> Option<(String, &str)> {
    let s = s.strip_prefix('<')?;
    let end = s.find('>')?;
    let mut addr = &s[..end];
    // RFC 5321 §4.1.2: a source route "@a,@b:user@host" is accepted and ignored.
    if addr.starts_with('@') {
        addr = &addr[addr.find(':')? + 1..];
    }
    if addr.chars().any(|c| c.is_control() || c == ' ') {
        return None;
    }
    Some((addr.to_owned(), s[end + 1..].trim()))
}

/// What reading a DATA section gave.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Data {
    /// The message, dot-stuffing undone, every line ending CRLF.
    Complete,
    /// Larger than the limit: read to the end and discarded (answer 552).
    TooBig,
    /// A line longer than [`MAX_DATA_LINE`] (answer 500, read to the end and discarded).
    LineTooLong,
}

/// Read a DATA section up to the line "." into `msg` (cleared first), at most `max` bytes.
/// `Ok(None)` when the connection ended before the final dot.
pub(crate) fn read_data<R: Read>(
    r: &mut LineReader<R>,
    msg: &mut Vec<u8>,
    max: usize,
    on_idle: &mut dyn FnMut(bool) -> bool,
) -> io::Result<Option<Data>> {
    msg.clear();
    let mut line = Vec::with_capacity(1024);
    let mut state = Data::Complete;
    loop {
        match r.read_line(&mut line, MAX_DATA_LINE, on_idle)? {
            Line::Eof => return Ok(None),
            Line::TooLong => {
                if state == Data::Complete {
                    state = Data::LineTooLong;
                }
                msg.clear();
                continue;
            }
            Line::Text => {}
        }
        if line == b"." {
            return Ok(Some(state));
        }
        if state != Data::Complete {
            continue;
        }
        // RFC 5321 §4.5.2: a line starting with a dot had one more dot added.
        let text = line.strip_prefix(b".").unwrap_or(&line);
        if msg.len() + text.len() + 2 > max {
            state = Data::TooBig;
            msg.clear();
            msg.shrink_to(0);
            continue;
        }
        msg.extend_from_slice(text);
        msg.extend_from_slice(b"\r\n");
    }
}

/// Write `msg` as a DATA section: every line ending made CRLF, a dot added to lines that start
/// with one, a final CRLF if missing, then ".\r\n".
pub(crate) fn write_data(w: &mut impl Write, msg: &[u8]) -> io::Result<()> {
    let mut out = Vec::with_capacity(msg.len() + msg.len() / 64 + 8);
    for line in msg.split_inclusive(|&b| b == b'\n') {
        let text = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(line);
        if text.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(text);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    w.write_all(&out)
}

/// A reply of the next hop: the code and the text lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) code: u16,
    pub(crate) text: String,
}

impl Reply {
    pub(crate) fn is_permanent(&self) -> bool {
        self.code >= 500
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

/// Why a hand-over to the next hop failed.
#[derive(Debug)]
pub(crate) enum SendError {
    /// The next hop could not be reached or the connection broke (temporary).
    Io(io::Error),
    /// The next hop answered a command with an error.
    Refused { command: &'static str, reply: Reply },
}

impl SendError {
    pub(crate) fn is_permanent(&self) -> bool {
        matches!(self, SendError::Refused { reply, .. } if reply.is_permanent())
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Io(e) => write!(f, "next hop: {e}"),
            SendError::Refused { command, reply } => {
                write!(f, "next hop refused {command}: {reply}")
            }
        }
    }
}

impl From<io::Error> for SendError {
    fn from(e: io::Error) -> Self {
        SendError::Io(e)
    }
}

/// An SMTP client connection to the next hop.
pub(crate) struct Client {
    reader: LineReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    /// Connect, read the greeting and say EHLO `hostname`.
    pub(crate) fn connect(
        addr: SocketAddr,
        hostname: &str,
        timeout: Duration,
    ) -> Result<Self, SendError> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        let mut c = Self {
            reader: LineReader::new(stream.try_clone()?),
            writer: stream,
        };
        c.expect("greeting", 220)?;
        c.command("EHLO", &format!("EHLO {hostname}"), 250)?;
        Ok(c)
    }

    fn reply(&mut self) -> Result<Reply, SendError> {
        let mut text = String::new();
        let mut line = Vec::new();
        // The socket's read timeout ends the wait: a next hop that stalls is a failure.
        let mut idle = |_: bool| false;
        loop {
            match self
                .reader
                .read_line(&mut line, MAX_COMMAND_LINE, &mut idle)?
            {
                Line::Text => {}
                Line::TooLong => {
                    return Err(SendError::Io(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "reply line too long",
                    )));
                }
                Line::Eof => {
                    return Err(SendError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed",
                    )));
                }
            }
            let s = String::from_utf8_lossy(&line);
            let code = s
                .get(..3)
                .and_then(|c| c.parse::<u16>().ok())
                .filter(|c| (200..600).contains(c))
                .ok_or_else(|| {
                    SendError::Io(io::Error::new(io::ErrorKind::InvalidData, "bad reply"))
                })?;
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(s.get(4..).unwrap_or("").trim());
            if s.as_bytes().get(3) != Some(&b'-') {
                return Ok(Reply { code, text });
            }
            if text.len() > 16 * 1024 {
                return Err(SendError::Io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "reply too long",
                )));
            }
        }
    }

    fn expect(&mut self, command: &'static str, class: u16) -> Result<Reply, SendError> {
        let reply = self.reply()?;
        if reply.code / 100 == class / 100 {
            Ok(reply)
        } else {
            Err(SendError::Refused { command, reply })
        }
    }

    fn command(
        &mut self,
        command: &'static str,
        line: &str,
        class: u16,
    ) -> Result<Reply, SendError> {
        self.writer.write_all(line.as_bytes())?;
        self.writer.write_all(b"\r\n")?;
        self.expect(command, class)
    }

    /// One mail transaction: MAIL FROM, RCPT TO each recipient, DATA. Any refusal fails the
    /// whole transaction (the caller answers its own client for all recipients at once).
    pub(crate) fn send(
        &mut self,
        from: &str,
        rcpts: &[String],
        msg: &[u8],
    ) -> Result<(), SendError> {
        self.command("MAIL", &format!("MAIL FROM:<{from}>"), 250)?;
        for r in rcpts {
            if let Err(e) = self.command("RCPT", &format!("RCPT TO:<{r}>"), 250) {
                let _ = self.command("RSET", "RSET", 250);
                return Err(e);
            }
        }
        self.command("DATA", "DATA", 354)?;
        write_data(&mut self.writer, msg)?;
        self.writer.flush()?;
        self.expect("end of DATA", 250)?;
        Ok(())
    }

    /// QUIT, ignoring the answer.
    pub(crate) fn quit(mut self) {
        let _ = self.command("QUIT", "QUIT", 221);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<(Line, Vec<u8>)> {
        let mut r = LineReader::new(input);
        let mut out = Vec::new();
        loop {
            let mut buf = Vec::new();
            let l = r.read_line(&mut buf, max, &mut |_| false).unwrap();
            let eof = l == Line::Eof;
            out.push((l, buf));
            if eof {
                return out;
            }
        }
    }

    #[test]
    fn lines_end_in_crlf_or_lf_and_are_bounded() {
        let got = lines(b"a\r\nbb\nccccc\r\nd", 4);
        assert_eq!(
            got,
            vec![
                (Line::Text, b"a".to_vec()),
                (Line::Text, b"bb".to_vec()),
                (Line::TooLong, vec![]),
                (Line::Eof, b"d".to_vec()),
            ]
        );
    }

    #[test]
    fn commands() {
        assert_eq!(
            parse_command(b"MAIL FROM:<a@b.example> SIZE=1234 BODY=8BITMIME"),
            Command::Mail {
                from: "a@b.example".into(),
                size: Some(1234)
            }
        );
        assert_eq!(
            parse_command(b"mail from: <>"),
            Command::Mail {
                from: String::new(),
                size: None
            }
        );
        assert_eq!(
            parse_command(b"RCPT TO:<@relay.example:bob@c.example>"),
            Command::Rcpt("bob@c.example".into())
        );
        assert_eq!(parse_command(b"EHLO mx"), Command::Ehlo("mx".into()));
        assert_eq!(parse_command(b"data"), Command::Data);
        assert!(matches!(parse_command(b"RCPT TO:<>"), Command::Syntax(_)));
        assert!(matches!(parse_command(b"RCPT TO:bob"), Command::Syntax(_)));
        assert!(matches!(
            parse_command(b"MAIL FROM:<a@b> SIZE=x"),
            Command::Syntax(_)
        ));
        assert!(matches!(
            parse_command(b"RCPT TO:<a\x01b@c>"),
            Command::Syntax(_)
        ));
        assert!(matches!(parse_command(b"\xff\xfe"), Command::Syntax(_)));
        assert_eq!(parse_command(b"STARTTLS"), Command::Unknown);
        assert_eq!(parse_command(b""), Command::Unknown);
    }

    #[test]
    fn dot_stuffing_round_trips() {
        let msg = b"Subject: x\r\n\r\n.leading dot\r\n..two\r\n.\r\nbare lf\nlast".to_vec();
        let mut wire = Vec::new();
        write_data(&mut wire, &msg).unwrap();
        assert_eq!(
            wire,
            b"Subject: x\r\n\r\n..leading dot\r\n...two\r\n..\r\nbare lf\r\nlast\r\n.\r\n"
        );
        let mut r = LineReader::new(&wire[..]);
        let mut back = Vec::new();
        let d = read_data(&mut r, &mut back, 1 << 20, &mut |_| false).unwrap();
        assert_eq!(d, Some(Data::Complete));
        assert_eq!(
            back,
            b"Subject: x\r\n\r\n.leading dot\r\n..two\r\n.\r\nbare lf\r\nlast\r\n"
        );
    }

    #[test]
    fn data_limits() {
        let mut wire = Vec::new();
        write_data(&mut wire, &[b'x'; 100].repeat(10)).unwrap();
        wire.extend_from_slice(b"QUIT\r\n");
        let mut r = LineReader::new(&wire[..]);
        let mut msg = Vec::new();
        assert_eq!(
            read_data(&mut r, &mut msg, 500, &mut |_| false).unwrap(),
            Some(Data::TooBig)
        );
        assert!(msg.is_empty());
        // The reader is past the final dot: the next command is intact.
        let mut line = Vec::new();
        r.read_line(&mut line, 100, &mut |_| false).unwrap();
        assert_eq!(line, b"QUIT");

        let long = [b'y'; MAX_DATA_LINE + 10];
        let mut wire = Vec::new();
        write_data(&mut wire, &long).unwrap();
        let mut r = LineReader::new(&wire[..]);
        assert_eq!(
            read_data(&mut r, &mut msg, usize::MAX, &mut |_| false).unwrap(),
            Some(Data::LineTooLong)
        );
        // Cut off before the final dot.
        let mut r = LineReader::new(&b"abc\r\n"[..]);
        assert_eq!(
            read_data(&mut r, &mut msg, 100, &mut |_| false).unwrap(),
            None
        );
    }
}
