//! CA keys in the encodings other tools write, rewrapped as PKCS#8 (the
//! only one the signing library takes with ring): `RSA PRIVATE KEY`
//! (PKCS#1, what Helm's `genCA` writes) and `EC PRIVATE KEY` (SEC1, what
//! `genPrivateKey "ecdsa"` and `openssl ecparam -genkey` write). The key
//! bytes are wrapped, never decoded or changed.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;

/// rsaEncryption (1.2.840.113549.1.1.1) with its NULL parameters.
const RSA_ALG: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];
/// id-ecPublicKey (1.2.840.10045.2.1).
const EC_OID: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// One DER element: (tag, content, rest).
fn read(buf: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = buf.split_first()?;
    let (&len, mut rest) = rest.split_first()?;
    let len = if len < 0x80 {
        usize::from(len)
    } else {
        let k = usize::from(len & 0x7f);
        if k == 0 || k > 4 || rest.len() < k {
            return None;
        }
        let (n, r) = rest.split_at(k);
        rest = r;
        n.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The named curve of a SEC1 `ECPrivateKey` (its `[0]` parameters).
fn sec1_curve(der: &[u8]) -> Option<&[u8]> {
    let (0x30, mut body, _) = read(der)? else {
        return None;
    };
    while !body.is_empty() {
        let (tag, content, rest) = read(body)?;
        if tag == 0xa0 {
            let (0x06, _, _) = read(content)? else {
                return None;
            };
            return Some(content);
        }
        body = rest;
    }
    None
}

fn pkcs8(alg: &[u8], key: &[u8]) -> Vec<u8> {
    let mut body = tlv(0x02, &[0]);
    body.extend_from_slice(alg);
    body.extend(tlv(0x04, key));
    tlv(0x30, &body)
}

/// A PKCS#8 PEM for a PKCS#1 or SEC1 PEM key; `None` for anything else
/// (already PKCS#8, or not a key: the caller's parser then says why).
pub fn pkcs8_pem(pem: &str) -> Option<String> {
    let der = match PrivateKeyDer::from_pem_slice(pem.as_bytes()).ok()? {
        PrivateKeyDer::Pkcs1(k) => pkcs8(RSA_ALG, k.secret_pkcs1_der()),
        PrivateKeyDer::Sec1(k) => {
            let sec1 = k.secret_sec1_der();
            let curve = sec1_curve(sec1)?;
            let mut alg = EC_OID.to_vec();
            alg.extend_from_slice(curve);
            pkcs8(&tlv(0x30, &alg), sec1)
        }
        _ => return None,
    };
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END PRIVATE KEY-----\n");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Written by `openssl genrsa -traditional 2048` (PKCS#1) and `openssl ecparam
    // -name prime256v1 -genkey -noout` (SEC1): test keys, never used elsewhere.
    const RSA_PKCS1: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEA1dxL/cgLRgW93QHXMUh0hQnS27UtBbKMoOOCgK3a39j2/kGO
HUjPWEu5C/qJG0AYcZwjFOS+5LPk2HYQLWYG1k2f4t16YcZ2eUzWIbiBlqJSG6zo
KtHnmPt6pBC9dAuqhuXyA/xUhb7Fx/QW09oJpV8mMCt4Vs0IxWBjfBk1hM5w5TtA
kzus7h1ui1RZ8NqmbYU8M8fl6kJi2nqM0CVrQALd/ILQZMxOp4+kuNV2BYJ3Zcgu
TlhzLqDQjCESEgX37j3K7U+68NAk22EpiMgrM80udxBE3nR/IuGGVngR3xNoW1Gv
MaRcC6ju7Pe/VQjURbgAJ7dEm2aCq+cmLTY4twIDAQABAoIBAE/ihO5M6c0juurR
07DgmEnTxBR25lTw/6/fnDF1/8LLGGQcV7ofpvgb/Qj48nsf46GYidA1rArhGdQz
sdJLgLVPdLB5O8xHJp0j8v7QnXOHubUFzwmjs+fE1GhxqlstOms+fLs5Z9c3zkhl
KJvFIAJKewjWTBLcbvDPkwnZntC234lHovC9LS/fllF1nwfsCCN+ahiguKb9qBUm
cMiysO+aps0KsRsvXtDy+Zyrv3f/IXHVLcD0X2ndW8FDc5f2aWZ02OBwIr0Fost2
esq/9wApZ7S3LiM+5Iw+o7F9OFvmji8ZdftpZocMYcyVTGykMZqIFnjVkRx7r2Op
5iL/i6kCgYEA90ko9gJc+UfioNPP21oiu2oEONXHFnBW8wZgwMa/I6gGpMaUt2fh
ttxnTziIRdQcHLAnlaBTJLm+SAuyRyRwV8LX8A8s11tZLsLjl3Ftx2ib9Pq6MkmK
JQhABSsOrYOMtdARaiPTMziDM93xBmblKleJRW0Udzp8N/+q+Ewi508CgYEA3WWY
+UsE5y6x05vr3sj3EayPtxYBrOxQaWo8a/1701Y2j39AY8pS/lBKqiggg2DVRor/
MTgTo7vATiILArakScnRdQVkkx+rcsxHsSWilEW/ZJmSIAvXPk/zYXOEBJVDBwAw
NjIK17Pq55zGI1Qk0m3ekvtNsjG9PNw7KA+PvhkCgYEAqhTzy2EMuZgr1BpbWK/C
O81LYhwHdvOFmlnEqlMInGmxSBwdpZgZs0Ac/mwPrpeZTlIKp+tBxHzM15jT4gK6
EmK9Syvk16rIyFTbXQpzSzg0LGdXMcdK8PWfsu5OhiF44oRdtfc2CIDSHRaF9LVI
4bqbe9juvqLHVWzQFz+mshkCgYAe03eSNlzPZ5QA97PGyEqGXnWAM4M2NY0YsF8L
Vjb4fQeJwVkQy+n0WO+cc4vbXw8zDEVt7/XkFU84UcsgrJeBYqVUWtTfG0i+6iyN
QMU7Sd7VPgC3j45/sZgcmH3oOXQktGUCFsOltvpdF1oLLzsVRZD4/B6cUgqcP7nI
4SnNeQKBgFBPTy5ZBby6o+PCYgh37F6szvneVPd1ijbeMzaxtqxQcAurN7hiYRlj
C+V/hmJjkMNCFqlj7r+8vKqq4fu6LL+Bg0tzqOVrwrKUgaot6UzIRD3vUXRVTqA5
BFksUUDJtzp+IrEjCBS+mmITwSKAs30uF1S4qRT9qt944onT8MwO
-----END RSA PRIVATE KEY-----
";
    const EC_SEC1: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEID/nxpkAq0Dbnof+rnU+KBzjXuyQ8PItGJEd9bdGxqsjoAoGCCqGSM49
AwEHoUQDQgAESX/JgQg7fomy2MxRMSzrmnP3g/RfH5rIv5og61nD4hjAmgAw4uhx
rsh3ierJKgpZfnG/RfPpNoMfsWqFKjZpPw==
-----END EC PRIVATE KEY-----
";

    #[test]
    fn rewraps_pkcs1_and_sec1_for_the_signer() {
        for pem in [RSA_PKCS1, EC_SEC1] {
            assert!(
                rcgen::KeyPair::from_pem(pem).is_err(),
                "ring reads PKCS#8 only"
            );
            let p8 = pkcs8_pem(pem).expect("converted");
            assert!(p8.starts_with("-----BEGIN PRIVATE KEY-----"));
            rcgen::KeyPair::from_pem(&p8).expect("the signer reads the PKCS#8 form");
        }
    }

    #[test]
    fn leaves_pkcs8_and_garbage_alone() {
        let p8 = rcgen::KeyPair::generate().unwrap().serialize_pem();
        assert!(pkcs8_pem(&p8).is_none());
        assert!(pkcs8_pem("not a key").is_none());
    }

    #[test]
    fn long_lengths() {
        let content = vec![7u8; 300];
        let enc = tlv(0x04, &content);
        assert_eq!(&enc[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let (tag, c, rest) = read(&enc).unwrap();
        assert_eq!((tag, c.len(), rest.len()), (0x04, 300, 0));
    }
}
