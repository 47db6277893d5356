//! A SHA-256 digest as Ferry writes, stores and compares them: 64 lowercase hex digits. One parser for every place a
//! digest comes in from outside (an approval's `ferry.artifact_sha256`, a sync request, a version's description, an
//! image pin), so that none of them accepts what another refuses.
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256Hex(String);

/// Why a text is not a [`Sha256Hex`]; says what it found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a SHA-256 of 64 lowercase hex digits")]
pub struct NotSha256Hex(pub String);

impl Sha256Hex {
    pub fn parse(text: &str) -> Result<Sha256Hex, NotSha256Hex> {
        let lowercase_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        if text.len() == 64 && text.bytes().all(lowercase_hex) {
            Ok(Sha256Hex(text.to_string()))
        } else {
            Err(NotSha256Hex(text.to_string()))
        }
    }

    /// The digest of a finished hash.
    pub fn of(hasher: Sha256) -> Sha256Hex {
        Sha256Hex(hex::encode(hasher.finalize()))
    }

    /// The digest of some bytes.
    pub fn of_bytes(bytes: &[u8]) -> Sha256Hex {
        Sha256Hex(hex::encode(Sha256::digest(bytes)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Sha256Hex {
    type Error = NotSha256Hex;
    fn try_from(text: String) -> Result<Sha256Hex, NotSha256Hex> {
        Sha256Hex::parse(&text)
    }
}

impl From<Sha256Hex> for String {
    fn from(digest: Sha256Hex) -> String {
        digest.0
    }
}

impl PartialEq<str> for Sha256Hex {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Sha256Hex {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for Sha256Hex {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_64_lowercase_hex_digits_are_a_digest() {
        let good = Sha256Hex::of_bytes(b"abc");
        assert_eq!(
            good.as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Sha256Hex::parse(good.as_str()), Ok(good.clone()));
        for bad in [
            String::new(),
            good.as_str().to_uppercase(),
            good.as_str()[..63].to_string(),
            format!("{good}0"),
            format!(" {}", &good.as_str()[1..]),
            format!("{}g", &good.as_str()[..63]),
            // 64 bytes, but not 64 digits: a multi-byte character in place of two.
            format!("{}é", &good.as_str()[..62]),
        ] {
            assert_eq!(
                Sha256Hex::parse(&bad),
                Err(NotSha256Hex(bad.clone())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_digest_is_a_plain_json_string_and_a_bad_one_is_refused_when_read() {
        let good = Sha256Hex::of_bytes(b"");
        let json = serde_json::to_string(&good).unwrap();
        assert_eq!(json, format!("\"{good}\""));
        assert_eq!(serde_json::from_str::<Sha256Hex>(&json).unwrap(), good);
        let err = serde_json::from_str::<Sha256Hex>("\"ABC\"").unwrap_err();
        assert!(
            err.to_string()
                .contains("\"ABC\" is not a SHA-256 of 64 lowercase hex digits"),
            "{err}"
        );
    }
}
