"""The compiler: a checked spec -> the pipeline graph and the render context -> each target's
renderer (``targets/``) -> files, written atomically by ``writer.py``. See docs/architecture.md."""
