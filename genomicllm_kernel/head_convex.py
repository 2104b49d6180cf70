"""``head_fit_solver = "convex"``: each question's head fitted as its own convex problem, then
written into the model's low-rank head exactly.

Why: the AdamW head of :func:`head_fit.fit_head` shares its second layer across every question and
keeps one early-stopping epoch for all of them (epoch 1 in every stage-8 variant), so a block's fit
depends on the others and a wider input (stage 8e's thirds of the sequence) is left mostly unused.
Here every block is a multinomial L2 logistic regression of its label on its standardised k-mer
features, with the frozen model's label logits as offset, solved by L-BFGS to convergence. Its
ridge strength, and whether the block reads the positional part of the input at all, are chosen by
the loss on the same held-out tenth of the block's training rows that fit_head stops on (dev is
never read), then the block is refitted on all its rows.

The result is realisable exactly in the model's head: the head adds ``B A_b f`` to the final hidden
state at ``<ans>``, and a label answer is a softmax over the rows ``W`` of ``lm_head`` for the
task's labels. With ``B`` an orthonormal basis of the span of every label row (one column per
distinct label token, at most the head's rank) and ``A_b = V_b pinv(W_b B)^T``, the label logits
gain exactly ``f V_b`` (the bias folds into the 3-mer columns, whose frequencies sum to a constant).
So the model class, its ONNX graph and every non-classification answer stay what they were.
"""

from __future__ import annotations

import time

import numpy as np

from .errors import InputError

#: ridge strengths tried per block (on standardised features; stage 8d's convex fit chose 0.03-3)
DEFAULT_RIDGES = (0.03, 0.1, 0.3, 1.0, 3.0)


def solve(X, mu, sd, offset, y, lam, n_labels, start=None, maxiter=500):
    """Standardised-space weights [F*L + L] of min mean CE(offset + ((X - mu) / sd) V + c) + lam/2 |V|^2."""
    from scipy.optimize import minimize

    n, F = X.shape
    L = n_labels
    onehot = np.eye(L)[y]

    def f(w):
        V = w[: F * L].reshape(F, L)
        c = w[F * L :]
        Vs = V / sd[:, None]
        z = offset + X @ Vs - (mu @ Vs) + c
        z = z - z.max(1, keepdims=True)
        e = np.exp(z)
        pr = e / e.sum(1, keepdims=True)
        loss = -np.log(pr[onehot > 0] + 1e-12).mean() + lam / 2 * (V * V).sum()
        G = (pr - onehot) / n
        gs = G.sum(0)
        dV = (X.T @ G) / sd[:, None] - np.outer(mu / sd, gs) + lam * V
        return loss, np.concatenate([dV.ravel(), gs])

    w0 = np.zeros(F * L + L) if start is None else start
    return minimize(f, w0, jac=True, method="L-BFGS-B", options={"maxiter": maxiter}).x


def raw_weights(w, mu, sd, n_features, n_labels):
    """(weights [F, L], bias [L]) on the raw features, from standardised-space ``w``."""
    V = w[: n_features * n_labels].reshape(n_features, n_labels) / sd[:, None]
    return V, w[n_features * n_labels :] - mu @ V


def cross_entropy(z, y) -> float:
    z = z - z.max(1, keepdims=True)
    return float(-np.mean(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(1))))


