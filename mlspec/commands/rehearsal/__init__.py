"""A rehearsal of what a cluster would run, on this machine, from the compiled YAML alone.

``mlspec run --engine tekton`` executes the compiled ``tekton/*.yaml`` as Tekton would
(``tekton.py`` reads it, ``substitute.py`` resolves its ``$(…)`` references, ``taskrun.py`` runs
one TaskRun, ``executor.py`` schedules the PipelineRun); ``mlspec serve --manifest`` starts an
InferenceService's predictor container (``serving.py``). Both turn containers into local
processes in fresh folders through ``container.py``. ``docs/rehearsal.md`` says what is faithful.
"""
