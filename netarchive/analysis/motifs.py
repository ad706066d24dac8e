"""Motif counts of layered feed-forward networks and their z-scores against null models.

Why: Zahn, Daniel & Kutz ("Motif distribution and function of sparse deep neural networks", 2023) compare
the 2nd- and 3rd-order motif z-scores of hundreds of pruned networks; generic motif tools (igraph's
``motifs_randesu``, Wernicke 2006) enumerate subgraphs and take minutes on one dense network, and sampled
nulls add noise. In a strictly layered graph every motif count is a degree sum or a sparse product of the
layer masks M_l, and for the uniform nulls the mean and variance of every count have an exact closed form
(see ``docs/motifs.md`` for the derivations), so z-scores of thousands of networks take seconds.

Catalogue (layer = index of the weight layer; a motif spanning layers l..l+k is reported as ``"l-(l+k)"``;
in a network that is not a plain chain, as the list of its layers, ``"3-4-7"``):

- ``edge`` (m_l), ``diverging`` (Σ_i C(out_i, 2)), ``converging`` (Σ_j C(in_j, 2)),
  ``diverging3``/``converging3`` (C(·, 3); the study's code sums C(in, 2) for the latter, see
  docs/motifs.md), ``bifan`` (two sources both wired to the same two targets);
- ``chain`` (2-paths, Σ_b in_b·out_b), ``biparallel`` (a→b1→c and a→b2→c), ``chain3`` (3-paths);
- ``signed=True`` splits every count by the signs of its synapses (chain ``+-`` = excitatory then
  inhibitory; fans ``++``/``+-``/``--``; bifan rows are the two sources' synapses to the two targets);
- ``chain_pairs=True`` counts ``chain`` and ``chain3`` as connected (source, end) pairs, nnz(M_{l+1} M_l)
  and nnz(M_{l+2} M_{l+1} M_l), as the study's released code does (its "third-order chain");
- ``prune_dead=True`` first removes, iteratively, neurons without inputs (above the input layer) or
  without outputs (below the output layer), as the study did; the nulls then live on the live neurons.

Nulls (``null=``): ``fixed`` (each layer keeps exactly m_l synapses, placed uniformly, its signs shuffled
over them) and ``bernoulli`` (each slot kept independently with the layer's density, sign with the layer's
sign ratio) are exact; ``degree`` (curveball randomisation of each layer, keeping every neuron's in- and
out-degree; Strona et al. 2014, Carstens et al. 2016) and ``study`` (the study's own procedure, on the
live neurons, which implies ``prune_dead``: see :func:`_study_layer`) are sampled (``samples``, ``seed``).
``sample=True`` samples an exact null too.

Convolutional and residual networks are counted on their channel graph, a pair of channels connected when
any kernel weight survives, motif chains running on through residual additions and concatenations
(:mod:`netarchive.analysis.motif_chains`); the whole-network ``all`` rows of overlapping spans then take
their SD from joint draws of the null (every layer drawn once per draw and shared by every span it is in).

Example::

    >>> from netarchive.analysis.motifs import motifs
    >>> table = motifs(checkpoint)                       # doctest: +SKIP
    >>> table[table.layer == "all"][["motif", "count", "expected", "sd", "z"]]   # doctest: +SKIP
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import gammaln

from netarchive.analysis.motif_chains import Span, is_plain_chain, motif_spans
from netarchive.errors import InputError
from netarchive.model import Checkpoint

MOTIFS = ("edge", "diverging", "converging", "chain", "diverging3", "converging3", "chain3", "bifan", "biparallel")
NULLS = ("fixed", "bernoulli", "degree", "study")
EXACT_NULLS = ("fixed", "bernoulli")
SPAN = {"edge": 1, "diverging": 1, "converging": 1, "diverging3": 1, "converging3": 1, "bifan": 1,
        "chain": 2, "biparallel": 2, "chain3": 3}
DENSE_PRODUCT_ENTRIES = 5_000_000
"""Largest block-diagonal product (entries) computed densely with BLAS; sparser or larger ones go sparse."""
COLUMNS = ["run", "level", "sparsity", "layer", "motif", "sign", "count", "expected", "sd", "z", "null", "samples", "method"]


# ----------------------------------------------------------------------------------------------------
# A batch of layered graphs of one shape (several checkpoints, or the samples of a null), as edge arrays
# ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Batch:
    """``size`` layered graphs of the same ``widths``; per layer the edges of all of them, ``sid`` = which graph."""

    widths: tuple[int, ...]
    size: int
    src: tuple[np.ndarray, ...]
    dst: tuple[np.ndarray, ...]
    neg: tuple[np.ndarray, ...]
    sid: tuple[np.ndarray, ...]

    @classmethod
    def of(cls, checkpoints) -> "Batch":
        widths = checkpoints[0].widths
        if any(c.widths != widths for c in checkpoints):
            raise InputError("a batch of checkpoints must share the layer widths")
        layers = range(len(widths) - 1)
        cat = lambda f: tuple(np.concatenate([f(c, l) for c in checkpoints]) for l in layers)  # noqa: E731
        return cls(
            widths, len(checkpoints),
            cat(lambda c, l: c.layers[l].src.astype(np.int64)),
            cat(lambda c, l: c.layers[l].dst.astype(np.int64)),
            cat(lambda c, l: c.layers[l].w < 0),
            tuple(np.concatenate([np.full(c.layers[l].edges, b, np.int64) for b, c in enumerate(checkpoints)]) for l in layers),
        )

    @property
    def depth(self) -> int:
        return len(self.widths) - 1

    def edges(self, l: int, sign: str | None = None) -> np.ndarray:
        """Edges of layer l per graph (B,), all or of one sign."""
        keep = self._sign_mask(l, sign)
        return np.bincount(self.sid[l][keep], minlength=self.size).astype(float)

    def _sign_mask(self, l, sign):
        if sign in (None, ""):
            return np.ones(len(self.src[l]), bool)
        return self.neg[l] if sign == "-" else ~self.neg[l]

    def out_degree(self, l: int, sign: str | None = None) -> np.ndarray:
        """(B, n_l) synapses leaving each neuron of layer l into layer l+1."""
        keep = self._sign_mask(l, sign)
        n = self.widths[l]
        return np.bincount(self.sid[l][keep] * n + self.src[l][keep], minlength=self.size * n).reshape(self.size, n).astype(float)

    def in_degree(self, l: int, sign: str | None = None) -> np.ndarray:
        """(B, n_{l+1}) synapses arriving at each neuron of layer l+1 from layer l."""
        keep = self._sign_mask(l, sign)
        n = self.widths[l + 1]
        return np.bincount(self.sid[l][keep] * n + self.dst[l][keep], minlength=self.size * n).reshape(self.size, n).astype(float)

    def matrix(self, l: int, sign: str | None = None) -> sp.csr_matrix:
        """Block-diagonal 0/1 mask of layer l over all graphs, shape (B·n_{l+1}, B·n_l)."""
        keep = self._sign_mask(l, sign)
        n_in, n_out = self.widths[l], self.widths[l + 1]
        rows = self.sid[l][keep] * n_out + self.dst[l][keep]
        cols = self.sid[l][keep] * n_in + self.src[l][keep]
        return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(self.size * n_out, self.size * n_in))

    def select(self, l: int, keep: np.ndarray) -> tuple:
        return self.src[l][keep], self.dst[l][keep], self.neg[l][keep], self.sid[l][keep]


def remove_dead(batch: Batch) -> tuple[Batch, np.ndarray]:
    """Remove, until none is left, neurons with no input (above layer 0) or no output (below the last layer).

    Returns the pruned batch (same widths, dead neurons simply lose their synapses) and the boolean
    ``alive`` array (B, V) over global neuron indices; neurons of layer 0 / the last layer are alive when
    they keep an output / an input, hidden neurons when they keep both.
    """
    src, dst, neg, sid = map(list, (batch.src, batch.dst, batch.neg, batch.sid))
    widths, B, L = batch.widths, batch.size, batch.depth
    while True:
        removed = 0
        current = replace(batch, src=tuple(src), dst=tuple(dst), neg=tuple(neg), sid=tuple(sid))
        for l in range(L):
            keep = np.ones(len(src[l]), bool)
            if l > 0:  # the source must have an input
                fed = current.in_degree(l - 1) > 0
                keep &= fed[sid[l], src[l]]
            if l < L - 1:  # the target must have an output
                feeds = current.out_degree(l + 1) > 0
                keep &= feeds[sid[l], dst[l]]
            if not keep.all():
                removed += int((~keep).sum())
                src[l], dst[l], neg[l], sid[l] = src[l][keep], dst[l][keep], neg[l][keep], sid[l][keep]
        if not removed:
            break
    pruned = replace(batch, src=tuple(src), dst=tuple(dst), neg=tuple(neg), sid=tuple(sid))
    return pruned, alive_neurons(pruned)


def alive_neurons(batch: Batch) -> np.ndarray:
    """(B, V): neurons that have a synapse on each side they can have one (inputs: out, outputs: in)."""
    parts = []
    for layer in range(batch.depth + 1):
        alive = np.ones((batch.size, batch.widths[layer]), bool)
        if layer > 0:
            alive &= batch.in_degree(layer - 1) > 0
        if layer < batch.depth:
            alive &= batch.out_degree(layer) > 0
        parts.append(alive)
    return np.concatenate(parts, axis=1)


# ----------------------------------------------------------------------------------------------------
# Counting
# ----------------------------------------------------------------------------------------------------

def _c2(x):
    return x * (x - 1) // 2 if np.issubdtype(np.asarray(x).dtype, np.integer) else x * (x - 1) / 2


def _c3(x):
    return x * (x - 1) * (x - 2) / 6


def _choose(x, k):
    return {0: np.ones_like(x), 1: x, 2: _c2(x), 3: _c3(x)}[k]


def _block_sums(matrix: sp.csr_matrix, n: int, size: int, values: np.ndarray) -> np.ndarray:
    """Σ of ``values`` (one per stored entry of the CSR ``matrix``) within each diagonal block n rows tall."""
    values = np.asarray(values)
    if not len(values) or n == 0:
        return np.zeros(size)
    bounds = matrix.indptr[::n]
    # a trailing 0 keeps every block start a valid index, so that blocks left empty at the end of the batch
    # do not cut the last entry off the block before them
    padded = np.append(values, np.zeros(1, values.dtype))
    sums = np.add.reduceat(padded, bounds[:-1], dtype=np.int64 if values.dtype.kind in "iub" else float)
    return np.where(bounds[1:] > bounds[:-1], sums, 0)


def _coded(batch: Batch, l: int, signed: bool, code: int) -> sp.csr_matrix:
    """The block-diagonal mask of layer l, a '−' synapse weighted ``code`` (1 when unsigned).

    Products of two coded masks (codes K and K²) carry all four sign counts in one int64:
    value = n++ + K·n−+ + K²·n+− + K³·n−− (first factor's sign first), decoded by :func:`_decode`."""
    n_in, n_out = batch.widths[l], batch.widths[l + 1]
    rows = batch.sid[l] * n_out + batch.dst[l]
    cols = batch.sid[l] * n_in + batch.src[l]
    data = np.where(batch.neg[l], code, 1).astype(np.int64) if signed else np.ones(len(rows), np.int64)
    return sp.csr_matrix((data, (rows, cols)), shape=(batch.size * n_out, batch.size * n_in))


def _decode(values: np.ndarray, K: int) -> dict:
    """{(first sign, second sign): count} from coded products (see :func:`_coded`)."""
    return {("+", "+"): values % K, ("-", "+"): values // K % K, ("+", "-"): values // (K * K) % K, ("-", "-"): values // (K ** 3)}


def _code_base(batch: Batch) -> int:
    """A power of two above any count a coded product entry can hold."""
    K = 2 ** int(np.ceil(np.log2(max(batch.widths) + 1)))
    if K ** 4 >= 2 ** 62:
        raise InputError("layers wider than 32767 neurons are too wide for signed bifan/biparallel counts")
    return K


def count_batch(batch: Batch, *, signed: bool = False, chain_pairs: bool = False, motifs=MOTIFS) -> dict:
    """Every motif count of every graph of the batch: {(motif, first layer, sign): array (B,)}.

    Sparse linear algebra on block-diagonal masks, never subgraph enumeration."""
    L, B, w = batch.depth, batch.size, batch.widths
    groups = ("+", "-") if signed else ("",)
    out_deg = {(l, g): batch.out_degree(l, g) for l in range(L) for g in groups}
    in_deg = {(l, g): batch.in_degree(l, g) for l in range(L) for g in groups}
    counts = {}
    want = set(motifs)
    for l in range(L):
        if "edge" in want:
            for g in groups:
                counts["edge", l, g] = batch.edges(l, g)
        for name, deg in (("diverging", out_deg), ("converging", in_deg)):
            for order, motif in ((2, name), (3, name + "3")):
                if motif not in want:
                    continue
                for combo in itertools.combinations_with_replacement(groups, order):
                    value = np.ones((B, w[l] if name == "diverging" else w[l + 1]))
                    for g in set(combo):
                        value = value * _choose(deg[l, g], combo.count(g))
                    counts[motif, l, "".join(combo)] = value.sum(axis=1)
        if "bifan" in want:
            counts.update(_bifan(batch, l, signed))
    for l in range(L - 1):
        for s1, s2 in itertools.product(groups, groups):
            if "chain" in want and not chain_pairs:
                counts["chain", l, s1 + s2] = (in_deg[l, s1] * out_deg[l + 1, s2]).sum(axis=1)
        if "biparallel" in want or ("chain" in want and chain_pairs):
            counts.update(_paths(batch, l, signed, chain_pairs, want))
    if "chain3" in want:
        for l in range(L - 2):
            if chain_pairs:
                counts.update(_chain3_pairs(batch, l, groups))
                continue
            for s1, s2, s3 in itertools.product(groups, groups, groups):
                keep = batch._sign_mask(l + 1, s2)
                sid, b, c = batch.sid[l + 1][keep], batch.src[l + 1][keep], batch.dst[l + 1][keep]
                weight = in_deg[l, s1][sid, b] * out_deg[l + 2, s3][sid, c]
                counts["chain3", l, s1 + s2 + s3] = np.bincount(sid, weights=weight, minlength=B)
    return counts


def _chain3_pairs(batch: Batch, l: int, groups) -> dict:
    """Connected (source, end) pairs of 3-paths from layer l, nnz(M_{l+2} M_{l+1} M_l) per graph (the study's
    "third-order chain"); signed, a pair counts under every sign type of 3-path it has."""
    out = {}
    for signs in itertools.product(groups, groups, groups):
        first, second, third = (batch.matrix(l + k, sign) for k, sign in enumerate(signs))
        pairs = (third @ (second @ first)).tocsr()
        pairs.eliminate_zeros()
        out["chain3", l, "".join(signs)] = _block_sums(pairs, batch.widths[l + 3], batch.size, np.ones(pairs.nnz, np.int64))
    return out


def _product(first: sp.csr_matrix, second: sp.csr_matrix, n: int, size: int):
    """The entries of the block-diagonal product ``first @ second`` (blocks n rows tall) and a function
    summing per-entry values within each block. Dense-ish small blocks go through BLAS (exact in float64
    below 2**53), the rest through the sparse product."""
    rows, inner, cols = first.shape[0] // size, first.shape[1] // size, second.shape[1] // size
    density = (first.nnz + second.nnz) / max(1, size * inner * (rows + cols))
    largest = (first.data.max(initial=0) * second.data.max(initial=0)) * inner  # exact in float64 below 2**53
    if density > 0.25 and size <= 32 and size * rows * cols <= DENSE_PRODUCT_ENTRIES and largest < 2 ** 53:
        blocks = []
        for b in range(size):
            a = first[b * rows:(b + 1) * rows, b * inner:(b + 1) * inner].toarray().astype(float)
            c = second[b * inner:(b + 1) * inner, b * cols:(b + 1) * cols].toarray().astype(float)
            blocks.append(np.rint(a @ c).astype(np.int64).ravel())
        data = np.concatenate(blocks)
        return data, lambda values: np.asarray(values).reshape(size, -1).sum(axis=1)
    product = (first @ second).tocsr()
    return product.data, lambda values: _block_sums(product, n, size, values)


def _bifan(batch: Batch, l: int, signed: bool) -> dict:
    """Bifans of layer l from the co-neighbour counts c of the narrower side (MᵀM or MMᵀ):
    Σ over unordered pairs of distinct neurons of C(c, 2), by sign classes when signed."""
    n_in, n_out = batch.widths[l], batch.widths[l + 1]
    K = _code_base(batch) if signed else 1
    sources = n_in <= n_out  # pairs of sources (MᵀM) or pairs of targets (MMᵀ)
    if sources:
        first, second = _coded(batch, l, signed, K).T.tocsr(), _coded(batch, l, signed, K * K)
        diag = [batch.out_degree(l, g) for g in ("+", "-")] if signed else [batch.out_degree(l)]
    else:
        first, second = _coded(batch, l, signed, K), _coded(batch, l, signed, K * K).T.tocsr()
        diag = [batch.in_degree(l, g) for g in ("+", "-")] if signed else [batch.in_degree(l)]
    n = n_in if sources else n_out
    data, total = _product(first, second, n, batch.size)
    if not signed:  # Σ_{i≠i'} C(c, 2) = (Σ c² − Σ c)/2 − Σ_i C(k_i, 2): the diagonal holds the degrees, c_ii = k_i,
        # and Σ c over all entries is Σ of the squared degrees of the other side
        other = batch.in_degree(l) if sources else batch.out_degree(l)
        return {("bifan", l, ""): ((total(data * data) - (other * other).sum(axis=1)) / 2 - _c2(diag[0]).sum(axis=1)) / 2}
    c = _decode(data, K)
    pp, mm, pm, mp = c["+", "+"], c["-", "-"], c["+", "-"], c["-", "+"]
    plus, minus = diag
    same_row, same_column = total(_c2(pm) + _c2(mp)), total(pp * mm) - (plus * minus).sum(axis=1)
    # label rows are sources; on the target side "same row" and "same column" trade places
    if not sources:
        same_row, same_column = same_column, same_row
    return {("bifan", l, label): value / 2 for label, value in {
        "++|++": total(_c2(pp)) - _c2(plus).sum(axis=1),
        "--|--": total(_c2(mm)) - _c2(minus).sum(axis=1),
        "++|+-": total(pp * (pm + mp)),
        "+-|--": total(mm * (pm + mp)),
        "++|--": same_row,
        "+-|+-": same_column,
        "+-|-+": total(pm * mp),
    }.items()}


def _paths(batch: Batch, l: int, signed: bool, chain_pairs: bool, want) -> dict:
    """Biparallels and chain pairs of layers l, l+1 from the 2-path counts P = M_{l+1} M_l (by sign type)."""
    K = _code_base(batch) if signed else 1
    data, total = _product(_coded(batch, l + 1, signed, K * K), _coded(batch, l, signed, K), batch.widths[l + 2], batch.size)
    if signed:  # the first sign of a type is the lower layer's
        types = {a + b: v for (a, b), v in _decode(data, K).items()}
    else:
        types = {"": data}
    out = {}
    if "chain" in want and chain_pairs:
        for t, v in types.items():
            out["chain", l, t] = total(v > 0)
    if "biparallel" in want:
        names = sorted(types)
        for i, t in enumerate(names):
            out["biparallel", l, f"{t}/{t}" if signed else ""] = total(_c2(types[t]))
            for u in names[i + 1:]:
                out["biparallel", l, f"{t}/{u}"] = total(types[t] * types[u])
    return out


# ----------------------------------------------------------------------------------------------------
# Exact nulls: labelled templates and pairs of embeddings grouped by their per-layer union (docs/motifs.md)
# ----------------------------------------------------------------------------------------------------

# positions (neuron layer relative to the first), edges (position pairs, in the order of the sign tuple), |Aut|
TEMPLATES = {
    "edge": ((0, 1), ((0, 1),), 1),
    "diverging": ((0, 1, 1), ((0, 1), (0, 2)), 2),
    "converging": ((0, 0, 1), ((0, 2), (1, 2)), 2),
    "chain": ((0, 1, 2), ((0, 1), (1, 2)), 1),
    "diverging3": ((0, 1, 1, 1), ((0, 1), (0, 2), (0, 3)), 6),
    "converging3": ((0, 0, 0, 1), ((0, 3), (1, 3), (2, 3)), 6),
    "chain3": ((0, 1, 2, 3), ((0, 1), (1, 2), (2, 3)), 1),
    "bifan": ((0, 0, 1, 1), ((0, 2), (0, 3), (1, 2), (1, 3)), 4),
    "biparallel": ((0, 1, 1, 2), ((0, 1), (1, 3), (0, 2), (2, 3)), 2),
}


def sign_label(motif: str, signs: tuple[str, ...]) -> str:
    """The class of a labelled sign assignment (the same labels as :func:`count_batch`)."""
    if motif in ("edge", "chain", "chain3"):
        return "".join(signs)
    if motif in ("diverging", "converging", "diverging3", "converging3"):
        return "".join(sorted(signs))
    if motif == "bifan":
        a, b, c, d = signs
        rows = [(a + b, c + d), (c + d, a + b), (b + a, d + c), (d + c, b + a)]
        return min(f"{x}|{y}" for x, y in rows)
    if motif == "biparallel":
        return "/".join(sorted([signs[0] + signs[1], signs[2] + signs[3]]))
    raise InputError(f"unknown motif {motif!r}")


@lru_cache(maxsize=None)
def sign_classes(motif: str, signed: bool) -> dict[str, tuple[tuple[str, ...], ...]]:
    """{label: labelled sign assignments in the class}; unsigned = the single all-'+' assignment, label ''."""
    k = len(TEMPLATES[motif][1])
    if not signed:
        return {"": (("+",) * k,)}
    classes: dict[str, list] = {}
    for signs in itertools.product("+-", repeat=k):
        classes.setdefault(sign_label(motif, signs), []).append(signs)
    return {label: tuple(v) for label, v in sorted(classes.items())}


@lru_cache(maxsize=None)
def pair_table(motif: str, shift: int, signed: bool, label: str) -> tuple:
    """Pairs (X, Y) of labelled embeddings of ``motif``, Y starting ``shift`` layers after X, grouped.

    Returns (node, edge, weight): ``node`` (R, layers, 2) = X positions and new Y positions per neuron
    layer (so the number of such pairs is Π (n)_{kX}·(n−kX)_{newY}); ``edge`` (R, edge layers, 6) =
    (x+, x−, y+, y−, u+, u−) synapses of X, of Y and of their union by sign per edge layer; ``weight`` =
    how many (σ, τ) sign assignments of the class give that row.
    """
    positions, edges, _ = TEMPLATES[motif]
    span = max(positions) + 1
    layers = span + shift
    x_pos = list(positions)
    y_pos = [p + shift for p in positions]
    sigmas = sign_classes(motif, signed)[label]
    rows: dict = {}
    # each Y position is new (None) or one X position of the same layer, injectively
    choices = [[None] + [i for i, p in enumerate(x_pos) if p == q] for q in y_pos]
    for match in itertools.product(*choices):
        used = [m for m in match if m is not None]
        if len(used) != len(set(used)):
            continue
        node = tuple(
            (sum(p == layer for p in x_pos), sum(m is None and q == layer for m, q in zip(match, y_pos)))
            for layer in range(layers)
        )
        x_edges = {e: k for k, e in enumerate(edges)}
        shared = []  # (Y edge index, X edge index) for Y edges that are X edges
        for k, (u, v) in enumerate(edges):
            if match[u] is not None and match[v] is not None and (match[u], match[v]) in x_edges:
                shared.append((k, x_edges[match[u], match[v]]))
        y_shared = {k for k, _ in shared}
        for sigma in sigmas:
            for tau in sigmas:
                # a shared synapse cannot carry two signs: E[X·Y] = 0, marked by u± = −1
                clash = any(tau[k] != sigma[j] for k, j in shared)
                edge = []
                for layer in range(layers - 1):
                    xs = [sigma[k] for k, (u, _) in enumerate(edges) if x_pos[u] == layer]
                    ys = [tau[k] for k, (u, _) in enumerate(edges) if y_pos[u] == layer]
                    us = xs + [tau[k] for k, (u, _) in enumerate(edges) if y_pos[u] == layer and k not in y_shared]
                    union = (-1, -1) if clash else (us.count("+"), us.count("-"))
                    edge.append((xs.count("+"), xs.count("-"), ys.count("+"), ys.count("-")) + union)
                key = (node, tuple(edge))
                rows[key] = rows.get(key, 0) + 1
    keys = list(rows)
    node = np.array([k[0] for k in keys], dtype=np.int64).reshape(len(keys), layers, 2)
    edge = np.array([k[1] for k in keys], dtype=np.int64).reshape(len(keys), layers - 1, 6)
    return node, edge, np.array([rows[k] for k in keys], dtype=float)


def _falling(n, k):
    """(n)_k elementwise for small integer k (array) and real n (array), broadcast; 0 when n < k."""
    n, k = np.broadcast_arrays(np.asarray(n, float), np.asarray(k))
    out = np.ones(n.shape)
    for i in range(int(k.max(initial=0))):
        out = np.where(i < k, out * np.maximum(n - i, 0.0), out)
    return out


class _Layer:
    """Per-edge-layer moments of a null for a batch: E[Π over a+ given + slots and a− given − slots]."""

    def __init__(self, null, m_pos, m_neg, slots):
        self.null, self.mp, self.mn, self.N = null, m_pos, m_neg, slots  # arrays (B,)

    def log_moment(self, a_pos, a_neg):
        """(R, B) log E for rows of (a+, a−) (small ints, arrays (R,))."""
        a_pos, a_neg = a_pos[:, None], a_neg[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.null == "bernoulli":
                slots = np.maximum(self.N, 1.0)  # no slots: no synapses either
                lp = np.log(self.mp / slots)[None, :]
                ln = np.log(self.mn / slots)[None, :]
                return np.where(a_pos > 0, a_pos * lp, 0.0) + np.where(a_neg > 0, a_neg * ln, 0.0)
            out = np.zeros(np.broadcast_shapes(a_pos.shape, self.mp[None, :].shape))
            for i in range(int(max(a_pos.max(initial=0), a_neg.max(initial=0)))):
                out = out + np.where(i < a_pos, np.log(np.maximum(self.mp - i, 0.0)), 0.0)
                out = out + np.where(i < a_neg, np.log(np.maximum(self.mn - i, 0.0)), 0.0)
            for i in range(int((a_pos + a_neg).max(initial=0))):
                # when N − i < 1 the numerator is already −inf (a+ > m+ or a− > m−): keep it so
                out = out - np.where(i < a_pos + a_neg, np.log(np.maximum(self.N - i, 1.0)), 0.0)
            return out

    def log_ratio_disjoint(self, x_pos, x_neg, y_pos, y_neg):
        """log E[X∪Y] − log E[X] − log E[Y] for edge-disjoint X, Y, without cancellation (0 for bernoulli)."""
        shape = (len(x_pos), len(self.mp))
        if self.null == "bernoulli":
            return np.zeros(shape)
        parts = []
        for a, b, m in ((x_pos, y_pos, self.mp), (x_neg, y_neg, self.mn), (x_pos + x_neg, y_pos + y_neg, self.N)):
            part = np.zeros(shape)
            for i in range(int(b.max(initial=0))):
                with np.errstate(divide="ignore", invalid="ignore"):
                    t = -a[:, None] / (m[None, :] - i)
                    term = np.where(t <= -1, -np.inf, np.log1p(np.maximum(t, -1.0)))
                term = np.where(a[:, None] == 0, 0.0, term)
                part = part + np.where((i < b)[:, None], term, 0.0)
            parts.append(part)
        numerator = parts[0] + parts[1]
        with np.errstate(invalid="ignore"):
            return np.where(np.isneginf(numerator), -np.inf, numerator - parts[2])


def exact_moments(motif: str, label: str, starts, widths, layers: list[_Layer], signed: bool) -> dict:
    """E and Var of the class count of every span starting at ``starts`` and of their sum ("all"), for a
    batch: {start or "all": (mean (B,), var (B,))}.

    ``widths`` (B, L+1) neurons per layer (live neurons when dead ones were pruned)."""
    span = max(TEMPLATES[motif][0]) + 1
    means = {s: _exact_mean(motif, label, s, widths, layers, signed) for s in starts}
    terms = {(s, t): _exact_cov(motif, label, s, t, widths, layers, signed)
             for s in starts for t in starts if s <= t < s + span - 1}  # spans sharing no layer are independent
    out = {s: (means[s], terms[s, s]) for s in starts}
    out["all"] = (sum(means.values()), sum(term if s == t else 2 * term for (s, t), term in terms.items()))
    return out


def _exact_mean(motif, label, s, widths, layers, signed):
    positions, edges, aut = TEMPLATES[motif]
    span = max(positions) + 1
    B = widths.shape[0]
    count = np.ones(B)
    for layer in range(span):
        k = sum(p == layer for p in positions)
        count = count * _falling(widths[:, s + layer], k)
    total = np.zeros(B)
    for sigma in sign_classes(motif, signed)[label]:
        log = np.zeros(B)
        for layer in range(span - 1):
            xs = [sigma[j] for j, (u, _) in enumerate(edges) if positions[u] == layer]
            log = log + layers[s + layer].log_moment(np.array([xs.count("+")]), np.array([xs.count("-")]))[0]
        total = total + np.exp(log)
    return count * total / aut


def _exact_cov(motif, label, s, t, widths, layers, signed):
    """Cov(N_s, N_t) of the class counts of the spans starting at s <= t (Var when s == t)."""
    _, _, aut = TEMPLATES[motif]
    B = widths.shape[0]
    node, edge, weight = pair_table(motif, t - s, signed, label)
    count = np.ones((len(weight), B))
    for layer in range(node.shape[1]):
        n = widths[None, :, s + layer]
        count = count * _falling(n, node[:, layer, 0][:, None]) * _falling(n - node[:, layer, 0][:, None], node[:, layer, 1][:, None])
    log_x = np.zeros((len(weight), B))
    log_y = np.zeros((len(weight), B))
    log_u = np.zeros((len(weight), B))
    log_r = np.zeros((len(weight), B))
    disjoint = np.ones(len(weight), bool)
    for layer in range(edge.shape[1]):
        e = edge[:, layer, :]
        mom = layers[s + layer]
        log_x += mom.log_moment(e[:, 0], e[:, 1])
        log_y += mom.log_moment(e[:, 2], e[:, 3])
        log_u += np.where((e[:, 4] < 0)[:, None], -np.inf, mom.log_moment(np.maximum(e[:, 4], 0), np.maximum(e[:, 5], 0)))
        disjoint &= (e[:, 4] == e[:, 0] + e[:, 2]) & (e[:, 5] == e[:, 1] + e[:, 3])
    d = np.flatnonzero(disjoint)
    for layer in range(edge.shape[1]):
        e = edge[d, layer, :]
        log_r[d] += layers[s + layer].log_ratio_disjoint(e[:, 0], e[:, 1], e[:, 2], e[:, 3])
    with np.errstate(invalid="ignore", over="ignore"):
        prod = np.exp(log_x + log_y)
        # synapse-disjoint pairs: f(x+y) − f(x)f(y) = f(x)f(y)·expm1(r) without cancellation
        cov = np.where(disjoint[:, None], prod * np.expm1(log_r), np.exp(log_u) - prod)
        cov = np.where(prod == 0, np.where(np.isfinite(log_u), np.exp(log_u), 0.0), cov)
    return (weight[:, None] * count * cov).sum(axis=0) / (aut * aut)


def chain_pairs_bernoulli(label: str, widths, layers: list[_Layer], starts, signed: bool) -> dict:
    """E and Var of the connected-pair counts nnz(M_{l+1} M_l) under ``bernoulli``, per span and summed.

    Y_ac = 1[some b: a→b→c] misses with q = (1 − p₁p₂)^{n_b}. Two pairs with the same source miss together
    with (1 − p₁(1 − (1 − p₂)²))^{n_b} (likewise the same target); pairs sharing no neuron use disjoint
    slots and are independent. Spans l and l+1 share one slot, b→c, for every (a, b, c, d): given it the two
    pairs are independent, which gives the cross term (see docs/motifs.md)."""
    s1, s2 = (label[0], label[1]) if signed else ("+", "+")
    p = [{"+": lay.mp / np.maximum(lay.N, 1.0), "-": lay.mn / np.maximum(lay.N, 1.0)} for lay in layers]
    out, cross = {}, []
    for s in starts:
        na, nb, nc = widths[:, s], widths[:, s + 1], widths[:, s + 2]
        p1, p2 = p[s][s1], p[s + 1][s2]
        q = (1 - p1 * p2) ** nb
        same_a = (1 - p1 * (1 - (1 - p2) ** 2)) ** nb
        same_c = (1 - p2 * (1 - (1 - p1) ** 2)) ** nb
        var = na * nc * (q * (1 - q) + (nc - 1) * (same_a - q * q) + (na - 1) * (same_c - q * q))
        out[s] = (na * nc * (1 - q), var)
        if s + 1 in starts:
            n0, n1, n2, n3 = (widths[:, s + k] for k in range(4))
            t1, t2 = s1, s2  # the same class on the next span: its first synapse is in layer s+1
            u1, u2 = p[s + 1][t1], p[s + 2][t2]
            both = (1 - p1 * p2) ** (n1 - 1) * (1 - u1 * u2) ** (n2 - 1)
            term = p1 * p2 * u2 * (1 - p2) if s2 == t1 else -p1 * p2 * u1 * u2
            cross.append(n0 * n1 * n2 * n3 * both * term)
    out["all"] = (sum(v[0] for v in out.values()), sum(v[1] for v in out.values()) + 2 * sum(cross))
    return out


def chain_pairs_mean(label: str, widths, layers: list[_Layer], starts, signed: bool):
    """E[nnz(M_{l+1} M_l)] (of the sign class) summed over the spans: each (a, c) pair is connected unless
    the out-neighbours of a miss the in-neighbours of c (hypergeometric for ``fixed``)."""
    from scipy.stats import hypergeom  # scipy.stats costs half a second to import: only here
    B = widths.shape[0]
    mean = np.zeros(B)
    s1, s2 = (label[0], label[1]) if signed else ("+", "+")
    for s in starts:
        na, nb, nc = widths[:, s], widths[:, s + 1], widths[:, s + 2]
        first, second = layers[s], layers[s + 1]
        m1 = first.mp if s1 == "+" else first.mn
        m2 = second.mp if s2 == "+" else second.mn
        miss = np.zeros(B)
        for b in range(B):
            n_mid = int(nb[b])
            if n_mid == 0 or first.N[b] == 0 or second.N[b] == 0:
                miss[b] = 1.0  # no middle neurons or no slots: nothing is connected
                continue
            if first.null == "bernoulli":
                miss[b] = (1 - m1[b] / first.N[b] * m2[b] / second.N[b]) ** n_mid
                continue
            k = np.arange(n_mid + 1)
            pd_ = hypergeom.pmf(k, int(first.N[b]), n_mid, int(m1[b]))
            pe = hypergeom.pmf(k, int(second.N[b]), n_mid, int(m2[b]))
            # P(a random e-set misses a fixed d-set) = C(n−d, e)/C(n, e)
            d, e = np.meshgrid(k, k, indexing="ij")
            with np.errstate(invalid="ignore"):
                logp = gammaln(n_mid - d + 1) - gammaln(n_mid - d - e + 1) - gammaln(n_mid + 1) + gammaln(n_mid - e + 1)
            p = np.where(d + e <= n_mid, np.exp(np.where(d + e <= n_mid, logp, 0.0)), 0.0)
            miss[b] = pd_ @ p @ pe
        mean += na * nc * (1 - miss)
    return mean


# ----------------------------------------------------------------------------------------------------
# Sampled nulls: a batch of random graphs of the same shape as one checkpoint
# ----------------------------------------------------------------------------------------------------

def _signs(rng, m, m_neg, samples):
    """(samples, m) signs: the layer's m_neg negative synapses shuffled over the m placed ones."""
    neg = np.zeros((samples, m), bool)
    neg[:, :m_neg] = True
    return rng.permuted(neg, axis=1) if m else neg


def _uniform_slots(rng, slots, m, samples):
    """(samples, m) distinct slot indices, uniform."""
    if m == 0 or m == slots:
        return np.tile(np.arange(m, dtype=np.int64), (samples, 1))
    if samples * slots <= 20_000_000:
        return np.argpartition(rng.random((samples, slots)), m - 1, axis=1)[:, :m]
    return np.stack([rng.choice(slots, m, replace=False) for _ in range(samples)])


def sample_null(one: Batch, null: str, samples: int, seed, alive=None) -> Batch:
    """``samples`` random graphs from ``null`` with the shape, synapse and sign counts of the one graph."""
    rng = np.random.default_rng(seed)
    src, dst, neg, sid = [], [], [], []
    for l in range(one.depth):
        n_in, n_out = one.widths[l], one.widths[l + 1]
        m, m_neg = len(one.src[l]), int(one.neg[l].sum())
        if null in ("fixed", "bernoulli", "study"):
            if null == "study":
                s, d = _study_layer(rng, one.src[l], one.dst[l], samples)
            elif null == "fixed":
                slots = _uniform_slots(rng, n_in * n_out, m, samples)
                s, d = slots // n_out, slots % n_out
            else:
                s, d = _bernoulli_layer(rng, n_in, n_out, m, samples)
            if null == "bernoulli":
                g = np.repeat(np.arange(samples), [len(x) for x in s])
                s, d = np.concatenate(s), np.concatenate(d)
                n = rng.random(len(s)) < (m_neg / m if m else 0)
            else:
                g = np.repeat(np.arange(samples), m)
                n = _signs(rng, m, m_neg, samples).ravel()
                s, d = s.ravel(), d.ravel()
        elif null == "degree":
            s, d = curveball(one.src[l], one.dst[l], n_in, n_out, samples, rng)
            g = np.repeat(np.arange(samples), m)
            n = _signs(rng, m, m_neg, samples).ravel()
            s, d = s.ravel(), d.ravel()
        else:
            raise InputError(f"unknown null {null!r} (choose from {', '.join(NULLS)})")
        src.append(s.astype(np.int64))
        dst.append(d.astype(np.int64))
        neg.append(n)
        sid.append(g)
    return Batch(one.widths, samples, tuple(src), tuple(dst), tuple(neg), tuple(sid))


def _bernoulli_layer(rng, n_in, n_out, m, samples):
    sizes = rng.binomial(n_in * n_out, m / max(1, n_in * n_out), size=samples)
    slots = [rng.choice(n_in * n_out, k, replace=False) for k in sizes]
    return [x // n_out for x in slots], [x % n_out for x in slots]


def _study_layer(rng, src, dst, samples):
    """``samples`` draws of the study's null for one layer: (src, dst) arrays (samples, m).

    The procedure of Zahn et al.'s released code (``randomPruning`` in MothMotifs' ``random_networks.py``)
    on the s live sources and t live targets of the layer's m synapses: m − s − t synapses uniformly among
    the s·t slots; then, source by source, one more synapse in a random free slot of its row; then, target
    by target, one more in a random free slot of its column (a full row or column puts its synapse in a
    random free slot of the layer instead). Every live neuron keeps a synapse and the layer keeps m.

    Where m < s + t there are too few synapses for that (their code leaves such a layer empty): the layer
    falls back to :func:`_edge_cover_layer`, which :func:`study_fallback_layers` reports. Draws: per sample,
    ``rng.random`` for the s·t slots, then for the rows, then for the columns, then one per full row or
    column (tests/test_motifs.py ports the procedure draw by draw).
    """
    sources, targets = np.unique(src), np.unique(dst)
    s, t, m = len(sources), len(targets), len(src)
    if m < s + t:
        return _edge_cover_layer(rng, sources, targets, m, samples)
    out_s, out_d = np.empty((samples, m), np.int64), np.empty((samples, m), np.int64)
    for k in range(samples):
        taken = np.zeros((s, t), bool)
        uniform = m - s - t
        if uniform:
            taken.flat[np.argpartition(rng.random(s * t), uniform - 1)[:uniform]] = True
        full = _one_more_in_each_line(rng, taken) + _one_more_in_each_line(rng, taken.T)
        for _ in range(full):
            free = np.flatnonzero(~taken)
            taken.flat[free[_pick(rng.random(), len(free))]] = True
        rows, columns = np.nonzero(taken)
        out_s[k], out_d[k] = sources[rows], targets[columns]
    return out_s, out_d


def _one_more_in_each_line(rng, taken: np.ndarray) -> int:
    """Put one synapse in a uniformly random free slot of every row of ``taken`` (a view, changed in
    place); returns how many rows were full."""
    free = ~taken
    count = free.sum(axis=1)
    pick = _pick(rng.random(len(count)), count)
    rank = np.cumsum(free, axis=1) - 1  # rank of each free slot within its row
    taken |= free & (rank == pick[:, None]) & (count[:, None] > 0)
    return int((count == 0).sum())


def _pick(u, n):
    """⌊u·n⌋ for uniform u in [0, 1): a uniform index below n (clamped against rounding up to n)."""
    return np.minimum((np.asarray(u) * n).astype(np.int64), np.maximum(np.asarray(n) - 1, 0))


def _edge_cover_layer(rng, sources, targets, m, samples):
    """A random edge cover of max(s, t) synapses (a random matching of the smaller side into the larger,
    the rest of the larger side to random partners), then the other m − max(s, t) uniform among the free
    slots: every live neuron keeps a synapse, the layer keeps m. The study null's fallback for m < s + t."""
    s, t = len(sources), len(targets)
    out_s, out_d = np.empty((samples, m), np.int64), np.empty((samples, m), np.int64)
    for k in range(samples):
        big, small = (s, t) if s >= t else (t, s)
        cover_big = rng.permutation(big)
        cover_small = np.concatenate([rng.permutation(small), rng.integers(0, small, big - small)])
        cs, cd = (cover_big, cover_small) if s >= t else (cover_small, cover_big)
        taken = np.zeros(s * t, bool)
        taken[cs * t + cd] = True
        extra = rng.choice(np.flatnonzero(~taken), m - len(cs), replace=False)
        out_s[k] = sources[np.concatenate([cs, extra // t])]
        out_d[k] = targets[np.concatenate([cd, extra % t])]
    return out_s, out_d


def study_fallback_layers(one: Batch) -> list[int]:
    """The layers of a graph where the study's null falls back to an edge cover: fewer synapses than live
    sources and targets together (m < s + t)."""
    return [l for l in range(one.depth)
            if len(one.src[l]) < len(np.unique(one.src[l])) + len(np.unique(one.dst[l]))]


def curveball(src, dst, n_in, n_out, samples, rng, chains: int = 20, burn_in: int | None = None, thin: int | None = None):
    """``samples`` degree-preserving random versions of one bipartite layer (global curveball).

    Each round pairs up the sources at random and, in every pair, deals the targets that only one of
    the two has out again at random, keeping both out-degrees (Strona et al. 2014; Carstens, Berger &
    Strona 2016 for the global rounds). ``chains`` chains run side by side, vectorised, each burnt in for
    ``burn_in`` rounds and then read every ``thin`` rounds (by default more rounds for layers with few
    sources, where a round re-deals little). Returns (samples, m) arrays (src, dst).
    """
    thin = thin or max(2, -(-64 // max(n_in, 1)))
    burn_in = 10 * thin + 10 if burn_in is None else burn_in
    m = len(src)
    if m == 0:
        return np.zeros((samples, 0), np.int64), np.zeros((samples, 0), np.int64)
    chains = max(1, min(chains, samples))
    per_chain = -(-samples // chains)
    s = np.tile(np.asarray(src, np.int64), chains)
    d = np.tile(np.asarray(dst, np.int64), chains)
    cid = np.repeat(np.arange(chains), m)
    present = np.zeros(chains * n_in * n_out, bool)  # (chain, source, target) -> synapse
    present[(cid * n_in + s) * n_out + d] = True
    pairs = n_in // 2
    taken_s, taken_d = [], []
    for round_ in range(burn_in + per_chain * thin):
        if pairs and m:
            order = np.argsort(rng.random((chains, n_in)), axis=1)  # order[c, k] = source at position k
            position = np.empty_like(order)
            np.put_along_axis(position, order, np.arange(n_in)[None, :], axis=1)
            pos = position[cid, s]
            pair, owner = pos // 2, pos % 2
            partner = order[cid, np.minimum(pos ^ 1, n_in - 1)]
            free = np.flatnonzero((pair < pairs) & ~present[(cid * n_in + partner) * n_out + d])
            gid = cid[free] * pairs + pair[free]
            # deal: in each pair, the exclusive targets go to the first source in a uniformly random
            # subset as large as it had, the rest to the second
            shuffled = free[np.argsort(gid + rng.random(len(free)), kind="stable")]
            size = np.bincount(gid, minlength=chains * pairs)
            first = np.bincount(gid, weights=owner[free] == 0, minlength=chains * pairs).astype(np.int64)
            start = np.concatenate([[0], np.cumsum(size)[:-1]])
            g_sorted = cid[shuffled] * pairs + pair[shuffled]
            rank = np.arange(len(shuffled)) - start[g_sorted]
            new_owner = (rank >= first[g_sorted]).astype(np.int64)
            present[(cid[shuffled] * n_in + s[shuffled]) * n_out + d[shuffled]] = False
            s[shuffled] = order[cid[shuffled], 2 * pair[shuffled] + new_owner]
            present[(cid[shuffled] * n_in + s[shuffled]) * n_out + d[shuffled]] = True
        if round_ >= burn_in and (round_ - burn_in) % thin == thin - 1:
            taken_s.append(s.reshape(chains, m).copy())
            taken_d.append(d.reshape(chains, m))
    out_s = np.stack(taken_s, axis=1).reshape(-1, m)[:samples]
    out_d = np.stack(taken_d, axis=1).reshape(-1, m)[:samples]
    return out_s, out_d


# ----------------------------------------------------------------------------------------------------
# The analysis
# ----------------------------------------------------------------------------------------------------

def _span_label(start: int, span: int) -> str:
    return str(start) if span == 1 else f"{start}-{start + span - 1}"


def motifs(
    checkpoints,
    *,
    null: str = "fixed",
    signed: bool = False,
    chain_pairs: bool = False,
    prune_dead: bool = False,
    samples: int = 1000,
    seed: int | None = 0,
    sample: bool = False,
    motifs: tuple[str, ...] = MOTIFS,
) -> pd.DataFrame:
    """Motif counts with the mean, SD and z-score of each under ``null``, one row per (checkpoint, layer
    or span, motif, sign), plus a ``layer == "all"`` row per motif summing its layers (with the exact
    covariances of overlapping spans).

    ``checkpoints``: one Checkpoint or a list (those of one shape are counted together, which is how
    350 networks × 20 levels take about 20 s). ``method`` says how each row's ``expected`` and ``sd`` came
    about: ``exact`` (closed form), ``sampled`` (``samples`` draws of the null) or ``E exact, sd sampled``
    (chain pairs under ``fixed``).
    """
    if isinstance(checkpoints, Checkpoint):
        checkpoints = [checkpoints]
    checkpoints = list(checkpoints)
    if not checkpoints:
        raise InputError("no checkpoints to count motifs in")
    if null not in NULLS:
        raise InputError(f"unknown null {null!r}: choose from {', '.join(NULLS)}")
    unknown = sorted(set(motifs) - set(MOTIFS))
    if unknown:
        raise InputError(f"unknown motif(s) {', '.join(unknown)}: choose from {', '.join(MOTIFS)}")
    if null not in EXACT_NULLS or sample or chain_pairs:
        if samples < 2:
            raise InputError("--samples must be at least 2 to estimate a standard deviation")
    frames = []
    by_shape: dict = {}
    position = {id(c): k for k, c in enumerate(checkpoints)}
    networks = [c for c in checkpoints if not is_plain_chain(c)]
    if networks and null == "study":
        raise InputError("the study's null (--null study) is that of its MLPs, on the live neurons of a plain chain of "
                         "Linear layers: for convolutional and residual networks use --null fixed, bernoulli or degree")
    if networks and prune_dead:
        raise InputError("removing dead neurons (--prune-dead) is defined for plain chains of Linear layers only")
    prune_dead = prune_dead or null == "study"  # the study's null lives on the live neurons (and so do its counts)
    for c in checkpoints:
        if is_plain_chain(c):
            by_shape.setdefault(c.widths, []).append(c)
    for group in by_shape.values():
        for chunk in _chunks(group):
            frames.append(_motifs_of_shape(chunk, position, null, signed, chain_pairs, prune_dead, samples, seed, sample, motifs))
    if networks:
        frames.append(_motifs_of_networks(networks, position, null, signed, chain_pairs, samples, seed, sample, motifs))
    frame = pd.concat(frames, ignore_index=True).sort_values(["_checkpoint", "_order"], kind="stable")
    frame = frame.drop(columns=["_checkpoint", "_order"]).reset_index(drop=True)
    if not signed:
        frame = frame.drop(columns="sign")
    return frame


BATCH_SYNAPSES = 1_000_000
"""Synapses counted together in one block-diagonal batch: big enough to amortise numpy's per-call cost,
small enough that the mask products stay in memory (a 7 000-network batch would need gigabytes)."""


def _chunks(group):
    chunk, size = [], 0
    for checkpoint in group:
        if chunk and size + checkpoint.edges > BATCH_SYNAPSES:
            yield chunk
            chunk, size = [], 0
        chunk.append(checkpoint)
        size += checkpoint.edges
    if chunk:
        yield chunk


def _motifs_of_shape(group, position, null, signed, chain_pairs, prune, samples, seed, sample, motifs_wanted):
    batch = Batch.of(group)
    if prune:
        batch, alive = remove_dead(batch)
    widths = np.array([list(batch.widths)] * batch.size, float)
    if prune:  # the nulls live on the live neurons
        cuts = np.cumsum(batch.widths)[:-1]
        widths = np.stack([part.sum(axis=1) for part in np.split(alive, cuts, axis=1)], axis=1).astype(float)
    counts = count_batch(batch, signed=signed, chain_pairs=chain_pairs, motifs=motifs_wanted)
    keys = list(counts)
    observed = {k: counts[k] for k in keys}
    mean, var, method, used = {}, {}, {}, {}
    exact_mean = set()  # keys whose mean is a closed form and only the SD is sampled
    if null in EXACT_NULLS and not sample:
        layers = [
            _Layer(null, batch.edges(l, "+") if signed else batch.edges(l), batch.edges(l, "-") if signed else np.zeros(batch.size),
                   widths[:, l] * widths[:, l + 1])
            for l in range(batch.depth)
        ]
        for motif in motifs_wanted:
            span = SPAN[motif]
            starts = list(range(batch.depth - span + 1))
            for label in sorted({k[2] for k in keys if k[0] == motif}):
                if motif == "chain" and chain_pairs and null == "bernoulli":
                    for key_start, (e, v) in chain_pairs_bernoulli(label, widths, layers, starts, signed).items():
                        key = (motif, key_start, label)
                        mean[key], var[key], method[key], used[key] = e, v, "exact", 0
                    continue
                if motif == "chain" and chain_pairs:
                    for key_start, which in [(s, [s]) for s in starts] + [("all", starts)]:
                        mean[motif, key_start, label] = chain_pairs_mean(label, widths, layers, which, signed)
                        method[motif, key_start, label] = "E exact, sd sampled"
                        exact_mean.add((motif, key_start, label))
                    continue
                if motif == "chain3" and chain_pairs:
                    continue  # no closed form for connected 3-path pairs: sampled below
                for key_start, (e, v) in exact_moments(motif, label, starts, widths, layers, signed).items():
                    key = (motif, key_start, label)
                    mean[key], var[key], method[key], used[key] = e, v, "exact", 0
    rows_sampled = [k for k in _all_keys(keys) if k not in var]
    if rows_sampled:
        for b in range(batch.size):
            one = _one(batch, b)
            if prune:  # sample on the live neurons only
                one = _compact(one, alive[b])
            draws = _count_in_parts(sample_null(one, null, samples, None if seed is None else [seed, position[id(group[b])]]),
                                    signed=signed, chain_pairs=chain_pairs, motifs=sorted({k[0] for k in rows_sampled}))
            draws = _with_totals(draws)
            fallback = study_fallback_layers(one) if null == "study" else []
            for key in rows_sampled:
                values = draws[key]
                if key not in exact_mean:
                    mean.setdefault(key, np.zeros(batch.size))[b] = values.mean()
                    method.setdefault(key, np.full(batch.size, "sampled", dtype=object))[b] = _sampled_method(key, fallback)
                var.setdefault(key, np.zeros(batch.size))[b] = values.var(ddof=1)
                used[key] = samples
    observed = _with_totals(observed)
    runs = np.array([c.run for c in group], dtype=object)
    levels = np.array([c.level for c in group])
    sparsity = np.array([c.sparsity for c in group])
    places = np.array([position[id(c)] for c in group])
    parts = []
    for order, key in enumerate(_all_keys(keys)):
        motif, start, label = key
        e, v = mean[key], np.maximum(var[key], 0.0)
        v = np.where(v <= 1e-11 * (e * e + 1.0), 0.0, v)
        sd = np.sqrt(v)
        with np.errstate(divide="ignore", invalid="ignore"):
            excess = observed[key] - e
            excess = np.where(np.abs(excess) <= 1e-9 * np.maximum(np.abs(e), 1.0), 0.0, excess)  # rounding of e
            z = np.where(sd > 0, excess / sd, np.nan)
        parts.append(pd.DataFrame({
            "run": runs, "level": levels, "sparsity": sparsity,
            "layer": "all" if start == "all" else _span_label(start, SPAN[motif]), "motif": motif, "sign": label,
            "count": np.rint(observed[key]).astype(np.int64), "expected": e, "sd": sd, "z": z,
            "null": null, "samples": used[key], "method": method[key], "_checkpoint": places, "_order": order,
        }))
    return pd.concat(parts, ignore_index=True)


def _sampled_method(key, fallback: list[int]) -> str:
    """``method`` of a sampled row: "sampled", saying so when a layer of its span fell back to an edge cover
    under the study's null (see :func:`_study_layer`)."""
    motif, start, _ = key
    spanned = [l for l in fallback if start == "all" or start <= l < start + SPAN[motif]]
    if not spanned:
        return "sampled"
    return f"sampled; layer {', '.join(map(str, spanned))}: edge cover (m < s + t)"


def _count_in_parts(batch: Batch, **options) -> dict:
    """:func:`count_batch` over consecutive groups of graphs of about BATCH_SYNAPSES synapses each
    (the edges of a sampled batch come graph by graph)."""
    per_graph = max(1, sum(len(s) for s in batch.src) // max(batch.size, 1))
    step = max(1, BATCH_SYNAPSES // per_graph)
    parts = []
    for first in range(0, batch.size, step):
        last = min(first + step, batch.size)
        cut = [np.searchsorted(sid, [first, last]) for sid in batch.sid]
        parts.append(count_batch(Batch(
            batch.widths, last - first,
            tuple(x[a:b] for x, (a, b) in zip(batch.src, cut)), tuple(x[a:b] for x, (a, b) in zip(batch.dst, cut)),
            tuple(x[a:b] for x, (a, b) in zip(batch.neg, cut)), tuple(x[a:b] - first for x, (a, b) in zip(batch.sid, cut)),
        ), **options))
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def _all_keys(keys):
    """Per-span keys then one (motif, 'all', sign) total per motif and sign, in catalogue order."""
    out = []
    for motif in MOTIFS:
        mine = [k for k in keys if k[0] == motif]
        for label in sorted({k[2] for k in mine}):
            spans = sorted(k for k in mine if k[2] == label)
            out.extend(spans)
            if spans:
                out.append((motif, "all", label))
    return out


def _with_totals(counts: dict) -> dict:
    out = dict(counts)
    for motif, start, label in counts:
        total = (motif, "all", label)
        out[total] = out.get(total, 0) + counts[motif, start, label]
    return out


def _one(batch: Batch, b: int) -> Batch:
    picks = [batch.sid[l] == b for l in range(batch.depth)]
    return Batch(batch.widths, 1,
                 tuple(batch.src[l][k] for l, k in enumerate(picks)), tuple(batch.dst[l][k] for l, k in enumerate(picks)),
                 tuple(batch.neg[l][k] for l, k in enumerate(picks)), tuple(np.zeros(int(k.sum()), np.int64) for k in picks))


def _compact(one: Batch, alive: np.ndarray) -> Batch:
    """The one graph on its live neurons only, renumbered within each layer."""
    parts = np.split(alive, np.cumsum(one.widths)[:-1])
    index = [np.cumsum(part) - 1 for part in parts]
    widths = tuple(int(part.sum()) for part in parts)
    return Batch(widths, 1, tuple(index[l][one.src[l]] for l in range(one.depth)),
                 tuple(index[l + 1][one.dst[l]] for l in range(one.depth)), one.neg, one.sid)


def participation(checkpoint: Checkpoint, *, prune_dead: bool = False) -> pd.DataFrame:
    """Per-neuron motif participation: ``fan_in_pairs`` (converging motifs it closes, C(in, 2)),
    ``fan_out_pairs`` (diverging motifs it opens, C(out, 2)), ``chains_through`` (2-paths it is the
    middle of, in·out), over global neuron indices (``neuron``, see ``Checkpoint.offsets``) with their
    neuron ``group``. Plain chains only."""
    if not is_plain_chain(checkpoint):
        raise InputError("motif participation per neuron is defined for plain chains of Linear layers only")
    batch = Batch.of([checkpoint])
    if prune_dead:
        batch, _ = remove_dead(batch)
    w, L = checkpoint.widths, batch.depth
    ins = [np.zeros(w[0])] + [batch.in_degree(l)[0] for l in range(L)]
    outs = [batch.out_degree(l)[0] for l in range(L)] + [np.zeros(w[-1])]
    k_in, k_out = np.concatenate(ins), np.concatenate(outs)
    return pd.DataFrame({
        "run": checkpoint.run, "level": checkpoint.level,
        "neuron": np.arange(checkpoint.neurons), "group": checkpoint.neuron_groups(),
        "fan_in_pairs": (k_in * (k_in - 1) / 2).astype(np.int64),
        "fan_out_pairs": (k_out * (k_out - 1) / 2).astype(np.int64),
        "chains_through": (k_in * k_out).astype(np.int64),
    })


# ----------------------------------------------------------------------------------------------------
# Networks that are not plain chains: spans of their channel graph (netarchive.analysis.motif_chains)
# ----------------------------------------------------------------------------------------------------

def _motifs_of_networks(networks, position, null, signed, chain_pairs, samples, seed, sample, motifs_wanted):
    """The rows of :func:`motifs` for networks that are not plain chains: each span counted as a chain (by
    :func:`_motifs_of_shape`, spans of one shape together), its rows named by the network's layers, and the
    network's ``all`` rows summed over the spans (see :func:`_network_totals`)."""
    units, inner = [], {}
    for c in networks:
        spans, disjoint = motif_spans(c)
        for span in spans:
            names = tuple(m for m in motifs_wanted if disjoint or SPAN[m] == len(span.layers))
            if names:
                inner[id(span.chain)] = len(units)
                units.append((c, span, disjoint, names))
    by_shape: dict = {}
    for c, span, disjoint, names in units:
        by_shape.setdefault((span.chain.widths, names), []).append(span.chain)
    counted = pd.concat([_motifs_of_shape(chunk, inner, null, signed, chain_pairs, False, samples, seed, sample, names)
                         for (_, names), group in by_shape.items() for chunk in _chunks(group)], ignore_index=True)
    unit = [units[k] for k in counted.pop("_checkpoint")]
    counted = counted.drop(columns="_order").assign(
        sparsity=[c.sparsity for c, *_ in unit], _checkpoint=[position[id(c)] for c, *_ in unit],
        _span=[span.layers for _, span, *_ in unit])
    total = (counted["layer"] == "all").to_numpy()
    rows = counted[~total].copy()
    rows["layer"] = [_global_label(layers, label) for layers, label in zip(rows["_span"], rows["layer"])]
    totals = _network_totals(counted[total], networks, units, position, null, signed, chain_pairs, samples, seed)
    table = pd.concat([rows, totals], ignore_index=True)
    table = table.assign(_all=table["layer"] == "all", _motif=table["motif"].map(MOTIFS.index))
    table = table.sort_values(["_checkpoint", "_motif", "sign", "_all", "_span"], kind="stable")
    return table.assign(_order=np.arange(len(table)))[COLUMNS + ["_checkpoint", "_order"]]


def _global_label(layers: tuple[int, ...], label: str) -> str:
    """A span chain's layer label ("1", "0-2") in the network's layers: "first-last" when they are
    consecutive (as in a plain chain), else every layer ("3-4-7")."""
    first, _, last = label.partition("-")
    chosen = layers[int(first): int(last or first) + 1]
    if list(chosen) == list(range(chosen[0], chosen[0] + len(chosen))):
        return _span_label(chosen[0], len(chosen))
    return "-".join(map(str, chosen))


def _network_totals(local, networks, units, position, null, signed, chain_pairs, samples, seed) -> pd.DataFrame:
    """One ``all`` row per network, motif and sign: counts and expectations summed over its spans'
    totals; variances summed too where the spans' counts do not covary: where no two spans share a layer
    (disjoint chains, single-layer motifs, a motif of one span), and for chains under ``fixed``, where every
    covariance between two spans is a multiple of the variance of a layer's synapse count, which is fixed
    (docs/motifs.md); else the variance of the totals over joint draws of the null (:func:`_joint_totals`;
    the expectation too when the spans' own is sampled)."""
    disjoint = {position[id(c)]: d for c, _, d, _ in units}
    by_place = {position[id(c)]: c for c in networks}
    groups = list(local.groupby(["_checkpoint", "motif", "sign"], sort=False))
    joint_motifs: dict = {}
    for (place, motif, _), part in groups:
        uncorrelated = null == "fixed" and motif == "chain" and not chain_pairs and part["method"].iloc[0] == "exact"
        if not disjoint[place] and SPAN[motif] > 1 and len(part) > 1 and not uncorrelated:
            joint_motifs.setdefault(place, set()).add(motif)
    joint = {place: _joint_totals([u for u in units if position[id(u[0])] == place], place, tuple(sorted(wanted)), null,
                                  signed, chain_pairs, samples, seed)
             for place, wanted in joint_motifs.items()}
    rows = []
    for (place, motif, sign), part in groups:
        c = by_place[place]
        count, expected = int(part["count"].sum()), float(part["expected"].sum())
        var, method, used = float((part["sd"] ** 2).sum()), part["method"].iloc[0], int(part["samples"].max())
        if motif in joint_motifs.get(place, ()):
            draws = joint[place][motif, sign]
            var, used = float(draws.var(ddof=1)), samples
            if method == "sampled":
                expected = float(draws.mean())
            else:
                method = "E exact, sd sampled"
        var = 0.0 if var <= 1e-11 * (expected * expected + 1.0) else var
        sd = np.sqrt(var)
        rows.append({"run": c.run, "level": c.level, "sparsity": c.sparsity, "layer": "all", "motif": motif, "sign": sign,
                     "count": count, "expected": expected, "sd": sd, "z": (count - expected) / sd if sd > 0 else np.nan,
                     "null": null, "samples": used, "method": method, "_checkpoint": place, "_span": ()})
    return pd.DataFrame(rows)


def _joint_totals(units, place, wanted, null, signed, chain_pairs, samples, seed) -> dict:
    """{(motif, sign): (samples,) totals over one network's spans (``units``) of the ``wanted`` multi-layer
    motifs} from ``samples`` draws of the null in which every piece of a layer
    (:class:`~netarchive.analysis.motif_chains.Span`) is drawn once per draw and shared by every span it is
    in, so that the totals have the covariances of overlapping spans."""
    draws: dict = {}
    totals: dict = {}
    for _, span, _, names in units:
        names = tuple(m for m in names if m in wanted and SPAN[m] == len(span.layers))
        if not names:
            continue
        for piece, layer in zip(span.pieces, span.chain.layers):
            if piece not in draws:
                one = Batch((layer.inputs, layer.outputs), 1, (layer.src.astype(np.int64),), (layer.dst.astype(np.int64),),
                            (layer.w < 0,), (np.zeros(layer.edges, np.int64),))
                draws[piece] = sample_null(one, null, samples, None if seed is None else [seed, place, len(draws)])
        pieces = [draws[piece] for piece in span.pieces]
        batch = Batch(span.chain.widths, samples, *(tuple(getattr(p, name)[0] for p in pieces) for name in ("src", "dst", "neg", "sid")))
        for (motif, start, sign), values in _count_in_parts(batch, signed=signed, chain_pairs=chain_pairs, motifs=names).items():
            if start == 0:
                totals[motif, sign] = totals.get((motif, sign), 0) + values
    return totals
