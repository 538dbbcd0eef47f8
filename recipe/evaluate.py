"""`recipe eval`: does a recipe's selection train a better model than random rows?

The recipe runs (its cache as usual); then the same base model is fine-tuned, with the same
settings, on (a) the recipe's main output, (b) `seeds` random subsets of the pool of the same
size (of the same tokens, when the recipe selects up to a token budget; when it keeps every
row, as a rewriting recipe does, the pool itself under `seeds` training seeds), (c) with
`pool=True` the whole pool; each model, and the untrained base, is evaluated on
an evaluation file of instruction/answer pairs: the mean loss per token of the reference
answers (lower is better), and with a judge, the judge's win rate of each model's answers
against the base's. `eval.json` holds every figure; the table and the verdict put the
selection's loss against the random runs' mean in units of their spread.

Training reuses the finetune model source's code and its weight cache: a model trained on the
same rows with the same settings is loaded, not trained again.
"""
from __future__ import annotations

import hashlib
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np

from .diagnostics import UserError

SETTINGS = {"epochs": 1, "lr": 2e-4, "lora": True, "max_tokens": 256, "seed": 0, "batch_rows": 4}


def read_pairs(path: str, log=lambda *_: None) -> list[tuple[str, str]]:
    """(instruction, response) of every readable row of a file in a supported format."""
    from .io.readers import iter_rows, list_files
    files = list_files(path)
    out = [(row["instruction"], row["response"]) for _, row, _, _ in iter_rows("eval", files, None, None, log)
           if row is not None and row.get("response")]
    if not out:
        raise UserError(f"{path}: no instruction/answer pairs to evaluate on")
    return out


def _key(base_identity: str, pairs: list[tuple[str, str]], settings: dict) -> str:
    h = hashlib.sha256(json.dumps([base_identity, settings], sort_keys=True).encode())
    for a, b in pairs:
        h.update(hashlib.sha256(f"{a}\x00{b}".encode()).digest())
    from .runtime.train import library_versions
    h.update(json.dumps(library_versions(), sort_keys=True).encode())
    return "eval-" + h.hexdigest()


def selects_by_tokens(plan) -> bool:
    """Whether a step of the plan selects up to a token budget (`select(budget_tokens=...)`)."""
    return any(s.op == "select" and s.args.get("budget_tokens") for s in plan.steps)


def random_by_tokens(tokens: list[int], budget: int, seed: int) -> list[int]:
    """Pool rows in a seeded random order, each taken while the total stays within `budget`
    (a row that would pass it is skipped, as the budgeted selection skips it); at least one."""
    order = np.random.default_rng(seed).permutation(len(tokens)).tolist()
    picked, total = [], 0
    for i in order:
        if total + tokens[i] <= budget:
            picked.append(i)
            total += tokens[i]
    return sorted(picked or order[:1])


def answer_loss(rt, decl: dict, pairs: list[tuple[str, str]], progress=None) -> float:
    """Mean loss per token of the reference answers, under the model's chat template."""
    ll = rt.loglik(decl, [rt.chat_prompt(decl, a) for a, _ in pairs], [b for _, b in pairs], progress=progress)
    tokens = sum(r["tokens"] for r in ll)
    return -sum(r["logprob"] for r in ll) / max(tokens, 1)


JUDGE = ("Which answer to the instruction is better: more helpful, accurate and clear? Reply with A or B.\n\n"
         "Instruction:\n{q}\n\nAnswer A:\n{a}\n\nAnswer B:\n{b}\n\nBetter answer:")


def win_rate(rt, judge: dict, pairs, mine: list[str], theirs: list[str], progress=None) -> float:
    """The judge's preference for `mine` over `theirs`, each pair judged in both orders (to
    cancel a preference for a position): the mean probability that `mine` is better."""
    ab = [rt.chat_prompt(judge, JUDGE.format(q=q, a=m, b=t)) for (q, _), m, t in zip(pairs, mine, theirs)]
    ba = [rt.chat_prompt(judge, JUDGE.format(q=q, a=t, b=m)) for (q, _), m, t in zip(pairs, mine, theirs)]
    p = rt.choice_probs(judge, ab + ba, ["A", "B"], progress=progress)
    p1, p2 = p[:len(ab)], p[len(ab):]
    first = p1[:, 0] / np.maximum(p1.sum(axis=1), 1e-12)
    second = p2[:, 1] / np.maximum(p2.sum(axis=1), 1e-12)
    return float(np.mean((first + second) / 2))


def _refuse_model(flag: str, source: str | None) -> None:
    from .model_files import source_problem
    from .models import location_problem
    if source is None:
        return
    if source.startswith("openai:") and flag == "--base":
        raise UserError(f"{flag} {source}: training needs the model's weights; give a local folder or builtin:smollm2")
    if (where := location_problem(source)) is not None:
        raise UserError(f"{flag} {source}: {where}")
    if (found := source_problem(source, "causal_lm")) is not None:
        raise UserError(f"{flag} {source}: {found.message} ({found.hint})")


