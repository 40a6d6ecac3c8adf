//! A real SMTP server inside the test process, on 127.0.0.1 and a free port: it speaks
//! enough ESMTP for lettre (EHLO/HELO, AUTH PLAIN and LOGIN, MAIL, RCPT, DATA with
//! dot-unstuffing, RSET, NOOP, QUIT), keeps every message it accepts, and can be told to
//! misbehave (a reply for one recipient, a temporary failure for the next messages, or
//! refusing connections) so delivery and retry logic is tested against real sockets.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::mime::ParsedMail;

/// One message as the server accepted it.
#[derive(Clone, Debug, Default)]
pub struct ReceivedMail {
    /// The envelope sender (MAIL FROM), without angle brackets.
    pub from: String,
    /// The envelope recipients (RCPT TO) that were accepted.
    pub to: Vec<String>,
    /// The user name the client authenticated as, if it did.
    pub auth_user: Option<String>,
    /// The message as sent, after dot-unstuffing, with its CRLF line endings.
    pub raw: Vec<u8>,
}

impl ReceivedMail {
    pub fn parsed(&self) -> ParsedMail {
        ParsedMail::parse(&self.raw)
    }
}

/// Misbehaviour asked for by a test.
#[derive(Default)]
struct Faults {
    /// RCPT TO replies by lowercased address, e.g. "550 5.1.1 No such user".
    recipient_replies: HashMap<String, String>,
    /// Replies for the next messages after their data instead of 250, in order.
    next_replies: VecDeque<String>,
    /// How long to wait before acknowledging an accepted message, as a slow relay does.
    acknowledge_after: Duration,
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<ReceivedMail>>,
    /// Messages whose data ended, accepted or not: retries show up here.
    attempts: Mutex<usize>,
    faults: Mutex<Faults>,
    /// Set while the server is down: open sessions hang up at their next command.
    down: Mutex<bool>,
    /// Sessions whose client has not hung up yet.
    open_sessions: Mutex<usize>,
    arrived: Notify,
}

