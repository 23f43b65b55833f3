"""Build the diagnostics corpus: real training curves with known conditions.

``python benchmarks/diagnostics/make_corpus.py [--out DIR] [--only ID ...]`` trains every run of
:func:`specs` (NumPy softmax regression and MLPs with hand-written SGD, PyTorch MLPs and small
CNNs; scikit-learn's packaged datasets only: ``load_digits``, ``load_breast_cancer``,
``make_classification``; no downloads) and writes, next to each other:

* ``corpus.npz`` (compressed, no pickle): per run and series ``<run>__<series>__steps`` (int64)
  and ``<run>__<series>__values`` (float64, as logged);
* ``labels.json``: per run how it was built (model, framework, data, batch size, learning-rate
  schedule, logging density, seed, what was injected and where) and its labels: each a
  condition, the code(s) that should report it, the series and the step where it begins.

Labels come from how a run was built: a learning rate raised at step S, a corrupted batch at
step S, a learning rate 30x too low from step 0, ``ReduceLROnPlateau`` (PyTorch's own) cutting
the learning rate at step S. Three are read off the run's own curves, as the brief asks, with
the rule written here: overfitting begins where Prechelt's GL on the validation curve first
exceeds 5% after the curve's global minimum; a plateau where PyTorch's ``ReduceLROnPlateau``
(default settings) would cut the learning rate, run over the validation curve (every run); and
whether an injected spike recovered (10 training losses in a row within 300 steps of it with a
median back under the larger of twice the median and the largest of the 100 losses before).

Everything is seeded; one core runs it in a few minutes (``nice -n 10``).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

HERE = Path(__file__).resolve().parent
GL_ALPHA = 5.0  # percent: the overfitting threshold the labels use (DiagnosticsConfig.gl_alpha)
WEIGHT_DECAY = 5e-3  # every run but the overfitting ones: keeps a healthy run's validation loss from rising
DENSE_BLOCK = 20  # a validation loss logged every step is judged on means of this many values


# -- data -------------------------------------------------------------------------------------


def dataset(name: str, seed: int, train_size: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Standardized ``(Xtr, ytr, Xva, yva, num_classes)``: a fixed 70/30 split, the training part
    optionally cut to ``train_size`` samples (overfitting runs)."""
    from sklearn.datasets import load_breast_cancer, load_digits, make_classification

    if name == "digits":
        X, y = load_digits(return_X_y=True)
    elif name == "cancer":
        X, y = load_breast_cancer(return_X_y=True)
    elif name == "blobs":
        X, y = make_classification(
            n_samples=3000,
            n_features=20,
            n_informative=10,
            n_classes=4,
            n_clusters_per_class=2,
            class_sep=1.0,
            random_state=7,
        )
    else:
        raise ValueError(name)
    order = np.random.default_rng(12345).permutation(len(y))  # one split per dataset, whatever the seed
    X, y = X[order].astype(np.float64), y[order].astype(np.int64)
    cut = int(0.7 * len(y))
    # digits: pixels 0..16, some 0 in every training image: scale, don't standardize
    X = X / 16.0 if name == "digits" else (X - X[:cut].mean(0)) / X[:cut].std(0)
    Xtr, ytr, Xva, yva = X[:cut], y[:cut], X[cut:], y[cut:]
    if train_size is not None:
        pick = np.random.default_rng(seed).permutation(len(ytr))[:train_size]
        Xtr, ytr = Xtr[pick], ytr[pick]
    return Xtr, ytr, Xva, yva, int(y.max()) + 1


# -- models: step(x, y, lr) -> (loss, grad_norm); evaluate(x, y) -> loss -------------------------


