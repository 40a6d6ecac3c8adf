//! API tokens: `bnt_<public id>_<secret>`. The public id finds the row; only a SHA-256 of
//! the secret is stored, and it is compared in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const PREFIX: &str = "bnt_";
const PUBLIC_ID_BYTES: usize = 6;
/// 256 bits of randomness in the secret part.
const SECRET_BYTES: usize = 32;

/// A freshly made token: `plaintext` is shown once, the rest is stored.
pub struct NewToken {
    pub plaintext: String,
    pub public_id: String,
    pub secret_hash: String,
}

/// A bearer token as presented by a client, split into its parts.
pub struct PresentedToken {
    pub public_id: String,
    secret: String,
}

fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    Ok(buf)
}

fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl NewToken {
    pub fn generate() -> anyhow::Result<NewToken> {
        let public_id = hex::encode(random_bytes::<PUBLIC_ID_BYTES>()?);
        let secret = URL_SAFE_NO_PAD.encode(random_bytes::<SECRET_BYTES>()?);
        Ok(NewToken {
            plaintext: format!("{PREFIX}{public_id}_{secret}"),
            secret_hash: hash_secret(&secret),
            public_id,
        })
    }
}

impl PresentedToken {
    pub fn parse(s: &str) -> Option<PresentedToken> {
        let rest = s.strip_prefix(PREFIX)?;
        let (public_id, secret) = rest.split_once('_')?;
        let well_formed = public_id.len() == PUBLIC_ID_BYTES * 2
            && public_id.bytes().all(|b| b.is_ascii_hexdigit())
            && !secret.is_empty()
            && secret.len() <= 128;
        well_formed.then(|| PresentedToken { public_id: public_id.to_owned(), secret: secret.to_owned() })
    }

    /// Compares the presented secret with a stored hash in constant time.
    pub fn matches(&self, stored_hash: &str) -> bool {
        hash_secret(&self.secret).as_bytes().ct_eq(stored_hash.as_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_matches_its_hash_only() {
        let token = NewToken::generate().unwrap();
        let presented = PresentedToken::parse(&token.plaintext).unwrap();
        assert_eq!(presented.public_id, token.public_id);
        assert!(presented.matches(&token.secret_hash));
        let other = NewToken::generate().unwrap();
        assert!(!presented.matches(&other.secret_hash));
        assert!(!token.plaintext.contains(&token.secret_hash));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in ["", "bnt_", "bnt_abc_def", "xyz_0123456789ab_secret", "bnt_0123456789ab_"] {
            assert!(PresentedToken::parse(bad).is_none(), "{bad:?}");
        }
    }
}
