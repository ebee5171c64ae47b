"""RPC and database calls as requests of the client: JSON-RPC, gRPC, PostgreSQL, Redis,
MongoDB and SQLite (XML-RPC's aquests stub is in `aquests.py`, its async one here).

Each backend module owns one kind of call on top of a maintained driver (asyncpg,
redis-py's asyncio client, PyMongo's AsyncMongoClient, aiosqlite) or on the
client's own HTTP/2 (gRPC), and turns the driver's failures into the client's
errors.  `base.py` owns what they share: the call object the aquests scheduler
queues, the pools per server, the missing-extra error and the failure classes.
Nothing here is imported until a backend is used, and no driver is imported
until its first call.
"""