def _xent(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of softmax(logits) and its gradient wrt the logits (stable)."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    p = e / e.sum(axis=1, keepdims=True)
    loss = float(np.mean(np.log(e.sum(axis=1)) - z[np.arange(len(y)), y]))
    p[np.arange(len(y)), y] -= 1.0
    return loss, p / len(y)


class NumpyModel:
    """Softmax regression (``hidden == 0``) or a one-hidden-layer ReLU MLP, plain SGD with
    momentum, gradients written out by hand."""

    def __init__(self, d: int, c: int, hidden: int, seed: int, momentum: float, weight_decay: float) -> None:
        rng = np.random.default_rng(seed)
        self.weight_decay = weight_decay  # L2 on the weight matrices (biases apart)
        if hidden:
            self.params = [
                rng.normal(0, math.sqrt(2 / d), (d, hidden)),
                np.zeros(hidden),
                rng.normal(0, math.sqrt(1 / hidden), (hidden, c)),
                np.zeros(c),
            ]
        else:
            self.params = [rng.normal(0, 0.01, (d, c)), np.zeros(c)]
        self.velocity = [np.zeros_like(p) for p in self.params]
        self.momentum = momentum

    def _forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if len(self.params) == 2:
            return x @ self.params[0] + self.params[1], None
        h = np.maximum(x @ self.params[0] + self.params[1], 0.0)
        return h @ self.params[2] + self.params[3], h

    def step(self, x: np.ndarray, y: np.ndarray, lr: float) -> tuple[float, float]:
        logits, h = self._forward(x)
        loss, g = _xent(logits, y)
        if h is None:
            grads = [x.T @ g, g.sum(0)]
        else:
            gh = (g @ self.params[2].T) * (h > 0)
            grads = [x.T @ gh, gh.sum(0), h.T @ g, g.sum(0)]
        norm = math.sqrt(sum(float(np.sum(q * q)) for q in grads))
        for k in range(0, len(grads), 2):
            grads[k] = grads[k] + self.weight_decay * self.params[k]
        for p, v, q in zip(self.params, self.velocity, grads):
            v *= self.momentum
            v += q
            p -= lr * v
        return loss, norm

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> float:
        return _xent(self._forward(x)[0], y)[0]


class TorchModel:
    """A PyTorch MLP (``kind="mlp"``) or a small CNN on 8x8 digit images (``kind="cnn"``), SGD."""

    def __init__(self, kind: str, d: int, c: int, hidden: int, seed: int, momentum: float, weight_decay: float) -> None:
        import torch
        from torch import nn

        torch.manual_seed(seed)
        self.torch, self.kind = torch, kind
        if kind == "mlp":
            self.net = nn.Sequential(
                nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, c)
            )
        else:
            self.net = nn.Sequential(
                nn.Conv2d(1, 16, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(16, 32, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Flatten(),
                nn.Linear(32 * 16, hidden),
                nn.ReLU(),
                nn.Linear(hidden, c),
            )
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.1, momentum=momentum, weight_decay=weight_decay)
        self.loss = nn.CrossEntropyLoss()

    def _x(self, x: np.ndarray) -> Any:
        t = self.torch.as_tensor(x, dtype=self.torch.float32)
        return t.view(-1, 1, 8, 8) if self.kind == "cnn" else t

    def step(self, x: np.ndarray, y: np.ndarray, lr: float) -> tuple[float, float]:
        for g in self.opt.param_groups:
            g["lr"] = lr
        self.opt.zero_grad()
        loss = self.loss(self.net(self._x(x)), self.torch.as_tensor(y))
        loss.backward()
        norm = float(self.torch.nn.utils.clip_grad_norm_(self.net.parameters(), math.inf))
        self.opt.step()
        return loss.item(), norm

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> float:
        with self.torch.no_grad():
            return float(self.loss(self.net(self._x(x)), self.torch.as_tensor(y)))


# -- runs ---------------------------------------------------------------------------------------


@dataclass
class Spec:
    """How one run is built."""

    id: str
    condition: str  # healthy, lr_too_high, lr_too_low, overfitting, plateau, loss_spike, noisy
    framework: str  # numpy, torch
    model: str  # softmax, mlp, cnn
    data: str = "digits"
    seed: int = 0
    steps: int = 2000
    batch: int = 32
    lr: float = 0.05
    momentum: float = 0.9
    hidden: int = 64
    weight_decay: float = WEIGHT_DECAY  # L2; the overfitting runs have none
    schedule: str = "constant"  # constant, step, cosine, warmup_cosine
    val_every: int | str = 50  # an int (steps; 1 = a validation minibatch every step) or "epoch"
    train_every: int = 1  # training loss: every step, or the mean over this many steps
    train_size: int | None = None
    inject: list[dict[str, Any]] = field(default_factory=list)  # {"at", "kind": lr|corrupt|raise, "factor", "steps"}
    reduce_on_plateau: bool = False  # PyTorch's ReduceLROnPlateau on the validation loss
    grad_norm: bool = False
    names: tuple[str, str] = ("loss", "val_loss")


def _every(v: object) -> int | str:
    """A validation interval as the specs below write it: steps (an int) or ``"epoch"``."""
    if isinstance(v, (int, str)):
        return v
    raise TypeError(f"val_every must be an int or 'epoch', got {v!r}")


def specs() -> list[Spec]:
    S: list[Spec] = []
    # healthy: logging densities, batch sizes, schedules, families, seeds
    for seed, (val, sched, batch) in enumerate(
        [(50, "step", 32), ("epoch", "step", 64), (1, "cosine", 32), (20, "warmup_cosine", 128), (100, "constant", 16)]
    ):
        S.append(
            Spec(
                f"healthy-np-mlp-{seed}",
                "healthy",
                "numpy",
                "mlp",
                seed=seed,
                val_every=_every(val),
                schedule=sched,
                batch=batch,
                lr=0.05,
                grad_norm=seed % 2 == 0,
            )
        )
    for seed, (val, sched) in enumerate([(50, "constant"), (1, "step"), ("epoch", "cosine")]):
        S.append(
            Spec(
                f"healthy-np-softmax-{seed}",
                "healthy",
                "numpy",
                "softmax",
                seed=seed,
                val_every=_every(val),
                schedule=sched,
                lr=0.1,
                steps=1500,
            )
        )
    S.append(Spec("healthy-np-mlp-cancer", "healthy", "numpy", "mlp", data="cancer", lr=0.02, steps=1200, val_every=25))
    S.append(
        Spec(
            "healthy-np-mlp-blobs",
            "healthy",
            "numpy",
            "mlp",
            data="blobs",
            lr=0.05,
            steps=3000,
            val_every=100,
            schedule="cosine",
            hidden=128,
        )
    )
    S.append(
        Spec("healthy-np-mlp-logevery", "healthy", "numpy", "mlp", seed=3, train_every=10, val_every=100, steps=3000)
    )
    for seed, (model, val, sched, batch) in enumerate(
        [
            ("mlp", 50, "constant", 32),
            ("mlp", "epoch", "step", 64),
            ("mlp", 1, "warmup_cosine", 32),
            ("cnn", 25, "cosine", 32),
            ("cnn", "epoch", "cosine", 64),
            ("cnn", 10, "cosine", 32),
        ]
    ):
        S.append(
            Spec(
                f"healthy-torch-{model}-{seed}",
                "healthy",
                "torch",
                model,
                seed=seed,
                val_every=_every(val),
                steps=2000 if model == "mlp" else 1200,
                schedule=sched,
                batch=batch,
                lr=0.05 if model == "mlp" else 0.02,
                hidden=64,
                grad_norm=True,
                names=("train/loss", "val/loss") if seed == 2 else ("loss", "val_loss"),
            )
        )
    S.append(
        Spec(
            "healthy-torch-mlp-blobs",
            "healthy",
            "torch",
            "mlp",
            data="blobs",
            val_every=50,
            lr=0.05,
            steps=2500,
            grad_norm=True,
            schedule="cosine",
        )
    )
    # learning rate too high from the start: NaN, divergence, a dead network
    for seed, (fw, model, lr, data) in enumerate(
        [
            ("numpy", "mlp", 60.0, "digits"),
            ("numpy", "mlp", 3.0, "blobs"),
            ("numpy", "softmax", 50.0, "blobs"),
            ("torch", "mlp", 3.0, "digits"),
            ("torch", "cnn", 2.0, "digits"),
            ("torch", "mlp", 1.0, "blobs"),
            ("torch", "cnn", 20.0, "digits"),
            ("numpy", "mlp", 1.5, "digits"),
            ("torch", "mlp", 30.0, "digits"),
            ("torch", "mlp", 1e5, "digits"),
            ("numpy", "mlp", 300.0, "blobs"),
            ("torch", "cnn", 1e5, "digits"),
        ]
    ):
        S.append(
            Spec(
                f"high-{fw}-{model}-{seed}",
                "lr_too_high",
                fw,
                model,
                data=data,
                seed=seed,
                lr=lr,
                steps=1000,
                val_every=50,
                grad_norm=fw == "torch",
            )
        )
    # learning rate raised in the middle of a healthy run (a schedule bug, a restart)
    for seed, (fw, model, factor) in enumerate(
        [
            ("numpy", "mlp", 2000.0),
            ("torch", "mlp", 60.0),
            ("torch", "cnn", 60.0),
            ("numpy", "softmax", 1000.0),
            ("torch", "mlp", 20.0),
            ("torch", "mlp", 1000.0),
            ("numpy", "mlp", 100.0),
            ("torch", "mlp", 1e6),
            ("numpy", "mlp", 6000.0),
        ]
    ):
        S.append(
            Spec(
                f"raise-{fw}-{model}-{seed}",
                "lr_too_high",
                fw,
                model,
                seed=seed,
                steps=2000,
                val_every=50,
                data="blobs" if model == "softmax" or seed == 8 else "digits",
                lr=0.05 if model != "softmax" else 0.1,
                inject=[{"at": 1000, "kind": "raise", "factor": factor}],
                grad_norm=fw == "torch",
            )
        )
    # learning rate too low
    for seed, (fw, model, lr, data) in enumerate(
        [
            ("numpy", "mlp", 1e-3, "digits"),
            ("numpy", "softmax", 1e-3, "digits"),
            ("torch", "mlp", 3e-3, "digits"),
            ("torch", "cnn", 3e-3, "digits"),
            ("numpy", "mlp", 3e-4, "blobs"),
            ("torch", "mlp", 3e-3, "blobs"),
        ]
    ):
        S.append(
            Spec(
                f"low-{fw}-{model}-{seed}",
                "lr_too_low",
                fw,
                model,
                data=data,
                seed=seed,
                lr=lr,
                steps=3000,
                val_every=100,
                momentum=0.0,
                grad_norm=seed % 2 == 1,
            )
        )
    # overfitting: a small training set, a big model, no regularization
    for seed, (fw, model, n, val, hidden) in enumerate(
        [
            ("numpy", "mlp", 100, 50, 256),
            ("numpy", "mlp", 80, "epoch", 512),
            ("torch", "mlp", 100, 25, 256),
            ("torch", "cnn", 120, 50, 128),
            ("numpy", "mlp", 80, 100, 256),
            ("torch", "mlp", 150, "epoch", 512),
            ("numpy", "mlp", 100, 1, 256),
            ("torch", "mlp", 120, 1, 256),
        ]
    ):
        S.append(
            Spec(
                f"overfit-{fw}-{model}-{seed}",
                "overfitting",
                fw,
                model,
                seed=seed,
                train_size=n,
                hidden=hidden,
                val_every=_every(val),
                steps=3000,
                batch=16,
                lr=0.05,
                grad_norm=fw == "torch",
                weight_decay=0.0,
            )
        )
    # a plateau that a learning-rate drop fixes (PyTorch's ReduceLROnPlateau decides the drop)
    for seed, (fw, model, lr, batch) in enumerate(
        [
            ("numpy", "mlp", 0.3, 16),
            ("torch", "mlp", 0.3, 16),
            ("torch", "cnn", 0.1, 16),
            ("torch", "mlp", 0.3, 32),
            ("torch", "mlp", 0.2, 8),
        ]
    ):
        S.append(
            Spec(
                f"plateau-{fw}-{model}-{seed}",
                "plateau",
                fw,
                model,
                seed=seed,
                lr=lr,
                batch=batch,
                steps=6000,
                val_every="epoch",
                reduce_on_plateau=True,
                momentum=0.0,
                grad_norm=fw == "torch",
            )
        )
    # loss spikes: a few steps at a huge learning rate, or a corrupted batch; some recover, some not
    spikes = [
        ("numpy", "mlp", "lr", 30.0, 2),
        ("torch", "mlp", "lr", 20.0, 1),
        ("torch", "cnn", "lr", 10.0, 1),
        ("numpy", "mlp", "corrupt", 30.0, 1),
        ("torch", "mlp", "corrupt", 5.0, 1),
        ("torch", "cnn", "corrupt", 3.0, 1),
        ("numpy", "softmax", "lr", 200.0, 2),
        ("numpy", "mlp", "lr", 300.0, 3),
        ("torch", "mlp", "lr", 500.0, 3),
        ("torch", "cnn", "lr", 2000.0, 3),
        ("numpy", "mlp", "lr", 2000.0, 3),
    ]
    for seed, (fw, model, kind, factor, n) in enumerate(spikes):
        S.append(
            Spec(
                f"spike-{fw}-{model}-{kind}-{seed}",
                "loss_spike",
                fw,
                model,
                seed=seed,
                steps=2500,
                val_every=50,
                lr=0.05 if model != "softmax" else 0.1,
                inject=[{"at": 1500, "kind": kind, "factor": factor, "steps": n}],
                grad_norm=True,
            )
        )
    # noisy: tiny batches at a reasonable learning rate
    for seed, (fw, model, batch, lr) in enumerate(
        [
            ("numpy", "mlp", 1, 0.01),
            ("numpy", "softmax", 2, 0.02),
            ("torch", "mlp", 1, 0.01),
            ("torch", "cnn", 2, 0.01),
            ("numpy", "mlp", 4, 0.02),
        ]
    ):
        S.append(
            Spec(
                f"noisy-{fw}-{model}-{seed}",
                "noisy",
                fw,
                model,
                seed=seed,
                batch=batch,
                lr=lr,
                steps=3000,
                val_every=100,
                grad_norm=fw == "torch",
            )
        )
    return S


def lr_at(spec: Spec, t: int) -> float:
    """The scheduled learning rate at step ``t`` (injections apart)."""
    frac = t / spec.steps
    if spec.schedule == "step":
        return spec.lr * 0.1 ** int(frac / 0.4)  # x0.1 at 40% and 80%
    if spec.schedule == "cosine":
        return spec.lr * 0.5 * (1 + math.cos(math.pi * frac))
    if spec.schedule == "warmup_cosine":
        warm = 0.1 * spec.steps
        if t < warm:
            return spec.lr * (t + 1) / warm
        return spec.lr * 0.5 * (1 + math.cos(math.pi * (t - warm) / (spec.steps - warm)))
    return spec.lr


def train(spec: Spec) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Train one run; returns ``series -> (steps, values)`` as a logger would have recorded them.
    A run whose training loss turned NaN/Inf logs 30 more steps (as a loop without a NaN check
    would) and stops."""
    Xtr, ytr, Xva, yva, c = dataset(spec.data, spec.seed, spec.train_size)
    if spec.framework == "numpy":
        model: NumpyModel | TorchModel = NumpyModel(
            Xtr.shape[1], c, 0 if spec.model == "softmax" else spec.hidden, spec.seed, spec.momentum, spec.weight_decay
        )
    else:
        model = TorchModel(spec.model, Xtr.shape[1], c, spec.hidden, spec.seed, spec.momentum, spec.weight_decay)
    rng = np.random.default_rng(1000 + spec.seed)
    per_epoch = max(len(ytr) // spec.batch, 1)
    plateau = _torch_plateau(spec.lr) if spec.reduce_on_plateau else None
    scale = 1.0  # ReduceLROnPlateau's factor so far
    out: dict[str, list[tuple[int, float]]] = {spec.names[0]: [], spec.names[1]: []}
    if spec.grad_norm:
        out["grad_norm"] = []
    order, pos, bad_since, acc = rng.permutation(len(ytr)), 0, -1, []
    raised = 1.0
    for t in range(spec.steps):
        if pos + spec.batch > len(ytr):
            order, pos = rng.permutation(len(ytr)), 0
        idx = order[pos : pos + spec.batch]
        pos += spec.batch
        x, y = Xtr[idx], ytr[idx]
        lr = lr_at(spec, t) * scale
        for inj in spec.inject:
            if inj["kind"] == "raise" and t >= inj["at"]:
                raised = inj["factor"]
            elif inj["at"] <= t < inj["at"] + inj.get("steps", 1):
                if inj["kind"] == "lr":
                    lr *= inj["factor"]
                else:  # a corrupted batch: features off by a large factor, labels misaligned (a loader bug)
                    x, y = x * inj["factor"], (y + 1) % c
        with np.errstate(all="ignore"):
            loss, norm = model.step(x, y, lr * raised)
        acc.append(loss)
        if (t + 1) % spec.train_every == 0:
            out[spec.names[0]].append((t, float(np.mean(acc))))
            acc = []
        if spec.grad_norm:
            out["grad_norm"].append((t, norm))
        epoch_end = (t + 1) % per_epoch == 0
        if (spec.val_every == "epoch" and epoch_end) or (isinstance(spec.val_every, int) and t % spec.val_every == 0):
            with np.errstate(all="ignore"):
                if spec.val_every == 1:  # a validation minibatch every step (a noisy estimate)
                    pick = rng.integers(0, len(yva), spec.batch)
                    v = model.evaluate(Xva[pick], yva[pick])
                else:
                    v = model.evaluate(Xva, yva)
            out[spec.names[1]].append((t, v))
            if plateau is not None:
                before = plateau.optimizer.param_groups[0]["lr"]
                plateau.step(v)
                scale *= plateau.optimizer.param_groups[0]["lr"] / before
        if not math.isfinite(loss) and bad_since < 0:
            bad_since = t
        if bad_since >= 0 and t - bad_since >= 30:
            break
    return {
        k: (np.array([p[0] for p in v], dtype=np.int64), np.array([p[1] for p in v], dtype=np.float64))
        for k, v in out.items()
    }


def _torch_plateau(lr: float) -> Any:
    """PyTorch's own ReduceLROnPlateau (default settings) on a one-parameter optimizer."""
    import torch

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    return torch.optim.lr_scheduler.ReduceLROnPlateau(opt)


# -- labels read off the curves -----------------------------------------------------------------


def evaluations(steps: np.ndarray, values: np.ndarray, dense: bool) -> tuple[np.ndarray, np.ndarray]:
    """What the labels treat as evaluations: each value, or for a validation loss logged every
    step (a noisy minibatch estimate) the means of consecutive blocks of ``DENSE_BLOCK`` values,
    each at the step of its last value."""
    if not dense:
        return steps, values
    n = len(values) // DENSE_BLOCK * DENSE_BLOCK
    return steps[DENSE_BLOCK - 1 : n : DENSE_BLOCK], values[:n].reshape(-1, DENSE_BLOCK).mean(axis=1)


def overfitting_onset(steps: np.ndarray, values: np.ndarray) -> float | None:
    """The first evaluation after the curve's global minimum where Prechelt's GL > ``GL_ALPHA``,
    if GL stays above half of it from there to the end and at least 3 evaluations follow (the
    run did overfit; at the last evaluations nothing can tell a rise from noise)."""
    ok = np.isfinite(values)
    steps, values = steps[ok], values[ok]
    if len(values) < 5:
        return None
    k = int(np.argmin(values))
    gl = 100.0 * (values[k:] / values[k] - 1.0)
    above = np.flatnonzero(gl > GL_ALPHA)
    if not len(above) or (gl[above[0] :] < GL_ALPHA / 2).any() or len(gl) - above[0] < 4:
        return None
    return float(steps[k + above[0]])


def plateau_onsets(steps: np.ndarray, values: np.ndarray) -> list[float]:
    """Steps where PyTorch's ReduceLROnPlateau (defaults) would cut the learning rate."""
    sched = _torch_plateau(1.0)
    out = []
    for s, v in zip(steps.tolist(), values.tolist()):
        before = sched.optimizer.param_groups[0]["lr"]
        sched.step(v)
        if sched.optimizer.param_groups[0]["lr"] < before:
            out.append(float(s))
    return out


def spike_recovered(steps: np.ndarray, values: np.ndarray, at: int) -> tuple[bool, float | None]:
    """Whether the training loss came back after a spike at step ``at``: within 300 steps, 10
    consecutive finite values whose median is back under the larger of twice the median and the
    largest of the 100 values before (where the loss was before); the step of the 10th."""
    i = int(np.searchsorted(steps, at))
    before = values[max(i - 100, 0) : i]
    bound = max(2 * float(np.median(before)), float(before.max()))
    after = values[i + 1 : i + 300]
    for j in range(0, max(len(after) - 10, 0) + 1):
        if np.isfinite(after[j : j + 10]).all() and np.median(after[j : j + 10]) <= bound:
            return True, float(steps[i + 1 + j + 9])
    return False, None


def labels(spec: Spec, series: dict[str, tuple[np.ndarray, np.ndarray]]) -> list[dict[str, Any]]:
    """The run's labels: ``{"condition", "codes", "series", "step", ...}``; ``codes`` lists the
    finding codes that report the condition (any one counts as detected)."""
    train, val = spec.names
    ts, tv = series[train]
    out: list[dict[str, Any]] = []
    if spec.condition == "lr_too_high":
        at = float(spec.inject[0]["at"]) if spec.inject else float(ts[0])
        after = tv[ts >= at]
        late = float(np.median(after[-200:]))
        if not np.isfinite(after).all():
            kind, codes = "nan", ["nonfinite"]
        elif 0.7 < late / math.log(_classes(spec)) < 1.5:  # stuck near an untrained model's loss
            kind, codes = "dead", ["not_learning"] if not spec.inject else ["divergence", "not_learning"]
        else:
            kind, codes = "diverging", ["divergence"]
        if not spec.inject:  # too high from the first step: no good level to diverge from, and this rule's case
            codes = [*codes, "lr_too_high"]
        out.append(
            {
                "condition": f"lr_too_high:{kind}",
                "codes": codes,
                "series": train,
                "step": at,
                "also": [
                    "nonfinite",
                    "divergence",
                    "lr_too_high",
                    "loss_spike",
                    "not_learning",
                    "plateau",
                    "overfitting",
                    "initial_loss",
                    "generalization_gap",
                    "noisy",
                ],
            }
        )
    elif spec.condition == "lr_too_low":
        out.append(
            {
                "condition": "lr_too_low",
                "codes": ["lr_too_low"],
                "series": train,
                "step": float(ts[0]),
                "also": ["not_learning"],
            }
        )
    if spec.condition == "noisy" or spec.batch <= 8:  # batches of 8 or fewer: noisy by construction
        out.append(
            {
                "condition": "noisy" if spec.condition == "noisy" else "noisy:batch",
                "codes": ["noisy"],
                "series": train,
                "step": float(ts[0]),
                "also": [],
                "scored": spec.condition == "noisy",
            }
        )
    if spec.condition == "loss_spike":
        at = float(spec.inject[0]["at"])
        rec, when = spike_recovered(ts, tv, int(at))
        slow = when is None or when - at >= 50  # high for 50 steps or more: a divergence by the 70-point level too
        out.append(
            {
                "condition": "loss_spike:" + ("recovered" if rec else "not_recovered"),
                "codes": ["loss_spike"],
                "series": train,
                "step": at,
                "recovered_at": when,
                "also": (["divergence"] if slow else []) + ([] if rec else ["nonfinite", "not_learning"]),
            }
        )
    vs, vv = series[val]
    dense = spec.val_every == 1
    es, ev = evaluations(vs, vv, dense)
    onset = overfitting_onset(es, ev)
    if spec.condition == "overfitting" or onset is not None:  # other runs may overfit too: then it is true
        out.append(
            {
                "condition": "overfitting" if spec.condition == "overfitting" else "overfitting:rule",
                "codes": ["overfitting"],
                "series": val,
                "step": onset,
                "also": ["generalization_gap"],
                "evaluations": f"means of {DENSE_BLOCK}" if dense else "each value",
                "scored": spec.condition == "overfitting",
            }
        )
        if spec.condition == "healthy":
            print(f"  corpus check: healthy run {spec.id} overfits by the label rule from step {onset}")
    if np.isfinite(ev).all():
        for k, s in enumerate(plateau_onsets(es, ev)):
            # the first: the cut the run's own scheduler made (the same rule, the same values)
            cond = "plateau" if spec.condition == "plateau" and k == 0 else "plateau:rule"
            out.append(
                {
                    "condition": cond,
                    "codes": ["plateau"],
                    "series": val,
                    "step": s,
                    "also": [],
                    "scored": cond == "plateau",
                }
            )
    return out


def _classes(spec: Spec) -> int:
    return {"digits": 10, "cancer": 2, "blobs": 4}[spec.data]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE / "corpus")
    ap.add_argument("--only", nargs="*", help="parts of run ids (prints a summary, writes nothing)")
    ap.add_argument("--relabel", action="store_true", help="recompute the labels of the corpus in --out (no training)")
    args = ap.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError as e:
        raise SystemExit("the corpus needs torch (CPU is enough)") from e
    if args.relabel:
        relabel(args.out)
        return
    todo = [s for s in specs() if not args.only or any(k in s.id for k in args.only)]
    arrays: dict[str, np.ndarray] = {}
    runs = []
    t0 = time.perf_counter()
    for spec in todo:
        t = time.perf_counter()
        series = train(spec)
        lab = labels(spec, series)
        for name, (st, va) in series.items():
            arrays[f"{spec.id}__{name}__steps"] = st
            arrays[f"{spec.id}__{name}__values"] = va
        runs.append(
            {
                "id": spec.id,
                "num_classes": _classes(spec),
                "series": sorted(series),
                "build": asdict(spec),
                "labels": lab,
            }
        )
        tr = series[spec.names[0]][1]
        print(
            f"{spec.id:36s} {time.perf_counter() - t:5.1f}s  {spec.names[0]} {tr[0]:.3g} -> {tr[-1]:.3g} "
            f"(min {np.nanmin(tr):.3g})  "
            f"{[(x['condition'], x['step']) for x in lab if x['condition'] != 'plateau:rule']}",
            flush=True,
        )
    print(f"{len(runs)} runs in {time.perf_counter() - t0:.0f} s")
    if args.only:
        return
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out / "corpus.npz", **cast(Any, arrays))  # keyword names are the array names
    (args.out / "labels.json").write_text(
        json.dumps({"gl_alpha": GL_ALPHA, "dense_block": DENSE_BLOCK, "runs": runs}, indent=1, default=_json) + "\n"
    )


def relabel(out: Path) -> None:
    """Recompute the labels of a written corpus from its curves and builds (no training)."""
    meta = json.loads((out / "labels.json").read_text())
    arrays = np.load(out / "corpus.npz")
    for run in meta["runs"]:
        b = dict(run["build"])
        b["names"] = tuple(b["names"])
        spec = Spec(**b)
        series = {n: (arrays[f"{run['id']}__{n}__steps"], arrays[f"{run['id']}__{n}__values"]) for n in run["series"]}
        run["labels"] = labels(spec, series)
    (out / "labels.json").write_text(json.dumps(meta, indent=1, default=_json) + "\n")


def _json(o: object) -> object:
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(type(o))


if __name__ == "__main__":
    main()
