"""Diagnostics in the widget: the findings area, markers on the curves, the switch, exports."""

import html

import numpy as np
import pytest
from drawn import finding_markers

from lossviz_widget import LossPlot
from lossviz_widget._core.smoothing import smooth
from lossviz_widget.diagnostics import Diagnostics, DiagnosticsConfig


@pytest.fixture
def plot():
    p = LossPlot(title="diag")
    yield p
    p.close()


def log_overfitting(p, train="loss", val="val_loss", n=3000):
    for i in range(n):
        p.log({train: 2 * np.exp(-i / 300) + 0.02}, step=i)
        if i % 50 == 0:
            p.log({val: 0.4 + 2 * np.exp(-i / 300) + 0.3 * max(0, i - 1200) / 1000}, step=i)


def log_diverging(p, n=1500):
    for i in range(n):
        p.log(loss=2 * np.exp(-i / 200) + 0.1 if i < 800 else 0.13 * np.exp((i - 800) / 60), step=i)


def test_overfitting_shows_in_the_findings_area_with_a_marker(plot):
    log_overfitting(plot)
    plot.flush()
    found = plot.diagnose()
    over = [f for f in found if f.code == "overfitting"]
    assert len(over) == 1
    f = over[0]
    area = plot.shown_html["findings"]
    kids = plot.children
    panels = next(i for i, w in enumerate(kids) if "lossviz-panels" in w._dom_classes)
    assert kids[panels + 1].value == area  # the findings area sits right under the panels
    assert 'data-code="overfitting"' in area and f'data-step="{int(f.step)}"' in area
    assert "overfitting" in area and "early stopping at step" in area
    markers = finding_markers(plot, "loss")
    assert markers.visible
    i = list(markers.x).index(f.step)
    hist = plot.history["val_loss"]
    assert markers.y[i] == hist.values[list(hist.steps).index(f.step)]  # on the validation curve
    assert markers.colors[i] == "#ff7f0e"  # warning


def test_divergence_live_marker_and_error_finding(plot):
    log_diverging(plot)
    plot.flush()
    div = [f for f in plot.diagnose() if f.code == "divergence"]
    assert len(div) == 1 and div[0].severity == "error"
    assert 'data-code="divergence"' in plot.shown_html["findings"]
    assert div[0].step in list(finding_markers(plot, "loss").x)


def test_findings_appear_as_training_runs_once_each(plot):
    for i in range(0, 1500, 100):  # frames while logging
        for j in range(i, i + 100):
            plot.log(loss=2 * np.exp(-j / 200) + 0.1 if j < 800 else 0.13 * np.exp((j - 800) / 60), step=j)
        plot.flush()
    assert plot.shown_html["findings"].count('data-code="divergence"') == 1
    assert [f.code for f in plot.diagnose()].count("divergence") == 1


def test_switched_off_computes_nothing_and_shows_nothing(monkeypatch):
    reads, update = [], Diagnostics.update
    monkeypatch.setattr(Diagnostics, "update", lambda *a, **kw: reads.append(1) or update(*a, **kw))
    p = LossPlot(diagnostics=False)
    log_diverging(p)
    p.flush()
    assert p.diagnose() == [] and p.shown_html["findings"] == "" and reads == []  # not a point read
    assert not finding_markers(p, "loss").visible
    p.diagnostics = True  # back on: catches up on the whole history
    p.flush()
    assert "divergence" in [f.code for f in p.diagnose()] and finding_markers(p, "loss").visible
    p.diagnostics = False
    p.flush()
    assert p.shown_html["findings"] == "" and not finding_markers(p, "loss").visible
    p.close()


def test_metric_names_are_escaped_in_messages(plot):
    evil = 'loss<img src=x onerror="alert(1)">'
    for i in range(100):
        plot.log({evil: float("nan") if i == 30 else 1.0}, step=i)
    plot.flush()
    area = plot.shown_html["findings"]
    assert "<img" not in area and html.escape(evil, quote=True) in area
    assert 'data-code="nonfinite"' in area and 'data-step="30"' in area


