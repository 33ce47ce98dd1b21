//! [`LabelSet`]: long-format labels stored sparsely, and [`Gold`] reference labels.
//!
//! Layout (CSR by item): for item `i`, its ratings are `offsets[i]..offsets[i+1]` in the parallel
//! arrays `raters` and `labels`, sorted by rater id. Memory is 8 bytes per label plus the string
//! tables: no items x raters matrix is ever built.

use std::path::{Path, PathBuf};

use crate::error::{RatersError, Result};
use crate::intern::Interner;

/// Long-format labels `(item, rater, label)` with interned ids, grouped by item.
#[derive(Debug, Clone)]
pub struct LabelSet {
    items: Interner,
    raters: Interner,
    /// Category names in domain order (ascending numeric value when every label is a number).
    categories: Vec<String>,
    /// Numeric value of each category, when every label parses as a finite number.
    values: Option<Vec<f64>>,
    offsets: Vec<usize>, // (n_items + 1)
    raters_of: Vec<u32>, // (n_labels) rater id of each label
    labels_of: Vec<u32>, // (n_labels) category id of each label
}

/// Gold (reference) labels for some items of a [`LabelSet`].
#[derive(Debug, Clone)]
pub struct Gold {
    by_item: Vec<u32>, // (n_items) category id, or NO_GOLD
    count: usize,
    /// Gold rows whose item no rater labelled (kept for reporting, unused in statistics).
    pub unrated_items: usize,
}

const NO_GOLD: u32 = u32::MAX;

impl Gold {
    /// The gold category of `item`, if any.
    pub fn get(&self, item: u32) -> Option<u32> {
        match self.by_item.get(item as usize) {
            Some(&c) if c != NO_GOLD => Some(c),
            _ => None,
        }
    }

    /// Number of rated items that have a gold label.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when no rated item has a gold label.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Where a raw record came from (for error messages).
#[derive(Debug, Clone, Copy)]
struct Origin {
    line: u64,
}

/// Streams raw `(item, rater, label)` strings (and optional gold) into a [`LabelSet`].
#[derive(Debug)]
pub struct LabelSetBuilder {
    labels_path: PathBuf,
    gold_path: PathBuf,
    items: Interner,
    raters: Interner,
    names: Interner,
    triples: Vec<(u32, u32, u32, Origin)>, // (item, rater, raw label id, origin)
    gold: Vec<(u32, u32, Origin)>,         // (item, raw label id, origin)
}

impl LabelSetBuilder {
    /// A builder whose errors cite `labels_path` (use e.g. `"<memory>"` for in-memory data).
    pub fn new(labels_path: impl AsRef<Path>) -> Self {
        LabelSetBuilder {
            labels_path: labels_path.as_ref().to_path_buf(),
            gold_path: PathBuf::from("<gold>"),
            items: Interner::new(),
            raters: Interner::new(),
            names: Interner::new(),
            triples: Vec::new(),
            gold: Vec::new(),
        }
    }

    /// Sets the path that gold errors cite.
    pub fn gold_path(&mut self, path: impl AsRef<Path>) {
        self.gold_path = path.as_ref().to_path_buf();
    }

    /// Adds one label read at `line` (1-based) of the labels file.
    pub fn push(&mut self, item: &str, rater: &str, label: &str, line: u64) {
        let item = self.items.intern(item);
        let rater = self.raters.intern(rater);
        let label = self.names.intern(label);
        self.triples.push((item, rater, label, Origin { line }));
    }

    /// Adds one gold label read at `line` of the gold file.
    pub fn push_gold(&mut self, item: &str, label: &str, line: u64) {
        let item = self.items.intern(item);
        let label = self.names.intern(label);
        self.gold.push((item, label, Origin { line }));
    }

