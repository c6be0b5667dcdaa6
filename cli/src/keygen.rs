//! `koogate keygen`: the merchant's RSA key pair for joint-operation login (D15).
//!
//! The public key goes into the seller console's app credential (应用凭证, field 公钥); the
//! marketplace encrypts each tenant's OAuth `clientSecret` to it, and the private key, kept in the
//! secrets document as `rsa_private_key_pem`, decrypts it. The console's upload format is not
//! documented; X.509 SubjectPublicKeyInfo is the expected form (docs/protocol.md, signatures §9), printed both as
//! one line of Base64 and as PEM.

use base64::Engine;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::RsaPrivateKey;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

/// The smallest key the marketplace accepts.
pub const MIN_BITS: usize = 3072;

/// A fresh key pair, as text.
pub struct KeyPair {
    /// PKCS#8 PEM (`BEGIN PRIVATE KEY`).
    pub private_pem: String,
    /// X.509 SubjectPublicKeyInfo, DER in standard Base64 on one line.
    pub public_base64: String,
    /// The same, as PEM (`BEGIN PUBLIC KEY`).
    pub public_pem: String,
}

pub fn generate(bits: usize) -> Result<KeyPair, String> {
    if bits < MIN_BITS {
        return Err(format!(
            "--bits {bits}: the marketplace requires at least {MIN_BITS}"
        ));
    }
    let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, bits)
        .map_err(|e| format!("cannot generate an RSA key: {e}"))?;
    let private_pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| format!("cannot encode the private key: {e}"))?
        .to_string();
    let (public_base64, public_pem) = public_texts(&key)?;
    Ok(KeyPair {
        private_pem,
        public_base64,
        public_pem,
    })
}

pub const EXAMPLES: &str = "Examples:
  koogate keygen
  koogate keygen --secrets .koogate/secrets.json
  koogate keygen --bits 4096 --secrets secrets.json --force
  koogate keygen --public-from .koogate/secrets.json

The public key (X.509 SubjectPublicKeyInfo, Base64 and PEM) goes into the seller console's app
credential (应用凭证 → 公钥); the private key into the secrets document as rsa_private_key_pem.
Replacing a key makes every clientSecret encrypted to the old public key undecryptable.";

/// `koogate keygen`.
#[derive(clap::Args, Debug)]
pub struct KeygenArgs {
    /// Key size in bits (at least 3072)
    #[arg(long, value_name = "N", default_value_t = MIN_BITS)]
    pub bits: usize,
    /// Add the private key to this secrets document (checked before anything is generated)
    #[arg(long, value_name = "PATH")]
    pub secrets: Option<PathBuf>,
    /// With --secrets: replace an rsa_private_key_pem the document has already
    #[arg(long, requires = "secrets")]
    pub force: bool,
    /// Generate nothing: print the public key of the rsa_private_key_pem in this secrets document
    #[arg(long, value_name = "PATH", conflicts_with_all = ["bits", "secrets", "force"])]
    pub public_from: Option<PathBuf>,
}

fn print_public(public_base64: &str, public_pem: &str) {
    println!("Public key for the app credential (应用凭证 → 公钥), X.509 SubjectPublicKeyInfo:");
    println!();
    println!("{public_base64}");
    println!();
    println!("The same as PEM, if the console asks for PEM:");
    println!();
    print!("{public_pem}");
    println!();
}

/// `koogate keygen [--bits N] [--secrets PATH [--force]]`, `koogate keygen --public-from PATH`.
pub fn run(args: &KeygenArgs) -> Result<(), String> {
    if let Some(path) = &args.public_from {
        let (public_base64, public_pem) = public_of_document(path)?;
        print_public(&public_base64, &public_pem);
        return Ok(());
    }
    if args.bits < MIN_BITS {
        return Err(format!(
            "--bits {}: the marketplace requires at least {MIN_BITS}",
            args.bits
        ));
    }
    // Everything that can refuse is checked before a key is generated or printed.
    let doc = match &args.secrets {
        Some(path) => Some(open_secrets(path, args.force)?),
        None => None,
    };
    let pair = generate(args.bits)?;
    print_public(&pair.public_base64, &pair.public_pem);
    match (&args.secrets, doc) {
        (Some(path), Some(doc)) => {
            add_to_secrets(path, doc, &pair.private_pem)?;
            println!(
                "The private key was added to {} as rsa_private_key_pem.",
                path.display()
            );
        }
        _ => {
            println!("Add this member to the secrets document (Secrets Manager or KOOGATE_SECRETS_FILE):");
            println!();
            let entry = json!({ "rsa_private_key_pem": pair.private_pem });
            println!(
                "{}",
                serde_json::to_string_pretty(&entry).map_err(|e| e.to_string())?
            );
        }
    }
    Ok(())
}

