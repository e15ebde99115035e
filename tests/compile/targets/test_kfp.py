"""The KFP target: IR made by the kfp compiler, checked by kfp-check, faithful to the graph."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlspec.compile.context import build_context
from mlspec.compile.graph import build_graph, resolved_spec
from mlspec.compile.targets.kfp import BATCH_OUTPUT_PATH, OUTPUT_PATH, render
from mlspec.spec.loader import load_spec
from tests.conftest import EXAMPLES, REPO, example_profiles, oracle

IRIS = REPO / "examples" / "iris" / "mlproject.yaml"
CASES = [(spec, profile) for spec in EXAMPLES for profile in example_profiles(spec)]


def _project(spec: Path = IRIS, profile: str | None = None, **changes):
    loaded = load_spec(str(spec), profile)
    assert loaded.project is not None, loaded.diagnostics
    project = loaded.project
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        target = project
        for name in parents:
            target = getattr(target, name)
        setattr(target, leaf, value)
    return project


def _ir(project, path: str = OUTPUT_PATH) -> str:
    files = {f.path: f.content for f in render(project, build_graph(project),
                                               build_context(project))}
    assert set(files) <= {OUTPUT_PATH, BATCH_OUTPUT_PATH}
    return files[path]


def _docs(text: str) -> tuple[dict, dict]:
    docs = list(yaml.safe_load_all(text))
    return docs[0], (docs[1] if len(docs) > 1 else {})


def test_every_example_and_profile_passes_kfp_check(tmp_path: Path) -> None:
    assert CASES, "no examples found"
    paths = []
    for spec, profile in CASES:
        project = _project(spec, profile)
        path = tmp_path / f"{spec.parent.name}-{profile or 'base'}.yaml"
        path.write_text(_ir(project))
        paths.append(str(path))
        if project.batch is not None:
            batch = path.with_name(f"{path.stem}-batch.yaml")
            batch.write_text(_ir(project, BATCH_OUTPUT_PATH))
            paths.append(str(batch))
    assert any(p.endswith("-batch.yaml") for p in paths)
    done = subprocess.run([str(oracle("kfp-check")), *paths], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("spec,profile", CASES,
                         ids=[f"{s.parent.name}-{p or 'base'}" for s, p in CASES])
def test_ir_follows_the_graph(spec: Path, profile: str | None) -> None:
    project = _project(spec, profile)
    graph = build_graph(project)
    ir, _ = _docs(_ir(project))
    assert ir["pipelineInfo"]["name"] == graph.name
    root = ir["root"]
    top = root["dag"]["tasks"]
    conditional = {s.name for s in graph.steps if s.run_if}
    assert set(top) == {s.name for s in graph.steps if not s.run_if} | {"condition-1"}
    (cond_component,) = [c for n, c in ir["components"].items() if n.startswith("comp-condition")]
    assert set(cond_component["dag"]["tasks"]) == conditional
    condition = top["condition-1"]["triggerPolicy"]["condition"]
    assert condition == "inputs.parameter_values['pipelinechannel--gate-Output'] == 'true'"
    for step in graph.steps:
        task = top.get(step.name) or cond_component["dag"]["tasks"][step.name]
        # Every graph input arrives from the step and output the graph names.
        inputs = task["inputs"].get("artifacts", {})
        for item in step.inputs:
            ref = inputs[item.name]
            if "taskOutputArtifact" in ref:
                assert ref["taskOutputArtifact"] == {"outputArtifactKey": item.output,
                                                     "producerTask": item.step}
            else:  # inside the condition, through the sub-DAG's inputs
                channel = f"pipelinechannel--{item.step}-{item.output}"
                assert ref["componentInputArtifact"] == channel
        assert task["inputs"]["parameters"]["spec"]
        assert task.get("retryPolicy", {}).get("maxRetryCount", 0) == step.retries
        assert task["cachingOptions"].get("enableCache", False) is step.cacheable
        outputs = ir["components"][f"comp-{step.name}"].get("outputDefinitions", {})
        assert set(outputs.get("artifacts", {})) == {a.name for a in step.outputs
                                                    if a.kind != "value"}
    defaults = root["inputDefinitions"]["parameters"]
    spec_default = json.loads(defaults["spec"]["defaultValue"])
    assert spec_default == resolved_spec(project)
    # Key order matters: data.features is the model's input column order.
    assert list(spec_default["data"]["features"]) == list(project.data.features)
    assert defaults["data_uri"]["defaultValue"] == graph.data_uri


def test_steps_call_the_runtime_with_an_argument_list() -> None:
    project = _project()
    ir, _ = _docs(_ir(project))
    for step in build_graph(project).steps:
        container = ir["deploymentSpec"]["executors"][f"exec-{step.name}"]["container"]
        assert container["image"] == build_graph(project).image
        assert "pip install" not in " ".join(container["command"]), "install_kfp_package=False"
        source = container["command"][-1]
        assert 'argv = [sys.executable, "-m", "mlspec.runtime", step, "--spec", spec]' in source
        assert f"_mlspec_step({step.name!r}, spec," in source
        assert "shell=True" not in source


def test_resources_gpu_node_selector_tolerations() -> None:
    from mlspec.spec.models import Toleration

    project = _project(**{"model.resources.gpu": 2, "model.resources.cpu": "4",
                          "model.resources.memory": "16Gi",
                          "model.resources.node_selector": {"pool": "gpu"},
                          "model.resources.tolerations": [
                              Toleration(key="nvidia.com/gpu", operator="Exists",
                                         effect="NoSchedule")]})
    ir, platform = _docs(_ir(project))
    train = ir["deploymentSpec"]["executors"]["exec-train"]["container"]["resources"]
    assert train["resourceCpuLimit"] == "4" and train["resourceMemoryLimit"] == "16Gi"
    assert train["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert train["accelerator"]["resourceCount"] == "2"
    ingest = ir["deploymentSpec"]["executors"]["exec-ingest"]["container"]["resources"]
    assert "accelerator" not in ingest and ingest["resourceCpuLimit"] == "500m"
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert k8s["exec-train"]["nodeSelector"] == {"labels": {"pool": "gpu"}}
    assert k8s["exec-train"]["tolerations"] == [
        {"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}]
    assert "nodeSelector" not in k8s["exec-ingest"]


def test_spec_text_never_reaches_component_source() -> None:
    """Hostile spec values change the parameter defaults only, never the code that runs."""
    plain = _docs(_ir(_project()))[0]
    nasty = 'x"); import os; os.system("id") #\n# Description: injected\nroot: {}'
    hostile = _project(**{"metadata.description": nasty, "data.target": nasty})
    text = _ir(hostile)
    ir = _docs(text)[0]
    for name, executor in plain["deploymentSpec"]["executors"].items():
        assert ir["deploymentSpec"]["executors"][name] == executor
    assert json.loads(ir["root"]["inputDefinitions"]["parameters"]["spec"]["defaultValue"])[
        "data"]["target"] == nasty
    # The multi-line description stays inside the comment header.
    header = text.split("\ncomponents:", 1)[0].splitlines()
    assert all(line.startswith("#") for line in header)


def test_render_is_deterministic_and_import_is_cheap() -> None:
    project = _project()
    assert _ir(project) == _ir(project)
    code = "import sys, mlspec.compile.targets.kfp; print('kfp' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.strip() == "False", "importing the target must not import kfp"


@pytest.mark.parametrize("uri", ["data.csv']\nroot: {}\n#", "a\rb", "a\u2028b", "a\x85b"])
def test_a_data_uri_with_a_line_break_is_refused(uri: str) -> None:
    from mlspec.errors import SpecError

    with pytest.raises(SpecError) as info:
        _ir(_project(**{"data.source.uri": uri}))
    (problem,) = info.value.diagnostics
    assert problem.code == "MLS701" and problem.path == "data.source.uri"


def test_kubernetes_config_is_what_kfp_kubernetes_writes() -> None:
    from kfp import dsl, kubernetes

    from mlspec.compile.graph import Resources, SecretEnv, Step
    from mlspec.compile.targets.kfp import kubernetes_config

    secrets = (SecretEnv("data-reader", ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")),
               SecretEnv("mlflow-credentials", ("MLFLOW_TRACKING_TOKEN",)))
    step = Step("train", "d", (), (), Resources(
        cpu="1", memory="1Gi", node_selector=(("disk", "ssd"), ("pool", "gpu")),
        tolerations=((("effect", "NoSchedule"), ("key", "dedicated"), ("operator", "Equal"),
                      ("value", "ml")), (("key", "nvidia.com/gpu"), ("operator", "Exists")))),
        timeout_seconds=1800, secrets=secrets)

    # No annotations: this module's `from __future__ import annotations` would make them strings.
    @dsl.component(base_image="python:3.11")
    def noop():
        pass

    @dsl.pipeline(name="p")
    def pipeline():
        task = noop()
        kubernetes.add_node_selector(task, "disk", "ssd")
        kubernetes.add_node_selector(task, "pool", "gpu")
        kubernetes.add_toleration(task, key="dedicated", operator="Equal", value="ml",
                                  effect="NoSchedule")
        kubernetes.add_toleration(task, key="nvidia.com/gpu", operator="Exists")
        kubernetes.set_timeout(task, 1800)
        for secret in secrets:
            kubernetes.use_secret_as_env(task, secret.name, {k: k for k in secret.keys},
                                         optional=True)
        assert task.platform_config["kubernetes"] == kubernetes_config(step)

    assert pipeline.platform_spec  # the pipeline body (and its assert) ran


def test_compile_imports_neither_the_kfp_client_nor_the_kubernetes_client() -> None:
    code = (
        "import sys\n"
        "from mlspec.spec.loader import load_spec\n"
        "from mlspec.compile.context import build_context\n"
        "from mlspec.compile.graph import build_graph\n"
        "from mlspec.compile.targets.kfp import render\n"
        f"p = load_spec({str(IRIS)!r}).project\n"
        "render(p, build_graph(p), build_context(p))\n"
        "heavy = ('kfp.client', 'kubernetes', 'kfp.kubernetes')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "import kfp\n"
        "print(kfp.Client.__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "Client"]


def test_without_kfp_installed_the_error_says_what_to_install(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['kfp'] = None\n"
            "from mlspec.commands.compile import compile_command\n"
            f"sys.exit(compile_command({str(IRIS)!r}, {str(tmp_path / 'o')!r}, ['kfp'], None))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0
    assert "UsageError: the kfp target needs the kfp SDK: pip install 'mlspec[kfp]'" in done.stderr


def test_auto_deploy_adds_deploy_and_rollout_under_the_gate(tmp_path: Path) -> None:
    project = _project()
    project.serving.deploy = "auto"
    text = _ir(project)
    path = tmp_path / "deploy.yaml"
    path.write_text(text)
    done = subprocess.run([str(oracle("kfp-check")), str(path)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    ir, _ = _docs(text)
    (cond,) = [c for n, c in ir["components"].items() if n.startswith("comp-condition")]
    assert set(cond["dag"]["tasks"]) == {"register", "deploy", "rollout"}
    assert cond["dag"]["tasks"]["rollout"]["dependentTasks"] == ["deploy"]
    # The bundle is a pipeline parameter whose default is the compiled serving objects.
    default = ir["root"]["inputDefinitions"]["parameters"]["deploy_bundle"]["defaultValue"]
    bundle = json.loads(default)
    assert bundle["objects"][0]["kind"] == "InferenceService"
    assert bundle["plan"]["strategy"] == "canary"
    for step in ("deploy", "rollout"):
        inputs = cond["dag"]["tasks"][step]["inputs"]["parameters"]
        assert inputs["deploy_bundle"]["componentInputParameter"] == \
            "pipelinechannel--deploy_bundle"


def test_the_batch_pipeline_fans_score_out_with_parallel_for() -> None:
    project = _project(REPO / "examples" / "iris" / "mlproject.yaml", None)
    pipeline, _ = _docs(_ir(project, BATCH_OUTPUT_PATH))
    assert pipeline["pipelineInfo"]["name"] == "iris-classifier-batch"
    assert set(pipeline["root"]["inputDefinitions"]["parameters"]) == {"spec"}
    tasks = pipeline["root"]["dag"]["tasks"]
    ((loop_name, loop),) = [(n, t) for n, t in tasks.items() if "parameterIterator" in t]
    assert loop["parameterIterator"]["items"]["inputParameter"].endswith("partitions-Output")
    assert loop["taskInfo"]["name"] == "score-each"
    assert set(tasks["report"]["dependentTasks"]) == {"partitions", loop_name}
    partitions = pipeline["components"]["comp-partitions"]
    assert partitions["outputDefinitions"]["parameters"]["Output"]["parameterType"] == "LIST"
    source = pipeline["deploymentSpec"]["executors"]["exec-score"]["container"]["command"][-1]
    assert "partition=partition" in source