    /// Sorts, checks for duplicate `(item, rater)` pairs and builds the label set and gold.
    pub fn build(self) -> Result<(LabelSet, Gold)> {
        let LabelSetBuilder {
            labels_path,
            gold_path,
            items,
            raters,
            names,
            mut triples,
            mut gold,
        } = self;
        if triples.is_empty() {
            return Err(RatersError::Invalid(format!(
                "{}: no labels",
                labels_path.display()
            )));
        }
        let (categories, values, remap) = category_domain(&names);
        triples.sort_unstable_by_key(|t| ((t.0 as u64) << 32) | t.1 as u64);
        for w in triples.windows(2) {
            if w[0].0 == w[1].0 && w[0].1 == w[1].1 {
                return Err(RatersError::Parse {
                    path: labels_path,
                    line: w[1].3.line.max(w[0].3.line),
                    field: "rater".into(),
                    message: format!(
                        "rater `{}` labels item `{}` twice (lines {} and {}); expected one label per item and rater",
                        raters.name(w[0].1),
                        items.name(w[0].0),
                        w[0].3.line.min(w[1].3.line),
                        w[0].3.line.max(w[1].3.line)
                    ),
                });
            }
        }
        // Only items that received at least one rating are kept; gold-only items are counted.
        let mut item_map = vec![u32::MAX; items.len()];
        let mut kept_names = Vec::new();
        for t in &triples {
            if item_map[t.0 as usize] == u32::MAX {
                item_map[t.0 as usize] = kept_names.len() as u32;
                kept_names.push(items.name(t.0).to_string());
            }
        }
        let n_items = kept_names.len();
        let mut offsets = Vec::with_capacity(n_items + 1);
        let mut raters_of = Vec::with_capacity(triples.len());
        let mut labels_of = Vec::with_capacity(triples.len());
        offsets.push(0);
        for (idx, t) in triples.iter().enumerate() {
            if idx > 0 && triples[idx - 1].0 != t.0 {
                offsets.push(idx);
            }
            raters_of.push(t.1);
            labels_of.push(remap[t.2 as usize]);
        }
        offsets.push(triples.len());
        gold.sort_unstable_by_key(|g| g.0);
        let mut by_item = vec![NO_GOLD; n_items];
        let mut count = 0;
        let mut unrated_items = 0;
        for (k, g) in gold.iter().enumerate() {
            if k > 0 && gold[k - 1].0 == g.0 {
                return Err(RatersError::Parse {
                    path: gold_path,
                    line: g.2.line.max(gold[k - 1].2.line),
                    field: "item".into(),
                    message: format!(
                        "item `{}` has two gold labels; expected one",
                        items.name(g.0)
                    ),
                });
            }
            match item_map[g.0 as usize] {
                u32::MAX => unrated_items += 1,
                i => {
                    by_item[i as usize] = remap[g.1 as usize];
                    count += 1;
                }
            }
        }
        let set = LabelSet {
            items: Interner::from_names(kept_names),
            raters,
            categories,
            values,
            offsets,
            raters_of,
            labels_of,
        };
        Ok((
            set,
            Gold {
                by_item,
                count,
                unrated_items,
            },
        ))
    }
}

/// Orders the raw label names into categories: by numeric value when all are numbers (labels
/// with equal value, e.g. `1` and `1.0`, merge), else lexicographically. Returns the category
/// names, their numeric values (if any) and the map raw id -> category id.
fn category_domain(names: &Interner) -> (Vec<String>, Option<Vec<f64>>, Vec<u32>) {
    let parsed: Option<Vec<f64>> = names
        .names()
        .iter()
        .map(|n| n.trim().parse::<f64>().ok().filter(|v| v.is_finite()))
        .collect();
    let mut order: Vec<u32> = (0..names.len() as u32).collect();
    let mut remap = vec![0u32; names.len()];
    let mut categories = Vec::new();
    match parsed {
        Some(vals) => {
            order.sort_by(|&a, &b| {
                vals[a as usize]
                    .total_cmp(&vals[b as usize])
                    .then(a.cmp(&b))
            });
            let mut values = Vec::new();
            for &raw in &order {
                let v = vals[raw as usize];
                if values.last() != Some(&v) {
                    values.push(v);
                    categories.push(names.name(raw).to_string());
                }
                remap[raw as usize] = (values.len() - 1) as u32;
            }
            (categories, Some(values), remap)
        }
        None => {
            order.sort_by(|&a, &b| names.name(a).cmp(names.name(b)));
            for (cat, &raw) in order.iter().enumerate() {
                remap[raw as usize] = cat as u32;
                categories.push(names.name(raw).to_string());
            }
            (categories, None, remap)
        }
    }
}

impl LabelSet {
    /// Builds a label set from in-memory `(item, rater, label)` triples.
    ///
    /// ```
    /// let set = rlhf_raters::LabelSet::from_triples([("q1", "ann", "yes"), ("q1", "bob", "no")]).unwrap();
    /// assert_eq!((set.n_items(), set.n_raters(), set.n_categories()), (1, 2, 2));
    /// ```
    pub fn from_triples<I, S>(triples: I) -> Result<LabelSet>
    where
        I: IntoIterator<Item = (S, S, S)>,
        S: AsRef<str>,
    {
        let mut b = LabelSetBuilder::new("<memory>");
        for (line, (i, r, l)) in triples.into_iter().enumerate() {
            b.push(i.as_ref(), r.as_ref(), l.as_ref(), line as u64 + 1);
        }
        Ok(b.build()?.0)
    }

