"""Exact path-dependent TreeSHAP for XGBoost boosters, compiled with numba.

:func:`tree_shap` parses a booster once (``booster.save_raw("json")``) into flat arrays and caches
them while the booster lives; :meth:`TreeShap.contributions` then gives, for float32 rows, the
matrix ``booster.predict(DMatrix(X), pred_contribs=True)`` returns: one column per feature in the
booster's margin (log-odds), then the bias (the base margin plus every tree's cover-weighted mean
leaf), each row summing to the row's margin. The values are the exact path-dependent TreeSHAP
values XGBoost and ``shap.TreeExplainer`` compute; only the order of floating-point operations
differs (sums in float64 here, float32 in XGBoost).

The algorithm
-------------
Take one tree and one leaf of value ``v``; let ``P`` be the distinct features split on its path
and, for each ``i`` in ``P``, ``z_i`` the product of the cover fractions of the path's splits on
``i`` (the share of the training data that follows them) and ``o_i`` 1 if the row follows all of
them, else 0. TreeSHAP credits feature ``j`` with the Shapley sum::

    phi_j = v (o_j - z_j) sum_{S ⊆ P-j} |S|! (|P|-|S|-1)! / |P|!  prod_{i in S} o_i prod_{P-S-j} z_i

The Shapley weight is the Beta integral ``∫_0^1 t^|S| (1 - t)^(|P|-1-|S|) dt``, so the whole sum
is the integral of a polynomial of degree ``|P| - 1 < depth``::

    phi_j = v (o_j - z_j) ∫_0^1 prod_{i in P - j} (z_i (1 - t) + o_i t) dt

and Gauss-Legendre quadrature with ``ceil(depth / 2)`` nodes ``t_q`` integrates it *exactly*
(3 nodes up to depth 6, 4 up to depth 8). This is Linear TreeSHAP's idea (Yu, Bhattacharya et
al., "Linear TreeSHAP", NeurIPS 2022) with quadrature nodes in place of its interpolation points.
Over a whole tree the work is linear in its nodes. In pre-order each node's path product
``G(t_q)`` is its parent's times one factor for the edge into it (a feature met again swaps its
earlier factor for the merged one); a leaf multiplies in its value. In reverse pre-order each node
hands its leaves' sum ``S(t_q)`` to its parent, and the edge into it credits its split feature
with ``sum_q w_q (A_e - A_prev)(t_q) S(t_q)``, ``A = (o - z) / (z (1 - t) + o t)`` taken at this
split and at the feature's previous split on the path (0 if none): along each leaf's path these
terms telescope to the feature's last split, the formula above. Every per-edge quantity depends
on the row only through two bits (did the row follow the feature's previous split on the path,
and this one too), so parsing tabulates them for the three possible states and a row costs about
``3 * nodes * points`` multiply-adds per tree, with no allocation and no recursion.

Why this method, and the two kernels
------------------------------------
The project's models are 50-300 trees of depth 2-7. The classic algorithm (``pred_contribs``,
``shap.TreeExplainer``, Fast TreeSHAP v1) costs ``O(leaves * depth^2)`` per tree and row. Fast
TreeSHAP v2 gets ``O(leaves * depth)`` by precomputing ``leaves * 2^depth`` weights per tree; its
precomputation made its single rows slower than v1 (DESIGN.md: 9-17 ms a row) and its tables
double with each level of depth. The quadrature form has v2's per-row order
(``nodes * ceil(depth / 2)``) with tables of ``6 * points`` floats per node, built once at
parse time, so it wins at every model size; what changes with the batch is how the rows are fed
to it:

- ``_block_kernel`` (batches of more than :data:`ROW_KERNEL_MAX` rows) takes rows :data:`BLOCK`
  at a time with the trees outermost and the rows of the block as the innermost, vectorised loop:
  a tree's tables are read once per block instead of once per row.
- ``_row_kernel`` (a few rows, e.g. serving one customer) walks one row at a time through every
  table of the model. A block costs about the same for one row as for :data:`BLOCK`, so below
  :data:`ROW_KERNEL_MAX` rows (about where the two cost the same on the project's models) the row
  kernel is faster. ``bench/explain.py`` measures both ends (one-row latency, rows per second).

Large batches are split across threads in whole blocks (the kernels release the GIL).

XGBoost's semantics are kept exactly: a value goes left when ``x < split_condition`` compared in
float32, NaN follows the node's default child, covers are the nodes' ``sum_hessian``, and the bias
adds the base score in margin space (``logit(base_score)`` for logistic objectives, ``log`` for
Poisson, gamma and Tweedie, as is for squared-error and the other identity-link ones).

Compiling and caching
---------------------
Compiled kernels are cached by numba (``cache=True``), so a new process loads them instead of
compiling; :func:`warm_up` compiles or loads them ahead of the first explained row (the service
does it at start-up). Numba keeps the cache in ``__pycache__`` beside this module; where it cannot
write there (a read-only install, as in many containers) and ``NUMBA_CACHE_DIR`` is not set, this
module sets ``NUMBA_CACHE_DIR`` to :func:`numba_cache_dir` before the kernels are defined, so the
next process starts warm instead of compiling again.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numba
import numpy as np
import xgboost as xgb

__all__ = [
    "BLOCK",
    "MIN_ROWS_PER_THREAD",
    "ROW_KERNEL_MAX",
    "TreeShap",
    "WarmUp",
    "numba_cache_dir",
    "tree_shap",
    "warm_up",
]

BLOCK: Final = 64
"""Rows that go through one tree together in the block kernel (the vectorised loop's length)."""

ROW_KERNEL_MAX: Final = 8
"""Batches (and block remainders) of at most this many rows go through the row kernel."""

MIN_ROWS_PER_THREAD: Final = 512
"""Rows each thread must get before a batch is split across threads."""

_STATES: Final = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0))
"""Per-edge states as (followed the feature's previous split on the path, followed this one too);
an edge whose feature was not split before counts as having followed a split of cover 1."""

