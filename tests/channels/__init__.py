"""Conda channels the tests build themselves from real packages (no conda-forge here).

`tiny` builds a handful of small packages in well under a second; `realistic` repackages the
running CPython and real PyPI wheels (cached between runs); `server` serves either over HTTP.
"""
