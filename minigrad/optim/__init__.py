"""minigrad.optim: optimizers, gradient clipping and learning-rate schedules.

    from minigrad import optim
    opt = optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01)
    schedule = optim.WarmupCosineSchedule(opt, warmup_steps=100, total_steps=1000)
    for batch in data:
        loss = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        optim.clip_grad_norm_(model.parameters(), max_norm=1.0)
        opt.step()
        schedule.step()

Everything follows PyTorch's ``torch.optim`` semantics; the updates run in place on
the parameters' arrays, outside the autograd graph.
"""

from .adam import Adam, AdamW
from .clip import clip_grad_norm_, clip_grad_value_
from .optimizer import Optimizer
from .schedule import ConstantSchedule, LRSchedule, NoamSchedule, WarmupCosineSchedule
from .sgd import SGD

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "ConstantSchedule",
    "LRSchedule",
    "NoamSchedule",
    "Optimizer",
    "WarmupCosineSchedule",
    "clip_grad_norm_",
    "clip_grad_value_",
]
