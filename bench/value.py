"""Benchmark the value models: BG/NBD + Gamma-Gamma fit and scoring at 100k and 1M customers.

Synthetic customer summaries are drawn from the models' own generative processes with known
parameters (``models.clv.sample_bgnbd``, ``models.clv.sample_gamma_gamma``; customers acquired
uniformly over two years, times in days), so the fit can also be checked against the truth. Each
size is fitted and scored in its own fresh process by guanxi's ``models.clv``:

- **fit BG/NBD** and **fit Gamma-Gamma** (maximum likelihood, analytic gradients);
- **score**: P(alive), expected purchases over the horizon and expected order value for every
  customer;
- **clv**: probabilistic CLV over the horizon in 30-day discounting steps (for information: it
  evaluates the expected purchases once per step).

The reference is the archived ``lifetimes`` package (``BetaGeoFitter``, ``GammaGammaFitter``,
the same three scores) on the same 100k summaries in the same run, in a throw-away virtualenv
(created with ``pip install lifetimes`` under ``--lifetimes-venv`` when missing). When it does not
install or run, the report says so with the error. Ratios are lifetimes / guanxi (above 1: guanxi
is faster or leaner). Memory is the peak RSS increment of each step over the RSS before it
(``bench/_measure.py``). Nothing passes or fails on time; the target "1M customers fitted in
under a minute" is reported as met or not met.

Usage::

    .venv/bin/python -m bench.value [--sizes 100000 1000000] [--horizon-days 365]
                                    [--lifetimes-venv DIR | --no-lifetimes]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench._measure import measured

__all__ = ["main"]

TRUTH = {
    "bgnbd": {"r": 0.25, "alpha": 28.0, "a": 0.8, "b": 2.5},  # CDNOW-like, in days
    "gamma_gamma": {"p": 6.0, "q": 3.7, "gamma": 15.0},
}
FIT_TARGET_S = 60.0
"""BG/NBD + Gamma-Gamma fit of 1M customers should take less than this."""
REFERENCE_SIZE = 100_000
ROOT = Path(__file__).resolve().parents[1]


def _summaries(root: Path, n: int, seed: int) -> Path:
    """Draw ``n`` customer summaries once per (n, seed); later runs reuse the file."""
    from models.clv import sample_bgnbd, sample_gamma_gamma

    path = root / f"summaries-n{n}-s{seed}.npz"
    if not path.exists():
        rng = np.random.default_rng(seed)
        drawn = sample_bgnbd(rng.integers(1, 731, n).astype(float), rng=rng, **TRUTH["bgnbd"])
        value = sample_gamma_gamma(drawn["frequency"], rng=rng, **TRUTH["gamma_gamma"])
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, suffix=".npz", delete=False) as handle:
            np.savez(
                handle,
                frequency=drawn["frequency"],
                recency=drawn["recency"],
                T=drawn["T"],
                monetary_value=value,
            )
        os.replace(handle.name, path)
    return path


def _child(path: Path, horizon: float) -> dict[str, Any]:
    """Fit and score with guanxi's models in this (fresh) process; return the figures."""
    from models.clv import BGNBD, GammaGamma, probabilistic_clv

    data = np.load(path)
    x, tx, t, value = (data[k] for k in ("frequency", "recency", "T", "monetary_value"))
    bg, fit_bg = measured(lambda: BGNBD().fit(x, tx, t))
    gg, fit_gg = measured(lambda: GammaGamma().fit(x, value))

    def score() -> dict[str, np.ndarray]:
        return {
            "alive": bg.p_alive(x, tx, t),
            "purchases": bg.conditional_expected_purchases(horizon, x, tx, t),
            "order_value": gg.conditional_expected_value(x, value),
        }

    scores, scoring = measured(score)
    _, clv = measured(
        lambda: probabilistic_clv(
            bg, x, tx, t, scores["order_value"], horizon_days=horizon, annual_discount_rate=0.1
        )
    )
    return {
        "engine": "guanxi",
        "customers": int(x.size),
        "repeat_buyers": int((x > 0).sum()),
        "fit_bgnbd": {**fit_bg, "iterations": bg.n_iterations_},
        "fit_gamma_gamma": fit_gg,
        "score": scoring,
        "clv": clv,
        "bgnbd": bg.params_,
        "gamma_gamma": gg.params_,
        "correlation": gg.spend_frequency_correlation_,
        "sample": {k: v[:1000].tolist() for k, v in scores.items()},
    }


