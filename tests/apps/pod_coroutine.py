"""The coroutine-object bean form: `hello` is a coroutine made at import."""

import asyncio


async def hello_world(**kwargs):
    await asyncio.sleep(0)
    print("BEAN hello from a coroutine object", flush=True)


hello = hello_world()