def fit_block(
    X, offset, y, held, n_labels, ridges, whole_size: int | None, log=None, name="", phase_end: int | None = None, offset_scales=(1.0,),
    motif_start: int | None = None, with_motifs: bool = True,
):  # fmt: skip
    """One block: (raw weights [F, L], bias [L], choice dict). ``whole_size``: the positional part
    starts there and is tried with and without (None: the features are one part). ``phase_end``:
    the reading frames' part (composition.Layout) fills ``whole_size:phase_end``, and the block is
    tried with it and without the positional part after it as well. ``motif_start``: the motif
    scores (composition.Layout) fill ``motif_start:``, and with ``with_motifs`` every part above is
    tried with them added too (the part's name gains ``+motifs``); without, they are never read. ``offset_scales``: the factors
    the frozen model's logits are tried at (the choice's ``offset_scale``); why: on rows the model
    never trained on, its logits can be confidently wrong, and an offset fixed at 1 lets the
    features correct it only as far as the ridge allows (docs/experiments.md, stage 12)."""
    import scipy.sparse as sp

    X = sp.csr_matrix(X)
    F = X.shape[1]
    end = motif_start if motif_start is not None else F  # where the k-mer parts end
    widths = [("whole", whole_size)] if whole_size is not None and whole_size < end else []
    if phase_end is not None and widths and whole_size < phase_end < end:
        widths.append(("phase", phase_end))
    widths.append(("positional" if widths and phase_end != end else "phase" if widths else "whole", end))
    options = [(part, np.arange(width)) for part, width in widths]
    if with_motifs and motif_start is not None and motif_start < F:
        options += [(f"{part}+motifs", np.concatenate([cols, np.arange(motif_start, F)])) for part, cols in options]
    train, hold = ~held, held
    best = None
    t0 = time.time()
    tried = {}
    scales = tuple(offset_scales)
    for scale in scales:
        for part, cols in options:
            Xp = X[:, cols]
            mu = np.asarray(Xp[train].mean(0)).ravel()
            sd = np.sqrt(np.maximum(np.asarray(Xp[train].multiply(Xp[train]).mean(0)).ravel() - mu**2, 0)) + 1e-3
            w = None
            for lam in sorted(ridges, reverse=True):  # strong to weak, each warm-started from the last
                w = solve(Xp[train], mu, sd, scale * offset[train], y[train], lam, n_labels, start=w)
                W, c = raw_weights(w, mu, sd, len(cols), n_labels)
                loss = cross_entropy(scale * offset[hold] + Xp[hold] @ W + c, y[hold])
                tried[f"{part} {lam:g}" + (f" offset {scale:g}" if scales != (1.0,) else "")] = round(loss, 5)
                if best is None or loss < best[0]:
                    best = (loss, part, cols, lam, w, scale)
    loss, part, cols, lam, w, scale = best
    Xp = X[:, cols]
    mu = np.asarray(Xp.mean(0)).ravel()
    sd = np.sqrt(np.maximum(np.asarray(Xp.multiply(Xp).mean(0)).ravel() - mu**2, 0)) + 1e-3
    w = solve(Xp, mu, sd, scale * offset, y, lam, n_labels, start=w)  # every row, the held-out choice
    W, c = raw_weights(w, mu, sd, len(cols), n_labels)
    train_loss = cross_entropy(scale * offset + Xp @ W + c, y)
    placed = np.zeros((F, n_labels))
    placed[cols] = W
    choice = _choice(y, part, lam, scale, loss, train_loss, tried, t0)
    if log:
        log(f"{name}: {len(y)} rows, {part}, ridge {lam:g}, offset x{scale:g}, held-out loss {loss:.4f} ({choice['seconds']} s)")
    return placed, c, choice


def _choice(y, part, lam, scale, loss, train_loss, tried, t0, **extra) -> dict:
    """What a block's fit chose (recorded in train_config.json and read by the model card)."""
    out = {"rows": int(len(y)), "part": part, **extra, "ridge": lam, "offset_scale": scale}
    out.update(held_out_loss=round(loss, 5), train_loss=round(train_loss, 5), tried=tried, seconds=round(time.time() - t0, 1))
    return out


def solve_shared(Z, offset, y, lam, start=None, maxiter=500):
    """Weights [F + L] of the conditional logit min mean CE(offset + Z[n, j] . v + c_j) + lam/2 |v|^2,
    ``Z`` [rows, labels, F] each label's (standardised) view of the row (head_symmetry)."""
    from scipy.optimize import minimize

    n, L, F = Z.shape
    onehot = np.eye(L)[y]

    def f(w):
        v, c = w[:F], w[F:]
        z = offset + Z @ v + c
        z = z - z.max(1, keepdims=True)
        e = np.exp(z)
        pr = e / e.sum(1, keepdims=True)
        loss = -np.log(pr[onehot > 0] + 1e-12).mean() + lam / 2 * v @ v
        G = (pr - onehot) / n
        return loss, np.concatenate([np.einsum("nj,njf->f", G, Z) + lam * v, G.sum(0)])

    w0 = np.zeros(F + L) if start is None else start
    return minimize(f, w0, jac=True, method="L-BFGS-B", options={"maxiter": maxiter}).x


