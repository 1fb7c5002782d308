"""cardgate's HTTP gateway: Starlette app, config, body/image input, engine runner, CLI.

Nothing in here names a vendor: every vendor lives in `adapters/<name>.py`.
"""
