"""Drift: statistics (``stats.py``), reports of reference vs current data (``compare.py``), their
text and HTML rendering (``report.py``) and ``mlspec drift`` / the drift step (``command.py``)."""
