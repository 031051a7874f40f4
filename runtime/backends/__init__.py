"""Inference backends. Each one runs the exported network stages behind the same
:class:`~ui2c.runtime.backends.base.Runner` contract, so the codec session code is
shared and comparing backends is one line."""