def test_num_classes_enables_the_initial_loss_check():
    p = LossPlot(num_classes=10)
    for i in range(20):
        p.log(loss=9.0 - 0.1 * i, step=i)
    assert [f.code for f in p.diagnose()] == ["initial_loss"]
    p.close()
    with pytest.raises(ValueError, match="num_classes must be an int >= 2"):
        LossPlot(num_classes=0)
    with pytest.raises(TypeError, match="diagnostics_config must be a DiagnosticsConfig"):
        LossPlot(diagnostics_config={"gl_alpha": 2})
    p = LossPlot(diagnostics_config=DiagnosticsConfig(clear_after=1))
    for i, v in enumerate([1.0, float("nan"), 1.0, float("nan")]):
        p.log(loss=v, step=i)
    assert [f.step for f in p.diagnose()] == [1.0, 3.0]  # a shorter episode
    p.close()


def test_report_lists_findings_and_images_use_the_smoothing_mode(plot, tmp_path):
    log_overfitting(plot, train="loss <b>", val="val loss <b>")
    plot.smoothing_mode = "gaussian"
    page = plot.export(tmp_path / "r.html").read_text(encoding="utf-8")
    assert 'id="lossviz-diagnostics"' in page and 'data-code="overfitting"' in page
    assert "val loss &lt;b&gt; is" in page and "<b>" not in page.split('id="lossviz-data"')[0]
    frame = plot.frame()
    main = next(sf for pf in frame.panels for sf in pf.series if sf.name == "loss <b>")
    hist = plot.history["loss <b>"]
    expected = smooth(hist.values, plot.smoothing, "gaussian")
    np.testing.assert_allclose(main.y, expected[np.searchsorted(hist.steps, main.x)], rtol=1e-6)
    assert any(len(pf.finding_x) for pf in frame.panels)


def test_smoothing_mode_is_kept_in_data_files(plot, tmp_path):
    plot.smoothing_mode = "time_ema"
    plot.log(loss=1.0)
    path = plot.export(tmp_path / "run.json")
    again = LossPlot.load(path)
    assert again.smoothing_mode == "time_ema"
    again.close()


def test_images_mark_the_findings(plot):
    import matplotlib

    matplotlib.use("Agg")
    from lossviz_widget._io.images import render_figure

    log_diverging(plot)
    fig = render_figure(plot.frame(), title="")
    labels = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert "diagnostics finding" in labels
    plot.diagnostics = False
    fig = render_figure(plot.frame(), title="")
    labels = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert "diagnostics finding" not in labels


def test_several_runs_are_diagnosed_apart_and_findings_name_their_run(plot):
    for i in range(3000):
        for run, rising in (("good", 0.0), ("over<fit>", 0.3)):
            plot.log(loss=2 * np.exp(-i / 300) + 0.02, step=i, run=run)
            if i % 50 == 0:
                plot.log(val_loss=0.4 + 2 * np.exp(-i / 300) + rising * max(0, i - 1200) / 1000, step=i, run=run)
    plot.flush()
    over = [f for f in plot.diagnose() if f.code == "overfitting"]
    assert [f.run for f in over] == ["over<fit>"]
    area = plot.shown_html["findings"]
    assert 'data-run="over&lt;fit&gt;"' in area and "[over&lt;fit&gt;]" in area and "<fit>" not in area
    assert over[0].step in list(finding_markers(plot, "loss").x)
    plot.hidden_runs = ("over<fit>",)  # a hidden run's markers go with its lines
    plot.flush()
    assert over[0].step not in list(finding_markers(plot, "loss").x)


def test_with_several_runs_the_default_runs_findings_say_default(plot, tmp_path):
    log_diverging(plot)
    plot.flush()
    assert 'data-run=' not in plot.shown_html["findings"]  # one run: as before
    assert "[default]" not in plot.shown_html["findings"]
    plot.log(loss=1.0, step=0, run="b")  # a second run: the finding found earlier now names its run
    plot.flush()
    div = [f for f in plot.diagnose() if f.code == "divergence"]
    assert [f.run for f in div] == ["default"]
    area = plot.shown_html["findings"]
    assert 'data-run="default"' in area and "[default]" in area
    assert div[0].step in list(finding_markers(plot, "loss").x)  # its marker stays on the default curve
    page = plot.export(tmp_path / "r.html").read_text(encoding="utf-8")
    assert "[default]" in page.split('id="lossviz-diagnostics"')[1]


# -- the findings list: one row per (code, series), folded past a few rows ------------------------


def _finding(code, step, metric="loss", severity="info", run=None):
    from lossviz_widget.diagnostics import Finding

    return Finding(code, severity, metric, float(step), f"{metric} {code} at {step}", f"do something about {code}",
                   run=run)


