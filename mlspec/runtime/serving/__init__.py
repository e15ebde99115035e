"""The model server (``mlspec serve``): Open Inference Protocol v2, /metrics, /feedback and online
drift; ``server.py`` is its entry point."""