def _run(cmd: list[str], timeout: float) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "no output")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _lifetimes_python(venv: Path) -> Path:
    """The Python of a throw-away venv with ``lifetimes``, created when missing."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating a throw-away virtualenv with lifetimes in {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "lifetimes"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"pip install lifetimes failed: {done.stderr.strip()[-500:]}")
    return python


def _versions(python: Path) -> str:
    code = (
        "import lifetimes, numpy, pandas, scipy; print(f'lifetimes {lifetimes.__version__}, "
        "numpy {numpy.__version__}, pandas {pandas.__version__}, scipy {scipy.__version__}')"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return done.stdout.strip() or done.stderr.strip().splitlines()[-1]


def _line(label: str, figures: dict[str, Any]) -> str:
    return (
        f"  {label:<22} wall {figures['wall_s']:8.2f} s  cpu {figures['cpu_s']:8.2f} s  "
        f"peak +{figures['increment_mb']:7,.0f} MB (RSS before {figures['baseline_mb']:,.0f} MB)"
    )


def _report_size(result: dict[str, Any]) -> None:
    print(f"{result['customers']:,} customers ({result['repeat_buyers']:,} repeat buyers), guanxi:")
    for stage in ("fit_bgnbd", "fit_gamma_gamma", "score", "clv"):
        print(_line(stage, result[stage]))
    fit = result["fit_bgnbd"]["wall_s"] + result["fit_gamma_gamma"]["wall_s"]
    print(
        f"  fit BG/NBD + Gamma-Gamma: {fit:.2f} s ({result['fit_bgnbd']['iterations']} "
        "L-BFGS-B iterations for BG/NBD)"
    )
    for model in ("bgnbd", "gamma_gamma"):
        pairs = ", ".join(
            f"{k} {v:.4g} (true {TRUTH[model][k]:g})" for k, v in result[model].items()
        )
        print(f"  {model:<12} {pairs}")
    print(f"  spend-frequency correlation {result['correlation']:+.3f} (independent by design)")


def _compare(ours: dict[str, Any], ref: dict[str, Any]) -> None:
    print(
        f"against lifetimes on the same {ours['customers']:,} summaries (ratio lifetimes / guanxi):"
    )
    for stage in ("fit_bgnbd", "fit_gamma_gamma", "score"):
        print(_line(f"lifetimes {stage}", ref[stage]))
    for stage in ("fit_bgnbd", "fit_gamma_gamma", "score"):
        speed = ref[stage]["wall_s"] / ours[stage]["wall_s"]
        cpu = ref[stage]["cpu_s"] / ours[stage]["cpu_s"]
        mine, theirs = max(ours[stage]["increment_mb"], 1.0), max(ref[stage]["increment_mb"], 1.0)
        print(
            f"  {stage:<16} speed ratio {speed:6.1f}x wall, {cpu:6.1f}x cpu   "
            f"memory ratio {theirs / mine:6.1f}x (peak increments, 1 MB floor)"
        )
    for model in ("bgnbd", "gamma_gamma"):
        worst = max(abs(ref[model][k] / v - 1) for k, v in ours[model].items())
        print(f"  {model:<16} largest relative parameter difference {worst:.2e}")
    for key in ("alive", "purchases", "order_value"):
        a, b = np.asarray(ours["sample"][key]), np.asarray(ref["sample"][key])
        print(
            f"  {key:<16} largest difference on the first 1,000 customers "
            f"{np.max(np.abs(a - b)):.2e}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[REFERENCE_SIZE, 1_000_000])
    parser.add_argument("--horizon-days", type=float, default=365.0)
    parser.add_argument("--seed", type=int, default=42)
    tmp = Path(tempfile.gettempdir())
    parser.add_argument("--data", type=Path, default=tmp / "guanxi-bench-value")
    parser.add_argument("--lifetimes-venv", type=Path, default=tmp / "guanxi-bench-lifetimes")
    parser.add_argument("--no-lifetimes", action="store_true")
    parser.add_argument("--timeout", type=float, default=3600.0, help="per child, seconds")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.horizon_days)))
        return

    print(f"date              {dt.date.today()}  ({os.cpu_count()} cores)")
    print(
        f"data              BG/NBD {TRUTH['bgnbd']}, Gamma-Gamma {TRUTH['gamma_gamma']}; "
        f"T uniform on 1-730 days; seed {args.seed}"
    )
    print(f"horizon           {args.horizon_days:g} days")
    print(f"load average      {' '.join(f'{x:.1f}' for x in os.getloadavg())} (before)")
    results = {}
    for n in args.sizes:
        path = _summaries(args.data, n, args.seed)
        cmd = [sys.executable, "-m", "bench.value", "--child", str(path)]
        results[n] = _run([*cmd, "--horizon-days", str(args.horizon_days)], args.timeout)
        _report_size(results[n])
    if args.no_lifetimes:
        print("lifetimes         skipped (--no-lifetimes)")
    elif REFERENCE_SIZE not in results:
        print(f"lifetimes         skipped: the reference runs on {REFERENCE_SIZE:,} summaries")
    else:
        try:
            python = _lifetimes_python(args.lifetimes_venv)
            print(f"lifetimes         {_versions(python)}")
            child = [str(python), str(ROOT / "bench" / "_lifetimes_child.py")]
            path = _summaries(args.data, REFERENCE_SIZE, args.seed)
            reference = _run([*child, str(path), str(args.horizon_days)], args.timeout)
            _compare(results[REFERENCE_SIZE], reference)
        except (RuntimeError, OSError, subprocess.SubprocessError) as error:
            print(f"lifetimes         could not run: {error}")
    print(f"load average      {' '.join(f'{x:.1f}' for x in os.getloadavg())} (after)")
    largest = max(results)
    fit = results[largest]["fit_bgnbd"]["wall_s"] + results[largest]["fit_gamma_gamma"]["wall_s"]
    met = "met" if fit < FIT_TARGET_S and largest >= 1_000_000 else "NOT met"
    if largest < 1_000_000:
        met = "not measured (no 1M size)"
    cpu = results[largest]["fit_bgnbd"]["cpu_s"] + results[largest]["fit_gamma_gamma"]["cpu_s"]
    print(
        f"target            1M customers fitted in under {FIT_TARGET_S:g} s: {met} "
        f"({largest:,} customers: {fit:.2f} s wall, {cpu:.2f} s cpu)"
    )


if __name__ == "__main__":
    main()
