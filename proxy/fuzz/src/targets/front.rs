//! The forward proxy's front end: a CONNECT request head yields a valid
//! normalised target or an error; a ClientHello read in pieces gives the
//! same SNI as read at once.

use crate::input::{pieces, Input};
use asg::datapath::front::connect::parse_connect;
use asg::datapath::transparent::HelloReader;

fn hello(chunks: &[&[u8]]) -> Option<Result<Option<String>, ()>> {
    let mut r = HelloReader::default();
    for c in chunks {
        match r.feed(c) {
            Ok(Some(sni)) => return Some(Ok(sni)),
            Ok(None) => {}
            Err(_) => return Some(Err(())),
        }
    }
    None
}

pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let n = 1 + inp.below(6);
    let cuts = inp.cuts(n, 300);
    let body = inp.rest();
    if let Ok((host, port)) = parse_connect(body) {
        assert_ne!(port, 0);
        assert!(!host.is_empty());
        assert_eq!(host, host.to_ascii_lowercase(), "host not normalised");
        assert!(!host.contains(['/', '@', ' ', '[', ']']), "{host:?}");
    }
    let whole = hello(&[body]);
    let split = hello(&pieces(body, &cuts));
    if let (Some(Ok(a)), Some(Ok(b))) = (&whole, &split) {
        assert_eq!(a, b, "SNI depends on how the ClientHello arrived");
    }
    if let Some(Ok(Some(sni))) = &whole {
        assert_eq!(sni, &sni.to_ascii_lowercase());
        assert!(!sni.ends_with('.'));
    }
}
