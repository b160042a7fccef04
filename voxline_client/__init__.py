"""A small Python client for a Voxline server (standard library only: no torch, no numpy).

    from voxline_client import VoxlineClient
    client = VoxlineClient("http://127.0.0.1:8020", api_key=None)
    with client.stream("Hello!", format="pcm") as audio:   # chunks while they are generated
        for chunk in audio:
            player.write(chunk)
    wav = client.synthesize("Hello!")                       # the whole utterance
"""

from voxline_client.client import (
    AudioStream,
    VoxlineClient,
    VoxlineConnectionError,
    VoxlineError,
    VoxlineHTTPError,
)

__all__ = ["AudioStream", "VoxlineClient", "VoxlineConnectionError", "VoxlineError",
           "VoxlineHTTPError"]


def __getattr__(name: str):
    """`Session` loads on first use: it needs the optional `websockets` package."""
    if name in ("Session", "VoxlineSessionError"):
        from voxline_client import session

        return getattr(session, name)
    raise AttributeError(f"module 'voxline_client' has no attribute {name!r}")
