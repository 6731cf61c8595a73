"""Render eval reports: a markdown table for people, JSON for machines, a PNG chart for comparisons."""

from __future__ import annotations

import json
from pathlib import Path

COLUMNS = ("hit@1", "hit@5", "mrr", "ndcg@10", "recall@100", "answer_contains", "token_f1",
           "citation_precision", "citation_validity", "abstention_accuracy", "false_abstention_rate")
CHART_METRICS = ("hit@1", "ndcg@10", "recall@100", "answer_contains", "token_f1", "abstention_accuracy")


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


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
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(metrics)), 4))
    width = 0.8 / max(len(reports), 1)
    for i, r in enumerate(reports):
        vals = [r["summary"].get(m) or 0 for m in metrics]
        xs = [j + i * width for j in range(len(metrics))]
        bars = ax.bar(xs, vals, width, label=r["config"]["name"])
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks([j + width * (len(reports) - 1) / 2 for j in range(len(metrics))], metrics)
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{Path(reports[0]['dataset']).name}: configurations side by side")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
