import pytest

from lossviz_widget._core.grouping import best_fits, family_of, higher_is_better, is_learning_rate, log_y_fits


@pytest.mark.parametrize(
    "names, family",
    [
        (["loss", "val_loss", "train_loss", "test_loss", "train/loss", "val/loss", "loss_train", "loss/val",
          "Train Loss", "eval_loss", "train_loss_epoch", "train_loss_step", "validation-loss"], "loss"),
        (["logloss", "validation_0/logloss", "validation_1-logloss", "train/logloss", "valid_0/logloss"],
         "logloss"),
        (["acc", "val_acc", "accuracy", "val_accuracy", "train/acc"], "accuracy"),
        (["lr", "train/lr"], "lr"),
        (["learning_rate"], "learning_rate"),
        (["grad_norm"], "grad_norm"),
        (["val"], "val"),
        (["epoch"], "epoch"),
    ],
)
def test_families(names, family):
    assert {family_of(n) for n in names} == {family}


@pytest.mark.parametrize("name", ["<script>alert(1)</script>", "___", " ", "ünïcode/val"])
def test_odd_names_get_a_non_empty_family(name):
    assert family_of(name)


def test_distinct_families_stay_apart():
    assert family_of("loss") != family_of("acc") != family_of("lr")
    assert family_of("mean_loss") != family_of("loss")
    assert family_of("loss_0") != family_of("loss")  # a number only joins a split token


def test_direction():
    assert higher_is_better("val_acc") and higher_is_better("f1") and higher_is_better("val/accuracy")
    assert not higher_is_better("loss") and not higher_is_better("val_loss") and not higher_is_better("lr")


@pytest.mark.parametrize("name,fits", [
    ("loss", True), ("val/loss", True), ("val_acc", True), ("top1", True), ("val_error", True),
    ("perplexity", True), ("learning_rate", False), ("lr", False), ("watch/grad_norm", False),
    ("weight_norm", False), ("epoch_time", False),
])
def test_best_means_something_for_losses_errors_and_accuracies_only(name, fits):
    assert best_fits(name) is fits


def test_log_y_by_default_on_loss_like_panels_only():
    assert log_y_fits("loss") and log_y_fits("grad_norm")
    assert not log_y_fits("accuracy") and not log_y_fits("learning_rate") and not log_y_fits("lr")


def test_learning_rates_are_recognised_by_family() -> None:
    """What a forecast reads a run's step drops from: ``lr``, ``learning_rate``, ``train/lr``."""
    assert all(is_learning_rate(n) for n in ("lr", "learning_rate", "train/lr", "LearningRate"))
    assert not any(is_learning_rate(n) for n in ("loss", "val_loss", "lr_finder_loss", "grad_norm"))
