"""The vendor-neutral core that adapters/ and gateway/ both build on; it imports neither.

    request.py        IncomingRequest (the bytes as received), ImageSource, EngineCall
    limits.py         ImageLimits: a vendor's documented input limits, as data
    errors.py         the neutral failures the shared machinery raises
    strict_base64.py  base64 as every vendor decodes an image field
    body.py           reading a body under its limits; JSON, multipart and urlencoded parsing
    replay.py         the store of single-use signatures and nonces every worker shares
    validation.py     typed decoding of config tables into Structs, one-line errors
    wire.py           what a migration client sends and reads back (WireRequest, Reply, Outcome)
    shadow_table.py   the keys every [<dialect>.shadow] table shares
"""
