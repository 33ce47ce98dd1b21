//! [`Interner`]: maps strings (item, rater and label names) to dense `u32` ids and back.

use std::collections::HashMap;

/// A string table giving each distinct name a dense id `0..len()` in first-seen order.
#[derive(Debug, Clone, Default)]
pub struct Interner {
    names: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Interner {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of `name`, adding it if new.
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        id
    }

    /// The id of `name`, if present.
    pub fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// The name of `id` (panics only on an id this table never issued).
    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    /// All names, indexed by id.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Number of distinct names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when no name was interned.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Builds a table from names given in id order (duplicates keep their first id).
    pub fn from_names(names: Vec<String>) -> Self {
        let mut ids = HashMap::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            ids.entry(n.clone()).or_insert(i as u32);
        }
        Interner { names, ids }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_ids_in_first_seen_order() {
        let mut t = Interner::new();
        assert_eq!(t.intern("b"), 0);
        assert_eq!(t.intern("a"), 1);
        assert_eq!(t.intern("b"), 0);
        assert_eq!(t.name(1), "a");
        assert_eq!(t.get("z"), None);
        assert_eq!(t.len(), 2);
    }
}
