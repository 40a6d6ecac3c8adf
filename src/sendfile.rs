//! Prerendered bodies sent with sendfile(2), the way nginx sends static files.
//!
//! A feed document of 200 KB served thousands of times a second spends a third of the
//! server's CPU copying its bytes into the kernel. So each large prerendered body is kept
//! in an anonymous file (in the data folder, else a sealed memfd) and mapped read-only: the
//! handlers hand out the mapping as ordinary [`Bytes`], and the connection type here,
//! [`SendfileStream`], recognises those bytes when hyper writes them and asks the kernel
//! to send them from the file instead, without the copy. Anything else is written as usual,
//! and a body that cannot be file-backed (no file, too many descriptors) simply stays on
//! the heap.

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Bodies smaller than this are copied as usual: a descriptor each is not worth it.
pub const MIN_LEN: usize = 16 * 1024;

/// One mapped body: its length and the file it is mapped from.
struct Region {
    len: usize,
    file: Arc<OwnedFd>,
}

/// Every live mapping by start address, so a write can tell whether its bytes are one.
static REGIONS: RwLock<BTreeMap<usize, Region>> = RwLock::new(BTreeMap::new());
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// How many bodies may be file-backed at once: a quarter of the descriptor limit, after
/// raising the soft limit to the hard one, so connections never run short.
fn capacity() -> usize {
    static CAPACITY: OnceLock<usize> = OnceLock::new();
    *CAPACITY.get_or_init(|| {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit and setrlimit only read and write the struct passed in.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return 0;
            }
            let wanted = limit.rlim_max.min(1 << 20);
            if limit.rlim_cur < wanted {
                let raised = libc::rlimit { rlim_cur: wanted, rlim_max: limit.rlim_max };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit = raised;
                }
            }
        }
        usize::try_from(limit.rlim_cur / 4).unwrap_or(usize::MAX)
    })
}

/// The folder for the files of large bodies (see [`disk_file`]); memfds when unset.
static DIRECTORY: RwLock<Option<PathBuf>> = RwLock::new(None);

/// Keeps large bodies in anonymous files in `dir` (created if missing), on the disk's
/// page cache; if `dir` cannot be created, or its file system has no O_TMPFILE, they go
/// to memfds as before. One folder per process: the last call wins.
pub fn keep_bodies_in(dir: &Path) {
    let dir = std::fs::create_dir_all(dir).is_ok().then(|| dir.to_path_buf());
    *DIRECTORY.write().unwrap_or_else(|p| p.into_inner()) = dir;
}

/// The region holding `bytes` entirely, with the offset of `bytes` in its file.
fn lookup(bytes: &[u8]) -> Option<(Arc<OwnedFd>, i64)> {
    if bytes.is_empty() || LIVE.load(Ordering::Acquire) == 0 {
        return None;
    }
    let start = bytes.as_ptr() as usize;
    let regions = REGIONS.read().unwrap_or_else(|p| p.into_inner());
    let (&base, region) = regions.range(..=start).next_back()?;
    let inside = start + bytes.len() <= base + region.len;
    inside.then(|| (region.file.clone(), i64::try_from(start - base).unwrap_or(i64::MAX)))
}

/// True when `bytes` already lie in a file-backed mapping.
pub fn is_file_backed(bytes: &[u8]) -> bool {
    lookup(bytes).is_some()
}

/// A file-backed copy of `bytes` when they are large enough and a descriptor is free;
/// `None` means keep the heap copy (which works just the same, with one copy per send).
pub fn file_backed(bytes: &[u8]) -> Option<Bytes> {
    if bytes.len() < MIN_LEN || is_file_backed(bytes) || LIVE.load(Ordering::Relaxed) >= capacity() {
        return None;
    }
    let file = disk_file(bytes).or_else(|| sealed_memfd(bytes))?;
    // SAFETY: a new read-only shared mapping of the whole file; checked for failure below.
    let ptr = unsafe {
        libc::mmap(std::ptr::null_mut(), bytes.len(), libc::PROT_READ, libc::MAP_SHARED, file.as_raw_fd(), 0)
    };
    if ptr == libc::MAP_FAILED {
        return None;
    }
    let mapping = Mapping { ptr, len: bytes.len() };
    let region = Region { len: bytes.len(), file: Arc::new(OwnedFd::from(file)) };
    REGIONS.write().unwrap_or_else(|p| p.into_inner()).insert(ptr as usize, region);
    LIVE.fetch_add(1, Ordering::Release);
    Some(Bytes::from_owner(mapping))
}

