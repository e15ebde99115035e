"""The PipelineRun rehearsal on tiny Tekton YAML written by hand: scheduling, when, retries,
timeouts, workspaces, results, Secrets, isolation."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mlspec.commands.rehearsal.executor import (
    PARENT_SKIP,
    RESULTS_SKIP,
    STOPPING_SKIP,
    WHEN_SKIP,
)
from mlspec.commands.rehearsal.tekton import ManifestError
from tests.commands.rehearsal.helpers import (
    pipeline,
    pipeline_run,
    ptask,
    rehearse,
    result,
    step,
    task,
    volume_workspace,
)

WS = [{"name": "ws", "workspace": "ws"}]


def _statuses(outcome) -> dict[str, str]:
    return {name: state.status for name, state in outcome.tasks.items()}


def test_params_results_and_order(tmp_path: Path) -> None:
    docs = [
        task("make", step('printf "%s-%s" "$(params.who)" "$(context.taskRun.name)" '
                          '> $(results.out.path)'),
             params=[{"name": "who"}, {"name": "unused", "default": "d"}], results=["out"]),
        task("use", step('printf "got %s" "$(params.value)" > $(results.echo.path)'),
             params=[{"name": "value"}], results=["echo"]),
        pipeline(ptask("make", params=[{"name": "who", "value": "$(params.name)"}]),
                 ptask("use", params=[{"name": "value", "value": "$(tasks.make.results.out)"}]),
                 params=[{"name": "name", "default": "anon"}],
                 results=[{"name": "final", "value": "$(tasks.use.results.echo)"}]),
        pipeline_run(params=[{"name": "name", "value": "iris"}]),
    ]
    outcome = rehearse(tmp_path, *docs)
    assert outcome.status == "Succeeded", outcome.tasks
    made = f"iris-{outcome.name}-make"
    assert result(outcome, "make", "out") == made
    assert outcome.results == {"final": f"got {made}"}
    # The result reference alone orders them: use starts after make finished.
    make, use = outcome.tasks["make"], outcome.tasks["use"]
    assert use.started >= make.started + make.seconds - 0.01


def test_when_guards_the_task_only(tmp_path: Path) -> None:
    docs = [
        task("gate", step("printf false > $(results.passed.path)"), results=["passed"]),
        task("register", step("printf v1 > $(results.version.path)"), results=["version"]),
        task("noop", step("true")),
        task("announce", step("echo $(params.v)"), params=[{"name": "v"}]),
        pipeline(
            ptask("gate"),
            ptask("register", when=[{"input": "$(tasks.gate.results.passed)",
                                     "operator": "in", "values": ["true"]}]),
            # ordered after the skipped task only: runs (when scopes to the task)
            ptask("after", "noop", runAfter=["register"]),
            # uses the skipped task's result: skipped, and so is what follows it
            ptask("announce", params=[{"name": "v", "value": "$(tasks.register.results.version)"}]),
            ptask("after-announce", "noop", runAfter=["announce"]),
            ptask("not-notin", "noop", when=[{"input": "$(tasks.gate.results.passed)",
                                               "operator": "notin", "values": ["true"]}]),
        ),
        pipeline_run(),
    ]
    outcome = rehearse(tmp_path, *docs)
    assert _statuses(outcome) == {"gate": "succeeded", "register": "skipped",
                                  "after": "succeeded", "announce": "skipped",
                                  "after-announce": "skipped", "not-notin": "succeeded"}
    assert outcome.tasks["register"].reason == WHEN_SKIP
    assert outcome.tasks["announce"].reason == RESULTS_SKIP
    assert outcome.tasks["after-announce"].reason == PARENT_SKIP
    assert outcome.status == "Completed" and outcome.succeeded


def test_results_are_not_trimmed(tmp_path: Path) -> None:
    # echo adds a newline: on a cluster "true\n" is not in ["true"], and the rehearsal agrees.
    docs = [task("gate", step("echo true > $(results.passed.path)"), results=["passed"]),
            task("register", step("true")),
            pipeline(ptask("gate"), ptask("register", when=[
                {"input": "$(tasks.gate.results.passed)", "operator": "in",
                 "values": ["true"]}])),
            pipeline_run()]
    outcome = rehearse(tmp_path, *docs)
    assert result(outcome, "gate", "passed") == "true\n"
    assert outcome.tasks["register"].status == "skipped"


def test_a_step_that_fails_once_is_retried_in_a_fresh_pod(tmp_path: Path) -> None:
    # The first try leaves a file in its working folder and fails; the second must not see it.
    script = ('n=$(cat $(workspaces.ws.path)/count 2>/dev/null || echo 0)\n'
              'echo $((n + 1)) > $(workspaces.ws.path)/count\n'
              'echo "try $(context.task.retry-count)"\n'
              'if [ "$n" -eq 0 ]; then touch leftover; exit 1; fi\n'
              '[ ! -e leftover ]\n')
    docs = [task("flaky", step(script), workspaces=["ws"]),
            pipeline(ptask("flaky", retries=2, workspaces=WS), workspaces=[{"name": "ws"}]),
            pipeline_run(workspaces=[volume_workspace()])]
    events: list = []
    outcome = rehearse(tmp_path, *docs, events=events)
    flaky = outcome.tasks["flaky"]
    assert flaky.status == "succeeded" and len(flaky.attempts) == 2
    first, second = flaky.attempts
    assert first.status == "Failed" and second.status == "Succeeded"
    assert first.folder.name.endswith("-pod") and second.folder.name.endswith("-pod-retry1")
    assert (first.folder / "workspace" / "leftover").exists()
    assert "try 1" in (second.folder / "steps" / "run" / "log").read_text()
    assert [e.kind for e in events] == ["started", "retrying", "finished"]


def test_a_failure_stops_the_run_and_finally_still_runs(tmp_path: Path) -> None:
    docs = [task("boom", step("echo broken >&2; exit 3")), task("noop", step("true")),
            task("report", step('printf "%s/%s" "$(params.s)" "$(params.all)" '
                                '> $(results.r.path)'),
                 params=[{"name": "s"}, {"name": "all"}], results=["r"]),
            pipeline(ptask("boom"), ptask("next", "noop", runAfter=["boom"]),
                     ptask("ignored", "boom", onError="continue"),
                     **{"finally": [ptask("report", params=[
                         {"name": "s", "value": "$(tasks.boom.status)"},
                         {"name": "all", "value": "$(tasks.status)"}])]}),
            pipeline_run()]
    outcome = rehearse(tmp_path, *docs)
    assert outcome.status == "Failed"
    assert outcome.tasks["boom"].status == "failed"
    assert "step run exited with code 3" in outcome.tasks["boom"].reason
    assert outcome.tasks["next"].reason == STOPPING_SKIP
    assert outcome.tasks["ignored"].ignored
    assert result(outcome, "report", "r") == "Failed/Failed"


def test_a_task_timeout_kills_it_and_retries_get_their_own_time(tmp_path: Path) -> None:
    docs = [task("slow", step("sleep 30 & echo $! > $(workspaces.ws.path)/pid-$(context.task"
                              ".retry-count); sleep 30"), workspaces=["ws"]),
            pipeline(ptask("slow", timeout="0.5s", retries=1, workspaces=WS),
                     workspaces=[{"name": "ws"}]),
            pipeline_run(workspaces=[volume_workspace()])]
    started = time.monotonic()
    outcome = rehearse(tmp_path, *docs)
    assert time.monotonic() - started < 15
    slow = outcome.tasks["slow"]
    assert slow.status == "timedout" and len(slow.attempts) == 2
    assert outcome.status == "Failed"
    for pid_file in outcome.workspaces["ws"].glob("pid-*"):
        assert not _alive(int(pid_file.read_text()))


def test_the_pipeline_timeout_cancels_everything_finally_included(tmp_path: Path) -> None:
    docs = [task("slow", step("sleep 30")), task("noop", step("true")),
            pipeline(ptask("slow", retries=3), ptask("later", "noop", runAfter=["slow"]),
                     **{"finally": [ptask("cleanup", "noop")]}),
            pipeline_run(timeouts={"pipeline": "1s"})]
    outcome = rehearse(tmp_path, *docs)
    assert outcome.status == "PipelineRunTimeout"
    assert outcome.tasks["slow"].status == "cancelled"
    assert len(outcome.tasks["slow"].attempts) == 1  # no retry after a cancel
    assert outcome.tasks["later"].status == "skipped"
    assert outcome.tasks["cleanup"].status == "skipped"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


ENV_PROBE = ('printf "%s|%s|%s|%s" "$HOME" "$TMPDIR" "${MLFLOW_TRACKING_URI-unset}" '
             '"$(pwd)" > $(results.env.path)\n'
             'touch "$HOME/home-mark" /tmp/tmp-mark\n')


def test_taskruns_are_isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://leak.example")
    monkeypatch.setenv("SECRET_OF_THE_PARENT", "x")
    docs = [task("a", step(ENV_PROBE, env=[{"name": "HOME", "value": "/tmp"}]),
                 results=["env"], workspaces=["ws"]),
            task("b", step(ENV_PROBE + 'env > $(results.all.path)'), results=["env", "all"]),
            pipeline(ptask("a", workspaces=WS), ptask("b"), workspaces=[{"name": "ws"}]),
            pipeline_run(workspaces=[volume_workspace()])]
    outcome = rehearse(tmp_path, *docs)
    assert outcome.status == "Succeeded", outcome.tasks
    home_a, tmp_a, mlflow_a, cwd_a = result(outcome, "a", "env").split("|")
    home_b, tmp_b, mlflow_b, cwd_b = result(outcome, "b", "env").split("|")
    assert mlflow_a == mlflow_b == "unset"
    assert "SECRET_OF_THE_PARENT" not in result(outcome, "b", "all")
    assert home_a == tmp_a  # HOME=/tmp maps to the step's own /tmp
    assert len({home_a, home_b, tmp_b}) == 3
    run = outcome.folder
    for path in (home_a, tmp_a, home_b, tmp_b, cwd_a, cwd_b):
        assert Path(path).is_relative_to(run), path
    assert (Path(tmp_a) / "tmp-mark").exists() and (Path(tmp_b) / "tmp-mark").exists()
    # Only the task that declares the workspace has it.
    pod_a, pod_b = (outcome.tasks[n].attempts[0].folder for n in "ab")
    assert (pod_a / "workspace" / "ws").resolve() == outcome.workspaces["ws"].resolve()
    assert not (pod_b / "workspace" / "ws").exists()


def test_a_task_cannot_reference_a_workspace_it_does_not_declare(tmp_path: Path) -> None:
    docs = [task("b", step("ls $(workspaces.ws.path)")),
            pipeline(ptask("b"), workspaces=[{"name": "ws"}]),
            pipeline_run(workspaces=[volume_workspace()])]
    with pytest.raises(ManifestError, match=r"unknown reference \$\(workspaces.ws.path\)"):
        rehearse(tmp_path, *docs)


@pytest.mark.parametrize("docs,message", [
    ([task("t", step("echo $(params.nope)")), pipeline(ptask("t")), pipeline_run()],
     r"unknown reference \$\(params.nope\)"),
    ([task("t", step("true")), pipeline(ptask("t", runAfter=["ghost"])), pipeline_run()],
     "runAfter 'ghost' is no task"),
    ([task("t", step("true"), results=["r"]), task("u", step("true"), params=[{"name": "x"}]),
      pipeline(ptask("a", "t", params=[], runAfter=["b"]),
               ptask("b", "u", params=[{"name": "x", "value": "$(tasks.a.results.r)"}],
                     runAfter=[]), ptask("c", "t", runAfter=["c"])), pipeline_run()],
     "a cycle"),
    ([task("t", step("true"), params=[{"name": "x"}]), pipeline(ptask("t")), pipeline_run()],
     "param 'x' has no value and no default"),
    ([task("t", step("true"), workspaces=["w"]), pipeline(ptask("t")), pipeline_run()],
     "workspace 'w' is not bound"),
    ([task("t", step("true"), sidecars=[{"name": "s", "image": "x"}]), pipeline(ptask("t")),
      pipeline_run()], "sidecars are not rehearsed"),
    ([task("t", step("true", stdoutConfig={"path": "/x"})), pipeline(ptask("t")),
      pipeline_run()], "stdoutConfig not rehearsed"),
    ([task("t", step("true")), pipeline(ptask("t", taskRef={"resolver": "git"})),
      pipeline_run()], "remote resolver"),
])
def test_what_tekton_rejects_is_refused_before_anything_runs(tmp_path: Path, docs: list,
                                                             message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        rehearse(tmp_path, *docs)
    assert not list((tmp_path / "runs").glob("*/taskruns"))


def test_secret_env_resolves_a_secret_ref_and_a_missing_one_fails_clearly(tmp_path: Path) -> None:
    probe = step('printf "%s:%s" "$MLFLOW_TRACKING_USERNAME" "$PASS" > $(results.r.path)',
                 envFrom=[{"secretRef": {"name": "mlflow-credentials"}}],
                 env=[{"name": "PASS", "valueFrom": {"secretKeyRef": {
                     "name": "mlflow-credentials", "key": "MLFLOW_TRACKING_PASSWORD"}}}])
    docs = [task("t", probe, results=["r"]), pipeline(ptask("t")), pipeline_run()]
    secret = {"mlflow-credentials": {"MLFLOW_TRACKING_USERNAME": "alice",
                                     "MLFLOW_TRACKING_PASSWORD": "s3cret"}}
    assert result(rehearse(tmp_path / "ok", *docs, secrets=secret), "t", "r") == "alice:s3cret"
    missing = rehearse(tmp_path / "missing", *docs)
    assert missing.status == "Failed"
    assert "Secret 'mlflow-credentials' not found; give its data with --secret-env " \
           "mlflow-credentials=FILE" in missing.tasks["t"].reason


def test_a_config_map_workspace_is_read_only_data(tmp_path: Path) -> None:
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "spec-cm"},
                  "data": {"spec.json": '{"a": 1}'}}
    docs = [config_map,
            task("read", step("cat $(workspaces.spec.path)/spec.json > $(results.r.path)"),
                 results=["r"], workspaces=[{"name": "spec", "readOnly": True}]),
            pipeline(ptask("read", workspaces=[{"name": "spec", "workspace": "spec"}]),
                     workspaces=[{"name": "spec"}]),
            pipeline_run(workspaces=[{"name": "spec", "configMap": {"name": "spec-cm"}}])]
    outcome = rehearse(tmp_path, *docs)
    assert result(outcome, "read", "r") == '{"a": 1}'
    folder = outcome.workspaces["spec"]
    assert oct((folder / "spec.json").stat().st_mode & 0o777) == "0o444"
    assert oct(folder.stat().st_mode & 0o777) == "0o555"


def test_results_above_tekton_s_limit_fail_the_taskrun(tmp_path: Path) -> None:
    docs = [task("big", step("head -c 5000 /dev/zero | tr '\\0' x > $(results.r.path)"),
                 results=["r"]),
            pipeline(ptask("big")), pipeline_run()]
    outcome = rehearse(tmp_path, *docs)
    assert outcome.tasks["big"].status == "failed"
    assert "above Tekton's limit of 4096" in outcome.tasks["big"].reason


def test_a_result_missing_from_a_task_that_succeeded_fails_the_run(tmp_path: Path) -> None:
    docs = [task("quiet", step("true"), results=["r"]),
            task("use", step("echo $(params.v)"), params=[{"name": "v"}]),
            pipeline(ptask("quiet"),
                     ptask("use", params=[{"name": "v", "value": "$(tasks.quiet.results.r)"}]),
                     results=[{"name": "out", "value": "$(tasks.quiet.results.r)"}]),
            pipeline_run()]
    outcome = rehearse(tmp_path, *docs)
    assert outcome.status == "Failed"
    assert "InvalidTaskResultReference" in outcome.tasks["use"].reason
    assert outcome.results == {}  # a pipeline result whose task result is missing is left out


def test_independent_tasks_run_at_once(tmp_path: Path) -> None:
    docs = [task("nap", step("sleep 1")),
            pipeline(ptask("a", "nap"), ptask("b", "nap"), ptask("c", "nap")), pipeline_run()]
    started = time.monotonic()
    outcome = rehearse(tmp_path, *docs)
    assert outcome.status == "Succeeded" and time.monotonic() - started < 2.8


def test_literal_container_paths_in_scripts_map_into_the_pod(tmp_path: Path) -> None:
    # As Tekton's own examples write results: to /tekton/results/NAME, and scratch to /tmp.
    docs = [task("t", step("echo scratch > /tmp/x\nprintf 'ok' | tee /tekton/results/r\n"
                           "cat /tmp/x > /workspace/copy\n"), results=["r"]),
            pipeline(ptask("t")), pipeline_run()]
    outcome = rehearse(tmp_path, *docs)
    assert result(outcome, "t", "r") == "ok"
    pod = outcome.tasks["t"].attempts[0].folder
    assert (pod / "steps" / "run" / "tmp" / "x").read_text() == "scratch\n"
    assert (pod / "workspace" / "copy").exists()
