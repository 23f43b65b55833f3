"""Readers against files written by the real writers: torch's and tensorboardX's
SummaryWriter, Keras's and Lightning's CSVLogger, and this package's own log file."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from lossviz_widget import LossPlot
from lossviz_widget.readers import LogSource, detect_format, read_logs

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("KERAS_BACKEND", "torch")


def by_key(batches):
    """{(run, metric): (steps, values, wall_times)}, batches of one key concatenated in order."""
    out: dict = {}
    for b in batches:
        s, v, w = out.get((b.run, b.metric), ([], [], []))
        out[(b.run, b.metric)] = (s + b.steps.tolist(), v + b.values.tolist(),
                                  w + ([] if b.wall_times is None else b.wall_times.tolist()))
    return out


def event_file(folder: Path) -> Path:
    (path,) = folder.glob("*tfevents*")
    return path


# -- TensorBoard ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def torch_logdir(tmp_path_factory):
    from torch.utils.tensorboard import SummaryWriter

    root = tmp_path_factory.mktemp("torch_tb")
    for run, scale in (("a", 1.0), ("b", 2.0)):
        with SummaryWriter(root / run) as w:
            for step in range(0, 50, 5):
                w.add_scalar("loss", scale / (step + 1), step)
                w.add_scalar("train/acc", step / 100, step, new_style=True)  # v2 tensor + scalars plugin
                w.add_histogram("weights", np.arange(10.0) * step, step)  # not a scalar: passed over
                w.add_text("note", f"step {step}", step)
            w.add_scalar("val_loss", math.nan, 50)
            w.add_scalar("val_loss", math.inf, 55)
    return root


def test_torch_summary_writer_two_runs(torch_logdir):
    batches, source = read_logs(torch_logdir)
    data = by_key(batches)
    assert set(data) == {(r, m) for r in "ab" for m in ("loss", "train/acc", "val_loss")}
    for run, scale in (("a", 1.0), ("b", 2.0)):
        steps, values, walls = data[(run, "loss")]
        assert steps == list(range(0, 50, 5))
        np.testing.assert_allclose(values, [scale / (s + 1) for s in steps], rtol=1e-6)  # float32 on disk
        assert len(walls) == 10 and np.all(np.diff(walls) >= 0) and walls[0] > 1e9
        np.testing.assert_allclose(data[(run, "train/acc")][1], [s / 100 for s in steps], rtol=1e-6)
        assert data[(run, "val_loss")][:2] == ([50.0, 55.0], [pytest.approx(math.nan, nan_ok=True), math.inf])
    assert source.skipped == 0
    assert {t.format for t in source.tails.values()} == {"TensorBoard"}


def test_tensorboardx_writer(tmp_path):
    import tensorboardX

    for run in ("first", "second"):
        w = tensorboardX.SummaryWriter(str(tmp_path / "logs" / run))
        for step in range(7):
            w.add_scalar("loss", 10.0 - step, step)
            w.add_scalar("lr", 0.1, step)
        w.close()
    data = by_key(read_logs(tmp_path / "logs")[0])
    assert set(data) == {(r, m) for r in ("first", "second") for m in ("loss", "lr")}
    assert data[("second", "loss")][:2] == (list(range(7)), [10.0 - s for s in range(7)])
    # one run folder followed by itself is named after the folder
    assert {b.run for b in read_logs(tmp_path / "logs" / "first")[0]} == {"first"}
    assert {b.run for b in read_logs(event_file(tmp_path / "logs" / "first"))[0]} == {"first"}


def test_truncated_event_file_reads_complete_records_then_the_rest(torch_logdir, tmp_path):
    whole = event_file(torch_logdir / "a").read_bytes()
    expected = by_key(read_logs(torch_logdir / "a")[0])
    cut = tmp_path / "run" / "events.out.tfevents.123.host"
    cut.parent.mkdir()
    for n_cut in (1, 7, 30):
        cut.write_bytes(whole[:-n_cut])
        data = by_key(read_logs(cut)[0])
        # the last record (val_loss at step 55) is incomplete: left out, nothing else lost, no garbage
        assert data[("run", "val_loss")][0] == [50.0]
        for key in (("run", "loss"), ("run", "train/acc")):
            assert data[key][:2] == expected[("a", key[1])][:2]
    # followed: the rest of the record arrives later and is delivered once
    cut.write_bytes(whole[:-30])
    source = LogSource(cut)
    first = by_key(source.poll())
    with cut.open("ab") as f:
        f.write(whole[-30:-10])
    assert source.poll() == []  # still incomplete
    with cut.open("ab") as f:
        f.write(whole[-10:])
    rest = source.poll()
    assert [(b.metric, b.steps.tolist(), b.values.tolist()) for b in rest] == [("val_loss", [55.0], [math.inf])]
    assert sum(len(v[0]) for v in first.values()) + 1 == sum(len(v[0]) for v in expected.values())


def test_corrupt_event_file_gives_no_garbage(torch_logdir, tmp_path):
    whole = bytearray(event_file(torch_logdir / "a").read_bytes())
    whole[len(whole) // 2] ^= 0xFF  # a flipped byte: the record's CRC no longer matches
    bad = tmp_path / "events.out.tfevents.1.x"
    bad.write_bytes(bytes(whole))
    data = by_key(read_logs(bad)[0])
    good = by_key(read_logs(torch_logdir / "a")[0])
    for (_, metric), (steps, values, _) in data.items():  # a prefix of the real data, nothing invented
        assert values == good[("a", metric)][1][: len(values)] and steps == good[("a", metric)][0][: len(steps)]
    assert sum(len(v[0]) for v in data.values()) < sum(len(v[0]) for v in good.values())


# -- Keras CSVLogger --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras_csv(tmp_path_factory):
    import keras

    assert keras.backend.backend() == "torch"
    path = tmp_path_factory.mktemp("keras") / "fit.csv"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x.sum(axis=1) > 0).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=16, validation_split=0.25, verbose=0,
              callbacks=[keras.callbacks.CSVLogger(str(path))])
    return path


def test_keras_csv_logger(keras_csv):
    assert detect_format(keras_csv) == "keras_csv"
    data = by_key(read_logs(keras_csv)[0])
    assert set(data) == {("fit", m) for m in ("accuracy", "loss", "val_accuracy", "val_loss")}
    rows = keras_csv.read_text().splitlines()
    header = rows[0].split(",")
    for (_run, metric), (steps, values, walls) in data.items():
        assert steps == [0.0, 1.0] and walls == []  # epochs; Keras records no wall time
        assert values == [float(r.split(",")[header.index(metric)]) for r in rows[1:]]


def test_keras_csv_absent_and_non_numeric_cells(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("epoch;loss;val_loss;hist\n0;0.5;NA;\"[1, 2]\"\n1;nan;0.25;\"[3]\"\n")
    batches, source = read_logs(path)
    data = by_key(batches)
    assert data[("log", "loss")][0] == [0.0, 1.0] and math.isnan(data[("log", "loss")][1][1])
    assert data[("log", "val_loss")][:2] == ([1.0], [0.25])  # NA: no value that epoch
    assert ("log", "hist") not in data and source.skipped == 2


# -- Lightning CSVLogger ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def lightning_logdir(tmp_path_factory):
    import lightning as L
    import torch
    from lightning.pytorch.loggers import CSVLogger

    torch.set_num_threads(1)

    class Tiny(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch, _):
            loss = torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1])
            self.log("train_loss", loss)  # every step
            return loss

        def validation_step(self, batch, _):
            self.log("val_loss", torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1]))  # epoch level

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 4, generator=g)
    data = torch.utils.data.TensorDataset(x, x.sum(dim=1, keepdim=True))
    loader = torch.utils.data.DataLoader(data, batch_size=8)
    root = tmp_path_factory.mktemp("lightning")
    trainer = L.Trainer(max_epochs=2, logger=CSVLogger(root), log_every_n_steps=1, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0,
                        accelerator="cpu", devices=1)
    trainer.fit(Tiny(), loader, loader)
    return root


def test_lightning_csv_logger_sparse_rows(lightning_logdir):
    (path,) = lightning_logdir.rglob("metrics.csv")
    assert detect_format(path) == "lightning_csv"
    data = by_key(read_logs(lightning_logdir)[0])
    run = path.parent.relative_to(lightning_logdir).as_posix()  # "lightning_logs/version_0"
    assert set(data) == {(run, "train_loss"), (run, "val_loss")}  # "epoch" is bookkeeping, not a metric
    train_steps, train_values, _ = data[(run, "train_loss")]
    val_steps, val_values, _ = data[(run, "val_loss")]
    assert train_steps == list(range(8))  # 4 batches x 2 epochs, one row per step
    assert val_steps == [3.0, 7.0]  # epoch-end rows, at the global step
    assert all(math.isfinite(v) for v in train_values + val_values)  # empty cells are absent, never NaN
    import csv

    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert train_values == [float(r["train_loss"]) for r in rows if r["train_loss"]]


# -- our own log file, detection and errors ---------------------------------------------------


def test_own_jsonl_log(tmp_path):
    path = tmp_path / "run1.jsonl"
    plot = LossPlot(title="t", log_file=path)
    for step in range(5):
        plot.log(loss=1.0 / (step + 1), acc=math.nan if step == 2 else step / 10, step=step)
        plot.log(loss=2.0 / (step + 1), step=step, run="lr=0.1")  # a named run in the same log
    plot.close()
    data = by_key(read_logs(tmp_path)[0])
    assert set(data) == {("run1", "loss"), ("run1", "acc"), ("run1/lr=0.1", "loss")}
    loaded = LossPlot.load(path)
    for (run, metric), (steps, values, walls) in data.items():
        h = loaded.run("default" if run == "run1" else "lr=0.1").history[metric]
        assert steps == h.steps.tolist() == list(range(5)) and walls == h.wall_time.tolist()
        np.testing.assert_array_equal(values, h.values)
    loaded.close()


def test_folder_mixes_formats_and_passes_over_other_files(torch_logdir, keras_csv, tmp_path):
    shutil.copytree(torch_logdir / "a", tmp_path / "tb")
    (tmp_path / "keras").mkdir()
    shutil.copy(keras_csv, tmp_path / "keras" / "fit.csv")
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "table.csv").write_text("a,b\n1,2\n")
    (tmp_path / ".hidden").mkdir()
    shutil.copy(keras_csv, tmp_path / ".hidden" / "fit.csv")
    batches, source = read_logs(tmp_path)
    assert {b.run for b in batches} == {"tb", "keras/fit"}
    assert sorted(t.format for t in source.tails.values()) == ["Keras CSVLogger", "TensorBoard"]


def test_detect_format(tmp_path):
    assert detect_format(tmp_path / "events.out.tfevents.1.host") == "tensorboard"
    assert detect_format(tmp_path / "missing.csv") == "pending"
    (tmp_path / "half.csv").write_text("epoch,lo")
    assert detect_format(tmp_path / "half.csv") == "pending"  # header still being written
    (tmp_path / "other.jsonl").write_text('{"format": "something else"}\n')
    assert detect_format(tmp_path / "other.jsonl") == "unknown"
    assert detect_format(tmp_path / "model.pt") == "unknown"


def test_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        read_logs(tmp_path / "nope")
    with pytest.raises(ValueError, match="no logs found .*TensorBoard event files"):
        read_logs(tmp_path)
    (tmp_path / "table.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="table.csv.*not a known log format"):
        read_logs(tmp_path / "table.csv")
    (tmp_path / "bad.jsonl").write_text("not json\n")
    with pytest.raises(ValueError, match="bad.jsonl.*not a known log format"):
        read_logs(tmp_path / "bad.jsonl")


def test_missing_file_is_waited_for(tmp_path):
    source = LogSource(tmp_path / "later" / "fit.csv")
    assert source.poll() == [] and source.poll() == []
    (tmp_path / "later").mkdir()
    (tmp_path / "later" / "fit.csv").write_text("epoch,loss\n0,")  # first row still being written
    assert source.poll() == []
    with (tmp_path / "later" / "fit.csv").open("a") as f:
        f.write("0.5\n")
    assert [(b.run, b.metric, b.steps.tolist(), b.values.tolist()) for b in source.poll()] == [
        ("fit", "loss", [0.0], [0.5])]


# -- LossPlot.from_logdir ---------------------------------------------------------------------


def test_from_logdir(torch_logdir):
    plot = LossPlot.from_logdir(torch_logdir, title="two runs", smoothing=0.0)
    assert plot.runs == ("a", "b") and plot.title == "two runs" and plot.smoothing == 0.0
    expected = by_key(read_logs(torch_logdir)[0])
    for run in ("a", "b"):
        history = plot.run(run).history
        assert set(history) == {"loss", "train/acc", "val_loss"}
        for metric, h in history.items():
            steps, values, walls = expected[(run, metric)]
            assert h.steps.tolist() == steps and h.wall_time.tolist() == walls
            np.testing.assert_array_equal(h.values, values)
    plot.close()


def test_from_logdir_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        LossPlot.from_logdir(tmp_path / "nope")
    with pytest.raises(ValueError, match="no logs found"):
        LossPlot.from_logdir(tmp_path)
    (tmp_path / "fit.csv").write_text("epoch,loss\n0,0.5\n1,0.4\n0,0.6\n")  # two fits appended, epochs restart
    with pytest.raises(ValueError, match="run 'fit': metric 'loss': steps must be non-decreasing"):
        LossPlot.from_logdir(tmp_path)
