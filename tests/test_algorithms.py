"""Selection and dedupe algorithms against independent references and hand-checked cases."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recipe.algorithms import (deita_filter, facility_location, facility_objective, instag_cfds,
                               kcenter_greedy, lift_variety, minhash_clusters, semantic_clusters)
from recipe.algorithms.clusters import connected_labels
from recipe.algorithms.minhash import normalise


def clustered(n=300, d=24, centres=12, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, d))
    x = c[rng.integers(0, centres, n)] + 0.35 * rng.normal(size=(n, d))
    return x.astype(np.float32)


# ---- facility location -------------------------------------------------------------------

def test_facility_location_equals_apricot():
    apricot = pytest.importorskip("apricot")
    x = clustered()
    e = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float64)
    sim = np.maximum(e @ e.T, 0)  # exact similarities of the float32 unit vectors
    ref = apricot.FacilityLocationSelection(25, metric="precomputed", optimizer="naive").fit(sim).ranking
    assert facility_location(x, 25) == [int(i) for i in ref]


def naive_qdit(x, k, q, alpha, costs=None, budget=None):
    """The plain greedy on exact (float64) similarities of the float32 unit vectors."""
    e = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float64)
    s = np.maximum(e @ e.T, 0)
    n = len(x)
    qn = (q - q.min()) / (q.max() - q.min())
    cur = np.zeros(n)
    out, spent = [], 0.0
    # one n x n buffer for every pick: a fresh 32 MB temporary a pick cost 9M page faults
    # (25 s of system time) over 600 picks of 2,000 rows
    buf = np.empty_like(s)
    for _ in range(k):
        gains = np.maximum(np.subtract(s, cur[None, :], out=buf), 0, out=buf).sum(1)
        score = (1 - alpha) * gains / n + alpha * qn
        score[out] = -np.inf
        if budget is not None:
            score[spent + costs > budget] = -np.inf
        a = int(np.argmax(score))
        if score[a] == -np.inf:
            break
        out.append(a)
        spent += costs[a] if budget is not None else 0.0
        cur = np.maximum(cur, s[a])
    return out


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.7])
def test_qdit_equals_naive_greedy(alpha):
    x = clustered(200, seed=1)
    q = np.random.default_rng(2).random(200)
    assert facility_location(x, 30, quality=q, alpha=alpha) == naive_qdit(x, 30, q, alpha)


@pytest.mark.parametrize("seed", [0, 1])
def test_near_ties_follow_exact_similarities(seed):
    # deep into a selection in 384-d, runner-up gains come within float32 rounding of the
    # leader (float32 gains alone part from this reference within 250 picks on every seed
    # tried); such picks are settled on float64 similarities
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(40, 384))
    x = (c[rng.integers(0, 40, 2000)] + 0.6 * rng.normal(size=(2000, 384))).astype(np.float32)
    assert facility_location(x, 600) == naive_qdit(x, 600, rng.random(2000), 0.0)


def _module_of(setting: str):
    from recipe.algorithms import facility_bounds, facility_exact
    return facility_bounds if setting in ("COLS", "TILE") else facility_exact


@pytest.mark.parametrize("per_row,batch,refresh", [(64, 1, 8), (256, 16, 10 ** 9), (2000, 4, 8)])
def test_bounded_greedy_equals_naive_greedy(monkeypatch, per_row, batch, refresh):
    # N above SPARSE_PER_ROW, so columns move from the dense float16-bounded part to the
    # exact stored part as coverage grows; per_row 2000 stores every pair (no dense part);
    # refresh 8 tightens bounds in float16 whenever exact gains leave a step unsettled
    from recipe.algorithms import facility_bounds, facility_exact  # noqa: F401
    monkeypatch.setattr(facility_exact, "SPARSE_PER_ROW", per_row)
    monkeypatch.setattr(facility_exact, "BATCH", batch)
    monkeypatch.setattr(facility_exact, "REFRESH_MIN", refresh)
    monkeypatch.setattr(facility_exact, "REFRESH", 32)
    monkeypatch.setattr(facility_bounds, "COLS", 64)  # several column blocks per update ...
    monkeypatch.setattr(facility_bounds, "TILE", 512)  # ... and row tiles per block
    monkeypatch.setattr(facility_exact, "SYM_BLOCK", 256)  # several blocks in the first pass
    x = clustered(1500, d=32, centres=30, seed=7)
    q = np.random.default_rng(5).random(1500)
    assert facility_location(x, 80, quality=q, alpha=0.2) == naive_qdit(x, 80, q, 0.2)


@pytest.mark.parametrize("seed", range(6))
def test_bounded_greedy_equals_naive_greedy_on_random_settings(monkeypatch, seed):
    # sizes, dimensions, copies, alpha and every block/threshold setting drawn at random
    from recipe.algorithms import facility_bounds, facility_exact  # noqa: F401
    rng = np.random.default_rng(100 + seed)
    n, d = int(rng.integers(300, 1500)), int(rng.choice([8, 32, 96]))
    x = clustered(n, d=d, centres=int(rng.integers(3, 60)), seed=seed)
    if seed % 2:
        x = np.concatenate([x, x[rng.choice(n, n // 5)]])
    q = rng.random(len(x))
    for name, choices in (("SPARSE_PER_ROW", [16, 64, 256, 5000]), ("BATCH", [1, 4, 16]), ("REFRESH_MIN", [0, 8, 512]),
                          ("REFRESH", [8, 64]), ("TRACK", [0, 4, 64]), ("COLS", [64, 1024]), ("TILE", [256, 2048]), ("SYM_BLOCK", [256, 2048])):
        monkeypatch.setattr(_module_of(name), name, int(rng.choice(choices)))
    alpha, k = float(rng.choice([0.0, 0.2, 0.7])), int(rng.integers(20, 120))
    assert facility_location(x, k, quality=q, alpha=alpha) == naive_qdit(x, k, q, alpha)


@pytest.mark.parametrize("seed", range(3))
def test_bounded_greedy_with_a_budget_equals_naive_greedy(monkeypatch, seed):
    # costs decide which rows still fit, in the dense phase and in the sparse tail alike
    from recipe.algorithms import facility_bounds, facility_exact  # noqa: F401
    for name, value in (("SPARSE_PER_ROW", 64), ("BATCH", 4), ("REFRESH_MIN", 8), ("COLS", 64), ("TILE", 256)):
        monkeypatch.setattr(_module_of(name), name, value)
    rng = np.random.default_rng(40 + seed)
    x = clustered(900, d=32, centres=20, seed=seed)
    x = np.concatenate([x, x[rng.choice(900, 100)]])  # copies, some with equal costs
    q = rng.random(len(x))
    costs = rng.integers(1, 20, len(x)).astype(float)
    budget = float(rng.integers(200, 600))
    got = facility_location(x, 150, quality=q, alpha=0.2, costs=costs, budget=budget)
    assert got == naive_qdit(x, 150, q, 0.2, costs, budget)
    assert costs[got].sum() <= budget


def test_bounded_greedy_with_float32_products_where_float16_fails_its_check(monkeypatch):
    # machines whose float16 products accumulate in float16 get float32 bounds instead
    from recipe.algorithms import facility_bounds, facility_exact  # noqa: F401
    monkeypatch.setattr(facility_bounds, "_HALF_OK", False)
    monkeypatch.setattr(facility_exact, "SPARSE_PER_ROW", 64)
    x = clustered(1000, d=32, centres=20, seed=11)
    q = np.random.default_rng(11).random(1000)
    import torch
    assert facility_exact.DropBound(torch.from_numpy(x)).Eh.dtype == torch.float32
    assert facility_location(x, 60, quality=q, alpha=0.3) == naive_qdit(x, 60, q, 0.3)


def test_bounded_greedy_breaks_ties_between_duplicates_like_the_naive_greedy(monkeypatch):
    # exact copies have equal gains: the lower index must win however each gain was computed
    from recipe.algorithms import facility_bounds, facility_exact  # noqa: F401
    for name, value in (("SPARSE_PER_ROW", 64), ("BATCH", 4), ("REFRESH_MIN", 8), ("REFRESH", 32), ("COLS", 64), ("TILE", 256)):
        monkeypatch.setattr(_module_of(name), name, value)
    rng = np.random.default_rng(3)
    x = clustered(1200, d=32, centres=25, seed=3)
    x = np.concatenate([x, x[rng.choice(1200, 300, replace=False)]])[rng.permutation(1500)]
    q = rng.random(1500)
    assert facility_location(x, 120, quality=q, alpha=0.3) == naive_qdit(x, 120, q, 0.3)


@pytest.mark.parametrize("norm", [2000.0, 1e-3])
def test_dot_metric_with_norms_float16_cannot_hold(monkeypatch, norm):
    # products of 2000-norm rows overflow float16 and 1e-3-norm ones underflow it: the bounds
    # work on rows scaled by a power of two
    from recipe.algorithms import facility_bounds, facility_exact  # noqa: F401
    monkeypatch.setattr(facility_exact, "SPARSE_PER_ROW", 64)
    x = clustered(800, d=16, centres=10, seed=2) * norm
    s = np.maximum(x @ x.T, 0).astype(np.float64)
    cur, ref = np.zeros(800), []
    for _ in range(40):
        g = np.maximum(s - cur, 0).sum(1)
        g[ref] = -np.inf
        ref.append(int(np.argmax(g)))
        cur = np.maximum(cur, s[ref[-1]])
    assert facility_location(x, 40, metric="dot") == ref


def test_float16_drop_bound_is_below_the_exact_drop_and_close_to_it():
    import torch
    from recipe.algorithms.facility_bounds import DropBound
    rng = np.random.default_rng(8)
    x = clustered(3000, d=64, centres=40, seed=8)
    e = x / np.linalg.norm(x, axis=1, keepdims=True)
    cols = rng.choice(3000, 300, replace=False)
    old = rng.uniform(0, 0.5, 300)
    new = old + rng.uniform(0, 0.4, 300)
    s = np.maximum(e.astype(np.float64) @ e[cols].T.astype(np.float64), 0.0)
    exact = (np.clip(s, old, new) - old).sum(axis=1)
    bound = DropBound(torch.from_numpy(e)).drops(cols, old, new)
    assert np.all(bound <= exact)
    assert np.all(exact - bound <= 0.01 * exact + 0.05)  # tight enough to settle most steps


def test_float16_gain_bounds_are_above_the_exact_gains():
    import torch
    from recipe.algorithms import facility_exact as fe
    x = clustered(3000, d=64, centres=40, seed=9)
    e = x / np.linalg.norm(x, axis=1, keepdims=True)
    E = torch.from_numpy(e)
    tau = fe._tau(E)
    _, store = fe._first_pass(E, tau)
    cur = np.maximum(e[:40] @ e.T, 0).max(axis=0).astype(np.float64)  # coverage by 40 rows
    low = fe._Low(E, fe.DropBound(E).Eh_padded, cur, tau, store)  # stored parts from cur
    rows = np.arange(0, 3000, 7)
    exact = fe._exact_gains(E, rows, cur, low)
    s = np.maximum(e[rows].astype(np.float64) @ e.T.astype(np.float64), 0.0)
    assert np.allclose(exact, np.maximum(s - cur, 0.0).sum(axis=1), rtol=1e-5, atol=1e-4)
    upper = fe._upper_gains(fe.DropBound(E), rows, cur, low)
    assert np.all(upper >= exact) and np.all(upper - exact <= 0.01 * exact + 0.5)


@pytest.mark.parametrize("dtype,rel", [(np.float16, 2 ** -9), (np.float32, 2 ** -22)])
def test_directed_rounding(dtype, rel):
    from recipe.algorithms.facility_bounds import rounded
    x = np.random.default_rng(1).uniform(-2, 2, 10000)
    up, down = rounded(x, dtype, up=True).astype(np.float64), rounded(x, dtype, up=False).astype(np.float64)
    assert np.all(up >= x) and np.all(down <= x) and np.all(up - down <= np.abs(x) * rel + 1e-7)


def test_dense_device_greedy_equals_naive_greedy():
    # the path GPUs take, run here on the CPU device
    from recipe.algorithms.facility_location import _quality, dense_greedy_torch
    x = clustered(200, seed=6)
    e = x / np.linalg.norm(x, axis=1, keepdims=True)
    q = np.random.default_rng(3).random(200)
    assert dense_greedy_torch(e, 30, _quality(q, 200), 0.5, None, None, "cpu") == naive_qdit(x, 30, q, 0.5)


def test_alpha_one_is_stable_topk():
    q = np.array([0.5, 0.9, 0.9, 0.1, 0.7])
    assert facility_location(np.eye(5), 3, quality=q, alpha=1.0) == [1, 2, 4]


def test_knn_mode_is_close_to_exact():
    x = clustered(2000, d=32, centres=40, seed=3)
    exact = facility_location(x, 60)
    approx = facility_location(x, 60, mode="knn", knn=64)
    fe, fa = facility_objective(x, exact), facility_objective(x, approx)
    assert fa >= 0.98 * fe


def test_budget_skips_rows_that_do_not_fit():
    x = clustered(50, seed=4)
    costs = np.full(50, 10.0)
    costs[facility_location(x, 1)[0]] = 1000.0
    sel = facility_location(x, 50, costs=costs, budget=55)
    assert len(sel) == 5 and costs[sel].sum() <= 55


# ---- k-center -----------------------------------------------------------------------------

def naive_kcenter(x, k, first=0, already=None):
    centres = list(already) if already else [first]
    out = [] if already else [first]
    while len(out) < k:
        d = np.array([min(np.sum((x[i] - x[c]) ** 2) for c in centres) for i in range(len(x))])
        d[centres] = -1
        a = int(np.argmax(d))
        centres.append(a)
        out.append(a)
    return out


def test_kcenter_torch_path_equals_numpy(monkeypatch):
    # the loop GPUs run, forced onto the CPU device
    import torch
    kc = __import__("sys").modules["recipe.algorithms.kcenter"]
    x = clustered(300, seed=8)
    want = kcenter_greedy(x, 25)
    monkeypatch.setattr(kc, "_cuda", lambda: True)
    monkeypatch.setattr(torch.Tensor, "cuda", lambda self: self)
    assert kcenter_greedy(x, 25) == want


def naive_kcenter_fast(x, k):
    """The textbook O(k N d) loop (vectorised per step), for larger checks."""
    mind = np.sum((x - x[0]) ** 2, axis=1)
    out = [0]
    while len(out) < k:
        mind[out] = -1
        a = int(np.argmax(mind))
        out.append(a)
        mind = np.minimum(mind, np.sum((x - x[a]) ** 2, axis=1))
    return out


def test_kcenter_equals_naive_farthest_first():
    x = clustered(120, seed=5).astype(np.float64)
    assert kcenter_greedy(x, 15) == naive_kcenter(x, 15)
    assert kcenter_greedy(x, 10, first=7) == naive_kcenter(x, 10, first=7)
    dup = np.vstack([x[:40], x[:40], x[40:80]])  # exact duplicates: ties go to the lowest index
    assert kcenter_greedy(dup, 30) == naive_kcenter(dup, 30)
    big = clustered(3000, d=16, centres=50, seed=9).astype(np.float64)
    assert kcenter_greedy(big, 120) == naive_kcenter_fast(big, 120)
    got = kcenter_greedy(x, 8, already_selected=[3, 50])
    assert got == naive_kcenter(x, 8, already=[3, 50]) and not {3, 50} & set(got)


# ---- InsTag, DEITA, LIFT ------------------------------------------------------------------

def test_instag_complexity_first_diverse_sampling():
    tags = [["a"], ["a", "b", "c"], ["b", "c"], ["d"], ["a", "b", "c"], [], ["c", "d"]]
    # sorted by tag count (stable): 1, 4, 2, 6, 0, 3, 5
    # sweep 1: 1 (a b c), 4 adds nothing, 2 nothing, 6 (d) -> [1, 6]
    # sweep 2 over 4, 2, 0, 3, 5: 4 (a b c), 2 nothing new, 0 nothing, 3 (d) -> [1, 6, 4, 3]
    # sweep 3 over 2, 0, 5: 2 (b c), 0 (a) ...
    assert instag_cfds(tags, 4) == [1, 6, 4, 3]
    assert instag_cfds(tags, 6) == [1, 6, 4, 3, 2, 0]
    assert instag_cfds(tags, 7) == [1, 6, 4, 3, 2, 0, 5]  # the untagged row comes last, by fallback


def test_deita_keeps_rows_below_tau_in_score_order():
    e = np.array([[1, 0], [0.99, 0.141], [0, 1], [0.6, 0.8], [0.7071, 0.7071]], dtype=np.float32)
    s = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    # row 1 is ~0.99 cosine to row 0 -> dropped; row 3 is 0.8 to row 2 -> kept at tau 0.9;
    # row 4 is ~0.99 to row 3 -> dropped
    assert deita_filter(e, s, 10, tau=0.9) == [0, 2, 3]
    assert deita_filter(e, s, 2, tau=0.9) == [0, 2]


def test_lift_variety_keeps_the_most_spread_rows():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(40, 5)) * 0.1
    base[:4] *= 30  # four rows far from the mean in every direction
    got = lift_variety(base, keep=0.1)
    assert sorted(got) == [0, 1, 2, 3]
    x = np.asarray(base)
    z = (x - x.mean(0)) / x.std(0)
    u, s, vt = np.linalg.svd(z, full_matrices=False)
    m = int(np.searchsorted(np.cumsum(s**2) / (s**2).sum(), 0.95) + 1)
    score = (z @ vt[:m].T).var(1)
    assert got == list(np.argsort(-score, kind="stable")[:4])


# ---- MinHash and semantic clusters ----------------------------------------------------------

def shingles(t, n=5):
    t = normalise(t)
    return {t[i:i + n] for i in range(max(1, len(t) - n + 1))} if t else set()


def near_duplicate_corpus(seed=0, n_base=150):
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(400)]
    texts = []
    for i in range(n_base):
        base = list(rng.choice(words, 40))
        texts.append(" ".join(base))
        for _ in range(rng.integers(0, 3)):  # edited copies: a few words changed
            b = list(base)
            for j in rng.choice(40, rng.integers(1, 4), replace=False):
                b[j] = str(rng.choice(words))
            texts.append(" ".join(b))
    return texts


def test_minhash_recovers_exact_jaccard_pairs_and_clusters():
    texts = near_duplicate_corpus()
    t = 0.7
    sh = [shingles(x) for x in texts]
    pairs = []
    for i, j in itertools.combinations(range(len(texts)), 2):
        jac = len(sh[i] & sh[j]) / len(sh[i] | sh[j])
        if jac >= t:
            pairs.append((i, j, jac))
    labels = minhash_clusters(texts, t)
    clear = [(i, j) for i, j, jac in pairs if jac >= t + 0.1]
    assert clear, "the corpus must contain clear near-duplicates"
    recall = np.mean([labels[i] == labels[j] for i, j in clear])
    assert recall >= 0.98
    exact = connected_labels(len(texts), [p[0] for p in pairs], [p[1] for p in pairs])
    n_exact, n_got = len(set(exact.tolist())), len(set(labels.tolist()))
    assert abs(n_got - n_exact) <= 0.05 * n_exact


def test_minhash_word_unit_and_edge_cases():
    texts = ["The cat sat on the mat today", "the  cat sat on the mat TODAY", "", "a", "completely different words here"]
    labels = minhash_clusters(texts, 0.8, ngram=2, unit="word")
    assert labels[0] == labels[1] == 0
    assert len(set(labels.tolist())) == 4


@pytest.mark.parametrize("groups", [2, 3, 7])
def test_minhash_bands_in_pieces_find_the_same_pairs_and_clusters(groups):
    """Buckets dealt to owners (threads here) find the pairs one owner finds: each owner's
    own memo of verdicts changes what is computed, not the answer."""
    from recipe.algorithms.minhash import candidate_pairs, lsh_params, minhash_signatures, signature_clusters
    from recipe.table import thread_map
    sig = minhash_signatures(near_duplicate_corpus(), 5, "word")
    bands, rows = lsh_params(0.7, sig.shape[1])
    one = set(zip(*(x.tolist() for x in candidate_pairs(sig, 0.7, bands, rows))))
    calls = []

    def pmap(fn, arglist):
        calls.append(len(arglist))
        return thread_map(fn, arglist)
    got = set(zip(*(x.tolist() for x in candidate_pairs(sig, 0.7, bands, rows, pmap, groups))))
    assert calls == [bands, groups] and len(one) > 20 and got == one  # the bands' buckets, then the owners
    calls.clear()
    assert np.array_equal(signature_clusters(sig, 0.7, pmap=pmap, groups=groups), signature_clusters(sig, 0.7))
    # the components too are found in pieces: the owners' forests, then rounds of pairwise merges
    assert calls[:2] == [bands, groups] and calls[2:] == [n // 2 for n in _halvings(groups)]


def _halvings(n: int) -> list[int]:
    """Forests left before each merge round of `reduce_forests` (fan-in 2), from n."""
    out = []
    while n > 1:
        out.append(n)
        n = (n + 1) // 2
    return out


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.lists(st.tuples(st.integers(0, 39), st.integers(0, 39)), max_size=80),
       st.integers(1, 6), st.integers(2, 3), st.randoms(use_true_random=False))
def test_forests_merged_in_rounds_give_the_components_of_all_pairs(n, pairs, pieces, fan_in, rnd):
    """Pairs dealt at random to pieces, each contracted to a forest, merged `fan_in` at a
    time: the labels are those of connected components over all the pairs at once."""
    from recipe.algorithms.clusters import forest_edges, forest_labels, reduce_forests
    from recipe.table import thread_map
    pairs = [(a % n, b % n) for a, b in pairs]
    dealt = [[] for _ in range(pieces)]
    for p in pairs:
        dealt[rnd.randrange(pieces)].append(p)
    forests = []
    for d in dealt:
        child, root = forest_edges([a for a, _ in d], [b for _, b in d])
        nodes = {x for p in d for x in p}
        assert len(set(child.tolist())) == len(child) and len(child) <= max(len(nodes) - 1, 0)
        assert (root < child).all()
        forests.append((child, root))
    got = forest_labels(n, *reduce_forests(forests, thread_map, fan_in))
    want = connected_labels(n, [a for a, _ in pairs], [b for _, b in pairs])
    assert np.array_equal(got, want)


def test_semdedup_cells_find_the_exact_searchs_duplicates_and_nothing_else():
    """Within k-means cells (SemDeDup) the clusters are the exact search's, but for pairs
    split between two cells: none merges rows the exact search keeps apart, and nearly all
    of its duplicate pairs are found. One cell is the exact search."""
    from recipe.algorithms.semdedup import cell_semantic_clusters, default_cells
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(60, 32))
    base = np.repeat(centres, 40, axis=0) + rng.normal(scale=0.6, size=(2400, 32))  # topics, not duplicates
    copies = base[rng.choice(2400, 1200)] + rng.normal(scale=0.05, size=(1200, 32))  # near-duplicates
    e = rng.permutation(np.vstack([base, copies])).astype(np.float32)
    exact = semantic_clusters(e, 0.95)
    jobs = []

    def pmap(fn, arglist):
        jobs.append(len(arglist))
        return [fn(*a) for a in arglist]
    got, cells = cell_semantic_clusters(e, 0.95, cells=24, pmap=pmap)
    assert jobs == [cells] and 12 < cells <= 24
    for lab in np.unique(got):  # nothing merged that the exact search keeps apart
        assert len(set(exact[got == lab].tolist())) == 1
    same = exact[:, None] == exact[None, :]
    pairs = np.triu(same, 1)
    assert pairs.sum() > 1000, "the data must hold near-duplicate pairs"
    found = (got[:, None] == got[None, :])[pairs].mean()
    assert found >= 0.95, found
    assert np.array_equal(cell_semantic_clusters(e, 0.95, cells=1)[0], exact)
    assert default_cells(50_000) == 1 and default_cells(1_000_000) == 100


def test_semantic_clusters_and_reference():
    e = np.array([[1, 0, 0], [0.99, 0.1, 0], [0, 1, 0], [0, 0, 1], [0, 0.05, 1]], dtype=np.float32)
    assert semantic_clusters(e, 0.95).tolist() == [0, 0, 2, 3, 3]
    assert semantic_clusters(e, 0.95, reference=e[[2, 3]]).tolist() == [-1, -1, 0, 1, 1]


def _dense_pairs(e, rng):
    """The reference: nearest unpaired row from the full similarity matrix."""
    sims = e @ e.T
    np.fill_diagonal(sims, -np.inf)
    used, pairs = set(), []
    for i in rng.permutation(len(e)):
        if i in used:
            continue
        j = next((int(x) for x in np.argsort(-sims[i], kind="stable") if x not in used and x != i), None)
        if j is None:
            break
        used |= {int(i), j}
        pairs.append((int(i), j))
    return pairs


@pytest.mark.parametrize("n,knn", [(1, 4), (2, 4), (7, 2), (60, 3), (301, 8)])
def test_pair_up_matches_the_full_search(n, knn):
    from recipe.algorithms.pairs import pair_up
    e = np.random.default_rng(n).normal(size=(n, 16)).astype(np.float32)
    got = pair_up(e, np.random.Generator(np.random.PCG64(5)), knn=knn)
    assert got == _dense_pairs(e, np.random.Generator(np.random.PCG64(5)))
    flat = [x for p in got for x in p]
    assert len(flat) == len(set(flat)) == 2 * (n // 2)
