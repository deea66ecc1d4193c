"""The code behind notebooks/*.ipynb: the notebooks set their parameters and call these, so it is importable and
tested (tests/test_notebooks.py) like the rest of kemotion."""
