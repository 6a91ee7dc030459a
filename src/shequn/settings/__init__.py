"""Settings: `base` holds everything; `dev`, `test` and `production` only change what differs.

Everything an operator sets comes from the environment (see `base.env_*`), never from edits here.
"""

# The key `settings.dev` (and so `make demo`) signs with. It is public: whoever has it can forge
# a member's token, so `shequn serve` refuses to run with it unless asked (--dev, or the demo).
DEV_SECRET_KEY = "dev-only-insecure-key-shequn-0000000000000000000000000"
