"""Which panel a metric goes in, and which direction is "better" for it.

Metrics are grouped by *family*: the name with its split tokens (train, val,
test...) and aggregation suffixes (step, epoch) removed. So ``loss``,
``val_loss``, ``train/loss``, ``loss/val``, ``loss_train`` and Lightning's
``train_loss_epoch`` share the ``loss`` panel; ``acc``, ``val_acc`` and Keras'
``val_accuracy`` share ``accuracy``. A number right after a split token is part of the
split (XGBoost's ``validation_0/logloss``, LightGBM's ``valid_1/l2``).
"""

from __future__ import annotations

import re

__all__ = ["best_fits", "family_of", "higher_is_better", "is_accuracy", "log_y_fits"]

_SPLIT = re.compile(r"[/_\-.:\s]+")
_ROLE_TOKENS = frozenset(
    {"train", "training", "trn", "val", "valid", "validation", "eval", "evaluation", "test", "dev", "holdout"}
)
_SUFFIX_TOKENS = frozenset({"step", "epoch"})
_ALIASES = {"acc": "accuracy"}
# tokens of metrics whose minimum is the best value (losses, errors); with _HIGHER_IS_BETTER, the metrics
# whose readout shows a "best": for a learning rate, a gradient norm or a weight norm it means nothing
_LOWER_IS_BETTER = frozenset(
    {"loss", "error", "err", "mse", "mae", "rmse", "nll", "perplexity", "ppl", "wer", "cer", "bpd", "bpc",
     "logloss", "cost", "regret", "distance"}
)
# learning-rate families: a schedule reads best on a linear axis (warmup, steps, cosine)
_LINEAR_FAMILIES = frozenset({"lr", "learning_rate", "learningrate"})
_ACCURACY = frozenset({"acc", "accuracy", "top1", "top5"})
_HIGHER_IS_BETTER = frozenset(
    {"acc", "accuracy", "f1", "precision", "recall", "auc", "roc", "iou", "miou", "dice", "map",
     "bleu", "rouge", "r2", "score", "top1", "top5", "psnr", "ssim", "reward", "return"}
)


def _tokens(name: str) -> list[str]:
    return [t for t in _SPLIT.split(name.lower()) if t]


def family_of(name: str) -> str:
    """The panel key of a metric name (``'val/loss' -> 'loss'``)."""
    tokens = _tokens(name)
    kept = [t for i, t in enumerate(tokens)
            if t not in _ROLE_TOKENS and not (t.isdigit() and i and tokens[i - 1] in _ROLE_TOKENS)]
    while len(kept) > 1 and kept[-1] in _SUFFIX_TOKENS:
        kept.pop()
    if not kept:  # e.g. a metric literally named "val" or "epoch"
        kept = tokens or [name]
    return "_".join(_ALIASES.get(t, t) for t in kept)


def higher_is_better(name: str) -> bool:
    """True for accuracy-like metrics, whose best value is the maximum."""
    return any(t in _HIGHER_IS_BETTER for t in _tokens(name))


def log_y_fits(family: str) -> bool:
    """Whether ``log_y`` makes this family's panel logarithmic by default: losses and the like do
    (they fall over orders of magnitude); accuracy-like metrics (bounded, higher is better) and
    learning rates do not."""
    return not higher_is_better(family) and family not in _LINEAR_FAMILIES


def best_fits(name: str) -> bool:
    """Whether a "best" (min or max so far) means something for this metric: losses and errors
    (lowest), accuracy-like metrics (highest); not learning rates, norms, timings and the like."""
    return any(t in _LOWER_IS_BETTER or t in _HIGHER_IS_BETTER for t in _tokens(name))


def is_accuracy(name: str) -> bool:
    """An accuracy (``acc``, ``val_accuracy``, ``top1``...): with the losses, what is forecast by default."""
    return any(t in _ACCURACY for t in _tokens(name))


def is_learning_rate(name: str) -> bool:
    """A learning rate (``lr``, ``learning_rate``, ``train/lr``): forecasts start after its last step drop."""
    return family_of(name) in _LINEAR_FAMILIES