def fit_shared_block(X, offset, y, held, n_labels, ridges, symmetry, layout, log=None, name="", offset_scales=(1.0,), likelihood_weights=(1.0,)):
    """One block with weights shared over its labels (head_symmetry): (raw weights [layout.size, L],
    bias [L], choice dict), the part, ridge and offset scale chosen by held-out loss as in
    :func:`fit_block`; the choice's ``sharing`` names the symmetry, its ``part`` the features read
    ("frames", "whole", or "positional": the thirds too, so the block's positional part is filled; with
    "+likelihood", each label's log-likelihood too: likelihoods.py). ``likelihood_weights``: factors
    the standardised likelihood column of a ``P+likelihood`` part is also tried at (its ridge divided
    by the square), because one ridge serves every column of a part and the one the k-mers need
    shrinks the single likelihood column away (docs/experiments.md, stage 18)."""
    t0 = time.time()
    X = X.tocsr() if hasattr(X, "tocsr") else np.asarray(X)
    train, hold = ~held, held
    best, tried = None, {}
    for part in symmetry.parts(layout, name):
        cols = symmetry.columns(layout, part)
        used = np.unique(cols)  # densify only the columns the views read
        sub = X[:, used].toarray() if hasattr(X, "toarray") else X[:, used]
        V = sub[:, np.searchsorted(used, cols)].astype(np.float64)  # [rows, labels, F']
        pooled = V[train].reshape(-1, V.shape[-1])
        mu, sd = pooled.mean(0), pooled.std(0) + 1e-3
        F = V.shape[-1]
        mixed = part.endswith("+likelihood")  # the likelihood is the views' last column
        for weight in tuple(likelihood_weights) if mixed else (1.0,):
            g = np.ones(F)
            g[-1] = weight
            Z = (V - mu) / sd * g
            for scale in tuple(offset_scales):
                w = None
                for lam in sorted(ridges, reverse=True):  # strong to weak, each warm-started from the last
                    w = solve_shared(Z[train], scale * offset[train], y[train], lam, start=w)
                    loss = cross_entropy(scale * offset[hold] + Z[hold] @ w[:F] + w[F:], y[hold])
                    tried[f"shared {part}{f' x{weight:g}' if weight != 1.0 else ''} {lam:g} offset {scale:g}"] = round(loss, 5)
                    if best is None or loss < best[0]:
                        best = (loss, part, lam, scale, w, V, Z, mu, sd, g)
    loss, part, lam, scale, w, V, Z, mu, sd, g = best
    w = solve_shared(Z, scale * offset, y, lam, start=w)  # every row, the held-out choice
    F = Z.shape[-1]
    v, c = w[:F] * g / sd, w[F:] - (mu / sd) @ (w[:F] * g)
    train_loss = cross_entropy(scale * offset + V @ v + c, y)
    extra = {"likelihood_weight": float(g[-1])} if g[-1] != 1.0 else {}
    choice = _choice(y, part, lam, scale, loss, train_loss, tried, t0, sharing=symmetry.name, **extra)
    if log:
        log(f"{name}: {len(y)} rows, {part} shared over {symmetry.name}, ridge {lam:g}, offset x{scale:g}, held-out loss {loss:.4f}")
    return symmetry.place(v, layout, n_labels, part), c, choice


def label_basis(lm_weight, label_ids: list[int], rank: int):
    """[hidden, rank]: an orthonormal basis of the label rows' span, zero-padded to ``rank``."""
    E = np.asarray(lm_weight, dtype=np.float64)[sorted(set(label_ids))]
    if len(E) > rank:
        raise InputError(f'head_fit_solver = "convex" needs composition_head_rank >= the {len(E)} distinct label tokens (it is {rank})')
    q, _ = np.linalg.qr(E.T)
    out = np.zeros((E.shape[1], rank))
    out[:, : q.shape[1]] = q
    return out


