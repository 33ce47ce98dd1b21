//! Stable item ids for formats that carry none (HH-RLHF, TRL): a hash of the prompt, so every
//! record about the same prompt gets the same id on every machine and in every format.

use crate::records::{Prompt, Role};

/// FNV-1a 64 (Fowler–Noll–Vo) over a sequence of byte strings, each followed by the separator
/// byte 0xff, which never occurs in UTF-8 (so `["ab", "c"]` and `["a", "bc"]` differ).
#[derive(Debug, Clone, Copy)]
pub struct Fnv1a(u64);

impl Fnv1a {
    /// The FNV-1a 64 offset basis.
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    /// The FNV-1a 64 prime.
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    /// An empty hash.
    pub fn new() -> Self {
        Fnv1a(Self::OFFSET)
    }

    /// Hashes `bytes` then the separator.
    pub fn part(&mut self, bytes: &[u8]) -> &mut Self {
        for &byte in bytes.iter().chain(std::iter::once(&0xff)) {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(Self::PRIME);
        }
        self
    }

    /// The hash value.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a::new()
    }
}

/// Hashes a prompt's turns (role letter and content of each) into `hash`.
pub fn hash_prompt(hash: &mut Fnv1a, prompt: &Prompt) {
    for turn in &prompt.turns {
        let role: &[u8] = match turn.role {
            Role::System => b"s",
            Role::User => b"u",
            Role::Assistant => b"a",
        };
        hash.part(role).part(turn.content.as_bytes());
    }
}

/// The id of the item "this prompt": `p` and 16 hex digits of FNV-1a 64 over its turns.
pub fn prompt_item_id(prompt: &Prompt) -> String {
    let mut hash = Fnv1a::new();
    hash_prompt(&mut hash, prompt);
    format!("p{:016x}", hash.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::Turn;

    #[test]
    fn fnv_matches_the_published_test_vector() {
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c; `part` adds the 0xff separator after it.
        let one_byte = (Fnv1a::OFFSET ^ u64::from(b'a')).wrapping_mul(Fnv1a::PRIME);
        assert_eq!(one_byte, 0xaf63_dc4c_8601_ec8c);
        let expected = (one_byte ^ 0xff).wrapping_mul(Fnv1a::PRIME);
        assert_eq!(Fnv1a::new().part(b"a").finish(), expected);
        assert_ne!(
            Fnv1a::new().part(b"ab").part(b"c").finish(),
            Fnv1a::new().part(b"a").part(b"bc").finish()
        );
    }

    #[test]
    fn ids_depend_on_roles_and_contents_only() {
        let a = Prompt::new(vec![
            Turn::user("hi"),
            Turn::assistant("yo"),
            Turn::user("2+2?"),
        ]);
        let mut c = a.clone();
        c.turns[1].role = Role::User;
        assert_eq!(prompt_item_id(&a), prompt_item_id(&a.clone()));
        assert_ne!(prompt_item_id(&a), prompt_item_id(&c));
        assert_eq!(prompt_item_id(&a).len(), 17);
    }
}
