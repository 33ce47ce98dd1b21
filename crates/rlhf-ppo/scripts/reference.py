"""Independent reference values for rlhf-ppo's tests, from PyTorch (float64, autograd).

Written from the formulas (TRL's PPO conventions, with the score at the last kept token), not
from the Rust code: torch.var with Bessel's correction, boolean indexing, a per-row GAE loop and
autograd gradients. The printed numbers are pasted into `tests/reference.rs`.

Run by hand: `python crates/rlhf-ppo/scripts/reference.py` with torch installed (CI never runs it).
"""

import torch

torch.set_printoptions(precision=17)
f64 = torch.float64

logp = torch.tensor([[-1.2, -0.7, -2.3, -0.4], [-0.9, -1.5, -3.0, -3.0]], dtype=f64)
ref_logp = torch.tensor([[-1.0, -0.9, -2.0, -0.6], [-1.1, -1.2, -3.0, -3.0]], dtype=f64)
mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)
scores = torch.tensor([0.8, -0.3], dtype=f64)
values = torch.tensor([[0.1, 0.3, -0.2, 0.5], [0.0, 0.4, 9.0, 9.0]], dtype=f64)
kl_coef, gamma, lam = 0.05, 1.0, 0.95

# k3 per token: r = exp(ref - logp); (r - 1) - log r; zero where masked.
log_r = ref_logp - logp
kl = torch.where(mask, log_r.exp() - 1 - log_r, torch.zeros_like(logp))
rewards = -kl_coef * kl
for row in range(2):
    last = int(mask[row].nonzero().max())
    rewards[row, last] += scores[row]

advantages = torch.zeros_like(rewards)
for row in range(2):
    n = int(mask[row].sum())
    following = 0.0
    for t in reversed(range(n)):
        next_value = values[row, t + 1] if t + 1 < n else 0.0
        delta = rewards[row, t] + gamma * next_value - values[row, t]
        following = delta + gamma * lam * following
        advantages[row, t] = following
returns = torch.where(mask, advantages + values, torch.zeros_like(values))
kept = advantages[mask]
whitened = torch.zeros_like(advantages)
whitened[mask] = (kept - kept.mean()) / torch.sqrt(kept.var(unbiased=True) + 1e-8)

new_logp = (logp + torch.tensor([[0.3, -0.25, 0.1, 0.05], [-0.4, 0.15, 0.0, 0.0]], dtype=f64)).requires_grad_()
ratio = torch.exp(new_logp - logp)
pg = torch.maximum(-whitened * ratio, -whitened * torch.clamp(ratio, 0.8, 1.2))
pg_loss = pg[mask].mean()
pg_loss.backward()
pg_clipfrac = ((-whitened * torch.clamp(ratio, 0.8, 1.2)) > (-whitened * ratio))[mask].double().mean()

new_values = (values + torch.tensor([[0.5, -0.1, 0.3, -0.05], [0.25, -0.3, 0.0, 0.0]], dtype=f64)).requires_grad_()
clipped = torch.clamp(new_values, values - 0.2, values + 0.2)
vf = torch.maximum((new_values - returns) ** 2, (clipped - returns) ** 2)
vf_loss = 0.5 * vf[mask].mean()
vf_loss.backward()

def show(name, t):
    flat = t.detach().reshape(-1).tolist()
    print(f"{name} = [{', '.join(repr(x) for x in flat)}]")

show("kl", kl)
show("rewards", rewards)
show("advantages", advantages)
show("returns", returns)
show("whitened", whitened)
show("pg_loss", pg_loss.reshape(1))
show("pg_grad", new_logp.grad)
show("pg_clipfrac", pg_clipfrac.reshape(1))
show("vf_loss", vf_loss.reshape(1))
show("vf_grad", new_values.grad)
