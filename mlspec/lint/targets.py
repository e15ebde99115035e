"""Lint rules for values the compiled output carries as they are: Kubernetes labels, the
container image, the data uri. The targets refuse such values at compile (MLS701, MLS801,
MLS802) with the same checks (``mlspec.k8s``); these rules make ``mlspec validate`` say so first,
so a spec that validates also compiles.

Add a rule here as a ``@rule`` function and list it in ``mlspec.lint.rules.RULES``.
"""

from __future__ import annotations

from collections.abc import Iterator

from mlspec import k8s
from mlspec.lint.base import Context, Finding, rule


@rule("MLS280", "invalid-label")
def invalid_label(ctx: Context) -> Iterator[Finding]:
    """A label, node selector or toleration is not a valid Kubernetes label.

    Anti-pattern: ``labels: {team: data science}`` (a space), ``{cost-center_: x}`` (ends with
    '_'), a value longer than 63 characters — the API server rejects any object that carries it,
    so the Tekton target refuses it (MLS801) and the serving manifests leave it out.

    Best practice: ``[prefix/]name`` keys and values of at most 63 characters of alphanumerics,
    '-', '_' and '.', starting and ending with an alphanumeric: ``team: data-science``.
    """
    for path, message, hint in k8s.spec_label_problems(ctx.project.metadata.labels,
                                                       ctx.project.model.resources):
        yield Finding(path, message, hint)


@rule("MLS281", "invalid-image")
def invalid_image(ctx: Context) -> Iterator[Finding]:
    """serving.image is not a container image reference.

    Anti-pattern: ``image: "my image:latest"``, ``image: ghcr.io/org/app:$(tag)`` — Kubernetes
    cannot pull it, and Tekton would substitute ``$(...)`` inside it.

    Best practice: ``[registry[:port]/]path[:tag][@sha256:digest]``, e.g.
    ``ghcr.io/org/mlspec-runtime:0.1.0``; pin a digest for reproducible serving.
    """
    image = ctx.project.serving.image
    if image is not None and not k8s.valid_image(image):
        yield Finding(("serving", "image"), f"{image!r} is not a container image reference",
                      k8s.IMAGE_HINT)


@rule("MLS282", "uri-breaks-lines")
def uri_breaks_lines(ctx: Context) -> Iterator[Finding]:
    """data.source.uri holds a line break or a control character.

    Anti-pattern: ``uri: "data.csv\\nkind: Secret"`` (a double-quoted escape) — no file or
    object store has such a name, and the KFP compiler writes the uri into a YAML comment, where
    a line break would end the comment.

    Best practice: the uri on one line: ``s3://bucket/path/train.parquet``.
    """
    uri = ctx.project.data.source.uri
    if k8s.breaks_lines(uri):
        yield Finding(("data", "source", "uri"),
                      "data.source.uri holds a line break or a control character",
                      "write the uri on one line, without control characters")