    /// Builds a label set from a units x coders matrix (`None` = missing), the layout of the
    /// reliability-data tables in the literature. Rows are units (items), columns coders.
    pub fn from_matrix<T: ToString>(rows: &[Vec<Option<T>>]) -> Result<LabelSet> {
        let mut b = LabelSetBuilder::new("<matrix>");
        let mut line = 0;
        for (i, row) in rows.iter().enumerate() {
            for (r, cell) in row.iter().enumerate() {
                if let Some(v) = cell {
                    line += 1;
                    b.push(&format!("u{i}"), &format!("c{r}"), &v.to_string(), line);
                }
            }
        }
        Ok(b.build()?.0)
    }

    /// Number of items with at least one label.
    pub fn n_items(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Number of distinct raters.
    pub fn n_raters(&self) -> usize {
        self.raters.len()
    }

    /// Number of categories (distinct label values).
    pub fn n_categories(&self) -> usize {
        self.categories.len()
    }

    /// Total number of labels.
    pub fn n_labels(&self) -> usize {
        self.labels_of.len()
    }

    /// Item names, indexed by item id.
    pub fn items(&self) -> &Interner {
        &self.items
    }

    /// Rater names, indexed by rater id.
    pub fn raters(&self) -> &Interner {
        &self.raters
    }

    /// Category names in domain order.
    pub fn categories(&self) -> &[String] {
        &self.categories
    }

    /// Numeric values of the categories, when every label is a number.
    pub fn values(&self) -> Option<&[f64]> {
        self.values.as_deref()
    }

    /// The `(raters, labels)` slices of item `item`, sorted by rater id.
    #[inline]
    pub fn item(&self, item: usize) -> (&[u32], &[u32]) {
        let (a, b) = (self.offsets[item], self.offsets[item + 1]);
        (&self.raters_of[a..b], &self.labels_of[a..b])
    }

    /// CSR offsets: item `i` owns positions `offsets[i]..offsets[i+1]`.
    pub fn offsets(&self) -> &[usize] {
        &self.offsets
    }

    /// Rater id of every label, in CSR order.
    pub fn rater_ids(&self) -> &[u32] {
        &self.raters_of
    }

    /// Category id of every label, in CSR order.
    pub fn label_ids(&self) -> &[u32] {
        &self.labels_of
    }

    /// Builds a label set directly from interned parts (used by the synthetic generator).
    /// `triples` are `(item, rater, category)` ids; they are sorted here.
    pub fn from_ids(
        n_items: usize,
        n_raters: usize,
        categories: Vec<String>,
        values: Option<Vec<f64>>,
        mut triples: Vec<(u32, u32, u32)>,
    ) -> Result<LabelSet> {
        triples.sort_unstable_by_key(|t| ((t.0 as u64) << 32) | t.1 as u64);
        if triples
            .windows(2)
            .any(|w| w[0].0 == w[1].0 && w[0].1 == w[1].1)
        {
            return Err(RatersError::Invalid("duplicate (item, rater) pair".into()));
        }
        if triples.iter().any(|t| {
            t.0 as usize >= n_items || t.1 as usize >= n_raters || t.2 as usize >= categories.len()
        }) {
            return Err(RatersError::Invalid("id out of range".into()));
        }
        let mut offsets = vec![0usize; n_items + 1];
        for t in &triples {
            offsets[t.0 as usize + 1] += 1;
        }
        for i in 0..n_items {
            offsets[i + 1] += offsets[i];
        }
        Ok(LabelSet {
            items: Interner::from_names((0..n_items).map(|i| format!("i{i}")).collect()),
            raters: Interner::from_names((0..n_raters).map(|r| format!("r{r}")).collect()),
            categories,
            values,
            offsets,
            raters_of: triples.iter().map(|t| t.1).collect(),
            labels_of: triples.iter().map(|t| t.2).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csr_layout_and_numeric_domain() {
        let set = LabelSet::from_triples([
            ("a", "r2", "3"),
            ("b", "r1", "1.0"),
            ("a", "r1", "1"),
            ("b", "r2", "10"),
        ])
        .unwrap();
        assert_eq!(set.categories(), &["1.0", "3", "10"]);
        assert_eq!(set.values().unwrap(), &[1.0, 3.0, 10.0]);
        let (r, l) = set.item(0);
        assert_eq!(set.items().name(0), "a");
        assert_eq!(r, &[0, 1]); // r2 interned first
        assert_eq!(l, &[1, 0]);
        assert_eq!(set.n_labels(), 4);
    }

    #[test]
    fn duplicate_pair_is_an_error_naming_lines() {
        let err = LabelSet::from_triples([("a", "r", "x"), ("b", "r", "y"), ("a", "r", "z")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("lines 1 and 3"), "{err}");
    }

    #[test]
    fn string_labels_sort_lexically() {
        let set = LabelSet::from_triples([("a", "r", "no"), ("b", "r", "maybe")]).unwrap();
        assert_eq!(set.categories(), &["maybe", "no"]);
        assert!(set.values().is_none());
    }
}
