//! A real SMTP receiver on loopback: the service's lettre client delivers to it
//! over TCP, and tests read what the invitee would find in their mailbox.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One delivered message: envelope recipients and the raw DATA.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: Vec<String>,
    pub data: String,
}

/// The receiver; stops when dropped.
pub struct SmtpSink {
    pub addr: SocketAddr,
    inbox: Arc<Mutex<Vec<Mail>>>,
    task: JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    /// Listens on a free loopback port.
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let inbox = Arc::new(Mutex::new(Vec::new()));
        let shared = inbox.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, shared.clone()));
            }
        });
        SmtpSink { addr, inbox, task }
    }

    /// Every message delivered to `to` so far, oldest first.
    pub fn mail_to(&self, to: &str) -> Vec<Mail> {
        self.inbox
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(to)))
            .cloned()
            .collect()
    }

    /// Number of messages delivered.
    pub fn count(&self) -> usize {
        self.inbox.lock().unwrap().len()
    }
}

/// The invitation secret (`tg-inv-…`) in a message or log line.
pub fn invitation_secret(text: &str) -> String {
    let at = text.find("tg-inv-").expect("an invitation secret");
    text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect()
}

async fn session(stream: TcpStream, inbox: Arc<Mutex<Vec<Mail>>>) {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut to = Vec::new();
    let mut line = String::new();
    if w.write_all(b"220 sink ESMTP\r\n").await.is_err() {
        return;
    }
    loop {
        line.clear();
        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let cmd = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if cmd.starts_with("EHLO") || cmd.starts_with("HELO") {
            b"250 sink\r\n"
        } else if cmd.starts_with("MAIL FROM:") || cmd.starts_with("RSET") {
            to.clear();
            b"250 OK\r\n"
        } else if cmd.starts_with("RCPT TO:") {
            let addr = line.trim_end()[8..].trim();
            to.push(addr.trim_matches(|c| c == '<' || c == '>').to_string());
            b"250 OK\r\n"
        } else if cmd == "DATA" {
            if w.write_all(b"354 go ahead\r\n").await.is_err() {
                return;
            }
            let mut data = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                if line == ".\r\n" {
                    break;
                }
                // Dot-stuffing: a leading ".." stands for ".".
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            inbox.lock().unwrap().push(Mail {
                to: std::mem::take(&mut to),
                data,
            });
            b"250 OK queued\r\n"
        } else if cmd == "QUIT" {
            let _ = w.write_all(b"221 bye\r\n").await;
            return;
        } else if cmd == "NOOP" {
            b"250 OK\r\n"
        } else {
            b"502 not implemented\r\n"
        };
        if w.write_all(reply).await.is_err() {
            return;
        }
    }
}
