"""Generate response pairs for a project's prompts and commit each one as it is made.

Every finished prompt is its own transaction, so a cancel or a crash keeps all finished work
and new comparisons reach the label queue at once. The run is remembered with its settings.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rmstudio.core.models.generation import GenerationConfig, generate_responses, generate_with_two_models
from rmstudio.core.models.loading import ModelSource, load_causal_lm
from rmstudio.core.progress import NullSink, ProgressSink
from rmstudio.core.store.project import Project, row_to_text
from rmstudio.core.data.records import Text
from rmstudio.core.runs.kinds import Plot, RunKind
from rmstudio.core.runs.launch import run_in_process
from rmstudio.core.runs.recorder import ProjectRecorder, RunRecorder
from rmstudio.core.store.inserts import ProjectWriter


def prompts_without_pairs(project: Project, limit: int | None = None) -> list[int]:
    """Prompts that no comparison uses yet: what `generate` works on by default."""
    sql = ("SELECT p.id FROM prompts p WHERE NOT EXISTS "
           "(SELECT 1 FROM comparisons c WHERE c.prompt_id = p.id) ORDER BY p.id")
    if limit:
        sql += f" LIMIT {int(limit)}"
    return [r[0] for r in project.conn.execute(sql)]


@dataclass
class GenerateConfig:
    """A generation run: which prompts, which model(s), how to sample."""

    prompt_ids: list[int] | None = None
    """The prompts to generate for; None: every prompt that has no pair yet."""

    model: ModelSource = field(default_factory=lambda: ModelSource("embedded"))
    """The model that writes the responses (response A when ``model_b`` is set)."""

    model_b: ModelSource | None = None
    """A second model for response B: pairs then compare two models."""

    device: str = "cpu"
    sampling: GenerationConfig = field(default_factory=GenerationConfig)


def run_generate(project_path: str | Path, config: GenerateConfig, recorder: RunRecorder) -> dict:
    """The generation run kind's work: sample responses and store every pair of them as a
    comparison, one prompt per transaction. The launcher has begun the run on ``recorder``."""
    source, source_b, sampling = config.model, config.model_b, config.sampling
    with Project.open(project_path) as project:
        ids = config.prompt_ids if config.prompt_ids is not None else prompts_without_pairs(project)
        prompts = _load_prompts(project, ids)
        added = {"comparisons": 0}  # "prompts" in the result is how many were asked for
        settings = asdict(sampling)

        def commit(prompt_id: int, texts: list[str]) -> None:
            names = ([source.display_name] * len(texts) if source_b is None
                     else [source.display_name, source_b.display_name])
            with project.write():
                writer = ProjectWriter(project)
                prompt_hash = project.conn.execute(
                    "SELECT content_hash FROM prompts WHERE id = ?", (prompt_id,)).fetchone()[0]
                responses = [writer.response(prompt_id, Text(t), name, settings)[:2]
                             for t, name in zip(texts, names)]
                unique = list(dict.fromkeys(responses))
                for a, b in itertools.combinations(unique, 2):
                    added["comparisons"] += writer.comparison(prompt_id, prompt_hash, a, b)[1]

        class Progress:  # prompts done, recorded as generate/prompts (not the running total)
            def log(self, step, metrics):
                recorder.log(step, {f"generate/{k}" if "/" not in k and k not in ("total", "stage")
                                    else k: v for k, v in metrics.items()} | {"done": step})

            def should_stop(self):
                return recorder.should_stop()

        class LoadSink:
            # Model preparation reports {"stage", "stages"}; no prompt is done yet, so step stays 0.
            def log(self, step, metrics):
                recorder.log(0, metrics)

            def should_stop(self):
                return recorder.should_stop()

        model_a, tok_a = load_causal_lm(source, device=config.device, sink=LoadSink())
        if source_b is None:
            done = generate_responses(model_a, tok_a, prompts, sampling, Progress(), commit)
        else:
            model_2, tok_2 = load_causal_lm(source_b, device=config.device, sink=LoadSink())
            done = generate_with_two_models(model_a, tok_a, model_2, tok_2, prompts, sampling,
                                            Progress(), commit)
        status = "finished" if done == len(prompts) else "cancelled"
        return {"run_id": recorder.run_id, "status": status, "prompts_done": done,
                "prompts": len(prompts), **added}


GENERATE = RunKind(name="generate", config_type=GenerateConfig, run=run_generate,
                   plots=(Plot("Prompts done", ("generate/prompts",)),),
                   describe=lambda config: f"generate with {config.model.display_name}")


def generate_pairs(
    project_path: str | Path,
    prompt_ids: list[int] | None,
    model: str | ModelSource | None = None,
    config: GenerationConfig | None = None,
    model_b: str | ModelSource | None = None,
    device: str = "cpu",
    sink: ProgressSink | None = None,
) -> dict:
    """Sample responses for ``prompt_ids`` (default: prompts without pairs) and store every pair
    of them as a comparison, recording the run. Opens its own connection: safe to call from a
    worker thread."""
    source = model if isinstance(model, ModelSource) else ModelSource.parse(model)
    source_b = None
    if model_b is not None:
        source_b = model_b if isinstance(model_b, ModelSource) else ModelSource.parse(model_b)
    run = GenerateConfig(prompt_ids=list(prompt_ids) if prompt_ids is not None else None,
                         model=source, model_b=source_b, device=device,
                         sampling=config or GenerationConfig())
    recorder = ProjectRecorder(project_path, sink or NullSink())
    try:
        return run_in_process(GENERATE, project_path, run, recorder)
    finally:
        recorder.close()


def _load_prompts(project: Project, ids: list[int]) -> list[tuple[int, Text]]:
    prompts = []
    for prompt_id in ids:
        row = project.conn.execute("SELECT text, messages FROM prompts WHERE id = ?", (prompt_id,)).fetchone()
        if row is None:
            from rmstudio.core.errors import ProjectError

            raise ProjectError(f"no prompt {prompt_id} in {Path(project.path).name}")
        prompts.append((prompt_id, row_to_text(row["text"], row["messages"])))
    return prompts