def realise(blocks_fit: dict[int, tuple], n_blocks: int, layout, lm_weight, rank: int, basis=None):
    """(first layer [blocks, layout.size, rank], second layer [hidden, rank]) whose label logits for
    block ``b`` gain exactly ``f W_b + c_b``. ``blocks_fit``: block -> (W [F, L], c [L], label token
    ids). The bias goes into the whole sequence's columns of the layout's first k, whose frequencies
    sum to ``4**k / 16`` for any sequence with one such k-mer (composition.composition). ``basis``:
    the second layer to write the blocks against (a kept head's, head_keep; it must span their
    label rows), else an orthonormal basis of the label rows."""
    import torch

    from .head_keep import basis_spans

    lm = np.asarray(lm_weight, dtype=np.float64)
    label_ids = [t for _, _, ids in blocks_fit.values() for t in ids]
    if basis is None:
        B = label_basis(lm, label_ids, rank)
    else:
        B = np.asarray(basis, dtype=np.float64)
        if not basis_spans(B, lm, label_ids):
            raise InputError("the kept head's second layer does not span this fit's label tokens: refit every block")
    k = layout.ks[0]
    A = np.zeros((n_blocks, layout.size, rank))
    for b, (W, c, ids) in blocks_fit.items():
        W = W.copy()
        W[: 4**k] += c / (4**k / 16)
        M = lm[list(ids)] @ B  # [L, rank], full row rank: B spans these rows
        A[b] = W @ np.linalg.pinv(M).T
    return torch.from_numpy(A.astype(np.float32)), torch.from_numpy(B.astype(np.float32))


def _free_columns(X, end):
    """The columns a free (unshared) fit reads: all but the likelihoods (composition.Layout), which
    mean something only as one label's view against another's (head_symmetry)."""
    return X if end is None or end >= X.shape[1] else X[:, :end]


def _padded(W, F: int):
    """[F, L]: ``W``'s rows, then zeros for the columns it did not read."""
    return W if W.shape[0] == F else np.vstack([W, np.zeros((F - W.shape[0], W.shape[1]))])


def _fit_job(job):
    """A block's free fit, and each alternative's: ``("labels", symmetry, layout, ridges)`` a head
    shared over the labels (fit_shared_block), ``("strand", invariance, layout)`` the free fit on
    strand-folded features (head_symmetry.StrandInvariance). The lowest held-out loss wins; every
    candidate's losses stay in the choice's ``tried``."""
    b, X, offset, y, held, L, ridges, whole, log, name, phase_end, scales, alternatives = job[:13]
    # (the layout's motif part, whether this block tries it, where the free fit's columns end)
    motif_start, with_motifs, free_end = tuple(job[13:]) + (None, False, None)[len(job) - 13 :]
    free = _free_columns(X, free_end)
    W, c, choice = fit_block(free, offset, y, held, L, ridges, whole, log, name, phase_end, scales, motif_start, with_motifs)
    W = _padded(W, X.shape[1])
    best, tried, seconds = (W, c, choice), dict(choice["tried"]), choice["seconds"]
    for alternative in alternatives or ():
        if alternative[0] == "labels":
            _, symmetry, layout, shared_ridges, *weights = alternative
            Wa, ca, alt = fit_shared_block(X, offset, y, held, L, shared_ridges, symmetry, layout, log, name, scales, *weights)
        else:
            _, invariance, layout = alternative
            folded = _free_columns(invariance.fold(X, layout), free_end)
            Wa, ca, alt = fit_block(folded, offset, y, held, L, ridges, whole, None, name, phase_end, scales, motif_start, with_motifs)
            Wa, alt["sharing"] = invariance.place(_padded(Wa, X.shape[1]), layout), invariance.name
            alt["tried"] = {f"{k} strand": v for k, v in alt["tried"].items()}
            if log:
                log(f"{name}: {len(y)} rows, {alt['part']} strand-invariant, ridge {alt['ridge']:g}, held-out loss {alt['held_out_loss']:.4f}")
        tried.update(alt["tried"])
        seconds += alt["seconds"]
        if alt["held_out_loss"] < best[2]["held_out_loss"]:
            best = (Wa, ca, alt)
    best[2]["tried"], best[2]["seconds"] = tried, round(seconds, 1)
    return b, best


def offset_scale_weights(choices: dict, n_blocks: int, layout) -> np.ndarray:
    """[n_blocks, layout.size]: the offset-scale layer's weights, such that block ``b``'s rows get
    ``scale(f) = offset_scale_b - 1`` (written, as the bias is, into the whole sequence's columns of
    the first k, whose frequencies sum to ``4**k / 16``)."""
    k = layout.ks[0]
    S = np.zeros((n_blocks, layout.size))
    for b, choice in choices.items():
        S[b, : 4**k] = (choice.get("offset_scale", 1.0) - 1.0) / (4**k / 16)
    return S


