"""``renderer="canvas"``: each panel's lines go to the browser as one binary message.

The canvas draws the points that ``HoverLayer.lines`` carries (``_ui/hover.py`` ``pack_lines``,
read by ``js/hover.js`` ``unpackLines``). These tests decode that buffer here, independently of
the encoder, and check it holds exactly the points the SVG renderer puts on its ``Lines`` marks
for the same data; that a frame sends the panel's lines as one change of that trait and none of
the ``Lines`` data; that switching renderer moves the points; that ``js/hover.js`` decodes the
same bytes into the same numbers (with node); and that panels nobody sees get no frames while
the kernel would hear them seen again (an IPython shell in a subprocess). The drawing itself is
compared pixel by pixel in ``tests/browser/test_browser_canvas.py``.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from bqplot import Lines
from drawn import decode_lines, layers, lines, model

from lossviz_widget import LossPlot

ROOT = Path(__file__).resolve().parents[2]


def fill(plot: LossPlot, start: int = 0, stop: int = 3000) -> None:
    """Two runs, a spike, a NaN, a sparse val_loss, an accuracy panel."""
    for run in ("a", "b"):
        for i in range(start, stop):
            loss = math.exp(-i / 700) * (1.3 if run == "b" else 1.0) + 0.05 * math.sin(i / 7)
            if i == 1234:
                loss = float("nan")
            plot.log(loss=loss * (8 if i == 2000 else 1), acc=1 - math.exp(-i / 500), step=i, run=run)
            if i % 100 == 0:
                plot.log(val_loss=loss + 0.1, step=i, run=run)
    plot.flush()


def drawn_by_canvas(plot: LossPlot) -> dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]]:
    """(family, label, "main"/"raw") -> the points the canvas draws, decoded from each layer's lines."""
    out = {}
    for family, layer in layers(plot).items():
        packed, _ = decode_lines(layer.lines)
        for e in layer.series:
            if e["slot"] is None:
                continue
            out[(family, e["label"], "main")] = packed[e["slot"]]
            if e["raw"] is not None:
                out[(family, e["label"], "raw")] = packed[e["slot"] + 1]
    return out


def series_lines(plot: LossPlot) -> list[Lines]:
    """Every series' ``Lines`` (main and raw) of every panel, as the layers name them."""
    return [model(e[k]) for layer in layers(plot).values() for e in layer.series for k in ("main", "raw") if e[k]]


def drawn_by_svg(plot: LossPlot) -> dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]]:
    out = {}
    for family, layer in layers(plot).items():
        for e in layer.series:
            faint, main = lines(plot, family, e["label"])
            out[(family, e["label"], "main")] = (np.asarray(main.x), np.asarray(main.y))
            if e["raw"] is not None:
                out[(family, e["label"], "raw")] = (np.asarray(faint.x), np.asarray(faint.y))
    return out


def assert_same_points(canvas: LossPlot, svg: LossPlot) -> None:
    got, want = drawn_by_canvas(canvas), drawn_by_svg(svg)
    assert set(got) == set(want) and len(want) >= 3
    for key, (x, y) in want.items():
        if np.issubdtype(x.dtype, np.datetime64):
            x = x.astype("datetime64[ms]").astype(np.int64).astype(np.float64)
        np.testing.assert_array_equal(got[key][0], x, err_msg=str(key))
        np.testing.assert_array_equal(got[key][1], y.astype(got[key][1].dtype), err_msg=str(key))
    # the canvas plot's Lines keep only the style the canvas reads: no point is sent twice
    assert all(len(m.x) == 0 and len(m.y) == 0 for m in series_lines(canvas))


@pytest.fixture
def pair():
    made = [LossPlot(smoothing=0.6, renderer=r) for r in ("canvas", "svg")]
    yield made
    for p in made:
        p.close()


def test_the_canvas_gets_the_points_the_svg_lines_get(pair):
    canvas, svg = pair
    for p in pair:
        fill(p)
    assert_same_points(canvas, svg)
    assert any(np.isnan(y).any() for _, y in drawn_by_canvas(canvas).values())  # gaps go as NaN
    for p in pair:  # more steps, a zoom, a hidden run: still the same points
        fill(p, 3000, 3500)
        p.x_range = (500.0, 2500.0)
        p.hidden_runs = ("b",)
        p.flush()
    assert_same_points(canvas, svg)
    assert {label for _, label, _ in drawn_by_canvas(canvas)} == {"a: loss", "a: val_loss", "a: acc"}


def test_dates_and_log_axes_go_as_the_svg_lines_draw_them(pair):
    canvas, svg = pair
    steps = np.arange(1, 400)
    for p in pair:  # the same wall times in both plots
        p.extend("loss", steps, np.exp(-steps / 100.0), 1.8e9 + steps * 0.25)
        p.extend("val_loss", steps[::20], np.exp(-steps[::20] / 120.0), 1.8e9 + steps[::20] * 0.25)
        p.x_axis, p.log_y = "wall_time", True
        p.flush()
    assert all(decode_lines(layer.lines)[1] for layer in layers(canvas).values())  # flagged as dates (epoch ms)
    assert_same_points(canvas, svg)
    for p in pair:
        p.x_axis, p.x_log = "step", True
        p.flush()
    assert not any(decode_lines(layer.lines)[1] for layer in layers(canvas).values())
    assert_same_points(canvas, svg)


