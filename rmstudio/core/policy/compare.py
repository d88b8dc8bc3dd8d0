"""Before and after: a policy run's tuned model against the model it started from.

    comparison = compare_policies("p.rmstudio", 7)           # held-out prompts of run 7
    comparison.reward.rate, comparison.reward.low, comparison.reward.high
    send_comparisons_to_labeling(project, comparison)        # humans judge the same pairs
    human_win_rate(project, 7)                               # ... and this reads their verdict

Each held-out prompt (never trained on) gets one response from each policy, sampled in batches
with the same seed (derived from the seed and the texts of the prompts sampled together), so
the two differ by the tuning and not by the luck of the draw (``compare_sampling``). Both are
scored by the reward model the run optimised (or another one) and, when given, by a check model
the run never saw: a reward model's own verdict on a policy tuned against it is biased (the
policy found what it overrates), an independent check and the humans are not.

What was sent to labeling is found again by the responses' model names ("policy start" and
"policy run 7 step 40"), not by stored ids: the names live in the project itself, so the count
survives backups, restores and a second send (add_pairs deduplicates by content). One limit: a
response keeps the model name of whoever wrote that exact text first for that prompt, so a
sampled text that was already in the project (an import's) is not counted as the policy's.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rmstudio.core.data.records import Text
from rmstudio.core.errors import RmstudioError
from rmstudio.core.models.generation import GenerationConfig
from rmstudio.core.progress import NullSink, ProgressSink
from rmstudio.core.store.project import Project, row_to_text

START_NAME = "policy start"
Z95 = 1.959963984540054
"""The normal quantile of a two-sided 95% interval."""
COMPARISON_FILE = "comparison.json"
DEFAULT_PROMPTS = 32
"""Held-out prompts compared by default: an interval of about +-0.17 around 0.5, in minutes on a CPU."""

Reward = Callable[..., list]


class CompareError(RmstudioError):
    pass


# -- win rates -----------------------------------------------------------------------------

@dataclass
class WinRate:
    """The tuned policy's wins over the start: a tie counts half, ``low``/``high`` the 95%
    Wilson interval of ``rate`` (None when nothing was compared)."""

    wins: int = 0
    losses: int = 0
    ties: int = 0
    rate: float | None = None
    low: float = 0.0
    high: float = 1.0

    @property
    def n(self) -> int:
        return self.wins + self.losses + self.ties

    def describe(self) -> str:
        if self.rate is None:
            return "nothing compared yet"
        return (f"{self.rate:.1%} (95% CI {self.low:.1%}-{self.high:.1%}; {self.wins} wins, "
                f"{self.ties} ties, {self.losses} losses)")


def wilson_interval(rate: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval of a proportion: unlike rate +- z*se it stays inside [0, 1] and
    is not empty at 0 or 1 wins, which matters for the few dozen pairs a person labels."""
    if n <= 0:
        return 0.0, 1.0
    denominator = 1 + z * z / n
    centre = (rate + z * z / (2 * n)) / denominator
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def win_rate(wins: int, losses: int, ties: int) -> WinRate:
    n = wins + losses + ties
    if n == 0:
        return WinRate()
    rate = (wins + 0.5 * ties) / n
    low, high = wilson_interval(rate, n)
    return WinRate(wins, losses, ties, rate, low, high)


def score_win_rate(tuned: Sequence[float], start: Sequence[float]) -> WinRate:
    """Win rate of tuned over start, row by row (equal scores are ties)."""
    wins = sum(t > s for t, s in zip(tuned, start))
    losses = sum(t < s for t, s in zip(tuned, start))
    return win_rate(wins, losses, len(tuned) - wins - losses)


# -- the comparison ------------------------------------------------------------------------

@dataclass
class CompareRow:
    prompt_id: int | None
    prompt: str
    start: str
    tuned: str
    reward_start: float
    reward_tuned: float
    check_start: float | None = None
    check_tuned: float | None = None


@dataclass
class PolicyComparison:
    run_id: int | None
    run_folder: str
    step: int | None
    start_name: str
    tuned_name: str
    reward_spec: str
    check_spec: str | None
    rows: list[CompareRow] = field(default_factory=list)
    reward: WinRate = field(default_factory=WinRate)
    check: WinRate | None = None

    def to_json(self) -> dict:
        return asdict(self)


def tuned_name(run_id: int | str, step: int | None) -> str:
    """The model name the tuned policy's responses get in the label queue."""
    return f"policy run {run_id}" + (f" step {step}" if step is not None else "")


def run_folder_of(project_path: str | Path, run: int | str | Path) -> tuple[Path, int | None]:
    """(run folder, run id): a run id of the project, or a run folder (its id read from run-N)."""
    from rmstudio.core.policy.run import POLICY_FILE, runs_dir

    if isinstance(run, int) or str(run).isdigit():
        run_id = int(run)
        folder = runs_dir(project_path) / f"run-{run_id}"
    else:
        folder = Path(run).expanduser()
        name = folder.name
        run_id = int(name[4:]) if name.startswith("run-") and name[4:].isdigit() else None
    if not (folder / POLICY_FILE).is_file():
        raise CompareError(f"{folder} is not the folder of a policy run (no {POLICY_FILE}); "
                           "give a policy run's id or folder")
    return folder, run_id


