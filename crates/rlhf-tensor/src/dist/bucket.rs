//! Gradient buckets (PyTorch DDP's idea, ~25 MB each): the gradients are grouped in the order
//! they become final during the backward ("units", e.g. one transformer block each, in reverse
//! block order), consecutive units are packed into flat buckets of about `bucket_bytes`, and a
//! bucket's all-reduce can start as soon as its last unit is final, while the backward goes on.
//! A unit is never split; a unit larger than the budget is a bucket of its own.

use super::flat::{flat_like, read_at, write_at};
use super::{DistError, Result};
use crate::Tensor;

/// PyTorch DDP's default bucket size.
pub const DEFAULT_BUCKET_BYTES: usize = 25 * 1024 * 1024;

/// Where one tensor sits in its bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketMember {
    /// The tensor's index in the caller's list.
    pub tensor: usize,
    /// First element in the bucket's flat buffer.
    pub offset: usize,
    /// Number of elements.
    pub len: usize,
}

/// One bucket: its tensors, its flat length, and the unit after which it is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// The tensors, in unit order.
    pub members: Vec<BucketMember>,
    /// Elements in the flat buffer.
    pub len: usize,
    /// The index of the last unit the bucket holds: it is ready once that unit is final.
    pub last_unit: usize,
}

/// Buckets over a list of tensors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketPlan {
    /// The buckets, in the order they become ready.
    pub buckets: Vec<Bucket>,
}

impl BucketPlan {
    /// Groups `units` (tensor indices, listed in the order their gradients become final) into
    /// buckets of about `bucket_bytes`, `sizes[i]` being tensor i's element count and
    /// `elem_bytes` the bytes of one element.
    pub fn new(
        units: &[Vec<usize>],
        sizes: &[usize],
        elem_bytes: usize,
        bucket_bytes: usize,
    ) -> Result<BucketPlan> {
        let budget = (bucket_bytes / elem_bytes.max(1)).max(1);
        let mut buckets: Vec<Bucket> = Vec::new();
        let mut seen = vec![false; sizes.len()];
        for (unit_index, unit) in units.iter().enumerate() {
            let start_new = buckets.last().is_none_or(|b| b.len >= budget);
            if start_new {
                buckets.push(Bucket {
                    members: Vec::new(),
                    len: 0,
                    last_unit: unit_index,
                });
            }
            let bucket = buckets.last_mut().ok_or_else(|| {
                DistError::invalid("BucketPlan::new", "no bucket to fill (unreachable)")
            })?;
            for &tensor in unit {
                if tensor >= sizes.len() || seen[tensor] {
                    return Err(DistError::invalid(
                        "BucketPlan::new",
                        format!("tensor {tensor} is out of range or in two units"),
                    ));
                }
                seen[tensor] = true;
                bucket.members.push(BucketMember {
                    tensor,
                    offset: bucket.len,
                    len: sizes[tensor],
                });
                bucket.len += sizes[tensor];
            }
            bucket.last_unit = unit_index;
        }
        if let Some(missing) = seen.iter().position(|s| !s) {
            return Err(DistError::invalid(
                "BucketPlan::new",
                format!("tensor {missing} is in no unit"),
            ));
        }
        Ok(BucketPlan { buckets })
    }

    /// Bucket `index`'s tensors packed into a new flat buffer (their device and dtype).
    pub fn pack(&self, index: usize, tensors: &[&Tensor]) -> Result<Tensor> {
        let bucket = &self.buckets[index];
        let first = tensors
            .get(bucket.members[0].tensor)
            .ok_or_else(|| DistError::invalid("BucketPlan::pack", "too few tensors"))?;
        let mut flat = flat_like(first, bucket.len)?;
        for m in &bucket.members {
            write_at(&mut flat, m.offset, tensors[m.tensor])?;
        }
        Ok(flat)
    }

    /// Copies bucket `index`'s flat buffer back into its tensors.
    pub fn unpack(&self, index: usize, flat: &Tensor, tensors: &mut [&mut Tensor]) -> Result<()> {
        for m in &self.buckets[index].members {
            let dst = tensors
                .get_mut(m.tensor)
                .ok_or_else(|| DistError::invalid("BucketPlan::unpack", "too few tensors"))?;
            read_at(flat, m.offset, dst)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Device;

    #[test]
    fn units_fill_buckets_in_order_and_pack_round_trips() {
        // Units: [2], [0, 3], [1]; sizes 4, 2, 3, 5; budget 6 elements (24 bytes of f32).
        let units = vec![vec![2], vec![0, 3], vec![1]];
        let plan = BucketPlan::new(&units, &[4, 2, 3, 5], 4, 24).unwrap();
        assert_eq!(plan.buckets.len(), 2);
        assert_eq!(plan.buckets[0].len, 3 + 4 + 5);
        assert_eq!(plan.buckets[0].last_unit, 1);
        assert_eq!(
            plan.buckets[1].members,
            vec![BucketMember {
                tensor: 1,
                offset: 0,
                len: 2
            }]
        );
        let tensors: Vec<Tensor> = [4, 2, 3, 5]
            .iter()
            .enumerate()
            .map(|(i, &n)| Tensor::from_vec(vec![i as f32 + 0.5; n], [n], Device::Cpu).unwrap())
            .collect();
        let refs: Vec<&Tensor> = tensors.iter().collect();
        let flat = plan.pack(0, &refs).unwrap();
        assert_eq!(&flat.to_vec_f32()[..4], &[2.5, 2.5, 2.5, 0.5]);
        let mut copies: Vec<Tensor> = tensors.iter().map(|t| t.zeros_like().unwrap()).collect();
        let mut muts: Vec<&mut Tensor> = copies.iter_mut().collect();
        plan.unpack(0, &flat, &mut muts).unwrap();
        assert_eq!(copies[3], tensors[3]);
        assert_eq!(copies[1].to_vec_f32(), vec![0.0; 2]);
        assert!(BucketPlan::new(&[vec![0]], &[1, 1], 4, 8).is_err());
    }
}
