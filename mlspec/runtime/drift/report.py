"""Drift reports for people: a rich text table and a self-contained HTML page (inline CSS and
SVG, no scripts, no external assets) with a reference-vs-current chart per drifted feature."""

from __future__ import annotations

import html
import math
from typing import Any

from mlspec.runtime.drift.compare import P_VALUE_METHODS, DriftReport, FeatureDrift

METHOD_NAMES = {
    "psi": "Population stability index",
    "ks": "Kolmogorov–Smirnov statistic",
    "chi2": "Chi-square test",
    "js": "Jensen–Shannon distance",
    "wasserstein": "Wasserstein distance (in reference std)",
}
REF_COLOUR, CUR_COLOUR = "#4C78A8", "#F58518"
MAX_CATEGORIES = 20


def _num(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.2e}"
    return f"{value:.{digits}g}"


def _ordered(report: DriftReport) -> list[FeatureDrift]:
    """Drifted features first, then by how far past (or short of) the threshold they are."""
    return sorted(report.features, key=lambda f: (not f.drifted, -_severity(f), f.name))


def _severity(f: FeatureDrift) -> float:
    if f.method in P_VALUE_METHODS:
        p = f.p_value if f.p_value is not None else 1.0
        return -math.log10(max(p, 1e-300)) / -math.log10(f.threshold) if f.threshold < 1 else 0
    return (f.statistic / f.threshold) if math.isfinite(f.statistic) else 0.0


# --- text ---------------------------------------------------------------------------------------
def render_text(report: DriftReport, file=None, width: int | None = None) -> None:
    """Print the report as a table (colour on a terminal, plain when piped or to a file)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=file, width=width or (100 if file is not None else None),
                      highlight=False)
    drifted = [f for f in report.features if f.drifted]
    table = Table(title=f"Drift: {METHOD_NAMES.get(report.method, report.method)}, "
                        f"threshold {_num(report.threshold)}", title_justify="left")
    for column, right in (("feature", False), ("method", False), ("statistic", True),
                          ("p-value", True), ("threshold", True), ("drift", False)):
        table.add_column(column, justify="right" if right else "left")
    for f in _ordered(report):
        table.add_row(f.name, f.method, _num(f.statistic), _num(f.p_value), _num(f.threshold),
                      "[bold red]DRIFT[/]" if f.drifted else "[green]ok[/]")
    console.print(table)
    summary = (f"[bold red]Drift in {len(drifted)} of {len(report.features)} features:[/] "
               + ", ".join(f.name for f in drifted)) if drifted else \
        f"[green]No drift in {len(report.features)} features.[/]"
    console.print(summary)


# --- HTML ---------------------------------------------------------------------------------------
CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f6f7f9;color:#1f2933;font:14px/1.45 -apple-system,BlinkMacSystemFont,
"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1100px;margin:0 auto;padding:28px 24px 48px}
h1{font-size:24px;margin:0 0 4px} h2{font-size:18px;margin:32px 0 12px}
.sub{color:#616e7c;margin:0 0 20px}
.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:12px}
.card{background:#fff;border:1px solid #e4e7eb;border-radius:8px;padding:14px 16px}
.card .k{color:#616e7c;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:22px;font-weight:600;margin-top:2px}
.bad{color:#c62828} .good{color:#2e7d32}
table{width:100%;border-collapse:collapse;background:#fff;border:1px solid #e4e7eb;
border-radius:8px;overflow:hidden}
th,td{padding:8px 12px;border-bottom:1px solid #eef0f2;text-align:left}
th{background:#f0f2f5;font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#52606d}
td.n{text-align:right;font-variant-numeric:tabular-nums}
tr:last-child td{border-bottom:none}
.pill{display:inline-block;padding:1px 9px;border-radius:10px;font-size:12px;font-weight:600}
.pill.bad{background:#fdecea} .pill.good{background:#e8f5e9}
.bar{position:relative;height:8px;width:140px;background:#eef0f2;border-radius:4px}
.bar i{position:absolute;left:0;top:0;bottom:0;border-radius:4px}
.bar b{position:absolute;top:-3px;bottom:-3px;width:2px;background:#1f2933}
.charts{display:grid;grid-template-columns:1fr 1fr;gap:16px}
.chart{background:#fff;border:1px solid #e4e7eb;border-radius:8px;padding:12px 14px}
.chart h3{margin:0 0 2px;font-size:15px} .chart p{margin:0 0 6px;color:#616e7c;font-size:12px}
.legend span{display:inline-block;width:10px;height:10px;border-radius:2px;margin:0 4px 0 10px}
footer{margin-top:32px;color:#7b8794;font-size:12px}
"""


