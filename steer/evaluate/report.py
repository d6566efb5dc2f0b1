"""A self-contained HTML report of an evaluation: the metrics beside the baselines, true-vs-predicted
plots, the error histogram, a video of the model driving, the config and the data hashes. Images and
video are embedded, so the one file opens from disk with no server."""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from steer.durable import replacing, save_figure  # noqa: E402


def error_histogram(path: Path, truth: np.ndarray, preds: np.ndarray, targets: list[str], units: dict) -> None:
    fig, axes = plt.subplots(1, len(targets), figsize=(4 * len(targets), 3), squeeze=False)
    for k, ax in enumerate(axes[0]):
        ax.hist(preds[:, k] - truth[:, k], bins=50, color="tab:red", alpha=0.8)
        ax.set_xlabel(f"{targets[k]} error ({units.get(targets[k], '?')})")
    axes[0, 0].set_ylabel("frames")
    save_figure(fig, path)


def _embed(path: Path, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _table(metrics: dict) -> str:
    targets = list(metrics["model"])
    head = "".join(f"<th>{html.escape(t)} RMSE</th><th>{html.escape(t)} MAE</th>" for t in targets)
    rows = []
    for label, key in ((metrics["model_name"], "model"), ("baseline: zero", "zero"), ("baseline: train mean", "mean")):
        cells = "".join(f"<td>{metrics[key][t]['rmse']:.4f}</td><td>{metrics[key][t]['mae']:.4f}</td>" for t in targets)
        rows.append(f"<tr><th>{html.escape(label)}</th>{cells}</tr>")
    return f"<table id='metrics'><tr><th></th>{head}</tr>{''.join(rows)}</table>"


def _inside(folder: Path) -> str:
    """Gradient health and saliency, where `steer diagnose` and `steer explain` wrote them into `folder`."""
    found = [(p, "gradient health (steer diagnose)") for p in [folder / "diagnose" / "diagnose.png"] if p.exists()]
    for drive in sorted(folder.glob("explain/*/saliency.png"))[:1]:
        found += [(drive, f"saliency on {drive.parent.name} (steer explain)"),
                  (drive.with_name("time.png"), f"attribution over time on {drive.parent.name}")]
    return "<h2>Inside the network</h2>" + "".join(
        f"<p>{html.escape(alt)}</p><img alt=\"{html.escape(alt)}\" src=\"{_embed(p, 'image/png')}\">"
        for p, alt in found if p.exists()) if found else ""


CLOSED_LOOP = "closed_loop.json"  # written beside a run's report by `steer demo`: {"rows": {name: scores}, ...}


def _closed_loop(folder: Path) -> str:
    """The closed-loop section: autonomy and lateral figures of the model beside the reference drivers on
    held-out roads, and the video of it driving, where the folder holds them (steer.drive.closed_loop)."""
    path = folder / CLOSED_LOOP
    if not path.exists():
        return ""
    found = json.loads(path.read_text())
    columns = [("autonomy_pct", "autonomy %", ".1f"), ("takeovers_per_km", "take-overs per km", ".2f"),
               ("lateral_mean_m", "mean |lateral| m", ".3f"), ("lateral_max_m", "max |lateral| m", ".3f"),
               ("heading_error_deg", "mean |heading error| deg", ".2f"),
               ("wheel_jerk_radps3", "wheel jerk rad/s3", ".1f")]
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title, _ in columns)
    rows = "".join(f"<tr><th>{html.escape(name)}</th>" + "".join(f"<td>{s[k]:{fmt}}</td>" for k, _, fmt in columns)
                   + "</tr>" for name, s in found["rows"].items())
    video = folder / found.get("video", "")
    tag = (f"<video controls loop muted src='{_embed(video, 'video/webm')}'></video><p>the wheel in force green "
           "(outer), asked for red (inner); inset: lane, path driven, take-overs as yellow crosses</p>"
           if found.get("video") and video.exists() else "")
    return (f"<h2>Driving in the loop</h2><p>{html.escape(found['note'])}</p>"
            f"<table id='closed-loop'><tr><th></th>{head}</tr>{rows}</table>{tag}")


def _fed(run: Path) -> str:
    """The augmentation section: one training window under each transform, where the run drew it (--augment)."""
    grid = run / "augment.png"
    if not grid.exists():
        return ""
    return ("<h2>What training fed the model</h2><p>one training window under each part of --augment alone, then "
            "all together (one draw per window, held across its frames), with the steering it trained on</p>"
            f"<img alt=\"augmentation\" src=\"{_embed(grid, 'image/png')}\">")


def write_report(folder: Path, metrics: dict, run_info: dict, video: Path | None) -> Path:
    """`folder` holds predictions.png and errors.png (and, where diagnose and explain wrote them there,
    their plots; where driven in the loop, closed_loop.json and its video); writes report.html there, with
    the run's augment.png where it trained with --augment."""
    video_tag = (f"<video controls loop muted src='{_embed(video, 'video/webm')}'></video>"
                 f"<p>{html.escape(video.stem)}: true wheel green (outer), predicted red (inner)</p>" if video else "")
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>steer: {html.escape(metrics['model_name'])}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}img,video{{max-width:100%}}
pre{{background:#f4f4f4;padding:1em;overflow:auto}}</style>
</head><body><h1>{html.escape(metrics['model_name'])} on {metrics['frames']} held-out frames</h1>
<p>Drives: {html.escape(', '.join(metrics['drives']))}. Units: {html.escape(json.dumps(metrics['units']))}.</p>
{_table(metrics)}
<h2>True and predicted</h2><img alt="true and predicted" src="{_embed(folder / 'predictions.png', 'image/png')}">
<h2>Errors</h2><img alt="error histogram" src="{_embed(folder / 'errors.png', 'image/png')}">
<h2>Driving</h2>{video_tag}
{_fed(Path(metrics['checkpoint']).parent)}
{_inside(folder)}
{_closed_loop(folder)}
<h2>Config, data and versions</h2><pre>{html.escape(json.dumps(run_info, indent=1))}</pre>
</body></html>"""
    out = folder / "report.html"
    with replacing(out) as tmp:
        tmp.write_text(page)
    return out