def fit_convex_head(
    problem, n_blocks: int, rank: int, layout, seed: int, ridges=DEFAULT_RIDGES, log=print, names=None, workers: int = 1, offset_scales=None,
    symmetries=None, shared_ridges=(), strand=(), basis=None, likelihood_weights=(1.0,),
):  # fmt: skip
    """(first layer, second layer, per-block choices, blocks that read the positional part).
    ``workers`` > 1 fits that many blocks at once in child processes (each fit is single-threaded
    sparse algebra; the result does not depend on it). ``offset_scales``: block name -> the offset
    factors its fit tries (fit_block); every other block keeps the offset at 1. ``symmetries``:
    block name -> head_symmetry.LabelSymmetry, whose shared fit (at ``shared_ridges``) is tried too;
    ``strand``: the block names whose strand-invariant fit (head_symmetry.StrandInvariance) is tried too;
    ``basis``: the second layer to write the blocks against (realise); ``likelihood_weights``: the
    factors a shared fit also tries the likelihood column at (fit_shared_block)."""
    import scipy.sparse as sp
    import torch

    from .head_fit import held_out_split
    from .head_symmetry import StrandInvariance

    held_all = held_out_split(problem, torch.Generator().manual_seed(seed)).numpy()
    zero_a, zero_b = torch.zeros(n_blocks, problem.feats.shape[1], 1), torch.zeros(problem.states.shape[1], 1)
    with torch.no_grad():
        offset_all = torch.cat([problem.logits(r, zero_a, zero_b) for r in torch.arange(len(problem.labels)).split(8192)]).numpy()
    blocks = problem.block.numpy()
    whole = layout.whole_size if layout.bins or layout.phase_ks else None
    phase_blocks = set(layout.phase_blocks)
    jobs, label_sets = [], {}
    for b in np.unique(blocks).tolist():
        rows = np.nonzero(blocks == b)[0]
        ids = [int(t) for t in problem.label_ids[rows[0]] if t >= 0]
        if any((problem.label_ids[r][: len(ids)].tolist() != ids) for r in rows[:: max(1, len(rows) // 50)]):
            raise InputError(f"composition block {b}: its rows have different label sets")
        L, label_sets[b] = len(ids), ids
        X = sp.csr_matrix(problem.feats[rows].float().numpy())
        name = names[b] if names else str(b)
        # a block without the reading frames is fitted as before: its columns there are zero
        reads_frames = layout.phase_ks and names and names[b] in phase_blocks
        phase_end = layout.bins_start if reads_frames else None
        block_whole = whole if layout.bins or reads_frames else None
        scales = tuple((offset_scales or {}).get(name, (1.0,)))
        symmetry = (symmetries or {}).get(name)
        shared = ("labels", symmetry, layout, tuple(shared_ridges), tuple(likelihood_weights))
        alternatives = [shared] if symmetry is not None and symmetry.usable(layout, name) else []
        if name in set(strand):
            alternatives.append(("strand", StrandInvariance(), layout))
        job = (b, X, offset_all[rows, :L], problem.labels[rows].numpy(), held_all[rows], L, tuple(ridges), block_whole, log, name, phase_end)
        # a block with motif scores tries each of its parts with them too; the rest never see the columns
        scored = bool(layout.motifs is not None and names and names[b] in set(layout.motif_blocks))
        jobs.append(job + (scales, alternatives, layout.motif_start if layout.motifs is not None else None, scored, layout.likelihood_start))
    jobs.sort(key=lambda j: -j[1].nnz)  # largest first: the pool ends evenly
    if workers > 1 and len(jobs) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
            done = list(pool.map(_fit_job, jobs))
    else:
        done = [_fit_job(j) for j in jobs]
    fitted = {b: (W, c, label_sets[b]) for b, (W, c, _) in done}
    choices = {b: choice for b, (_, _, choice) in done}
    head_a, head_b = realise(fitted, n_blocks, layout, problem.lm_weight.numpy(), rank, basis)
    positional = sorted(b for b, ch in choices.items() if ch["part"].split("+")[0] == "positional")
    return head_a, head_b, choices, positional