def test_values_float32_cannot_hold_go_as_float64_as_the_svg_lines_get_them(pair):
    """Below 1e-30 or above 1e30 a frame keeps y as float64 (float32 would draw 0 or a gap for inf):
    the canvas gets the same float64 values, and the panel's other lines lose nothing either."""
    canvas, svg = pair
    for p in pair:
        for i, v in enumerate([1e-40, 1e-39, 2e-39]):
            p.log(loss=v, val_loss=0.5 + i, step=i)
            p.log(grad_norm=3e38 * (i + 1), step=i)
        p.smoothing = 0.0
        p.flush()
    assert_same_points(canvas, svg)
    main = lines(canvas, "loss", "loss")[1]
    assert main.y.dtype == np.float64 and main.y.tolist() == [1e-40, 1e-39, 2e-39]
    assert lines(canvas, "grad_norm", "grad_norm")[1].y.tolist() == [3e38 * k for k in (1, 2, 3)]  # not inf
    assert lines(canvas, "loss", "val_loss")[1].y.tolist() == [0.5, 1.5, 2.5]


def test_a_frame_sends_each_panel_one_lines_message_and_no_line_data():
    plot = LossPlot(smoothing=0.6, renderer="canvas")
    fill(plot, 0, 200)
    changes: list[str] = []
    for family, layer in layers(plot).items():
        layer.observe(lambda c, f=family: changes.append(f"lines {f}"), names=["lines"])
    for m in series_lines(plot):
        m.observe(lambda c: changes.append("Lines data"), names=["x", "y"])
    fill(plot, 200, 300)
    assert sorted(changes) == ["lines accuracy", "lines loss"]
    plot.close()


def test_switching_renderer_moves_the_points(pair):
    canvas, svg = pair
    for p in pair:
        fill(p, 0, 500)
    canvas.renderer = "svg"
    canvas.flush()
    assert all(layer.lines == b"" and all(e["slot"] is None for e in layer.series)
               for layer in layers(canvas).values())
    as_lists = lambda plot: {k: (list(x), list(y)) for k, (x, y) in drawn_by_svg(plot).items()}  # noqa: E731
    assert as_lists(canvas) == as_lists(svg)
    canvas.renderer = "canvas"
    canvas.flush()
    assert_same_points(canvas, svg)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_hover_js_decodes_the_same_numbers(pair, tmp_path):
    canvas, _ = pair
    fill(canvas, 0, 700)
    layer = layers(canvas)["loss"]
    (tmp_path / "lines.bin").write_bytes(b"\0" * 4 + layer.lines)  # read at an offset of 4: not 8-aligned
    script = textwrap.dedent(f"""
        import {{ readFileSync }} from "node:fs";
        import {{ unpackLines }} from {json.dumps((ROOT / "js" / "hover.js").as_uri())};
        const file = readFileSync({json.dumps(str(tmp_path / "lines.bin"))});
        const view = new DataView(file.buffer, file.byteOffset + 4, file.byteLength - 4);
        console.log(JSON.stringify(unpackLines(view).map(([x, y]) => [Array.from(x), Array.from(y, String)])));
    """)
    (tmp_path / "decode.mjs").write_text(script)
    out = subprocess.run(["node", str(tmp_path / "decode.mjs")], capture_output=True, text=True, check=True)
    got = json.loads(out.stdout)
    want, _ = decode_lines(layer.lines)
    assert len(got) == len(want) == 8  # main and raw of loss and val_loss, runs a and b
    for (gx, gy), (wx, wy) in zip(got, want, strict=True):
        assert gx == wx.tolist()
        np.testing.assert_array_equal(np.array(gy, dtype=np.float64), wy.astype(np.float64))


UNSEEN = """
import math, threading
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
from lossviz_widget import LossPlot
import test_hover_layer, test_canvas_lines as t
plot = LossPlot(renderer=RENDERER)
t.fill(plot, 0, 100)
layer = t.layers(plot)["loss"]
def sent():
    return layer.lines if RENDERER == "canvas" else bytes(t.lines(plot, "loss", "a: loss")[1].y)
before = sent()
layer.seen = False                     # the browser: nobody sees the panel, and the kernel is idle
t.fill(plot, 100, 200)
assert sent() == before, "a frame went to a panel nobody sees while the kernel listens"
shell.user_ns.update(t=t, plot=plot)
shell.run_cell("t.fill(plot, 200, 300)")   # in a cell the kernel would not hear 'seen again': frames go
assert not shell.last_execution_result.error_in_exec, shell.last_execution_result.error_in_exec
after_cell = sent()
assert after_cell != before
t.fill(plot, 300, 400)
assert sent() == after_cell
layer.seen = True                      # seen again: a frame is requested and sends everything
plot.flush()
print("OK", len(before), len(after_cell), len(sent()))
"""


@pytest.mark.parametrize("renderer", ["canvas", "svg"])
def test_panels_nobody_sees_get_no_frames_while_the_kernel_listens(renderer, tmp_path):
    code = f"RENDERER = {renderer!r}\n" + UNSEEN
    env_path = f"{ROOT}:{ROOT / 'tests'}:{ROOT / 'tests' / 'ui'}"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    words = out.stdout.split()
    assert words[0] == "OK" and int(words[3]) > int(words[2]) > int(words[1]), out.stdout
