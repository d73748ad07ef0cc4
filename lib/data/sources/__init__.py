"""The data sources, one module each: ``mirror``, ``folder``, ``megnet`` (figshare), ``mp``, ``optimade``.

Each has ``plan(request) -> Job`` (see ``base``); ``lib.data.load.load_dataset`` dispatches to them.
"""
