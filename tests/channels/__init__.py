"""Conda channels the tests build themselves from real packages (no conda-forge here).

`tiny` builds a handful of small packages in well under a second. `realistic`, `jupyter` and
`large` repackage the running CPython and real PyPI wheels (`wheelfetch` downloads,
`wheelrepack` turns one wheel into a package, `wheelchannel` assembles and checks a channel,
`pinned` holds the recipes made of a pinned closure) and are cached between runs (`cache`).
`server` serves any of them over HTTP.
"""