def render_html(report: DriftReport, reference_label: str = "reference",
                current_label: str = "current") -> str:
    """A self-contained HTML page: summary, a table of every feature, charts of drifted ones."""
    e = html.escape
    drifted = [f for f in report.features if f.drifted]
    verdict = ('<span class="bad">Drift</span>' if drifted else
               '<span class="good">No drift</span>')
    cards = [
        ("Verdict", verdict),
        ("Drifted features", f"{len(drifted)} / {len(report.features)}"),
        ("Method", e(report.method) + f' <small style="font-size:13px;color:#616e7c">'
                   f'threshold {e(_num(report.threshold))}</small>'),
        ("Rows", f"{report.reference_rows:,} → {report.current_rows:,}"),
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Drift report: {e(current_label)} vs {e(reference_label)}</title>",
        f"<style>{CSS}</style></head><body><main>",
        "<h1>Data drift report</h1>",
        f'<p class="sub">{e(current_label)} compared with {e(reference_label)} '
        f"({'a reference profile' if report.reference_kind == 'profile' else 'a dataset'}) "
        f"· {e(METHOD_NAMES.get(report.method, report.method))}</p>",
        '<div class="cards">',
        *(f'<div class="card"><div class="k">{k}</div><div class="v">{v}</div></div>'
          for k, v in cards),
        "</div>",
        "<h2>Features</h2>",
        _table(report),
    ]
    if drifted:
        parts.append(f"<h2>Drifted features ({len(drifted)})</h2>")
        parts.append(f'<p class="sub legend">Share of rows per bin:<span style="background:'
                     f'{REF_COLOUR}"></span>{e(reference_label)}<span style="background:'
                     f'{CUR_COLOUR}"></span>{e(current_label)}</p>')
        parts.append('<div class="charts">')
        for f in _ordered(report):
            if f.drifted:
                parts.append(_chart_card(f))
        parts.append("</div>")
    parts.append(f"<footer>{_explain(report.method)}</footer>")
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


def _explain(method: str) -> str:
    rule = ("a feature drifts when the p-value is below the threshold"
            if method in P_VALUE_METHODS else
            "a feature drifts when the statistic is above the threshold")
    return (f"Generated by mlspec drift. Method {html.escape(method)}: {rule}. KS and "
            "Wasserstein fall back to chi-square and Jensen–Shannon on categorical features. "
            "Numeric bins for PSI, JS and chi-square are the reference's deciles.")