/// Reads a secrets document that is to receive a private key: it must exist, be a JSON object,
/// be writable (as must its directory, where the replacement is written), and have no
/// `rsa_private_key_pem` unless `force` (a replaced key makes every stored clientSecret
/// undecryptable).
fn open_secrets(path: &Path, force: bool) -> Result<Map<String, Value>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let doc: Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    let Value::Object(obj) = doc else {
        return Err(format!("{} is not a JSON object", path.display()));
    };
    if !force && obj.get("rsa_private_key_pem").is_some_and(|v| !v.is_null()) {
        return Err(format!(
            "{} has an rsa_private_key_pem already; give --force to replace it \
             (the clientSecrets encrypted to its public key will no longer decrypt)",
            path.display()
        ));
    }
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let probe = dir.join(format!(".koogate-keygen-{}", uuid::Uuid::new_v4().simple()));
    std::fs::File::create(&probe).map_err(|e| format!("cannot write in {}: {e}", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(obj)
}

/// Sets `rsa_private_key_pem` in the document read by [`open_secrets`] and writes it back.
fn add_to_secrets(
    path: &Path,
    mut doc: Map<String, Value>,
    private_pem: &str,
) -> Result<(), String> {
    doc.insert(
        "rsa_private_key_pem".into(),
        Value::String(private_pem.into()),
    );
    let text = serde_json::to_string_pretty(&Value::Object(doc)).map_err(|e| e.to_string())?;
    crate::sign::replace_private(path, &text)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The public key (Base64 SubjectPublicKeyInfo, PEM) of the `rsa_private_key_pem` of a secrets
/// document (PKCS#8 or PKCS#1 PEM).
pub fn public_of_document(path: &Path) -> Result<(String, String), String> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let doc: Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    let pem = doc
        .get("rsa_private_key_pem")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{} has no rsa_private_key_pem", path.display()))?;
    let key = RsaPrivateKey::from_pkcs8_pem(pem.trim())
        .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem.trim()))
        .map_err(|_| {
            format!(
                "the rsa_private_key_pem of {} is not a PEM RSA key",
                path.display()
            )
        })?;
    public_texts(&key)
}

fn public_texts(key: &RsaPrivateKey) -> Result<(String, String), String> {
    let public = key.to_public_key();
    let der = public
        .to_public_key_der()
        .map_err(|e| format!("cannot encode the public key: {e}"))?;
    let pem = public
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| format!("cannot encode the public key: {e}"))?;
    Ok((
        base64::engine::general_purpose::STANDARD.encode(der.as_bytes()),
        pem,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use koogate_protocol::client_secret::MerchantKey;
    use rsa::pkcs8::DecodePublicKey;
    use rsa::{Oaep, RsaPublicKey};

    #[test]
    fn a_secret_encrypted_to_the_printed_public_key_decrypts_with_the_private_one() {
        let pair = generate(MIN_BITS).unwrap();
        let der = base64::engine::general_purpose::STANDARD
            .decode(&pair.public_base64)
            .unwrap();
        let public = RsaPublicKey::from_public_key_der(&der).unwrap();
        let cipher = public
            .encrypt(
                &mut rand::rngs::OsRng,
                Oaep::new_with_mgf_hash::<sha2::Sha256, sha1::Sha1>(),
                b"client-secret",
            )
            .unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(cipher);
        let key = MerchantKey::from_pem(&pair.private_pem).unwrap();
        assert_eq!(key.decrypt(&b64).unwrap(), "client-secret");
        assert_eq!(
            RsaPublicKey::from_public_key_pem(&pair.public_pem).unwrap(),
            public
        );
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(generate(2048).is_err());
    }
}
