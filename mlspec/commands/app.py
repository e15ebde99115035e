"""The ``mlspec`` command line: parse options, call the library, print, return an exit code.

Every command imports what it needs inside its body, so ``mlspec validate`` never pays for
kfp, scikit-learn, torch or mlflow. Exit codes follow DESIGN.md: 0 ok, 1 invalid/failed,
2 usage or unreadable input.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any, NoReturn

import typer

from mlspec.errors import UsageError

app = typer.Typer(
    name="mlspec",
    help="Validate mlproject.yaml and compile it to KFP, Tekton, KServe and Prometheus.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
trigger_app = typer.Typer(
    help="The retraining trigger that monitoring alerts call.", no_args_is_help=True
)
app.add_typer(trigger_app, name="trigger")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class OutputFormat(StrEnum):
    text = "text"
    json = "json"
    sarif = "sarif"
    github = "github"


class DriftFormat(StrEnum):
    text = "text"
    json = "json"
    html = "html"


class PlanFormat(StrEnum):
    text = "text"
    json = "json"


class Template(StrEnum):
    classification = "classification"
    regression = "regression"
    torch = "torch"


# Options shared by several commands, defined once.
ProfileOpt = Annotated[
    str | None, typer.Option("--profile", "-p", help="Apply this profile from the spec.")
]
SpecArg = Annotated[str, typer.Argument(help="Path to mlproject.yaml.")]
SecretEnvOpt = Annotated[
    list[str] | None,
    typer.Option("--secret-env", help="A Secret's data for the rehearsal: NAME=FILE (or "
                 "NAME.env) of KEY=VALUE lines; repeatable."),
]


def _fail_usage(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def _exit_with(command: Callable[..., int], *args: Any, **kwargs: Any) -> NoReturn:
    """Run a command function and exit with its code; a usage error (unknown profile, bad
    argument) is one line on stderr and exit 2, for every command alike."""
    try:
        code = command(*args, **kwargs)
    except UsageError as exc:
        _fail_usage(str(exc))
    raise typer.Exit(code)


@app.command()
def validate(
    specs: Annotated[list[str], typer.Argument(help="Spec files to check ('-' for stdin).")],
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.text,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail too.")] = False,
    profile: ProfileOpt = None,
) -> None:
    """Check specs against the schema and the lint rules."""
    from mlspec.commands.validate import validate_files

    _exit_with(validate_files, specs, output_format.value, strict=strict, profile=profile)


@app.command()
def compile(  # noqa: A001 - the command's name
    spec: SpecArg,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Output folder (default build/NAME).")
    ] = None,
    target: Annotated[
        list[str] | None, typer.Option("--target", "-t", help="Only these targets.")
    ] = None,
    profile: ProfileOpt = None,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail too.")] = False,
    previous: Annotated[
        str | None,
        typer.Option("--previous", help="The spec now in production (a path or REV:PATH), that "
                     "an 'auto' rollout is planned against (default: $MLSPEC_PREVIOUS_SPEC)."),
    ] = None,
) -> None:
    """Compile a spec to KFP, Tekton, serving and monitoring manifests."""
    from mlspec.commands.compile import compile_command

    _exit_with(compile_command, spec, output, target or [], profile, strict=strict,
               previous=previous)


@app.command()
def run(
    spec: SpecArg,
    profile: ProfileOpt = None,
    workdir: Annotated[
        str | None, typer.Option("--workdir", help="Where runs keep artifacts.")
    ] = None,
    engine: Annotated[
        str, typer.Option("--engine", help="kfp (kfp.local) or tekton (a rehearsal of the "
                          "compiled Tekton YAML).")
    ] = "kfp",
    secret_env: SecretEnvOpt = None,
    pipeline: Annotated[
        str, typer.Option("--pipeline", help="train (the training pipeline) or batch (batch "
                          "scoring: the spec's batch section).")
    ] = "train",
) -> None:
    """Run the compiled pipeline locally (kfp.local, or a Tekton rehearsal), with progress."""
    from mlspec.commands.run import run_command

    _exit_with(run_command, spec, profile, workdir, engine=engine, secret_env=secret_env,
               pipeline=pipeline)


@app.command()
def submit(
    spec: SpecArg,
    target: Annotated[str, typer.Option("--target", "-t", help="kfp or tekton.")],
    host: Annotated[str | None, typer.Option("--host", help="KFP API endpoint.")] = None,
    experiment: Annotated[str | None, typer.Option("--experiment")] = None,
    namespace: Annotated[str | None, typer.Option("--namespace", "-n")] = None,
    apply_definitions: Annotated[
        bool,
        typer.Option(
            "--apply-definitions", help="Tekton: create or patch Tasks and Pipeline first."
        ),
    ] = False,
    profile: ProfileOpt = None,
) -> None:
    """Submit the pipeline to a cluster (KFP API, or the Kubernetes API for Tekton)."""
    from mlspec.commands.submit import submit_command

    _exit_with(
        submit_command,
        spec,
        target,
        host=host,
        experiment=experiment,
        namespace=namespace,
        apply_definitions=apply_definitions,
        profile=profile,
    )


@app.command()
def serve(
    model_uri: Annotated[
        str | None, typer.Argument(help="Model folder, models:/NAME@ALIAS or runs:/ID/model.")
    ] = None,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option("--port", help="Default 8080; with --manifest, its port.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Model name in the API; with "
                                             "--manifest, the InferenceService.")] = None,
    tracking_uri: Annotated[str | None, typer.Option("--tracking-uri")] = None,
    manifest: Annotated[
        str | None, typer.Option("--manifest", help="Start this InferenceService's predictor "
                                 "container as a local process (compiled serving/*.yaml).")
    ] = None,
    secret_env: SecretEnvOpt = None,
    model_version: Annotated[
        int | None, typer.Option("--model-version", help="With --manifest: the registry version "
                                 "to pin into the compiled deploy template.")
    ] = None,
    candidate: Annotated[
        str | None, typer.Option("--candidate", help="Also serve this version of the model as "
                                 "a rollout's candidate (MODEL_URI is the champion).")
    ] = None,
    traffic_percent: Annotated[
        int, typer.Option("--traffic-percent", help="The candidate's share of requests, 0-100.")
    ] = 0,
    mirror: Annotated[
        bool, typer.Option("--mirror", help="Mirror every request to the candidate (shadow).")
    ] = False,
    admin_host: Annotated[str, typer.Option("--admin-host")] = "127.0.0.1",
    admin_port: Annotated[
        int | None, typer.Option("--admin-port", help="The traffic admin API (default: "
                                 "--port + 1).")
    ] = None,
) -> None:
    """Serve a model: Open Inference Protocol v2, /metrics, /feedback, online drift."""
    if manifest is not None:
        if candidate is not None:
            _fail_usage("--candidate serves a model URI, not a --manifest")
        if model_uri is not None or tracking_uri is not None:
            _fail_usage("--manifest takes the model and its registry from the manifest")
        from mlspec.commands.rehearsal.serving import serve_manifest

        _exit_with(serve_manifest, manifest, name=name, host=host, port=port,
                   secret_env=secret_env or [], model_version=model_version)
    if model_version is not None:
        _fail_usage("--model-version goes with --manifest (a MODEL_URI names its version)")
    if model_uri is None or secret_env:
        _fail_usage("give MODEL_URI (or --manifest FILE; --secret-env goes with --manifest)")
    from mlspec.runtime.serving.server import serve_command

    _exit_with(serve_command, model_uri, host=host, port=8080 if port is None else port,
               name=name, tracking_uri=tracking_uri, candidate_uri=candidate,
               traffic_percent=traffic_percent, mirror=mirror, admin_host=admin_host,
               admin_port=admin_port)


@app.command()
def rollout(
    spec: SpecArg,
    version: Annotated[int, typer.Option("--version", help="The candidate's registry version.")],
    local: Annotated[
        str | None, typer.Option("--local", help="Admin API of `mlspec serve ... --candidate` "
                                 "(e.g. http://127.0.0.1:8081); without it, the kubeconfig's "
                                 "cluster.")
    ] = None,
    prometheus: Annotated[
        str | None, typer.Option("--prometheus", help="Prometheus that scrapes the server "
                                 "(default: 127.0.0.1:9090 with --local, else "
                                 "serving.rollout.prometheus_url).")
    ] = None,
    hold: Annotated[
        str | None, typer.Option("--hold", help="Hold every step this long instead of the "
                                 "plan's (e.g. 30s, for a laptop).")
    ] = None,
    report: Annotated[str | None, typer.Option("--report", help="Where the report goes.")] = None,
    profile: ProfileOpt = None,
) -> None:
    """Carry out the canary rollout plan: step traffic, gate on Prometheus, promote or roll back."""
    from mlspec.commands.rollout import rollout_command

    _exit_with(rollout_command, spec, version, profile, local, prometheus, hold, report)


@app.command()
def drift(
    reference: Annotated[str, typer.Option("--reference", "-r", help="Dataset or model folder.")],
    current: Annotated[str, typer.Option("--current", "-c", help="Current dataset.")],
    method: Annotated[str | None, typer.Option("--method", "-m")] = None,
    threshold: Annotated[float | None, typer.Option("--threshold")] = None,
    spec: Annotated[
        str | None,
        typer.Option("--spec", help="Take method, threshold and features from monitoring.drift."),
    ] = None,
    output_format: Annotated[DriftFormat, typer.Option("--format", "-f")] = DriftFormat.text,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Write here, not stdout.")
    ] = None,
) -> None:
    """Compare current data with a reference: exit 1 when drift is found."""
    from mlspec.runtime.drift.command import drift_command

    _exit_with(
        drift_command,
        reference,
        current,
        method=method,
        threshold=threshold,
        spec=spec,
        output_format=output_format.value,
        output=output,
    )


@app.command()
def plan(
    old: Annotated[str, typer.Argument(help="The current spec (or REV:PATH).")],
    new: Annotated[str, typer.Argument(help="The proposed spec (or REV:PATH).")],
    output_format: Annotated[PlanFormat, typer.Option("--format", "-f")] = PlanFormat.text,
) -> None:
    """Classify a change's risk and pick the rollout strategy."""
    from mlspec.commands.plan import plan_command

    _exit_with(plan_command, old, new, output_format.value)


