#!/usr/bin/env python3
"""Plot a zo2 metrics file (`zo2 train --metrics FILE`, JSON lines) as PNG curves.

  python3 scripts/plot_metrics.py run.metrics.jsonl [--out run.png] [--smooth 50]

Training records ({"step", "loss", ...}) give the train loss (the +eps branch's loss, as MeZO logs it),
drawn raw and as a moving average; evaluation records ({"step", "eval_loss", "eval_accuracy"/"eval_f1"})
give the dev loss and the dev metric on a second axis. Needs matplotlib (pip install matplotlib);
without it the script says so and exits with status 2.
"""
import argparse
import json
import sys


def read(path):
    train, evals = [], []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{n}: invalid JSON: {e}")
            if "eval_loss" in r:
                evals.append(r)
            elif "loss" in r:
                train.append(r)
    return train, evals


def moving_average(xs, k):
    out, acc = [], 0.0
    for i, x in enumerate(xs):
        acc += x
        if i >= k:
            acc -= xs[i - k]
        out.append(acc / min(i + 1, k))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("metrics", help="metrics JSON lines written by zo2 train --metrics")
    ap.add_argument("--out", help="PNG file (default: the metrics file with .png)")
    ap.add_argument("--smooth", type=int, default=50, help="moving-average window of the train loss (steps)")
    ap.add_argument("--title", default=None)
    args = ap.parse_args()
    train, evals = read(args.metrics)
    if not train and not evals:
        sys.exit(f"{args.metrics}: no training or evaluation records")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot_metrics.py needs matplotlib: pip install matplotlib (or apt-get install python3-matplotlib)",
              file=sys.stderr)
        sys.exit(2)
    out = args.out or (args.metrics.rsplit(".", 1)[0] + ".png")

    fig, ax = plt.subplots(figsize=(9, 5))
    if train:
        steps = [r["step"] for r in train]
        loss = [r["loss"] for r in train]
        ax.plot(steps, loss, color="tab:blue", alpha=0.25, linewidth=0.8, label="train loss")
        if len(loss) > 1 and args.smooth > 1:
            ax.plot(steps, moving_average(loss, args.smooth), color="tab:blue", linewidth=1.6,
                    label=f"train loss ({args.smooth}-step mean)")
    if evals:
        ax.plot([r["step"] for r in evals], [r["eval_loss"] for r in evals], "o-", color="tab:orange",
                label="dev loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    lines, labels = ax.get_legend_handles_labels()
    metric = next((m for m in ("eval_accuracy", "eval_f1") if any(m in r for r in evals)), None)
    if metric:
        ax2 = ax.twinx()
        pts = [(r["step"], r[metric]) for r in evals if metric in r]
        ax2.plot([p[0] for p in pts], [p[1] for p in pts], "s--", color="tab:green", label="dev " + metric[5:])
        ax2.set_ylabel(metric[5:])
        l2, lab2 = ax2.get_legend_handles_labels()
        lines, labels = lines + l2, labels + lab2
    ax.legend(lines, labels, loc="best")
    ax.set_title(args.title or args.metrics)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"{out}: {len(train)} training and {len(evals)} evaluation records")


if __name__ == "__main__":
    main()