def _run_config(project_path, run_id: int | None) -> dict:
    if run_id is None:
        return {}
    with Project.open(project_path) as project:
        row = project.conn.execute("SELECT config FROM runs WHERE id = ? AND kind = 'policy'",
                                   (run_id,)).fetchone()
    return json.loads(row[0]) if row else {}


def policy_step(folder: Path, source: Path) -> int | None:
    """The training step of the weights in ``source`` (what the policy is named by): a
    checkpoint's own step (a cancelled run is compared at its last checkpoint, not at the step
    it was cancelled at), the guard's best step, or the run's final step for ``model/``."""
    from rmstudio.core.policy.guard import BEST_FILE

    name, _, tail = source.name.rpartition("-")
    if name == "checkpoint" and tail.isdigit():
        return int(tail)
    if (source / BEST_FILE).is_file():
        return json.loads((source / BEST_FILE).read_text()).get("step")
    result = folder / "result.json"
    if result.is_file():
        return json.loads(result.read_text()).get("steps")
    return None


def held_out_prompts(project_path, folder: Path) -> list[tuple[int | None, Text]]:
    """The run's held-out prompts, with their chat turns from the project where it still has them
    (held_out.jsonl keeps only the text)."""
    path = folder / "held_out.jsonl"
    if not path.is_file():
        raise CompareError(f"{folder} has no held_out.jsonl: give the prompts to compare on")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    # a DPO run holds out pairs, and a prompt with several pairs is listed once per pair
    rows = list({row["prompt"]: row for row in reversed(rows)}.values())[::-1]
    with Project.open(project_path) as project:
        out = []
        for row in rows:
            found = project.conn.execute("SELECT text, messages FROM prompts WHERE id = ?",
                                         (row["prompt_id"],)).fetchone()
            out.append((row["prompt_id"], row_to_text(found[0], found[1]) if found else Text(row["prompt"])))
    return out


def resolve_reward(project_path, spec, run_config: dict, device: str) -> tuple[Reward, str]:
    """(reward function, its name): a callable as given, a spec as PolicyConfig.reward reads it,
    or None: the reward the run optimised, else (DPO) the project's newest reward model."""
    from rmstudio.core.policy.rewards import reward_function

    if callable(spec):
        return spec, getattr(spec, "__name__", "reward")
    if not spec:
        spec = run_config.get("reward") or ""
    if not spec:
        from rmstudio.core.reward.catalog import reward_models

        with Project.open(project_path) as project:
            entries = reward_models(project)
        if not entries:
            raise CompareError("this run optimised no reward model and the project has none: "
                               "train one, or give a reward")
        spec = entries[0].path
    return reward_function(str(spec), device), str(spec)


def compare_policies(project_path: str | Path, run: int | str | Path,
                     prompts: Sequence[str | Text] | None = None, n_prompts: int | None = DEFAULT_PROMPTS,
                     sampling: GenerationConfig | None = None, reward=None, check=None,
                     sink: ProgressSink | None = None, device: str | None = None) -> PolicyComparison:
    """Sample the start and the tuned policy of ``run`` on ``prompts`` (default: the run's
    held-out prompts, the first ``n_prompts``; None for all) and score both with ``reward`` and
    ``check`` (see ``resolve_reward``; ``check`` None: no check). ``sampling``: temperature,
    top_p, max_new_tokens and seed are used (one response per prompt per policy). The result is
    also written to the run folder as comparison.json."""
    from rmstudio.core.models.loading import pick_device
    from rmstudio.core.policy.compare_sampling import load_policies, sample_responses, score as score_texts
    from rmstudio.core.policy.live_reward import REWARD_DIR

    sink = sink or NullSink()
    sampling = sampling or GenerationConfig(max_new_tokens=128, temperature=0.7)
    folder, run_id = run_folder_of(project_path, run)
    items = ([(None, p if isinstance(p, Text) else Text(str(p))) for p in prompts] if prompts is not None
             else held_out_prompts(project_path, folder))
    items = items[:n_prompts] if n_prompts else items
    if not items:
        raise CompareError(f"run {run_id if run_id is not None else folder} held out no prompts: "
                           "give the prompts to compare on")
    device = pick_device(device)
    config = _run_config(project_path, run_id)
    if (folder / REWARD_DIR).is_dir():  # the live model's snapshot the run took and optimised
        config = {**config, "reward": str(folder / REWARD_DIR)}
    score, reward_spec = resolve_reward(project_path, reward, config, device)
    check_score, check_spec = resolve_reward(project_path, check, {}, device) if check else (None, None)

    start, tuned, tokenizer, source = load_policies(folder, device)
    lora = start is tuned
    total = 2 * len(items)
    before = sample_responses(start, tokenizer, items, sampling, lora, sink, 0, total)
    after = sample_responses(tuned, tokenizer, items, sampling, False, sink, len(items), total)

    texts = [p.text for _, p in items]
    sink.log(total, {"stage": "score", "done": total, "total": total})
    r_before = score_texts(score, tokenizer, texts, before)
    r_after = score_texts(score, tokenizer, texts, after)
    c_before = c_after = [None] * len(items)
    if check_score is not None:
        c_before = score_texts(check_score, tokenizer, texts, before)
        c_after = score_texts(check_score, tokenizer, texts, after)
    step = policy_step(folder, source)
    name = tuned_name(run_id if run_id is not None else folder.name, step)
    result = PolicyComparison(
        run_id, str(folder), step, START_NAME, name, reward_spec, check_spec,
        rows=[CompareRow(pid, p.text, b, a, rb, ra, cb, ca) for (pid, p), b, a, rb, ra, cb, ca
              in zip(items, before, after, r_before, r_after, c_before, c_after)],
        reward=score_win_rate(r_after, r_before),
        check=score_win_rate(c_after, c_before) if check_score is not None else None)
    (folder / COMPARISON_FILE).write_text(json.dumps(result.to_json(), indent=1, ensure_ascii=False),
                                          encoding="utf-8")
    return result


