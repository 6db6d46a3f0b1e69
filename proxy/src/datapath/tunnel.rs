//! Blind tunnels: connect to the destination (with the gateway's `SO_MARK`
//! so redirect rules leave it alone) and relay bytes both ways, untouched.

use super::forward::Forwarding;
use pingora::server::ShutdownWatch;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};

/// Open a TCP connection to `addr`, marked for the redirect rules.
pub async fn connect(
    fwd: &Forwarding,
    addr: SocketAddr,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    fwd.mark(&sock)?;
    let stream = tokio::time::timeout(timeout, sock.connect(addr))
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("timed out after {timeout:?}"),
            )
        })??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Bytes relayed by a tunnel, up (client → destination) and down.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Relayed {
    pub up: u64,
    pub down: u64,
}

/// Relay until both sides are done, or the server shuts down. Byte counts
/// are exact even when the relay is cut short.
pub async fn relay<C>(
    client: &mut C,
    upstream: TcpStream,
    shutdown: &ShutdownWatch,
) -> (Relayed, io::Result<()>)
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let mut upstream = Counted {
        inner: upstream,
        read: 0,
        written: 0,
    };
    let mut shutdown = shutdown.clone();
    let result = tokio::select! {
        r = tokio::io::copy_bidirectional(client, &mut upstream) => r.map(|_| ()),
        _ = shutdown.changed() => Ok(()),
    };
    (
        Relayed {
            up: upstream.written,
            down: upstream.read,
        },
        result,
    )
}

/// Counts what passes through a stream.
struct Counted<S> {
    inner: S,
    read: u64,
    written: u64,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.read += (buf.filled().len() - before) as u64;
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = &r {
            self.written += *n as u64;
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn relays_both_ways_and_counts() {
        let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = echo.accept().await.unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(b"pong!!").await.unwrap();
        });
        let fwd =
            Forwarding::new(crate::config::Config::default().forward_config().unwrap()).unwrap();
        let upstream = connect(&fwd, addr, Duration::from_secs(5)).await.unwrap();
        let (mut client, mut far) = tokio::io::duplex(64);
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let relay = tokio::spawn(async move { relay(&mut far, upstream, &rx).await });
        client.write_all(b"ping!").await.unwrap();
        let mut got = [0u8; 6];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"pong!!");
        drop(client);
        let (counts, result) = relay.await.unwrap();
        result.unwrap();
        assert_eq!(counts, Relayed { up: 5, down: 6 });
    }
}