def test_findings_list_one_row_per_code_and_series_with_count_and_latest_step():
    from lossviz_widget.diagnostics import findings_html

    found = [_finding("loss_spike", s) for s in (100, 500, 900)] + [_finding("plateau", 300, "val_loss")]
    page = findings_html(found)
    rows = page.split('<li class="lossviz-finding" ')[1:]
    assert len(rows) == 2
    spike = next(r for r in rows if 'data-code="loss_spike"' in r)
    assert 'data-count="3"' in spike and 'data-step="900"' in spike
    assert "loss loss_spike at 900" in spike and "(3 times, latest at step 900)" in spike
    assert "do something about loss_spike" in spike  # what to do
    assert "lossviz-findings-more" not in page and "max-height" in page and "overflow-y:auto" in page


def test_findings_list_folds_past_three_rows_errors_first():
    from lossviz_widget.diagnostics import findings_html

    found = [_finding(c, i * 10, f"m{i}") for i, c in enumerate(["noisy", "converged", "plateau", "lr_too_low"])]
    found.append(_finding("divergence", 999, severity="error"))
    page = findings_html(found)
    head, fold = page.split("<details>")
    assert head.index('data-code="divergence"') < head.index('data-code="noisy"')  # the error on top
    assert head.count('class="lossviz-finding"') == 3 and fold.count('class="lossviz-finding"') == 2
    assert "<summary>2 more (2 info)</summary>" in fold
    assert findings_html(found, limit=2).count('class="lossviz-finding"') == 2
    assert "3 more kinds of findings" in findings_html(found, limit=2)


def test_widget_findings_area_stays_short_on_a_long_spiky_run(plot):
    rng = np.random.default_rng(3)
    n = 20_000
    v = 0.1 + 0.01 * rng.random(n)
    v[np.arange(1000, n, 1000)] = 50.0  # 19 single-step spikes, each its own episode
    plot.extend("loss", np.arange(n), v)
    plot.flush()
    spikes = [f for f in plot.diagnose() if f.code == "loss_spike"]
    assert len(spikes) == 19  # diagnose() keeps every episode
    area = plot.shown_html["findings"]
    assert area.count('data-code="loss_spike"') == 1 and 'data-count="19"' in area
    markers = finding_markers(plot, "loss").x
    assert len(markers) == len(plot.diagnose()) and {f.step for f in spikes} <= set(markers.tolist())  # one per episode


def test_an_ended_finding_is_listed_muted_after_the_current_ones_with_its_end():
    from dataclasses import replace

    from lossviz_widget.diagnostics import findings_html

    ended = replace(_finding("not_learning", 800, severity="warning"), ended=21_099.0,
                    ended_because="it started learning <1.8>")
    page = findings_html([ended, _finding("noisy", 900)])
    assert page.index('data-code="noisy"') < page.index('data-code="not_learning"')
    row = page.split('data-code="not_learning"')[1].split("</li>")[0]
    assert 'data-ended="21099"' in row and "ended warning" in row
    assert "Until step 21,099: it started learning &lt;1.8&gt;." in row and "do something" not in row
    assert ended.color != _finding("x", 1, severity="warning").color


def test_a_slow_start_that_later_learns_shows_its_early_warning_as_ended(plot):
    """A million-step loss that falls slowly at first: the early 'not learning' warning is still
    listed, muted, with where it ended, its marker grey; no current warning remains."""
    s = np.arange(1_000_000, dtype=float)
    v = 2 * np.exp(-s / 2e5) * (1 + 0.005 * np.random.default_rng(0).normal(size=len(s)))
    plot.extend("loss", s, v)
    plot.flush()
    nl = next(f for f in plot.diagnose() if f.code == "not_learning")
    assert not nl.active and nl.ended_because.startswith("it started learning")
    assert not [f for f in plot.diagnose() if f.active and f.severity != "info"]
    area = html.unescape(plot.shown_html["findings"])
    row = area.split('data-code="not_learning"')[1].split("</li>")[0]
    assert "ended warning" in row and f"Until step {nl.ended:,.0f}: it started learning" in row
    markers = finding_markers(plot, "loss")
    i = list(markers.x).index(nl.step)
    assert markers.colors[i] == nl.color != "#ff7f0e"
