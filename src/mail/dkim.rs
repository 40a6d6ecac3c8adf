//! DKIM signing of outgoing mail with a key from the configuration. lettre signs; this
//! reads the key file as openssl writes it (RSA in PKCS#1 or PKCS#8 PEM, Ed25519 in
//! PKCS#8 PEM) and names the headers the signature covers, so a relay or list software
//! cannot change the sender, the subject or the unsubscribe links unnoticed.

use std::fmt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lettre::Message;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm, DkimSigningKey,
};
use lettre::message::header::HeaderName;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;

/// Headers covered by the signature. Not Content-Type: lettre writes a multipart's
/// Content-Type with the body, out of the signer's sight, so signing it would sign it
/// as absent. Relaxed canonicalization on both header and body survives relays that
/// refold lines or change trailing spaces.
const SIGNED_HEADERS: [&str; 10] = [
    "From",
    "Reply-To",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// Receivers ignore weaker RSA signatures (RFC 8301).
const MIN_RSA_BITS: usize = 1024;

pub struct DkimSigner {
    config: DkimConfig,
    domain: String,
    selector: String,
    algorithm: DkimSigningAlgorithm,
}

/// Never prints the key.
impl fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimSigner")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm.to_string())
            .finish_non_exhaustive()
    }
}

impl DkimSigner {
    /// Reads the PEM key at `path`; the error says what is wrong with the file, never
    /// what is in it.
    pub fn load(path: &Path, selector: &str, domain: &str) -> Result<DkimSigner, String> {
        let pem = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let (key, algorithm) = signing_key(&pem).map_err(|reason| format!("{} {reason}", path.display()))?;
        let headers = SIGNED_HEADERS.iter().map(|h| HeaderName::new_from_ascii_str(h)).collect();
        let canonicalization =
            DkimCanonicalization { header: DkimCanonicalizationType::Relaxed, body: DkimCanonicalizationType::Relaxed };
        let config = DkimConfig::new(selector.to_owned(), domain.to_owned(), key, headers, canonicalization);
        Ok(DkimSigner { config, domain: domain.to_owned(), selector: selector.to_owned(), algorithm })
    }

    pub fn sign(&self, message: &mut Message) {
        message.sign(&self.config);
    }
}

/// The key in the form lettre takes: PKCS#1 PEM for RSA, the base64 seed for Ed25519.
fn signing_key(pem: &str) -> Result<(DkimSigningKey, DkimSigningAlgorithm), String> {
    let rsa = if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
        Some(rsa::RsaPrivateKey::from_pkcs1_pem(pem).map_err(|_| "is not a usable RSA private key")?)
    } else if pem.contains("-----BEGIN PRIVATE KEY-----") {
        rsa::RsaPrivateKey::from_pkcs8_pem(pem).ok()
    } else {
        return Err("is not a PEM private key (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY)".into());
    };
    let unusable = |_| "is not a usable private key".to_owned();
    let (key, algorithm) = match rsa {
        Some(rsa) if rsa.size() * 8 < MIN_RSA_BITS => {
            return Err(format!("holds a {}-bit RSA key: use at least {MIN_RSA_BITS} bits", rsa.size() * 8));
        }
        Some(rsa) => {
            let pkcs1 = rsa.to_pkcs1_pem(LineEnding::LF).map_err(|_| "is not a usable RSA private key")?;
            (DkimSigningKey::new(&pkcs1, DkimSigningAlgorithm::Rsa).map_err(unusable)?, DkimSigningAlgorithm::Rsa)
        }
        None => {
            let ed25519 = ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
                .map_err(|_| "holds neither an RSA nor an Ed25519 private key")?;
            let seed = STANDARD.encode(ed25519.to_bytes());
            (
                DkimSigningKey::new(&seed, DkimSigningAlgorithm::Ed25519).map_err(unusable)?,
                DkimSigningAlgorithm::Ed25519,
            )
        }
    };
    Ok((key, algorithm))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PKCS8_RSA: &str = include_str!("../../tests/fixtures/dkim/rsa.pem");
    const PKCS1_RSA: &str = include_str!("../../tests/fixtures/dkim/rsa-pkcs1.pem");
    const WEAK_RSA: &str = include_str!("../../tests/fixtures/dkim/rsa-512-pkcs1.pem");
    const ED25519: &str = include_str!("../../tests/fixtures/dkim/ed25519.pem");

    #[test]
    fn openssl_keys_load_in_either_form() {
        for (pem, algorithm) in [
            (PKCS8_RSA, DkimSigningAlgorithm::Rsa),
            (PKCS1_RSA, DkimSigningAlgorithm::Rsa),
            (ED25519, DkimSigningAlgorithm::Ed25519),
        ] {
            let (_, loaded) = signing_key(pem).unwrap();
            assert_eq!(loaded.to_string(), algorithm.to_string());
        }
    }

    #[test]
    fn weak_or_foreign_keys_are_refused_without_echoing_them() {
        assert_eq!(signing_key(WEAK_RSA).unwrap_err(), "holds a 512-bit RSA key: use at least 1024 bits");
        let public = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n";
        assert!(signing_key(public).unwrap_err().starts_with("is not a PEM private key"));
        let garbage = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n";
        let e = signing_key(garbage).unwrap_err();
        assert!(!e.contains("bm90"), "{e}");
    }
}
