"""Independent reference values for rlhf-reward's tests, from PyTorch (float64, autograd).

TRL's RewardTrainer loss (-logsigmoid(r_c - r_r - margin).mean() plus
center_rewards_coefficient * mean((r_c + r_r)^2)), the InstructGPT K-wise loss written with
itertools over ranked-apart pairs, and binary_cross_entropy_with_logits for the rule heads.
The printed numbers are pasted into `tests/reference.rs`.

Run by hand: `python crates/rlhf-reward/scripts/reference.py` with torch installed (CI never runs it).
"""

import itertools

import torch
import torch.nn.functional as F

f64 = torch.float64


def show(name, t):
    flat = t.detach().reshape(-1).tolist()
    print(f"{name} = [{', '.join(repr(x) for x in flat)}]")


chosen = torch.tensor([1.3, -0.2, 0.7, 2.5, -1.0], dtype=f64, requires_grad=True)
rejected = torch.tensor([0.4, 0.1, 0.9, -3.0, -1.5], dtype=f64, requires_grad=True)
margin = torch.tensor([0.5, 0.0, 1.0, 2.0, 0.25], dtype=f64)
loss = -F.logsigmoid(chosen - rejected - margin).mean() + 0.01 * torch.mean((chosen + rejected) ** 2)
loss.backward()
show("bt_loss", loss.reshape(1))
show("bt_grad_chosen", chosen.grad)
show("bt_grad_rejected", rejected.grad)

# Two prompts: K = 4 with a tie (ranks 0, 2, 1, 2) and K = 3 fully ranked (2, 0, 1).
groups = [([0.2, -0.4, 1.1, 0.3], [0, 2, 1, 2]), ([1.5, 0.5, -0.7], [2, 0, 1])]
rewards = torch.tensor([r for g in groups for r in g[0]], dtype=f64, requires_grad=True)
total, start = 0.0, 0
for values, ranks in groups:
    pairs = [(i, j) for i, j in itertools.permutations(range(len(ranks)), 2) if ranks[i] < ranks[j]]
    terms = [-F.logsigmoid(rewards[start + i] - rewards[start + j]) for i, j in pairs]
    total = total + torch.stack(terms).sum() / len(pairs)
    start += len(ranks)
kwise = total / len(groups)
kwise.backward()
show("kwise_loss", kwise.reshape(1))
show("kwise_grad", rewards.grad)

logits = torch.tensor([[2.0, -1.0, 0.3], [-0.5, 4.0, 0.0]], dtype=f64, requires_grad=True)
labels = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.25]], dtype=f64)
labelled = torch.tensor([[1, 1, 0], [1, 1, 1]], dtype=torch.bool)
bce = 0.7 * F.binary_cross_entropy_with_logits(logits[labelled], labels[labelled])
bce.backward()
show("rule_loss", bce.reshape(1))
show("rule_grad", logits.grad)