def evaluate(recipe, params: dict, sources: dict, eval_path: str, out: Path, seeds: int = 3,
             base: str = "builtin:smollm2", pool: bool = False, judge: str | None = None,
             cache_dir: str = ".recipe", model_cache=None, settings: dict | None = None,
             runtime=None, log=print, quiet: bool = True, reporter=None) -> dict:
    """`reporter` (ui.Reporter): progress of each phase (training, answering, scoring); without
    one, `log` alone tells when each starts."""
    from .runtime import ModelRuntime
    from .runtime.resolve import identity
    from .ui import Reporter
    reporter = reporter or Reporter(quiet=True)
    out = Path(out)
    settings = {**SETTINGS, **(settings or {})}
    eval_pairs = read_pairs(eval_path)
    for flag, where in (("--base", base), ("--judge", judge)):
        _refuse_model(flag, where)  # before the recipe runs (it may take an hour), not after
    res = recipe.run(params=params, sources=sources, out=out / "run", cache_dir=cache_dir, model_cache=model_cache,
                     runtime=runtime, quiet=quiet)
    if not res.manifest["sinks"]:
        raise UserError("the recipe writes nothing: `recipe eval` trains on its first sink's rows")
    main = res.manifest["sinks"][0]
    selected = res.table(main["name"])
    src_name = next(iter(sources)) if sources else next(s.name for s in res.plan.steps if s.op == "read")
    pool_tbl = res.table(src_name)
    pool_pairs = list(zip(pool_tbl.column("instruction").to_pylist(), pool_tbl.column("response").to_pylist()))
    sel_pairs = list(zip(selected.column("instruction").to_pylist(), selected.column("response").to_pylist()))
    if not sel_pairs:
        raise UserError("the recipe selected no rows: nothing to train on")
    rt = runtime or ModelRuntime(cache_dir=model_cache, log=log)
    base_decl = {"kind": "causal_lm", "source": base, "options": {}, "identity": identity("causal_lm", base, {})}
    judge_decl = ({"kind": "causal_lm", "source": judge, "options": {}, "identity": identity("causal_lm", judge, {})}
                  if judge else None)
    n_eval = len(eval_pairs)
    base_answers = None
    if judge:
        log(f"the base model answers the {n_eval} eval instructions (for the judge)")
        with reporter.progress("base answers") as prog:
            base_answers = _answers(rt, base_decl, eval_pairs, progress=prog)

    def measure(pairs: list[tuple[str, str]], label: str, trained: bool = True, seed: int | None = None) -> dict:
        rec = {"rows": len(pairs)}
        decl = base_decl
        if trained:
            how = settings if seed is None else {**settings, "seed": seed}
            key = _key(base_decl["identity"], pairs, how)
            t0 = time.time()
            log(f"training on {label} ({len(pairs)} rows)")
            with reporter.progress(f"training on {label}") as prog:
                info = rt.finetune(base_decl, [a for a, _ in pairs], [b for _, b in pairs], how, key, progress=prog)
            rec |= {"tokens": int(sum(rt.count_tokens(base_decl, a) + rt.count_tokens(base_decl, b) for a, b in pairs)),
                    "train_seconds": round(info.get("seconds", time.time() - t0), 3), "reused": bool(info.get("reused"))}
            decl = {"kind": "causal_lm", "source": f"finetuned:{key}", "options": {}, "identity": f"causal_lm:finetuned:{key}"}
        who = "the base model" if not trained else f"the model trained on {label}"
        log(f"loss of the {n_eval} reference answers under {who}")
        with reporter.progress(f"eval loss ({label})") as prog:
            rec["eval_loss"] = round(answer_loss(rt, decl, eval_pairs, progress=prog), 6)
        if judge:
            if trained:
                log(f"{who} answers the eval instructions; the judge compares them with the base's")
                with reporter.progress(f"answers ({label})") as prog:
                    mine = _answers(rt, decl, eval_pairs, progress=prog)
                with reporter.progress(f"judging ({label})") as prog:
                    rec["win_rate_vs_base"] = round(win_rate(rt, judge_decl, eval_pairs, mine, base_answers,
                                                             progress=prog), 6)
            else:
                rec["win_rate_vs_base"] = 0.5
        if trained:
            rt.release(decl)
        return rec

    report: dict = {"recipe": recipe.recipe.name, "eval": {"path": str(eval_path), "pairs": len(eval_pairs)},
                    "base_model": base, "settings": settings}
    report["base"] = measure([], "base", trained=False) | {"rows": 0}
    report["selection"] = measure(sel_pairs, "the selection")
    report["random"] = []
    by_tokens = selects_by_tokens(res.plan)
    if by_tokens:  # the recipe spends a token budget: random subsets get the selection's tokens
        count = lambda ab: rt.count_tokens(base_decl, ab[0]) + rt.count_tokens(base_decl, ab[1])  # noqa: E731
        pool_tokens = [count(ab) for ab in pool_pairs]
        budget = report["selection"]["tokens"]
    # a selection of every row (a recipe that rewrites rather than selects) leaves random
    # subsets nothing to vary: they are the pool, and their spread is the training seed's
    whole = not by_tokens and len(sel_pairs) >= len(pool_pairs)
    report["matched"] = "tokens" if by_tokens else "pool, training seeds vary" if whole else "rows"
    for s in range(seeds):
        if whole:
            report["random"].append({"seed": s, **measure(pool_pairs, f"the pool, training seed {settings['seed'] + s}",
                                                          seed=settings["seed"] + s)})
            continue
        idx = (random_by_tokens(pool_tokens, budget, s) if by_tokens else
               np.sort(np.random.default_rng(s).choice(len(pool_pairs), size=len(sel_pairs), replace=False)).tolist())
        report["random"].append({"seed": s, **measure([pool_pairs[i] for i in idx], f"random subset {s}")})
    if pool:
        report["pool"] = measure(pool_pairs, "the whole pool")
    report["verdict"] = verdict(report)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _answers(rt, decl, pairs, max_new_tokens: int = 128, progress=None) -> list[str]:
    return [g[0] for g in rt.generate(decl, [rt.chat_prompt(decl, a) for a, _ in pairs], max_new_tokens=max_new_tokens,
                                      progress=progress)]


