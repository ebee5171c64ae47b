"""Serve mongoeco's MongoDB wire protocol on 127.0.0.1:PORT until stopped (run by
tests/backend_servers.py under the Python 3.13 that mongoeco needs, not by pytest).

    python mongo_server.py PORT [user:password ...]

Users given turn authentication (SCRAM) on, with their credentials in `admin`.
"""

import asyncio
import signal
import sys


async def serve(port: int, users: list[str]) -> None:
    from mongoeco.wire import AsyncMongoEcoProxyServer, WireAuthUser

    auth_users = tuple(WireAuthUser(name, password, roles=({"role": "root", "db": "admin"},))
                       for name, _, password in (user.partition(":") for user in users))
    server = AsyncMongoEcoProxyServer(host="127.0.0.1", port=port, auth_users=auth_users)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        print(f"listening on {server.address.host}:{server.address.port}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), sys.argv[2:]))