def _table(report: DriftReport) -> str:
    e = html.escape
    rows = []
    for f in _ordered(report):
        pill = ('<span class="pill bad">drift</span>' if f.drifted
                else '<span class="pill good">ok</span>')
        rows.append(
            f"<tr><td><b>{e(f.name)}</b></td><td>{e(f.kind)}</td><td>{e(f.method)}</td>"
            f'<td class="n">{e(_num(f.statistic))}</td><td class="n">{e(_num(f.p_value))}</td>'
            f'<td class="n">{e(_num(f.threshold))}</td><td>{_bar(f)}</td><td>{pill}</td></tr>')
    return ("<table><thead><tr><th>Feature</th><th>Type</th><th>Method</th><th>Statistic</th>"
            "<th>p-value</th><th>Threshold</th><th>vs threshold</th><th></th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _bar(f: FeatureDrift) -> str:
    """How far the feature is towards (or past) its threshold; the mark is the threshold."""
    ratio = _severity(f)
    width = max(0.0, min(ratio / 2.0, 1.0)) * 100  # the threshold sits in the middle
    colour = "#e53935" if f.drifted else "#43a047"
    return (f'<div class="bar"><i style="width:{width:.1f}%;background:{colour}"></i>'
            f'<b style="left:50%"></b></div>')


def _chart_card(f: FeatureDrift) -> str:
    e = html.escape
    detail = f"{e(f.method)} = {e(_num(f.statistic))}"
    if f.p_value is not None:
        detail += f", p = {e(_num(f.p_value))}"
    detail += f" (threshold {e(_num(f.threshold))})"
    chart = f.chart or {}
    if "median" in chart:
        a, b = chart["median"]
        detail += f" · median {e(_num(a))} → {e(_num(b))}"
    svg = (_numeric_svg(chart) if chart.get("type") == "numeric" else
           _categorical_svg(chart) if chart.get("type") == "categorical" else
           '<p>No chart data.</p>')
    return f'<div class="chart"><h3>{e(f.name)}</h3><p>{detail}</p>{svg}</div>'


W, H, PAD_L, PAD_R, PAD_T, PAD_B = 500, 230, 44, 10, 10, 40


def _shares(counts: list[int]) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def _axis(max_share: float) -> tuple[list[str], float]:
    """Horizontal grid lines and labels for shares up to ``max_share``."""
    top = max(max_share, 1e-9) * 1.1
    step = _nice_step(top / 4)
    lines, y, v = [], 0.0, 0.0
    plot_h = H - PAD_T - PAD_B
    while v <= top + 1e-12:
        y = PAD_T + plot_h * (1 - v / top)
        lines.append(f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#eef0f2"/><text x="{PAD_L - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end" font-size="10" fill="#7b8794">{v * 100:.0f}%</text>')
        v += step
    return lines, top


def _nice_step(raw: float) -> float:
    exponent = math.floor(math.log10(raw)) if raw > 0 else -2
    for m in (1, 2, 2.5, 5, 10):
        if m * 10 ** exponent >= raw:
            return m * 10 ** exponent
    return 10 ** (exponent + 1)


def _numeric_svg(chart: dict[str, Any]) -> str:
    edges = chart["edges"]
    ref, cur = _shares(chart["reference"]), _shares(chart["current"])
    widths = [max(edges[i + 1] - edges[i], 1e-300) for i in range(len(edges) - 1)]
    # Unequal bins (a profile's deciles) are drawn as densities so areas stay honest.
    equal = max(widths) - min(widths) <= 1e-9 * max(abs(edges[0]), abs(edges[-1]), 1)
    if not equal:
        span = edges[-1] - edges[0]
        ref = [r * span / w / len(widths) for r, w in zip(ref, widths, strict=True)]
        cur = [c * span / w / len(widths) for c, w in zip(cur, widths, strict=True)]
    lines, top = _axis(max(ref + cur))
    if not equal:
        lines.append(f'<text x="{W - PAD_R}" y="{PAD_T + 10}" text-anchor="end" font-size="10" '
                     'fill="#7b8794">density over the reference\'s decile bins</text>')
    plot_w, plot_h = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    lo, hi = edges[0], edges[-1]

    def x(v: float) -> float:
        return PAD_L + plot_w * (v - lo) / (hi - lo)

    def bars(shares: list[float], colour: str, opacity: float) -> list[str]:
        out = []
        for i, s in enumerate(shares):
            h = plot_h * s / top
            out.append(f'<rect x="{x(edges[i]):.1f}" y="{PAD_T + plot_h - h:.1f}" '
                       f'width="{max(x(edges[i + 1]) - x(edges[i]) - 0.5, 0.5):.1f}" '
                       f'height="{h:.1f}" fill="{colour}" fill-opacity="{opacity}"/>')
        return out

    ticks = []
    for i in range(5):
        v = lo + (hi - lo) * i / 4
        ticks.append(f'<text x="{x(v):.1f}" y="{H - PAD_B + 16}" text-anchor="middle" '
                     f'font-size="10" fill="#7b8794">{html.escape(_num(v, 3))}</text>')
    # Current as an outlined step over the filled reference: both stay readable where they
    # overlap.
    step = [f"M{x(edges[0]):.1f},{PAD_T + plot_h:.1f}"]
    for i, s in enumerate(cur):
        y = PAD_T + plot_h * (1 - s / top)
        step.append(f"L{x(edges[i]):.1f},{y:.1f}L{x(edges[i + 1]):.1f},{y:.1f}")
    step.append(f"L{x(edges[-1]):.1f},{PAD_T + plot_h:.1f}")
    outline = (f'<path d="{"".join(step)}" fill="{CUR_COLOUR}" fill-opacity="0.18" '
               f'stroke="{CUR_COLOUR}" stroke-width="2" stroke-linejoin="round"/>')
    return (f'<svg viewBox="0 0 {W} {H}" width="100%" role="img" '
            f'xmlns="http://www.w3.org/2000/svg">{"".join(lines)}'
            f'{"".join(bars(ref, REF_COLOUR, 0.5))}{outline}'
            f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{PAD_T + plot_h}" y2="{PAD_T + plot_h}" '
            f'stroke="#9aa5b1"/>{"".join(ticks)}</svg>')


def _categorical_svg(chart: dict[str, Any]) -> str:
    labels = chart["labels"]
    ref, cur = _shares(chart["reference"]), _shares(chart["current"])
    order = sorted(range(len(labels)), key=lambda i: -max(ref[i], cur[i]))[:MAX_CATEGORIES]
    hidden = len(labels) - len(order)
    lines, top = _axis(max([ref[i] for i in order] + [cur[i] for i in order] + [1e-9]))
    plot_w, plot_h = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    slot = plot_w / max(len(order), 1)
    bar = slot * 0.38
    out = []
    for k, i in enumerate(order):
        x0 = PAD_L + k * slot + slot * 0.12
        for j, (share, colour) in enumerate(((ref[i], REF_COLOUR), (cur[i], CUR_COLOUR))):
            h = plot_h * share / top
            out.append(f'<rect x="{x0 + j * bar:.1f}" y="{PAD_T + plot_h - h:.1f}" '
                       f'width="{bar:.1f}" height="{h:.1f}" fill="{colour}"/>')
        label = labels[i] if len(labels[i]) <= 12 else labels[i][:11] + "…"
        out.append(f'<text x="{x0 + bar:.1f}" y="{H - PAD_B + 16}" text-anchor="middle" '
                   f'font-size="10" fill="#52606d">{html.escape(label)}</text>')
    note = (f'<text x="{W - PAD_R}" y="{H - 6}" text-anchor="end" font-size="10" '
            f'fill="#7b8794">+{hidden} more categories</text>') if hidden else ""
    return (f'<svg viewBox="0 0 {W} {H}" width="100%" role="img" '
            f'xmlns="http://www.w3.org/2000/svg">{"".join(lines)}{"".join(out)}'
            f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{PAD_T + plot_h}" y2="{PAD_T + plot_h}" '
            f'stroke="#9aa5b1"/>{note}</svg>')
