//! Optimizer state as named tensors, the form checkpoints store it in: AdamW's moments as
//! `{prefix}exp_avg.{param}` and `{prefix}exp_avg_sq.{param}`, SGD's momentum buffers as
//! `{prefix}momentum.{param}` (PyTorch's state names, so a reader of the file recognises them).
//! Every trainer of the workspace (language model, reward model, PPO's policy and critic) saves
//! and restores its optimizer through [`Optimizer::named_state`] and [`Optimizer::restore_state`].

use std::collections::BTreeMap;
use std::fmt;

use super::{AdamW, Sgd};
use crate::{Result, Tensor};

/// AdamW or SGD with its state: the optimizer a trainer holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Optimizer {
    /// AdamW (PyTorch semantics).
    Adamw(AdamW),
    /// SGD with optional momentum.
    Sgd(Sgd),
}

/// Saved optimizer state that does not fit the parameters: the tensor's name and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateMismatch {
    /// The tensor's name in the file.
    pub tensor: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for StateMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tensor `{}`: {}", self.tensor, self.reason)
    }
}

impl std::error::Error for StateMismatch {}

impl Optimizer {
    /// Steps taken so far (AdamW's bias correction counts them).
    pub fn step_count(&self) -> u64 {
        match self {
            Optimizer::Adamw(o) => o.step,
            Optimizer::Sgd(o) => o.step,
        }
    }

    /// Updates every parameter in place with a learning rate from a schedule.
    pub fn step_with_lr(
        &mut self,
        params: &mut [&mut Tensor],
        grads: &[&Tensor],
        lr: f32,
    ) -> Result<()> {
        match self {
            Optimizer::Adamw(o) => o.step_with_lr(params, grads, lr),
            Optimizer::Sgd(o) => o.step_with_lr(params, grads, lr),
        }
    }

    /// The state tensors named after `names` (the parameters, in the order the optimizer
    /// updates them), each name prefixed with `prefix` (e.g. `"policy."`, or `""`). Empty before
    /// the first step, and for SGD without momentum.
    pub fn named_state<'a>(&'a self, prefix: &str, names: &[String]) -> Vec<(String, &'a Tensor)> {
        match self {
            Optimizer::Adamw(o) => o.named_state(prefix, names),
            Optimizer::Sgd(o) => o.named_state(prefix, names),
        }
    }

    /// Restores the state [`Optimizer::named_state`] wrote; see [`AdamW::restore_state`] and
    /// [`Sgd::restore_state`].
    pub fn restore_state(
        &mut self,
        step: u64,
        prefix: &str,
        layout: &[(String, Vec<usize>)],
        found: &mut BTreeMap<String, Tensor>,
    ) -> std::result::Result<(), StateMismatch> {
        match self {
            Optimizer::Adamw(o) => o.restore_state(step, prefix, layout, found),
            Optimizer::Sgd(o) => o.restore_state(step, prefix, layout, found),
        }
    }
}

impl AdamW {
    /// The moments as `{prefix}exp_avg.{name}` and `{prefix}exp_avg_sq.{name}`, `names` being the
    /// parameters in update order. Empty before the first step.
    pub fn named_state<'a>(&'a self, prefix: &str, names: &[String]) -> Vec<(String, &'a Tensor)> {
        let mut out = Vec::new();
        for (name, (m, v)) in names.iter().zip(self.exp_avg.iter().zip(&self.exp_avg_sq)) {
            out.push((format!("{prefix}exp_avg.{name}"), m));
            out.push((format!("{prefix}exp_avg_sq.{name}"), v));
        }
        out
    }

    /// Sets the step count to `step` and, when it is past 0, takes both moments of every
    /// parameter of `layout` (name and dims, in update order) out of `found`, checking shapes.
    /// Tensors of other optimizers or prefixes stay in `found`; see [`unused_state`].
    pub fn restore_state(
        &mut self,
        step: u64,
        prefix: &str,
        layout: &[(String, Vec<usize>)],
        found: &mut BTreeMap<String, Tensor>,
    ) -> std::result::Result<(), StateMismatch> {
        self.step = step;
        if step > 0 {
            self.exp_avg = take(found, &format!("{prefix}exp_avg"), layout)?;
            self.exp_avg_sq = take(found, &format!("{prefix}exp_avg_sq"), layout)?;
        }
        Ok(())
    }
}

impl Sgd {
    /// The momentum buffers as `{prefix}momentum.{name}`; empty without momentum.
    pub fn named_state<'a>(&'a self, prefix: &str, names: &[String]) -> Vec<(String, &'a Tensor)> {
        names
            .iter()
            .zip(&self.momentum_buffers)
            .map(|(name, m)| (format!("{prefix}momentum.{name}"), m))
            .collect()
    }

    /// Sets the step count and takes the momentum buffers of every parameter of `layout` out of
    /// `found` when the file holds any (SGD without momentum saves none).
    pub fn restore_state(
        &mut self,
        step: u64,
        prefix: &str,
        layout: &[(String, Vec<usize>)],
        found: &mut BTreeMap<String, Tensor>,
    ) -> std::result::Result<(), StateMismatch> {
        self.step = step;
        let kind = format!("{prefix}momentum");
        let saved = found.keys().any(|k| k.starts_with(&format!("{kind}.")));
        if step > 0 && saved {
            self.momentum_buffers = take(found, &kind, layout)?;
        }
        Ok(())
    }
}

