"""Render eval reports: a markdown table for people, JSON for machines, a PNG chart for comparisons."""

from __future__ import annotations

import json
from pathlib import Path

COLUMNS = ("hit@1", "hit@5", "mrr", "ndcg@10", "recall@100", "answer_contains", "first_sentence_contains",
           "answer_words_median", "token_f1", "citation_precision", "citation_validity", "abstention_accuracy",
           "false_abstention_rate")
CHART_METRICS = ("hit@1", "ndcg@10", "recall@100", "answer_contains", "first_sentence_contains", "token_f1",
                 "abstention_accuracy")
# Plotted on its own axis: a word count does not share the 0..1 scale of the rates.
CHART_COUNTS = ("answer_words_median",)


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.1f}" if v > 1 else f"{v:.3f}"
    return str(v)


def markdown_table(reports: list[dict]) -> str:
    cols = [c for c in COLUMNS if any(c in r["summary"] for r in reports)]
    head = "| config | n | " + " | ".join(cols) + " | p50 ms | p95 ms |"
    sep = "|" + "---|" * (len(cols) + 4)
    lines = [head, sep]
    for r in reports:
        s = r["summary"]
        lat = s.get("latency_ms", {}).get("total") or s.get("latency_ms", {}).get("wall") or {}
        lines.append(f"| {r['config']['name']} | {s['n']} | " + " | ".join(_fmt(s.get(c)) for c in cols)
                     + f" | {_fmt(lat.get('p50'))} | {_fmt(lat.get('p95'))} |")
    return "\n".join(lines)


def kind_table(report: dict) -> str:
    if not report.get("by_kind"):
        return ""
    cols = [c for c in COLUMNS if any(c in s for s in report["by_kind"].values())]
    lines = ["| kind | n | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 2)]
    for kind, s in report["by_kind"].items():
        lines.append(f"| {kind} | {s['n']} | " + " | ".join(_fmt(s.get(c)) for c in cols) + " |")
    return "\n".join(lines)


def write_json(report: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")


def draw_chart(reports: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in CHART_METRICS if any(m in r["summary"] for r in reports)]
    counts = [m for m in CHART_COUNTS if any(m in r["summary"] for r in reports)]
    fig, axes = plt.subplots(1, 2 if counts else 1, figsize=(max(6, 1.6 * len(metrics)) + 2.5 * bool(counts), 4),
                             gridspec_kw={"width_ratios": [len(metrics), max(len(counts), 1)]} if counts else None,
                             squeeze=False)
    width = 0.8 / max(len(reports), 1)
    for ax, names, fmt in ((axes[0][0], metrics, "%.2f"), *(((axes[0][1], counts, "%.0f"),) if counts else ())):
        for i, r in enumerate(reports):
            vals = [r["summary"].get(m) or 0 for m in names]
            xs = [j + i * width for j in range(len(names))]
            bars = ax.bar(xs, vals, width, label=r["config"]["name"])
            ax.bar_label(bars, fmt=fmt, fontsize=7)
        ax.set_xticks([j + width * (len(reports) - 1) / 2 for j in range(len(names))],
                      [n.replace("_", " ") for n in names], rotation=20, ha="right", fontsize=8)
    axes[0][0].set_ylim(0, 1.05)
    if counts:
        axes[0][1].set_title("words", fontsize=9)
    axes[0][0].set_title(f"{Path(reports[0]['dataset']).name}: configurations side by side")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
