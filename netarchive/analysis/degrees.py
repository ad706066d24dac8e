"""Degrees and strengths of neurons, and heavy-tail fits of their distributions (seed 000).

A neuron's degree k is in-degree + out-degree over its surviving synapses; its strength S is the signed sum
of the weights of all its synapses, and ``abs_strength`` is |S| (the quantity whose distribution the seed
finds heavy-tailed). On the channel graph a channel's synapses are its kernel weights (a channel pair with
five surviving kernel weights adds five to both degrees); with ``unroll`` the neurons are the (channel, y,
x) units and their synapses the unrolled edges (:mod:`netarchive.analysis.graphs`). The weightless
connections (residual additions, concatenations, flattens) are not synapses: they count in no degree or
strength. Fits follow Clauset, Shalizi & Newman (SIAM Review 51, 661, 2009) as implemented by the
``powerlaw`` package, whose numbers are passed through unchanged.

Example::

    >>> import numpy as np
    >>> from netarchive.model import Checkpoint, Layer
    >>> ckpt = Checkpoint("r", 0, (Layer.from_dense("fc", np.array([[1.0, -2.0], [0.0, 3.0]])),))
    >>> table = degrees(ckpt)
    >>> table["degree"].tolist(), table["strength"].tolist()
    ([1, 2, 2, 1], [1.0, 1.0, -1.0, 3.0])
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from netarchive.analysis.graphs import Graph, graph
from netarchive.model import Checkpoint

FIT_COLUMNS = ("alpha", "xmin", "sigma", "D", "R_lognormal", "p_lognormal", "R_exponential", "p_exponential")
"""Columns of a heavy-tail fit: power-law exponent, lower cutoff, standard error of alpha, KS distance, and the
normalised log-likelihood ratio R (> 0 favours the power law) with its p-value against each alternative."""


def degree_arrays(checkpoint: Checkpoint | Graph, unroll: bool = False) -> dict[str, np.ndarray]:
    """Per-neuron degrees and strengths in global neuron order (one ``bincount`` per quantity), of a
    checkpoint's channel graph (its unit graph with ``unroll``) or of a :class:`Graph`."""
    g = checkpoint if isinstance(checkpoint, Graph) else graph(checkpoint, unroll)
    src, dst, w, n = g.src, g.dst, g.w, g.neurons
    out_degree = np.bincount(src, minlength=n)
    in_degree = np.bincount(dst, minlength=n)
    strength_out = np.bincount(src, weights=w, minlength=n)
    strength_in = np.bincount(dst, weights=w, minlength=n)
    strength = strength_in + strength_out
    return {
        "in_degree": in_degree,
        "out_degree": out_degree,
        "degree": in_degree + out_degree,
        "strength_in": strength_in,
        "strength_out": strength_out,
        "strength": strength,
        "abs_strength": np.abs(strength),
    }


def degrees(checkpoint: Checkpoint, unroll: bool = False) -> pd.DataFrame:
    """One row per neuron: ``group`` (its neuron group, 0 = inputs), ``index`` (within the group; a unit of a
    feature map with ``unroll``: c·H·W + y·W + x), ``in_degree``, ``out_degree``, ``degree``,
    ``strength_in``, ``strength_out``, ``strength`` (signed) and ``abs_strength`` (= |strength|)."""
    g = graph(checkpoint, unroll)
    group = g.groups()
    frame = pd.DataFrame({"group": group, "index": np.arange(g.neurons) - g.offsets[group]})
    frame = frame.assign(**degree_arrays(g))
    frame.insert(0, "level", checkpoint.level)
    frame.insert(0, "run", checkpoint.run)
    return frame


def degree_moments(checkpoint: Checkpoint | Graph, unroll: bool = False) -> tuple[float, float]:
    """⟨k⟩ and ⟨k²⟩ over all neurons (isolated ones included), as the Molloy–Reed criterion uses them."""
    k = degree_arrays(checkpoint, unroll)["degree"].astype(np.float64)
    return float(k.mean()), float((k * k).mean())


def fit_heavy_tail(values: np.ndarray, discrete: bool = False) -> dict[str, float]:
    """Clauset–Shalizi–Newman power-law fit of the positive ``values`` with ``powerlaw.Fit``.

    Returns :data:`FIT_COLUMNS` exactly as ``powerlaw`` computes them (``xmin`` chosen by minimal KS distance,
    ``distribution_compare(..., normalized_ratio=True)``); NaN everywhere when the data cannot be fitted
    (fewer than two distinct positive values, e.g. the degrees of a dense layer).
    """
    import powerlaw

    data = np.asarray(values, dtype=np.float64)
    data = data[data > 0]
    empty = dict.fromkeys(FIT_COLUMNS, float("nan"))
    if len(np.unique(data)) < 2:
        return empty
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            fit = powerlaw.Fit(data, discrete=discrete, verbose=0)
            r_log, p_log = fit.distribution_compare("power_law", "lognormal", normalized_ratio=True)
            r_exp, p_exp = fit.distribution_compare("power_law", "exponential", normalized_ratio=True)
    except (ValueError, ZeroDivisionError, FloatingPointError, IndexError):
        return empty
    return {
        "alpha": float(fit.power_law.alpha),
        "xmin": float(fit.power_law.xmin),
        "sigma": float(getattr(fit.power_law, "standard_err", None) or fit.power_law.sigma),
        "D": float(fit.power_law.D),
        "R_lognormal": float(r_log),
        "p_lognormal": float(p_log),
        "R_exponential": float(r_exp),
        "p_exponential": float(p_exp),
    }


SUMMARY_QUANTITIES = {"degree": True, "abs_strength": False}
"""The summarised quantities and whether each is fitted as a discrete distribution."""


def degree_summary(checkpoint: Checkpoint, unroll: bool = False) -> pd.DataFrame:
    """Per neuron group and for the whole network (``group`` = NA), for ``degree`` and ``abs_strength``:
    count ``n``, ``mean`` (⟨k⟩ for degrees), ``mean_sq`` (⟨k²⟩) and the :func:`fit_heavy_tail` columns."""
    g = graph(checkpoint, unroll)
    arrays = degree_arrays(g)
    group = g.groups()
    scopes = [(pd.NA, np.ones(g.neurons, dtype=bool))]
    scopes += [(l, group == l) for l in range(len(g.widths))]
    rows = []
    for scope, chosen in scopes:
        for quantity, discrete in SUMMARY_QUANTITIES.items():
            x = arrays[quantity][chosen].astype(np.float64)
            rows.append({
                "run": checkpoint.run, "level": checkpoint.level, "group": scope, "quantity": quantity,
                "n": int(len(x)), "mean": float(x.mean()), "mean_sq": float((x * x).mean()),
                **fit_heavy_tail(x, discrete=discrete),
            })
    frame = pd.DataFrame(rows)
    frame["group"] = frame["group"].astype("Int64")
    return frame