/// The first tensor left in `found` after every optimizer took its state: a file that holds
/// state for another optimizer or model is an error, never silently ignored.
pub fn unused_state(found: &BTreeMap<String, Tensor>) -> Option<StateMismatch> {
    found.keys().next().map(|name| StateMismatch {
        tensor: name.clone(),
        reason: "does not belong to this optimizer".into(),
    })
}

/// Removes `{kind}.{param}` for every parameter of `layout` from `found`, checking shapes.
fn take(
    found: &mut BTreeMap<String, Tensor>,
    kind: &str,
    layout: &[(String, Vec<usize>)],
) -> std::result::Result<Vec<Tensor>, StateMismatch> {
    layout
        .iter()
        .map(|(name, dims)| {
            let key = format!("{kind}.{name}");
            let t = found.remove(&key).ok_or_else(|| StateMismatch {
                tensor: key.clone(),
                reason: "missing".into(),
            })?;
            if t.dims() != dims.as_slice() {
                return Err(StateMismatch {
                    reason: format!("shape {}, expected {dims:?}", t.shape()),
                    tensor: key,
                });
            }
            Ok(t)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Device;
    use crate::optim::{AdamWConfig, SgdConfig};

    type Layout = Vec<(String, Vec<usize>)>;

    fn params() -> (Vec<Tensor>, Vec<Tensor>, Layout) {
        let p = vec![
            Tensor::from_vec(vec![1.0, -2.0, 0.5], [3], Device::Cpu).unwrap(),
            Tensor::from_vec(vec![0.3, 0.1], [1, 2], Device::Cpu).unwrap(),
        ];
        let g = vec![
            Tensor::from_vec(vec![0.1, 0.2, -0.3], [3], Device::Cpu).unwrap(),
            Tensor::from_vec(vec![-1.0, 0.4], [1, 2], Device::Cpu).unwrap(),
        ];
        let layout = vec![("w".to_string(), vec![3]), ("b".to_string(), vec![1, 2])];
        (p, g, layout)
    }

    fn stepped(mut opt: Optimizer) -> Optimizer {
        let (mut p, g, _) = params();
        let mut refs: Vec<&mut Tensor> = p.iter_mut().collect();
        let grads: Vec<&Tensor> = g.iter().collect();
        opt.step_with_lr(&mut refs, &grads, 0.1).unwrap();
        opt.step_with_lr(&mut refs, &grads, 0.1).unwrap();
        opt
    }

    fn round_trip(opt: &Optimizer, fresh: Optimizer, prefix: &str) -> Optimizer {
        let (_, _, layout) = params();
        let names: Vec<String> = layout.iter().map(|(n, _)| n.clone()).collect();
        let mut found: BTreeMap<String, Tensor> = opt
            .named_state(prefix, &names)
            .into_iter()
            .map(|(n, t)| (n, t.clone()))
            .collect();
        let mut restored = fresh;
        restored
            .restore_state(opt.step_count(), prefix, &layout, &mut found)
            .unwrap();
        assert!(unused_state(&found).is_none());
        restored
    }

    #[test]
    fn adamw_and_sgd_state_round_trip() {
        let adamw = Optimizer::Adamw(AdamW::new(AdamWConfig::default()));
        let saved = stepped(adamw.clone());
        assert_eq!(round_trip(&saved, adamw, "policy."), saved);
        let sgd = Optimizer::Sgd(Sgd::new(SgdConfig {
            momentum: 0.9,
            ..SgdConfig::default()
        }));
        let saved = stepped(sgd.clone());
        assert_eq!(saved.named_state("", &["w".into(), "b".into()]).len(), 2);
        assert_eq!(round_trip(&saved, sgd, ""), saved);
    }

    #[test]
    fn missing_misshapen_and_foreign_tensors_are_named() {
        let (_, _, layout) = params();
        let saved = stepped(Optimizer::Adamw(AdamW::new(AdamWConfig::default())));
        let names: Vec<String> = layout.iter().map(|(n, _)| n.clone()).collect();
        let all: BTreeMap<String, Tensor> = saved
            .named_state("", &names)
            .into_iter()
            .map(|(n, t)| (n, t.clone()))
            .collect();

        let mut missing = all.clone();
        missing.remove("exp_avg_sq.b");
        let mut fresh = Optimizer::Adamw(AdamW::new(AdamWConfig::default()));
        let err = fresh
            .restore_state(2, "", &layout, &mut missing)
            .unwrap_err();
        assert_eq!(err.tensor, "exp_avg_sq.b");

        let wrong = vec![("w".to_string(), vec![4]), ("b".to_string(), vec![1, 2])];
        let err = fresh
            .restore_state(2, "", &wrong, &mut all.clone())
            .unwrap_err();
        assert!(err.to_string().contains("exp_avg.w") && err.reason.contains("[4]"));

        let mut extra = all.clone();
        extra.insert("momentum.w".into(), all["exp_avg.w"].clone());
        fresh.restore_state(2, "", &layout, &mut extra).unwrap();
        assert_eq!(unused_state(&extra).unwrap().tensor, "momentum.w");
    }
}
