"""Voice calls and their recordings, provider-neutral.

:mod:`gateway.calls.models` holds the rows, :mod:`gateway.calls.status` the status
precedence that keeps out-of-order callbacks from moving a call backwards, and
:mod:`gateway.calls.recordings` the recording rows and their retention.
"""