@app.command()
def schema() -> None:
    """Print the JSON Schema of mlproject.yaml."""
    from mlspec.spec.schema import shipped_schema_text

    sys.stdout.write(shipped_schema_text())


@app.command()
def init(
    template: Annotated[Template, typer.Option("--template", "-t")] = Template.classification,
    path: Annotated[
        str, typer.Option("--output", "-o", help="Where to write it.")
    ] = "mlproject.yaml",
    name: Annotated[str | None, typer.Option("--name", help="metadata.name")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a starter mlproject.yaml."""
    from mlspec.commands.init import init_command

    _exit_with(init_command, template.value, path, name=name, force=force)


@app.command()
def explain(code: Annotated[str, typer.Argument(help="A diagnostic code, e.g. MLS203.")]) -> None:
    """Explain a diagnostic code: what it catches and how to fix it."""
    from mlspec.commands.explain import explain_command

    _exit_with(explain_command, code)


@trigger_app.command("serve")
def trigger_serve(
    spec: Annotated[str, typer.Option("--spec", "-s", help="The project's mlproject.yaml.")],
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="0: any free port.")] = 9095,
    workdir: Annotated[str | None, typer.Option("--workdir", help="Where runs execute.")] = None,
    profile: ProfileOpt = None,
) -> None:
    """Receive Alertmanager webhooks; a retraining alert starts `mlspec run SPEC`."""
    from mlspec.commands.trigger import serve_command

    _exit_with(serve_command, spec, host=host, port=port, workdir=workdir, profile=profile)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
