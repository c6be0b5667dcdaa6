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
use serde_json::{json, Value};

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
    let public = key.to_public_key();
    let der = public
        .to_public_key_der()
        .map_err(|e| format!("cannot encode the public key: {e}"))?;
    let public_pem = public
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| format!("cannot encode the public key: {e}"))?;
    Ok(KeyPair {
        private_pem,
        public_base64: base64::engine::general_purpose::STANDARD.encode(der.as_bytes()),
        public_pem,
    })
}

/// `koogate keygen [--bits N] [--secrets PATH]`.
pub fn run(args: &[String]) -> Result<(), String> {
    let bits = match crate::flag_value(args, "--bits") {
        Some(b) => b
            .parse()
            .map_err(|_| format!("--bits {b:?} is not a number"))?,
        None => MIN_BITS,
    };
    let pair = generate(bits)?;
    println!("Public key for the app credential (应用凭证 → 公钥), X.509 SubjectPublicKeyInfo:");
    println!();
    println!("{}", pair.public_base64);
    println!();
    println!("The same as PEM, if the console asks for PEM:");
    println!();
    print!("{}", pair.public_pem);
    println!();
    match crate::flag_value(args, "--secrets") {
        Some(path) => {
            add_to_secrets(std::path::Path::new(path), &pair.private_pem)?;
            println!("The private key was added to {path} as rsa_private_key_pem.");
        }
        None => {
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

/// Sets `rsa_private_key_pem` in an existing secrets document, refusing to replace a key that is
/// there (a replaced key makes every stored clientSecret undecryptable).
fn add_to_secrets(path: &std::path::Path, private_pem: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut doc: Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    let obj = doc
        .as_object_mut()
        .ok_or_else(|| format!("{} is not a JSON object", path.display()))?;
    if obj.get("rsa_private_key_pem").is_some_and(|v| !v.is_null()) {
        return Err(format!(
            "{} has an rsa_private_key_pem already; remove it first if you mean to replace it \
             (the clientSecrets encrypted to its public key will no longer decrypt)",
            path.display()
        ));
    }
    obj.insert(
        "rsa_private_key_pem".into(),
        Value::String(private_pem.into()),
    );
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    crate::sign::replace_private(path, &text)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
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