def verdict(report: dict) -> dict:
    """The selection's eval loss against the random runs: difference, spread, z and a sentence."""
    rand = [r["eval_loss"] for r in report["random"]]
    sel = report["selection"]["eval_loss"]
    if not rand:
        return {"text": "no random subsets were trained: nothing to compare with"}
    mean = statistics.fmean(rand)
    sd = statistics.stdev(rand) if len(rand) > 1 else 0.0
    diff = sel - mean
    if len(rand) < 2:  # one random run has no spread: a difference cannot be weighed against noise
        return {"selection_loss": sel, "random_mean": round(mean, 6), "random_sd": 0.0, "difference": round(diff, 6),
                "z": None, "text": f"one random subset only, so no spread to weigh the difference against "
                                   f"({diff:+.4f} nats/token): use --seeds 3 or more for a verdict"}
    z = diff / sd if sd > 0 else (0.0 if diff == 0 else math.copysign(math.inf, diff))
    better = diff < 0
    a = abs(z)
    n = len(rand)
    whole = report.get("matched", "").startswith("pool")  # every row kept: the pool under n training seeds
    runs, than = (f"{n} trainings on the pool", "the pool as it was") if whole else (f"{n} random subsets", "random rows")
    how = (f"clearly (against {runs})" if a >= 3 else f"probably (against {runs})" if a >= 2
           else f"perhaps, though within the noise of {runs}")
    if a < 1:
        text = (f"no measurable difference: the selection's loss is within one spread of {runs} "
                f"({diff:+.4f} nats/token)")
    else:
        text = (f"the selection trains a {'better' if better else 'worse'} model than {than}, {how}: "
                f"loss {diff:+.4f} nats/token, {z:+.1f} spreads")
    if n < 5:
        text += f" (only {n} {'runs' if whole else 'random runs'}: their spread is itself uncertain)"
    return {"selection_loss": sel, "random_mean": round(mean, 6), "random_sd": round(sd, 6),
            "difference": round(diff, 6), "z": None if math.isinf(z) else round(z, 3), "text": text}


def table(report: dict) -> str:
    """The figures as a text table, then the verdict."""
    has_judge = "win_rate_vs_base" in report["selection"]
    head = f"{'model':<22}{'rows':>7}{'train s':>9}{'eval loss':>11}" + (f"{'win vs base':>13}" if has_judge else "")
    lines = [head, "-" * len(head)]

    def row(label, r):
        lines.append(f"{label:<22}{r.get('rows', 0):>7}{r.get('train_seconds', 0):>9.1f}{r['eval_loss']:>11.4f}"
                     + (f"{r.get('win_rate_vs_base', 0.5):>13.3f}" if has_judge else ""))
    row("base (untrained)", report["base"])
    row("selection", report["selection"])
    whole = report.get("matched", "").startswith("pool")
    for r in report["random"]:
        row(f"pool (train seed {report['settings']['seed'] + r['seed']})" if whole else f"random (seed {r['seed']})", r)
    if report["random"]:
        v = report["verdict"]
        lines.append(f"{'random mean ± sd':<22}{'':>7}{'':>9}{v['random_mean']:>11.4f} ± {v['random_sd']:.4f}")
    if "pool" in report:
        row("whole pool", report["pool"])
    lines.append("")
    lines.append("verdict: " + report["verdict"]["text"])
    return "\n".join(lines)
