"""Model governance core: explanations, recourse, robustness and deletion checks over numpy/pandas.

This package is pure: it imports neither Prefect nor Dask. Orchestration lives in ``tasks/`` and
``flows/``; the ``govern`` command line sits on top of those.
"""

__version__ = "0.1.0"