_LOGIT_BASE: Final = frozenset({"binary:logistic", "reg:logistic"})
_LOG_BASE: Final = frozenset({"count:poisson", "reg:gamma", "reg:tweedie"})
_IDENTITY_BASE: Final = frozenset(
    {
        "binary:logitraw",
        "rank:map",
        "rank:ndcg",
        "rank:pairwise",
        "reg:absoluteerror",
        "reg:pseudohubererror",
        "reg:squarederror",
        "reg:squaredlogerror",
    }
)
"""Objectives by how XGBoost turns the stored base score into the margin it starts from."""


@dataclass(frozen=True, eq=False)
class TreeShap:
    """A booster's trees as flat arrays, ready for :meth:`contributions`.

    Nodes of all trees are concatenated, each tree in pre-order (a node, its left subtree, its
    right subtree); node ``tree_offsets[t] + i`` is node ``i`` of tree ``t``, and indices stored
    per node (``parent``, ``prev``) count within the tree. Build it with :func:`tree_shap`.

    Parameters
    ----------
    num_features : int
        Columns of the model input.
    bias : float
        The base margin plus each tree's cover-weighted mean leaf value (the last output column).
    tree_offsets : numpy.ndarray
        int64, ``(trees + 1,)``: each tree's first node, then the total.
    feature : numpy.ndarray
        int32 per node: the feature the node splits on; -1 at a leaf.
    threshold : numpy.ndarray
        float32 per node: a row goes left when its value is ``< threshold``.
    default_left : numpy.ndarray
        bool per node: a missing (NaN) value goes left.
    value : numpy.ndarray
        float64 per node: the leaf value, 1 at internal nodes.
    is_leaf : numpy.ndarray
        float64 per node: 1 at a leaf, 0 elsewhere.
    parent : numpy.ndarray
        int32 per node: its parent (0 at a root, which has no edge).
    prev : numpy.ndarray
        int32 per node: the nearest ancestor entered through a split on the same feature as the
        edge into this node, or 0 (the root, always followed) if there is none.
    edge_feature : numpy.ndarray
        int32 per node: the feature of the split leading to it (0 at a root).
    is_left : numpy.ndarray
        bool per node: it is its parent's left child.
    factor : numpy.ndarray
        float64, ``(nodes, 3, points)``: per edge state (see :data:`_STATES`) and quadrature node,
        the ratio of the edge's path factor ``z (1 - t) + o t`` to the factor it replaces.
    weight : numpy.ndarray
        float64, ``(nodes, 3, points)``: per state and node, the quadrature weight times
        ``A_e - A_prev``.
    """

    num_features: int
    bias: float
    tree_offsets: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    default_left: np.ndarray
    value: np.ndarray
    is_leaf: np.ndarray
    parent: np.ndarray
    prev: np.ndarray
    edge_feature: np.ndarray
    is_left: np.ndarray
    factor: np.ndarray
    weight: np.ndarray

    @property
    def num_trees(self) -> int:
        """Number of trees."""
        return len(self.tree_offsets) - 1

    def contributions(self, X: np.ndarray, threads: int | None = None) -> np.ndarray:  # noqa: N803
        """Exact TreeSHAP values of the rows of ``X``, as ``pred_contribs`` returns them.

        Parameters
        ----------
        X : numpy.ndarray
            Shape ``(n, num_features)``; converted to C-ordered float32 (XGBoost compares in
            float32). NaN is a missing value.
        threads : int, optional
            Most threads to use (default: the CPUs this process may run on); a batch is split
            only into parts of at least :data:`MIN_ROWS_PER_THREAD` rows.

        Returns
        -------
        numpy.ndarray
            Shape ``(n, num_features + 1)``, float64: per feature its contribution to the margin
            (log-odds for a logistic objective), then the bias; each row sums to its margin.

        Raises
        ------
        ValueError
            If ``X`` is not two-dimensional with ``num_features`` columns.
        """
        x = np.ascontiguousarray(X, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.num_features:
            raise ValueError(
                f"TreeSHAP input must have shape (rows, {self.num_features}); got {x.shape}"
            )
        n = x.shape[0]
        out = np.zeros((n, self.num_features + 1), dtype=np.float64)
        out[:, -1] = self.bias
        if n == 0 or self.num_trees == 0:
            return out
        wanted = _available_cpus() if threads is None else max(1, int(threads))
        workers = max(1, min(wanted, n // MIN_ROWS_PER_THREAD))
        if workers == 1:
            self._add(x, out)
            return out
        blocks = -(-n // BLOCK)
        bounds = [min(n, BLOCK * (blocks * i // workers)) for i in range(workers + 1)]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            jobs = [
                pool.submit(self._add, x[lo:hi], out[lo:hi])
                for lo, hi in itertools.pairwise(bounds)
            ]
            for job in jobs:
                job.result()
        return out

    def _add(self, x: np.ndarray, out: np.ndarray) -> None:
        """Add the feature contributions of rows ``x`` into ``out`` (one thread)."""
        n = x.shape[0]
        rest = n % BLOCK
        blocked = n - rest if rest <= ROW_KERNEL_MAX else n
        tables = (
            self.tree_offsets,
            self.feature,
            self.threshold,
            self.default_left,
            self.value,
            self.is_leaf,
            self.parent,
            self.prev,
            self.edge_feature,
            self.is_left,
            self.factor,
            self.weight,
        )
        if blocked:
            _block_kernel(x[:blocked], out[:blocked], tables)
        if blocked < n:
            _row_kernel(x[blocked:], out[blocked:], tables)


def _writable(path: Path) -> bool:
    """Whether a file can be made in ``path`` (created if missing), as numba checks its cache."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return False
    return True


def numba_cache_dir(
    module_dir: Path | None = None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """Where numba should cache the kernels when it cannot write beside this module.

    Parameters
    ----------
    module_dir : Path, optional
        The directory of the module whose kernels are cached; default this module's.
    environ : mapping of str to str, optional
        The environment; default ``os.environ``.

    Returns
    -------
    Path or None
        None when numba needs no help: ``NUMBA_CACHE_DIR`` is set (numba uses it) or
        ``module_dir/__pycache__`` is writable (numba's own place). Otherwise the first writable
        of ``$GUANXI_HOME/cache/numba`` (when ``GUANXI_HOME`` is set: the service's volume, kept
        across restarts of a container), ``$XDG_CACHE_HOME/guanxi/numba`` (else
        ``$HOME/.cache/guanxi/numba``; either only when set to an absolute path) and
        ``guanxi-numba-<uid>`` in the temporary directory; None if none is (numba then refuses to
        define the kernels, naming the file).
    """
    env = os.environ if environ is None else environ
    here = Path(__file__).parent if module_dir is None else module_dir
    if env.get("NUMBA_CACHE_DIR") or _writable(here / "__pycache__"):
        return None
    places = [Path(env["GUANXI_HOME"]) / "cache" / "numba"] if env.get("GUANXI_HOME") else []
    # from the environment alone: a container's user often has no home (Path.home() raises)
    xdg, home = env.get("XDG_CACHE_HOME", ""), env.get("HOME", "")
    if os.path.isabs(xdg) or os.path.isabs(home):
        user_cache = Path(xdg) if os.path.isabs(xdg) else Path(home) / ".cache"
        places.append(user_cache / "guanxi" / "numba")
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    places.append(Path(tempfile.gettempdir()) / f"guanxi-numba-{uid}")
    return next((place.absolute() for place in places if _writable(place)), None)


_NUMBA_CACHE_DIR: Final = numba_cache_dir()
if _NUMBA_CACHE_DIR is not None:
    # read when the kernels below are defined; numba's compiler reloads its configuration from
    # the environment the same way before every compilation
    os.environ["NUMBA_CACHE_DIR"] = str(_NUMBA_CACHE_DIR)
    numba.core.config.reload_config()


def _available_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@numba.njit(nogil=True, cache=True)
def _widest(tree_offsets: np.ndarray) -> int:  # pragma: no cover - compiled
    """Most nodes in one tree."""
    width = 1
    for t in range(tree_offsets.shape[0] - 1):
        width = max(width, tree_offsets[t + 1] - tree_offsets[t])
    return width


@numba.njit(nogil=True, cache=True)
def _row_kernel(
    x: np.ndarray, out: np.ndarray, tables: tuple[np.ndarray, ...]
) -> None:  # pragma: no cover - compiled; run through TreeShap.contributions
    """Add the contributions of each row of ``x`` to ``out``, one row at a time.

    ``tables`` holds :class:`TreeShap`'s arrays in the order of its fields, ``tree_offsets``
    to ``weight``.
    """
    (tree_offsets, feature, threshold, default_left, value, is_leaf) = tables[:6]
    (parent, prev, edge_feature, is_left, factor, weight) = tables[6:]
    points = factor.shape[2]
    width = _widest(tree_offsets)
    g = np.empty((width, points))  # path products G(t_q), then leaf sums S(t_q)
    s = np.empty((width, points))
    took = np.empty(width, dtype=np.bool_)  # the row followed the edge into the node
    state = np.empty(width, dtype=np.int64)
    left = np.empty(width, dtype=np.bool_)  # at an internal node: the row goes left
    for r in range(x.shape[0]):
        row = x[r]
        phi = out[r]
        for t in range(tree_offsets.shape[0] - 1):
            base = tree_offsets[t]
            size = tree_offsets[t + 1] - base
            for q in range(points):
                g[0, q] = 1.0
                s[0, q] = 0.0
            took[0] = True
            for c in range(size):
                node = base + c
                if c > 0:
                    p = parent[node]
                    had = took[prev[node]]
                    follows = had and left[p] == is_left[node]
                    took[c] = follows
                    st = (1 if had else 0) + (1 if follows else 0)
                    state[c] = st
                    for q in range(points):
                        v = g[p, q] * factor[node, st, q] * value[node]
                        g[c, q] = v
                        s[c, q] = v * is_leaf[node]
                f = feature[node]
                if f >= 0:
                    fv = row[f]
                    left[c] = default_left[node] if math.isnan(fv) else fv < threshold[node]
            for c in range(size - 1, 0, -1):
                node = base + c
                p = parent[node]
                st = state[c]
                acc = 0.0
                for q in range(points):
                    acc += weight[node, st, q] * s[c, q]
                    s[p, q] += s[c, q]
                phi[edge_feature[node]] += acc


@numba.njit(nogil=True, cache=True)
def _block_kernel(
    x: np.ndarray, out: np.ndarray, tables: tuple[np.ndarray, ...]
) -> None:  # pragma: no cover - compiled; run through TreeShap.contributions
    """Add the contributions of the rows of ``x`` to ``out``, :data:`BLOCK` rows at a time.

    The arrays carry one lane per row of the block as their last axis, so every inner loop runs
    over the block's rows and vectorises; lanes past the last row compute values never read.
    Each lane does the floating-point operations of :func:`_row_kernel` in the same order, so a
    row gets bit-identical values whichever kernel, batch or thread explains it. ``tables`` as
    for :func:`_row_kernel`.
    """
    (tree_offsets, feature, threshold, default_left, value, is_leaf) = tables[:6]
    (parent, prev, edge_feature, is_left, factor, weight) = tables[6:]
    n, p_in = x.shape
    points = factor.shape[2]
    width = _widest(tree_offsets)
    xt = np.zeros((p_in, BLOCK), dtype=np.float32)
    phi = np.empty((p_in, BLOCK))
    acc = np.empty(BLOCK)
    g = np.empty((width, points, BLOCK))
    s = np.empty((width, points, BLOCK))
    took = np.empty((width, BLOCK), dtype=np.bool_)
    state = np.empty((width, BLOCK), dtype=np.int8)
    left = np.empty((width, BLOCK), dtype=np.bool_)
    for start in range(0, n, BLOCK):
        m = min(BLOCK, n - start)
        for f in range(p_in):
            for r in range(m):
                xt[f, r] = x[start + r, f]
            for r in range(BLOCK):
                phi[f, r] = 0.0
        for t in range(tree_offsets.shape[0] - 1):
            base = tree_offsets[t]
            size = tree_offsets[t + 1] - base
            for c in range(size):
                node = base + c
                f = feature[node]
                if f >= 0:
                    thr = threshold[node]
                    dl = default_left[node]
                    for r in range(BLOCK):
                        fv = xt[f, r]
                        left[c, r] = (fv < thr) or (dl and fv != fv)
            for q in range(points):
                for r in range(BLOCK):
                    g[0, q, r] = 1.0
            for r in range(BLOCK):
                took[0, r] = True
            for c in range(1, size):
                node = base + c
                pa = parent[node]
                pv = prev[node]
                il = is_left[node]
                for r in range(BLOCK):
                    had = took[pv, r]
                    follows = had and (left[pa, r] == il)
                    took[c, r] = follows
                    state[c, r] = had + follows
                leaf = is_leaf[node] > 0.0
                v = value[node]
                for q in range(points):
                    f0 = factor[node, 0, q]
                    f1 = factor[node, 1, q]
                    f2 = factor[node, 2, q]
                    if leaf:
                        for r in range(BLOCK):
                            st = state[c, r]
                            fr = f2 if st == 2 else (f1 if st == 1 else f0)
                            s[c, q, r] = g[pa, q, r] * fr * v
                    else:
                        for r in range(BLOCK):
                            st = state[c, r]
                            g[c, q, r] = g[pa, q, r] * (f2 if st == 2 else (f1 if st == 1 else f0))
            for c in range(size - 1, 0, -1):
                node = base + c
                pa = parent[node]
                last = not is_left[node]  # the right child comes last in pre-order: first here
                for r in range(BLOCK):
                    acc[r] = 0.0
                for q in range(points):
                    w0 = weight[node, 0, q]
                    w1 = weight[node, 1, q]
                    w2 = weight[node, 2, q]
                    for r in range(BLOCK):
                        st = state[c, r]
                        sv = s[c, q, r]
                        acc[r] += (w2 if st == 2 else (w1 if st == 1 else w0)) * sv
                        s[pa, q, r] = sv if last else s[pa, q, r] + sv
                f = edge_feature[node]
                for r in range(BLOCK):
                    phi[f, r] += acc[r]
        for f in range(p_in):
            for r in range(m):
                out[start + r, f] += phi[f, r]


def _base_margin(learner: dict[str, Any]) -> float:
    """Return the booster's base score in margin space, as XGBoost adds it to predictions."""
    objective = str(learner["objective"]["name"])
    raw = str(learner["learner_model_param"]["base_score"]).strip("[]")
    values = [float(v) for v in raw.split(",") if v.strip()]
    if len(values) != 1:
        raise ValueError(f"TreeSHAP supports single-output boosters; base_score is {raw!r}")
    if objective in _LOGIT_BASE:
        return math.log(values[0] / (1.0 - values[0]))
    if objective in _LOG_BASE:
        return math.log(values[0])
    if objective in _IDENTITY_BASE:
        return values[0]
    raise ValueError(
        f"TreeSHAP does not know how objective {objective!r} maps its base score to a margin; "
        f"it supports {', '.join(sorted(_LOGIT_BASE | _LOG_BASE | _IDENTITY_BASE))}"
    )


def _flatten(tree: dict[str, Any]) -> tuple[dict[str, np.ndarray], np.ndarray, float, int]:
    """One JSON tree in pre-order: node arrays, each edge's (z_prev, z), mean leaf, depth."""
    if any(int(v) != 0 for v in tree.get("split_type", [])):
        raise ValueError(
            "TreeSHAP supports numerical splits only; this booster has categorical ones"
        )
    children_left = [int(v) for v in tree["left_children"]]
    children_right = [int(v) for v in tree["right_children"]]
    cover = [float(v) for v in tree["sum_hessian"]]
    cond = np.asarray(tree["split_conditions"], dtype=np.float32)
    # pre-order walk, left subtree first: (node, parent's position, is left, path's cover share)
    order: list[tuple[int, int, bool, float]] = []
    stack: list[tuple[int, int, bool, float]] = [(0, -1, False, 1.0)]
    while stack:
        node, up, goes_left, reach = stack.pop()
        order.append((node, up, goes_left, reach))
        if children_left[node] >= 0:
            for child in (children_right[node], children_left[node]):
                share = cover[child] / cover[node] if cover[node] > 0 else 0.0
                stack.append((child, len(order) - 1, child == children_left[node], reach * share))
    size = len(order)
    arrays = {
        "feature": np.full(size, -1, dtype=np.int32),
        "threshold": np.zeros(size, dtype=np.float32),
        "default_left": np.zeros(size, dtype=np.bool_),
        "value": np.ones(size, dtype=np.float64),
        "is_leaf": np.zeros(size, dtype=np.float64),
        "parent": np.zeros(size, dtype=np.int32),
        "prev": np.zeros(size, dtype=np.int32),
        "edge_feature": np.zeros(size, dtype=np.int32),
        "is_left": np.zeros(size, dtype=np.bool_),
    }
    zeros = np.ones((size, 2), dtype=np.float64)  # per edge: z at the previous split, z here
    paths: list[dict[int, int]] = []  # per node: feature -> latest edge into a split on it
    mean, depth, depths = 0.0, 0, [0] * size
    for i, (node, up, goes_left, reach) in enumerate(order):
        path: dict[int, int] = {}
        if up >= 0:
            f = int(arrays["feature"][up])
            before = paths[up].get(f, 0)
            share = cover[node] / cover[order[up][0]] if cover[order[up][0]] > 0 else 0.0
            zeros[i] = (zeros[before, 1], zeros[before, 1] * share)
            arrays["parent"][i], arrays["prev"][i], arrays["edge_feature"][i] = up, before, f
            arrays["is_left"][i] = goes_left
            depths[i] = depths[up] + 1
            path = {**paths[up], f: i}
        paths.append(path)
        if children_left[node] < 0:
            arrays["value"][i], arrays["is_leaf"][i] = float(cond[node]), 1.0
            mean += reach * float(cond[node])
            depth = max(depth, depths[i])
        else:
            arrays["feature"][i] = int(tree["split_indices"][node])
            arrays["threshold"][i] = cond[node]
            arrays["default_left"][i] = bool(tree["default_left"][node])
    zeros[0] = 1.0
    return arrays, zeros, mean, depth


def _edge_tables(zeros: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray]:
    """Per edge, state and quadrature node: the path factor's ratio and the credit weight."""
    t, w = np.polynomial.legendre.leggauss(points)
    t, w = (t + 1.0) / 2.0, w / 2.0
    had = np.array([h for h, _ in _STATES])[None, :, None]
    follows = np.array([o for _, o in _STATES])[None, :, None]
    z_prev, z = zeros[:, 0, None, None], zeros[:, 1, None, None]
    f_prev = z_prev * (1.0 - t) + had * t
    f_new = z * (1.0 - t) + follows * t
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(f_prev > 0, f_new / f_prev, 0.0)
        a_new = np.where(f_new > 0, (follows - z) / f_new, 0.0)
        a_prev = np.where(f_prev > 0, (had - z_prev) / f_prev, 0.0)
    return np.ascontiguousarray(factor), np.ascontiguousarray(w * (a_new - a_prev))


def _parse(booster: xgb.Booster) -> TreeShap:
    """Parse ``booster`` (see :func:`tree_shap`)."""
    learner = json.loads(bytes(booster.save_raw("json")))["learner"]
    params = learner["learner_model_param"]
    if int(params.get("num_class", 0)) > 1 or int(params.get("num_target", 1)) > 1:
        raise ValueError("TreeSHAP supports single-output boosters (one class, one target)")
    gbm = learner["gradient_booster"]
    if gbm["name"] != "gbtree":
        raise ValueError(f"TreeSHAP supports gbtree boosters; this one is {gbm['name']!r}")
    flat = [_flatten(tree) for tree in gbm["model"]["trees"]]
    offsets = np.zeros(len(flat) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(arrays["feature"]) for arrays, *_ in flat])
    points = max(1, math.ceil(max((depth for *_, depth in flat), default=1) / 2))
    zeros = np.concatenate([z for _, z, *_ in flat]) if flat else np.ones((0, 2))
    factor, weight = _edge_tables(zeros, points)

    def joined(key: str, dtype: type) -> np.ndarray:
        return np.concatenate([arrays[key] for arrays, *_ in flat] or [np.zeros(0, dtype)])

    return TreeShap(
        num_features=int(params["num_feature"]),
        bias=_base_margin(learner) + math.fsum(mean for _, _, mean, _ in flat),
        tree_offsets=offsets,
        feature=joined("feature", np.int32),
        threshold=joined("threshold", np.float32),
        default_left=joined("default_left", np.bool_),
        value=joined("value", np.float64),
        is_leaf=joined("is_leaf", np.float64),
        parent=joined("parent", np.int32),
        prev=joined("prev", np.int32),
        edge_feature=joined("edge_feature", np.int32),
        is_left=joined("is_left", np.bool_),
        factor=factor,
        weight=weight,
    )


_CACHE: weakref.WeakKeyDictionary[xgb.Booster, tuple[int, TreeShap]] = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


def tree_shap(booster: xgb.Booster) -> TreeShap:
    """Return the :class:`TreeShap` of ``booster``: parsed on first use, then kept while it lives.

    Parameters
    ----------
    booster : xgboost.Booster
        A single-output ``gbtree`` booster with numerical splits (e.g. ``binary:logistic``).

    Returns
    -------
    TreeShap
        Its trees, ready for :meth:`TreeShap.contributions`. The cache is keyed by the booster
        object and checked against its number of boosting rounds, so a booster trained further
        is parsed again.

    Raises
    ------
    ValueError
        If the booster has several outputs, is not ``gbtree`` (e.g. ``gblinear`` or ``dart``),
        has categorical splits, or an objective whose base score mapping is not known here.
    """
    rounds = booster.num_boosted_rounds()
    with _CACHE_LOCK:
        hit = _CACHE.get(booster)
    if hit is not None and hit[0] == rounds:
        return hit[1]
    parsed = _parse(booster)
    with _CACHE_LOCK:
        _CACHE[booster] = (rounds, parsed)
    return parsed


@dataclass(frozen=True)
class WarmUp:
    """What :func:`warm_up` did.

    Parameters
    ----------
    seconds : float
        Wall time of the warm-up.
    compiled : int
        Kernels compiled (not found in numba's cache); 0 when both were loaded from it or were
        already in this process.
    cache_path : str
        The directory numba caches the kernels in.
    in_process : bool
        Both kernels were already compiled (or loaded) in this process, so nothing was run.
    """

    seconds: float
    compiled: int
    cache_path: str
    in_process: bool = False


def _in_process() -> bool:
    """Whether both kernels already run compiled code in this process for every explained row.

    :meth:`TreeShap.contributions` passes them C-ordered float32 rows and a float64 output (the
    tables' types are fixed by :func:`_parse`); numba lists each compiled or loaded signature of a
    kernel in its ``signatures`` once it is ready. Rows passed read-only add a second signature,
    which the warm-up does not make either.
    """
    rows = numba.types.Array(numba.types.float32, 2, "C")
    out = numba.types.Array(numba.types.float64, 2, "C")
    return all(
        any(sig[:2] == (rows, out) for sig in kernel.signatures)
        for kernel in (_row_kernel, _block_kernel)
    )


def warm_up() -> WarmUp:
    """Compile, or load from numba's cache, both kernels, so that no explained row waits for it.

    Explains one row (the row kernel, the one a single customer's request uses) and then
    ``BLOCK + 1`` rows (the block kernel, and the row kernel for the remainder) of a one-tree
    booster fitted here on two rows: the kernels' argument types do not depend on the model, so
    every model's rows then run compiled code. Numba compiles under one lock per process, so a
    request that needs a kernel while it compiles here waits for this compilation instead of
    starting its own. When both kernels are already compiled in this process (an earlier warm-up,
    an explained batch, another app of the same process) it returns at once, fitting nothing.

    Returns
    -------
    WarmUp
        Its wall time, how many kernels it compiled, and numba's cache directory.
    """
    start = time.perf_counter()
    if _in_process():
        return WarmUp(time.perf_counter() - start, 0, str(_row_kernel.stats.cache_path), True)
    kernels = (_row_kernel, _block_kernel)
    misses = sum(sum(k.stats.cache_misses.values()) for k in kernels)
    booster = xgb.train(
        {"objective": "reg:squarederror", "max_depth": 1, "nthread": 1},
        xgb.DMatrix(np.array([[0.0], [1.0]], dtype=np.float32), label=[0.0, 1.0]),
        num_boost_round=1,
    )
    explainer = _parse(booster)
    rows = np.zeros((BLOCK + 1, 1), dtype=np.float32)
    explainer.contributions(rows[:1], threads=1)
    explainer.contributions(rows, threads=1)
    compiled = sum(sum(k.stats.cache_misses.values()) for k in kernels) - misses
    return WarmUp(time.perf_counter() - start, compiled, str(_row_kernel.stats.cache_path))
