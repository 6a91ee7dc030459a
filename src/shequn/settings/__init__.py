"""Settings: `base` holds everything; `dev`, `test` and `production` only change what differs.

Everything an operator sets comes from the environment (see `base.env_*`), never from edits here.
"""