pub struct SmtpServer {
    pub port: u16,
    shared: Arc<Shared>,
    acceptor: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(acceptor) = self.acceptor.lock().unwrap().take() {
            acceptor.abort();
        }
    }
}

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the test SMTP server");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared::default());
        let acceptor = tokio::spawn(accept_loop(listener, shared.clone()));
        SmtpServer { port, shared, acceptor: Mutex::new(Some(acceptor)) }
    }

    /// The URL to give the app as `smtp_url` (plain SMTP, no TLS).
    pub fn url(&self) -> url::Url {
        format!("smtp://127.0.0.1:{}", self.port).parse().unwrap()
    }

    /// Every message accepted so far, oldest first.
    pub fn received(&self) -> Vec<ReceivedMail> {
        self.shared.received.lock().unwrap().clone()
    }

    /// How many messages were accepted so far.
    pub fn received_count(&self) -> usize {
        self.shared.received.lock().unwrap().len()
    }

    /// Messages whose data was sent, whether they were accepted or failed on purpose.
    pub fn attempts(&self) -> usize {
        *self.shared.attempts.lock().unwrap()
    }

    /// Messages accepted for `address` (an envelope recipient), oldest first.
    pub fn received_by(&self, address: &str) -> Vec<ReceivedMail> {
        let wanted = address.to_ascii_lowercase();
        self.received().into_iter().filter(|m| m.to.iter().any(|t| t.to_ascii_lowercase() == wanted)).collect()
    }

    /// Waits until at least `count` messages were accepted, and returns them all;
    /// panics after `timeout` naming how many did arrive.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let waited = tokio::time::timeout(timeout, async {
            loop {
                let arrived = self.shared.arrived.notified();
                // Counted without copying: thousands of messages arrive one by one.
                if self.received_count() >= count {
                    return self.received();
                }
                arrived.await;
            }
        })
        .await;
        waited.unwrap_or_else(|_| {
            panic!("expected {count} message(s) within {timeout:?}, the SMTP server got {}", self.received_count())
        })
    }

    /// Waits until every client has hung up, so all they sent has been read: after a
    /// client is killed, what it had written is still in the sockets for a moment.
    pub async fn wait_for_hang_ups(&self, timeout: Duration) {
        let started = std::time::Instant::now();
        while *self.shared.open_sessions.lock().unwrap() > 0 {
            assert!(started.elapsed() < timeout, "SMTP clients still connected after {timeout:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits `period` and checks that no more than `count` messages were accepted by then.
    pub async fn assert_stays_at(&self, count: usize, period: Duration) {
        tokio::time::sleep(period).await;
        let received = self.received();
        assert_eq!(
            received.len(),
            count,
            "unexpected messages: {:?}",
            received.iter().map(|m| &m.to).collect::<Vec<_>>()
        );
    }

    /// Answers RCPT TO for `address` with `reply` (e.g. "550 5.1.1 No such user").
    pub fn reply_to_recipient(&self, address: &str, reply: &str) {
        self.shared.faults.lock().unwrap().recipient_replies.insert(address.to_ascii_lowercase(), reply.to_owned());
    }

    /// Answers the end of data of the next `count` messages with `reply` (e.g.
    /// "451 4.3.0 Try again later") instead of accepting them; after the failures asked
    /// for before, if any.
    pub fn fail_next_messages(&self, count: usize, reply: &str) {
        let mut faults = self.shared.faults.lock().unwrap();
        faults.next_replies.extend(std::iter::repeat_n(reply.to_owned(), count));
    }

    /// Keeps each accepted message waiting `delay` for its 250 reply: the message is
    /// already kept (it counts as received) while the client still waits, as with a
    /// slow relay, so a client that dies then has sent it without knowing.
    pub fn acknowledge_after(&self, delay: Duration) {
        self.shared.faults.lock().unwrap().acknowledge_after = delay;
    }

    pub fn clear_faults(&self) {
        *self.shared.faults.lock().unwrap() = Faults::default();
    }

    /// Stops listening (connections are refused) and hangs up open sessions, as a
    /// crashed relay would.
    pub fn go_down(&self) {
        *self.shared.down.lock().unwrap() = true;
        if let Some(acceptor) = self.acceptor.lock().unwrap().take() {
            acceptor.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn come_back_up(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.expect("bind the same port again");
        *self.shared.down.lock().unwrap() = false;
        *self.acceptor.lock().unwrap() = Some(tokio::spawn(accept_loop(listener, self.shared.clone())));
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while let Ok((socket, _)) = listener.accept().await {
        let shared = shared.clone();
        *shared.open_sessions.lock().unwrap() += 1;
        tokio::spawn(async move {
            // A client hanging up mid-session is not the test's concern.
            let _ = Session::new(socket, shared.clone()).run().await;
            *shared.open_sessions.lock().unwrap() -= 1;
        });
    }
}

struct Session {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    shared: Arc<Shared>,
    auth_user: Option<String>,
    current: Option<ReceivedMail>,
}

impl Session {
    fn new(socket: TcpStream, shared: Arc<Shared>) -> Session {
        let (reader, writer) = socket.into_split();
        Session { reader: BufReader::new(reader), writer, shared, auth_user: None, current: None }
    }

    async fn reply(&mut self, line: &str) -> std::io::Result<()> {
        self.writer.write_all(format!("{line}\r\n").as_bytes()).await
    }

    /// The next line without its line ending; `None` when the client hung up.
    async fn read_line(&mut self) -> std::io::Result<Option<String>> {
        let mut line = Vec::new();
        if self.reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(None);
        }
        Ok(Some(String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_owned()))
    }

    async fn run(mut self) -> std::io::Result<()> {
        self.reply("220 localhost ESMTP bantin test server").await?;
        while let Some(line) = self.read_line().await? {
            if *self.shared.down.lock().unwrap() {
                return Ok(());
            }
            let (verb, argument) = line.split_once(' ').unwrap_or((&line, ""));
            match verb.to_ascii_uppercase().as_str() {
                "EHLO" => self.reply("250-localhost\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 AUTH PLAIN LOGIN").await?,
                "HELO" => self.reply("250 localhost").await?,
                "AUTH" => self.authenticate(argument).await?,
                "MAIL" => {
                    self.current = Some(ReceivedMail {
                        from: address_in(argument),
                        auth_user: self.auth_user.clone(),
                        ..ReceivedMail::default()
                    });
                    self.reply("250 2.1.0 OK").await?;
                }
                "RCPT" => self.recipient(argument).await?,
                "DATA" => self.data().await?,
                "RSET" => {
                    self.current = None;
                    self.reply("250 2.0.0 OK").await?;
                }
                "NOOP" => self.reply("250 2.0.0 OK").await?,
                "QUIT" => {
                    self.reply("221 2.0.0 Bye").await?;
                    return Ok(());
                }
                _ => self.reply("502 5.5.2 Command not implemented").await?,
            }
        }
        Ok(())
    }

    /// AUTH PLAIN (with or without an initial response) and AUTH LOGIN; any password
    /// is accepted, the user name is recorded.
    async fn authenticate(&mut self, argument: &str) -> std::io::Result<()> {
        let (mechanism, initial) = argument.split_once(' ').unwrap_or((argument, ""));
        let user = match mechanism.to_ascii_uppercase().as_str() {
            "PLAIN" => {
                let response = if initial.is_empty() {
                    self.reply("334 ").await?;
                    self.read_line().await?.unwrap_or_default()
                } else {
                    initial.to_owned()
                };
                // authzid NUL authcid NUL password
                decode_base64(&response).split('\0').nth(1).map(str::to_owned)
            }
            "LOGIN" => {
                let user = if initial.is_empty() {
                    self.reply("334 VXNlcm5hbWU6").await?;
                    self.read_line().await?.unwrap_or_default()
                } else {
                    initial.to_owned()
                };
                self.reply("334 UGFzc3dvcmQ6").await?;
                self.read_line().await?;
                Some(decode_base64(&user))
            }
            _ => return self.reply("504 5.5.4 Unrecognized authentication type").await,
        };
        self.auth_user = user;
        self.reply("235 2.7.0 Authentication successful").await
    }

    async fn recipient(&mut self, argument: &str) -> std::io::Result<()> {
        let address = address_in(argument);
        let refusal = self.shared.faults.lock().unwrap().recipient_replies.get(&address.to_ascii_lowercase()).cloned();
        match (&mut self.current, refusal) {
            (None, _) => self.reply("503 5.5.1 MAIL first").await,
            (Some(_), Some(refusal)) => self.reply(&refusal).await,
            (Some(mail), None) => {
                mail.to.push(address);
                self.reply("250 2.1.5 OK").await
            }
        }
    }

    async fn data(&mut self) -> std::io::Result<()> {
        let Some(mut mail) = self.current.take().filter(|m| !m.to.is_empty()) else {
            return self.reply("503 5.5.1 RCPT first").await;
        };
        self.reply("354 End data with <CR><LF>.<CR><LF>").await?;
        loop {
            let mut line = Vec::new();
            if self.reader.read_until(b'\n', &mut line).await? == 0 {
                return Ok(());
            }
            if line == b".\r\n" || line == b".\n" {
                break;
            }
            let unstuffed = if line.starts_with(b"..") { &line[1..] } else { &line[..] };
            mail.raw.extend_from_slice(unstuffed);
        }
        *self.shared.attempts.lock().unwrap() += 1;
        let (failure, delay) = {
            let mut faults = self.shared.faults.lock().unwrap();
            (faults.next_replies.pop_front(), faults.acknowledge_after)
        };
        if let Some(failure) = failure {
            return self.reply(&failure).await;
        }
        self.shared.received.lock().unwrap().push(mail);
        self.shared.arrived.notify_waiters();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.reply("250 2.0.0 Queued").await
    }
}

/// "<a@b> SIZE=1" or "FROM:<a@b>" → "a@b".
fn address_in(argument: &str) -> String {
    let argument = argument.split_once(':').map_or(argument, |(verb, rest)| {
        if verb.eq_ignore_ascii_case("FROM") || verb.eq_ignore_ascii_case("TO") { rest } else { argument }
    });
    let argument = argument.trim();
    let end = argument.find('>').map_or(argument.len(), |i| i + 1);
    argument[..end].trim_matches(['<', '>']).to_owned()
}

fn decode_base64(text: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text.trim()).unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}