# -- humans --------------------------------------------------------------------------------

def comparison_pairs(comparison: PolicyComparison) -> tuple[list, int]:
    """The rows as comparisons for the label queue (``labeling.new_pairs.NewPair``) and how many
    rows were skipped (equal or empty responses: nothing to judge). Which policy is A is drawn per
    prompt (seeded by its text): a person who noticed "the tuned one is always B" would judge the
    side, not the text."""
    from rmstudio.core.labeling.new_pairs import NewPair

    pairs, skipped = [], 0
    for row in comparison.rows:
        if not row.start.strip() or not row.tuned.strip() or row.start.strip() == row.tuned.strip():
            skipped += 1
            continue
        start = (row.start, comparison.start_name)
        tuned = (row.tuned, comparison.tuned_name)
        a, b = (tuned, start) if random.Random(row.prompt).random() < 0.5 else (start, tuned)
        pairs.append(NewPair(row.prompt, a[0], b[0], a[1], b[1]))
    return pairs, skipped


def send_comparisons_to_labeling(project: Project, comparison: PolicyComparison) -> dict:
    """Add each row's two responses to the label queue as a comparison (``comparison_pairs``; the
    window sends the same pairs through its store writer). Returns add_pairs' result with
    ``sent`` and ``skipped`` counts."""
    from rmstudio.core.labeling.new_pairs import add_pairs

    pairs, skipped = comparison_pairs(comparison)
    result = add_pairs(project, pairs) if pairs else {"comparison_ids": [], "added": 0}
    return {**result, "sent": len(pairs), "skipped": skipped}


@dataclass
class HumanVerdict:
    """What people said about run N's before/after comparisons (every annotator's labels)."""

    win: WinRate
    comparisons: int
    """Comparisons of the run's tuned policy against its start in the project."""
    labeled: int
    """Of those, how many have at least one a/b/tie label."""
    both_bad: int
    """'Both bad' labels: no preference, left out of the rate."""


def human_win_rate(project: Project, run_id: int) -> HumanVerdict:
    """The tuned policy's win rate in the labels people gave on comparisons between a response
    named ``START_NAME`` and one named ``policy run {run_id} step ...`` (or without a step)."""
    rows = project.conn.execute(
        """SELECT c.id, ra.model, rb.model, l.choice
           FROM comparisons c
           JOIN responses ra ON ra.id = c.response_a_id
           JOIN responses rb ON rb.id = c.response_b_id
           LEFT JOIN labels l ON l.comparison_id = c.id
           WHERE (ra.model = :start AND (rb.model = :tuned OR rb.model LIKE :stepped))
              OR (rb.model = :start AND (ra.model = :tuned OR ra.model LIKE :stepped))""",
        {"start": START_NAME, "tuned": tuned_name(run_id, None),
         "stepped": tuned_name(run_id, None) + " step %"}).fetchall()
    wins = losses = ties = both_bad = 0
    labeled = set()
    for comparison_id, model_a, _model_b, choice in rows:
        tuned_side = "b" if model_a == START_NAME else "a"
        if choice in ("a", "b"):
            wins += choice == tuned_side
            losses += choice != tuned_side
        elif choice == "tie":
            ties += 1
        elif choice == "both_bad":
            both_bad += 1
        if choice in ("a", "b", "tie"):
            labeled.add(comparison_id)
    return HumanVerdict(win_rate(wins, losses, ties), len({r[0] for r in rows}), len(labeled), both_bad)