/// An anonymous file holding `bytes` in the folder set by [`keep_bodies_in`]: O_TMPFILE
/// gives it no name, so nothing is left behind when the process ends or crashes. It is
/// preferred to a memfd because sendfile reads a memfd (shmem) page by page, looking each
/// page up under a lock (an eighth of the server's CPU when serving a 200 KB feed), while
/// page-cache files are read in batches of folios, as nginx's static files are. Nothing
/// writes to the file after this: the only descriptor is ours, and it is mapped read-only.
fn disk_file(bytes: &[u8]) -> Option<File> {
    let dir = DIRECTORY.read().unwrap_or_else(|p| p.into_inner()).clone()?;
    let mut file =
        OpenOptions::new().read(true).write(true).mode(0o600).custom_flags(libc::O_TMPFILE).open(dir).ok()?;
    file.write_all(bytes).ok()?;
    Some(file)
}

/// A sealed in-memory file holding `bytes`: where no folder is set or its file system
/// has no O_TMPFILE.
fn sealed_memfd(bytes: &[u8]) -> Option<File> {
    // SAFETY: memfd_create takes a NUL-terminated name and flags; it returns a new
    // descriptor that nothing else owns, or -1.
    let raw = unsafe { libc::memfd_create(c"bantin-feed".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if raw < 0 {
        return None;
    }
    // SAFETY: `raw` is a fresh descriptor owned by nothing else.
    let mut file = unsafe { File::from_raw_fd(raw) };
    file.write_all(bytes).ok()?;
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
    // SAFETY: fcntl on a descriptor this function owns. Sealed, the file can never change,
    // so the mapping and what sendfile reads stay the bytes given here.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return None;
    }
    Some(file)
}

/// A read-only mapping of a body's file, unmapped when the last `Bytes` of it goes.
struct Mapping {
    ptr: *mut c_void,
    len: usize,
}

// SAFETY: the mapping is read-only and never changes; it is only read through `as_ref`.
unsafe impl Send for Mapping {}
// SAFETY: as above, shared reads of immutable memory.
unsafe impl Sync for Mapping {}

impl AsRef<[u8]> for Mapping {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr` is a live mapping of `len` readable bytes until `drop`.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // Forget the region first: a send in progress holds its own handle to the file.
        REGIONS.write().unwrap_or_else(|p| p.into_inner()).remove(&(self.ptr as usize));
        LIVE.fetch_sub(1, Ordering::Release);
        // SAFETY: unmaps exactly the mapping made in `file_backed`, which no `Bytes`
        // refers to any more (this is the owner's drop).
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// Retries a non-blocking socket call when interrupted; `-1` becomes the OS error.
fn syscall(f: impl Fn() -> isize) -> io::Result<usize> {
    loop {
        let n = f();
        if n >= 0 {
            return Ok(n.unsigned_abs());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// An accepted connection whose writes of file-backed bytes go out with sendfile.
pub struct SendfileStream {
    inner: TcpStream,
}

impl SendfileStream {
    /// Runs a write on the socket when it is writable, waiting when it is full.
    fn poll_send(&self, cx: &mut Context<'_>, send: impl Fn() -> isize) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.inner.poll_write_ready(cx))?;
            match self.inner.try_io(Interest::WRITABLE, || syscall(&send)) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                result => return Poll::Ready(result),
            }
        }
    }

    /// Sends (part of) a file-backed slice from its file.
    fn poll_sendfile(&self, cx: &mut Context<'_>, file: &OwnedFd, offset: i64, len: usize) -> Poll<io::Result<usize>> {
        let socket = self.inner.as_raw_fd();
        self.poll_send(cx, || {
            let mut offset = offset;
            // SAFETY: both descriptors are open for the whole call (the socket is ours,
            // the file is held by `file`); `offset` is a local the kernel may update.
            unsafe { libc::sendfile(socket, file.as_raw_fd(), &mut offset, len) }
        })
    }

    /// Writes the slices before a file-backed one, telling the kernel more follows so the
    /// response head and its body leave in the same packets.
    fn poll_send_more(&self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let socket = self.inner.as_raw_fd();
        self.poll_send(cx, || {
            // SAFETY: IoSlice is guaranteed ABI-compatible with iovec on Unix; the slices
            // outlive the call, and the kernel only reads them.
            let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
            message.msg_iov = bufs.as_ptr().cast::<libc::iovec>().cast_mut();
            message.msg_iovlen = bufs.len() as _;
            // SAFETY: a send of the readable slices described above on our socket.
            unsafe { libc::sendmsg(socket, &message, libc::MSG_MORE | libc::MSG_NOSIGNAL) }
        })
    }
}

impl AsyncRead for SendfileStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for SendfileStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match lookup(buf) {
            Some((file, offset)) => self.poll_sendfile(cx, &file, offset, buf.len()),
            None => Pin::new(&mut self.inner).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let found = bufs.iter().enumerate().find_map(|(i, buf)| lookup(buf).map(|(file, offset)| (i, file, offset)));
        let Some((i, file, offset)) = found else {
            return Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        };
        if bufs[..i].iter().any(|buf| !buf.is_empty()) {
            return self.poll_send_more(cx, &bufs[..i]);
        }
        self.poll_sendfile(cx, &file, offset, bufs[i].len())
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The service's listener: accepted connections are [`SendfileStream`]s with Nagle's
/// algorithm off (responses are written whole).
pub struct SendfileListener {
    inner: TcpListener,
}

impl SendfileListener {
    pub fn new(inner: TcpListener) -> SendfileListener {
        SendfileListener { inner }
    }
}

impl axum::serve::Listener for SendfileListener {
    type Io = SendfileStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (SendfileStream, SocketAddr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, address)) => {
                    let _ = stream.set_nodelay(true);
                    return (SendfileStream { inner: stream }, address);
                }
                // A client that gave up before it was accepted: nothing to do.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                    ) => {}
                // Out of descriptors or memory: wait instead of spinning.
                Err(e) => {
                    tracing::error!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_bodies_are_file_backed_with_the_same_bytes() {
        let body: Vec<u8> = (0..MIN_LEN * 3).map(|i| (i % 251) as u8).collect();
        let mapped = file_backed(&body).expect("a file on Linux");
        assert_eq!(&mapped[..], &body[..]);
        assert!(is_file_backed(&mapped));
        assert!(is_file_backed(&mapped.slice(100..2_000)));
        assert!(file_backed(&mapped).is_none(), "already file-backed");
        let (_, offset) = lookup(&mapped[100..]).expect("inside the region");
        assert_eq!(offset, 100);
        let start = mapped.as_ptr() as usize;
        drop(mapped);
        assert!(!REGIONS.read().unwrap().contains_key(&start), "dropping the last Bytes forgets the region");
    }

    /// What the descriptor behind a file-backed body points to.
    fn backing_file(mapped: &[u8]) -> PathBuf {
        let (file, _) = lookup(mapped).expect("file-backed");
        std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).unwrap()
    }

    #[test]
    fn bodies_go_to_nameless_files_in_the_folder_given() {
        let dir = tempfile::tempdir().unwrap();
        keep_bodies_in(dir.path());
        let body = vec![b'f'; MIN_LEN * 2];
        let mapped = file_backed(&body).expect("a file in the folder");
        assert_eq!(&mapped[..], &body[..]);
        let target = backing_file(&mapped);
        assert!(target.starts_with(dir.path()), "{} is not in the folder", target.display());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the file has no name");
        // A folder that is gone: memfds again.
        drop(dir);
        let mapped = file_backed(&body).expect("a memfd");
        let target = backing_file(&mapped);
        assert!(target.to_string_lossy().starts_with("/memfd:"), "{}", target.display());
    }

    #[test]
    fn small_bodies_stay_on_the_heap() {
        assert!(file_backed(&[b'x'; MIN_LEN - 1]).is_none());
        assert!(!is_file_backed(b"hello"));
    }
}
