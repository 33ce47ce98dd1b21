//! Bearer tokens: 32 random bytes from the operating system's generator, shown once in hex; the
//! database keeps only their SHA-256, and presented tokens are compared in constant time.

use rand::TryRngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A SHA-256 digest of a token.
pub type TokenHash = [u8; 32];

/// A fresh token: 64 hex digits (256 bits from the OS generator).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    // The OS generator failing means the machine cannot make secrets at all; stop loudly.
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random generator failed");
    hex(&bytes)
}

/// The SHA-256 of a token's text.
pub fn hash_token(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether two digests are equal, in time independent of where they differ.
pub fn digests_equal(a: &TokenHash, b: &TokenHash) -> bool {
    a.ct_eq(b).into()
}

/// The position of `digest` in `known`, scanning every entry whatever matches (no early exit),
/// so the time taken does not tell which entry, or how much of one, matched.
pub fn find_digest<'a, T>(
    digest: &TokenHash,
    known: impl IntoIterator<Item = (&'a TokenHash, T)>,
) -> Option<T> {
    let mut found = None;
    for (candidate, value) in known {
        let hit = candidate.ct_eq(digest);
        if bool::from(hit) {
            found = Some(value);
        }
    }
    found
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_distinct_hex_and_hash_to_sha256() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            hex(&hash_token("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let known = [(hash_token(&a), 1), (hash_token(&b), 2)];
        let lookup = |t: &str| find_digest(&hash_token(t), known.iter().map(|(h, v)| (h, *v)));
        assert_eq!(lookup(&b), Some(2));
        assert_eq!(lookup("nope"), None);
        assert!(digests_equal(&hash_token(&a), &hash_token(&a)));
        assert!(!digests_equal(&hash_token(&a), &hash_token(&b)));
    }
}
